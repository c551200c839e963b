"""Public keys given to verify with, and ECDSA verification the way Sigstore and model_signing sign."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from ccdeploy.errors import SignatureInvalid, TrustRootInvalid

__all__ = ["TrustedKey", "curve_hash", "load_trusted_key", "verify_ecdsa", "verify_ecdsa_prehashed"]

_CURVE_HASH: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}


@dataclass(frozen=True)
class TrustedKey:
    """A public key the caller trusts, with the identifiers reports use for it."""

    key: ec.EllipticCurvePublicKey
    spki_der: bytes
    hint: str
    """model_signing's key hint: hex SHA-256 of the PEM SubjectPublicKeyInfo (PEM, not DER: their quirk)."""

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the DER SubjectPublicKeyInfo (the usual key fingerprint)."""
        return hashlib.sha256(self.spki_der).hexdigest()


def load_trusted_key(pem: bytes) -> TrustedKey:
    """Load a PEM public key (NIST P-256, P-384 or P-521: what Sigstore and model_signing sign with).

    Raises:
        TrustRootInvalid: not a PEM public key, or not a supported curve.
    """
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise TrustRootInvalid("the --key file is not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _CURVE_HASH:
        raise TrustRootInvalid("the --key must be an ECDSA P-256, P-384 or P-521 public key")
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pem_spki = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return TrustedKey(key, der, hashlib.sha256(pem_spki).hexdigest())


def curve_hash(key: ec.EllipticCurvePublicKey) -> hashes.HashAlgorithm:
    """The hash that goes with the key's curve (P-256 → SHA-256, P-384 → SHA-384, P-521 → SHA-512)."""
    algorithm = _CURVE_HASH.get(key.curve.name)
    if algorithm is None:
        raise SignatureInvalid(f"unsupported signing curve {key.curve.name}")
    return algorithm()


def verify_ecdsa(key: ec.EllipticCurvePublicKey, signature: bytes, message: bytes) -> None:
    """Verify an ECDSA signature over ``message`` with the curve's hash.

    Raises:
        SignatureInvalid: the signature does not verify.
    """
    try:
        key.verify(signature, message, ec.ECDSA(curve_hash(key)))
    except InvalidSignature:
        raise SignatureInvalid("signature does not verify with the signer's key") from None


def verify_ecdsa_prehashed(key: ec.EllipticCurvePublicKey, signature: bytes, digest: bytes) -> None:
    """Verify an ECDSA signature over a SHA-256 message digest (a Sigstore message signature).

    Raises:
        SignatureInvalid: the signature does not verify.
    """
    try:
        key.verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    except InvalidSignature:
        raise SignatureInvalid("signature does not verify with the signer's key") from None
