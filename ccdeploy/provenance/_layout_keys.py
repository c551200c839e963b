"""Layout owner keys: load PEM public keys and match them to the signatures they made.

in-toto-python and in-toto-golang compute different keyids for one PEM key (golang hashes the key
dict with ``keyid_hash_algorithms`` and the PEM without its trailing newline; python hashes only
``keytype``, ``scheme`` and ``keyval``), and a PEM file does not say which RSA signature scheme its
owner used. So owner keys are matched to signatures by verifying, never by keyid: a signature counts
for an owner key when it verifies under that key with one of the schemes the key type allows. The
keyid a signature carries is only a label, reported back but never trusted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.exceptions import UnverifiedSignatureError
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import Key, Signature, SSlibKey  # type: ignore[attr-defined]  # no __all__ there

from ccdeploy.errors import TrustRootInvalid

__all__ = ["OwnerKey", "golang_keyid", "load_owner_keys", "owner_key_from_layout", "python_keyid", "verified_by"]

_RSA_SCHEMES = (
    "rsassa-pss-sha256",
    "rsassa-pss-sha384",
    "rsassa-pss-sha512",
    "rsa-pkcs1v15-sha256",
    "rsa-pkcs1v15-sha384",
    "rsa-pkcs1v15-sha512",
)
_ECDSA_SCHEME_FOR_CURVE = {
    "secp256r1": "ecdsa-sha2-nistp256",
    "secp384r1": "ecdsa-sha2-nistp384",
    "secp521r1": "ecdsa-sha2-nistp521",
}
_MAX_KEY_FILE = 64 * 1024


@dataclass(frozen=True)
class OwnerKey:
    """A key allowed to sign a layout, with every (keytype, scheme) reading of it to try.

    Attributes:
        label: How messages name the key: its file name or keyid, never its material.
        candidates: The same public key under each signature scheme its type allows.
    """

    label: str
    candidates: tuple[SSlibKey, ...]


def python_keyid(key: SSlibKey) -> str:
    """The keyid in-toto-python 3 / securesystemslib computes for ``key``."""
    return _sha256_canonical({"keytype": key.keytype, "scheme": key.scheme, "keyval": key.keyval})


def golang_keyid(key: SSlibKey) -> str:
    """The keyid in-toto-golang computes for ``key`` (its PEM without the trailing newline)."""
    keyval = {name: value.strip() for name, value in key.keyval.items()}
    return _sha256_canonical(
        {"keyid_hash_algorithms": ["sha256", "sha512"], "keytype": key.keytype, "keyval": keyval, "scheme": key.scheme}
    )


def load_owner_keys(paths: Sequence[Path]) -> tuple[OwnerKey, ...]:
    """Read the layout owners' PEM public keys (RSA, ECDSA P-256/384/521, Ed25519).

    Raises:
        TrustRootInvalid: No key was given, or a file is unreadable, not a PEM public key, or of an
            unsupported type.
    """
    if not paths:
        raise TrustRootInvalid("layout verification needs at least one layout owner key")
    return tuple(_load_owner_key(path) for path in paths)


def owner_key_from_layout(keyid: str, key_dict: object) -> OwnerKey:
    """The key a layout lists for a functionary who delegated its step to a sublayout.

    Raises:
        TrustRootInvalid: The layout's key entry cannot be used as a verification key.
    """
    if not isinstance(key_dict, dict):
        raise TrustRootInvalid(f"functionary key {keyid[:8]} in the layout is not a key object")
    try:
        key = Key.from_dict(keyid, dict(key_dict))
    except (KeyError, TypeError, ValueError) as exc:
        raise TrustRootInvalid(f"functionary key {keyid[:8]} in the layout is unusable: {type(exc).__name__}") from exc
    if not isinstance(key, SSlibKey):
        raise TrustRootInvalid(f"functionary key {keyid[:8]} in the layout is of an unsupported kind")
    return OwnerKey(label=f"functionary key {keyid[:8]}", candidates=(key,))


def verified_by(owner: OwnerKey, signatures: Iterable[Signature], data: bytes) -> Signature | None:
    """The first of ``signatures`` over ``data`` that ``owner`` made, or None.

    Each signature is checked under every scheme candidate of the key, relabelled with the
    signature's own keyid (securesystemslib refuses a keyid mismatch before verifying).
    """
    for signature in signatures:
        for candidate in owner.candidates:
            relabelled = SSlibKey(signature.keyid, candidate.keytype, candidate.scheme, dict(candidate.keyval))
            try:
                relabelled.verify_signature(signature, data)
            except UnverifiedSignatureError:
                continue
            return signature
    return None


def _load_owner_key(path: Path) -> OwnerKey:
    label = path.name
    try:
        with path.open("rb") as handle:
            pem = handle.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise TrustRootInvalid(f"cannot read layout key {label}: {exc.strerror or type(exc).__name__}") from exc
    if len(pem) > _MAX_KEY_FILE:
        raise TrustRootInvalid(f"layout key {label} is too large to be a PEM public key")
    try:
        public_key = load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise TrustRootInvalid(f"layout key {label} is not a PEM public key") from exc
    if isinstance(public_key, rsa.RSAPublicKey):
        schemes: tuple[str, ...] = _RSA_SCHEMES
    elif isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name in _ECDSA_SCHEME_FOR_CURVE:
        schemes = (_ECDSA_SCHEME_FOR_CURVE[public_key.curve.name],)
    elif isinstance(public_key, ed25519.Ed25519PublicKey):
        schemes = ("ed25519",)
    else:
        raise TrustRootInvalid(f"layout key {label} is of an unsupported type (RSA, ECDSA P-256/384/521, Ed25519)")
    return OwnerKey(label=label, candidates=tuple(SSlibKey.from_crypto(public_key, scheme=s) for s in schemes))


def _sha256_canonical(value: dict[str, object]) -> str:
    encoded = encode_canonical(value)
    if not isinstance(encoded, str):  # None only when encode_canonical is given an output function
        raise TypeError("canonical JSON encoding failed")
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()
