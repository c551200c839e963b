"""The report-data binding: what an enclave's evidence commits to, so a key goes only to that enclave.

Every evidence format we accept carries 64 bytes of caller data (SEV-SNP and TDX ``REPORT_DATA``, Nitro
``user_data``). An enclave puts ``report_data(nonce, hpke_public_key, tls_public_key)`` there: a SHA-512
over the three values, each length-prefixed, after a domain label. The broker recomputes it from the
nonce it issued and the keys in the request; a client recomputes it from its own nonce and the keys the
server presents. Length prefixes make the encoding injective (no two triples hash the same input).
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

__all__ = ["REPORT_DATA_DOMAIN", "REPORT_DATA_SIZE", "report_data", "report_data_matches", "spki_der"]

REPORT_DATA_DOMAIN = b"ccdeploy/report-data/v1"
REPORT_DATA_SIZE = 64


def report_data(nonce: bytes, hpke_public_key: bytes, tls_public_key: bytes) -> bytes:
    """SHA-512(domain ‖ len‖nonce ‖ len‖HPKE public key ‖ len‖TLS SubjectPublicKeyInfo DER), 64 bytes.

    Args:
        nonce: The challenge nonce (from the broker for a release, from the client for ``/v1/attestation``).
        hpke_public_key: The enclave's HPKE public key as sent on the wire (:meth:`HpkeSuite.public_bytes`).
        tls_public_key: The DER SubjectPublicKeyInfo of the enclave's TLS key.
    """
    if not nonce:
        raise ValueError("an empty nonce binds nothing")
    digest = hashlib.sha512(REPORT_DATA_DOMAIN)
    for part in (nonce, hpke_public_key, tls_public_key):
        digest.update(len(part).to_bytes(4, "big"))
        digest.update(part)
    return digest.digest()


def report_data_matches(actual: bytes | None, nonce: bytes, hpke_public_key: bytes, tls_public_key: bytes) -> bool:
    """Whether evidence report data ``actual`` is exactly the binding of these values (constant time)."""
    if actual is None:
        return False
    return hmac.compare_digest(actual, report_data(nonce, hpke_public_key, tls_public_key))


def spki_der(public_key: PublicKeyTypes) -> bytes:
    """The DER SubjectPublicKeyInfo of a public key (how TLS keys are named in the binding)."""
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
