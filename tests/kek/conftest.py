"""Fixtures for the KEK backends: the SoftHSM2 token fixtures live in tests/softhsm.py (shared by the suite)."""

from tests.softhsm import SoftHsm

__all__ = ["SoftHsm"]
