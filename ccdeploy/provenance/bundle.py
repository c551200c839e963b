"""Sigstore bundles (v0.3 JSON) for key and private-PKI signatures, as OpenSSF model_signing writes them.

A key-signed bundle carries ``verificationMaterial.publicKey.hint``: the hex SHA-256 of the public key's
*PEM* SubjectPublicKeyInfo (PEM, not DER: model_signing's choice, kept for compatibility). A
certificate-signed bundle carries ``verificationMaterial.x509CertificateChain`` (signing certificate
first, then intermediates, DER, base64), which model_signing 1.1.1 writes and reads. Neither has
transparency-log entries. The signature is ECDSA over the DSSE PAE with the hash that follows the curve.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ccdeploy.errors import SignerError

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "certificate_bundle",
    "ecdsa_hash",
    "key_bundle",
    "public_key_hint",
]

BUNDLE_MEDIA_TYPE: Final = "application/vnd.dev.sigstore.bundle.v0.3+json"

_HASH_FOR_CURVE: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}


def ecdsa_hash(public_key: object) -> hashes.HashAlgorithm:
    """The hash ECDSA signatures use with this key: SHA-256/384/512 for P-256/384/521 (as model_signing).

    Raises:
        SignerError: not an elliptic-curve key on a NIST P curve model_signing accepts.
    """
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise SignerError(
            f"signing keys must be ECDSA P-256, P-384 or P-521, not {type(public_key).__name__.removeprefix('_')}"
        )
    algorithm = _HASH_FOR_CURVE.get(public_key.curve.name)
    if algorithm is None:
        raise SignerError(f"signing keys must be on P-256, P-384 or P-521, not {public_key.curve.name}")
    return algorithm()


def public_key_hint(public_key: ec.EllipticCurvePublicKey) -> str:
    """model_signing's key hint: hex SHA-256 of the PEM-encoded SubjectPublicKeyInfo."""
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def _bundle(verification_material: dict[str, Any], envelope: dict[str, Any]) -> dict[str, Any]:
    return {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {**verification_material, "tlogEntries": []},
        "dsseEnvelope": envelope,
    }


def key_bundle(envelope: dict[str, Any], public_key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    """A bundle for a DSSE envelope signed by a bare key, naming the key by its hint."""
    return _bundle({"publicKey": {"hint": public_key_hint(public_key)}}, envelope)


def certificate_bundle(envelope: dict[str, Any], chain: Sequence[x509.Certificate]) -> dict[str, Any]:
    """A bundle for a DSSE envelope signed by the key of ``chain[0]``; ``chain`` goes in as given."""
    if not chain:
        raise SignerError("a certificate bundle needs at least the signing certificate")
    certificates = [
        {"rawBytes": base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()} for cert in chain
    ]
    return _bundle({"x509CertificateChain": {"certificates": certificates}}, envelope)
