"""Shared fixtures: simulators (real vendor formats) that the fake devices answer with."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from attestation.simulator.nitro import NitroSimulator
from attestation.simulator.snp import SnpSimulator

AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def nitro_simulator() -> NitroSimulator:
    """A Nitro simulator whose CAs are valid around :data:`AT`."""
    return NitroSimulator.create(at=AT)


@pytest.fixture(scope="session")
def snp_simulator() -> SnpSimulator:
    """An SEV-SNP simulator (small RSA keys keep the fixture fast)."""
    return SnpSimulator.create(at=AT, rsa_key_size=2048)
