"""The error tree of the ``sbom`` package.

Every failure ``sbom`` reports on purpose is a :class:`BomError`; each carries the process exit code a
command line should use for it (1 = the document is invalid, 2 = the input given to build or edit a
document is unusable). The package imports nothing from ccdeploy: the CLI maps these onto its own tree.
"""

from __future__ import annotations

__all__ = ["BomError", "BomInvalid", "BomUsageError", "CardInvalid", "InputInvalid"]


class BomError(Exception):
    """Root of every error the ``sbom`` package raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BomInvalid(BomError):
    """A BOM document is malformed or fails its schema (exit 1)."""

    exit_code = 1


class BomUsageError(BomError):
    """The caller's input cannot be turned into a BOM as asked (exit 2)."""

    exit_code = 2


class CardInvalid(BomUsageError):
    """A model card (or dataset description) is malformed: bad YAML, unknown or duplicate keys, bad values."""


class InputInvalid(BomUsageError):
    """Other unusable input: a malformed dependency lock, an unknown reference kind, a bad digest."""
