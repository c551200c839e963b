"""Resolving the ``module:attribute`` targets of ccdeploy's lazy registries (KEKs, signers, CLI commands)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["load_target"]


def load_target(target: str) -> Any:
    """Import ``module`` and return its ``attribute`` for a ``module:attribute`` registry target.

    Raises:
        ImportError: the module (or an optional dependency it needs) is not installed; each registry
            turns this into its own typed error.
    """
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)
