"""Key providers: how :func:`~ccdeploy.seal.open_sealed` obtains an artifact's data-encryption key.

A provider turns the artifact's recipients into the DEK. :class:`KekKeyProvider` unwraps it with one
of the caller's KEKs; :class:`DekKeyProvider` hands over a DEK obtained elsewhere (inside an enclave,
the key broker's release). Either way the header MAC is then checked with the DEK, so a wrong DEK or
a swapped wrapped key fails before any payload byte is decrypted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ccdeploy.errors import WrongKek
from ccdeploy.kek.base import KeyWrapper
from ccdeploy.seal._header import SealedHeader

__all__ = ["DekKeyProvider", "KekKeyProvider", "KeyProvider"]


class KeyProvider(Protocol):
    """Anything that can produce the DEK of a sealed artifact from its header."""

    def data_key(self, header: SealedHeader) -> bytes:
        """The artifact's DEK, or raise :class:`~ccdeploy.errors.WrongKek`."""
        ...


class KekKeyProvider:
    """Unwraps the DEK with the first of the given KEKs that one of the recipients names."""

    def __init__(self, keks: Sequence[KeyWrapper]) -> None:
        self._keks = tuple(keks)

    def data_key(self, header: SealedHeader) -> bytes:
        """Unwrap the DEK from the first recipient one of our KEKs can open."""
        failures: list[str] = []
        for kek in self._keks:
            for recipient in header.recipients:
                wrapped = recipient.to_wrapped()
                if not kek.matches(wrapped):
                    continue
                try:
                    return kek.unwrap(wrapped)
                except WrongKek as exc:
                    failures.append(exc.message)
        if failures:
            raise WrongKek(f"the KEK matches a recipient but could not unwrap it: {failures[0]}")
        ours = ", ".join(f"{kek.scheme}:{kek.key_id}" for kek in self._keks) or "none"
        theirs = ", ".join(repr(f"{r.scheme}:{r.key_id}") for r in header.recipients)
        raise WrongKek(f"no recipient of this artifact is wrapped under the KEK given ({ours}); recipients: {theirs}")


class DekKeyProvider:
    """Hands over a DEK the caller already holds (e.g. one released to an enclave)."""

    def __init__(self, dek: bytes) -> None:
        self._dek = bytes(dek)

    def data_key(self, header: SealedHeader) -> bytes:
        """The DEK given at construction; the header MAC check decides whether it is right."""
        return self._dek
