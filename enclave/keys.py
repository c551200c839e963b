"""The enclave's ephemeral keys: an HPKE key pair (to receive the model key) and a TLS identity (to serve).

Both are made at start-up, live only in this process's memory, and are bound into every piece of
evidence the enclave produces through :meth:`EnclaveKeys.binding`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ccdeploy.release.binding import report_data
from ccdeploy.release.hpke import DEFAULT_SUITE, HpkeKeyPair, HpkeSuite
from enclave.tls import TlsIdentity

__all__ = ["EnclaveKeys"]


@dataclass(frozen=True)
class EnclaveKeys:
    """The enclave's HPKE key pair and TLS identity."""

    hpke: HpkeKeyPair
    tls: TlsIdentity

    @classmethod
    def generate(
        cls, clock: Callable[[], datetime], *, suite: HpkeSuite = DEFAULT_SUITE, san_names: Sequence[str] = ()
    ) -> EnclaveKeys:
        """Fresh keys: an HPKE key pair of ``suite`` and a TLS identity whose certificate names ``san_names``."""
        return cls(HpkeKeyPair.generate(suite), TlsIdentity.generate(clock, san_names))

    def binding(self, nonce: bytes) -> bytes:
        """The 64-byte report data binding ``nonce`` to both public keys (see :mod:`ccdeploy.release.binding`)."""
        return report_data(nonce, self.hpke.public, self.tls.spki_der)
