"""HPKE (RFC 9180, base mode) for sealing a data key to an enclave's ephemeral key.

Two suites, both with HKDF-SHA256 and AES-256-GCM:

* ``X-Wing`` (the default): the ML-KEM-768 + X25519 post-quantum hybrid KEM. Its public key on the wire
  is the ML-KEM-768 encapsulation key (1184 bytes) followed by the X25519 key (32 bytes).
* ``X25519``: DHKEM(X25519, HKDF-SHA256), accepted for peers without ML-KEM. Public key: 32 bytes.

The ciphertext is ``enc ‖ ct`` as cryptography's ``Suite.encrypt`` returns it. ``info`` binds the sealed
key to its release (see :func:`release_info`), so a ciphertext cannot be replayed into another release.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

__all__ = [
    "DEFAULT_SUITE",
    "HpkeError",
    "HpkeKeyPair",
    "HpkeSuite",
    "release_info",
    "seal_to",
]

_RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)
_MLKEM768_PUBLIC_SIZE = 1184
_X25519_SIZE = 32


class HpkeError(ValueError):
    """A public key or ciphertext that cannot be used (wrong length, wrong suite, failed to open)."""


class HpkeSuite(enum.StrEnum):
    """The HPKE suites a release can use; the value is the name on the wire."""

    XWING = "X-Wing"
    X25519 = "X25519"

    @property
    def rfc9180(self) -> str:
        """The full suite name: KEM, KDF and AEAD."""
        kem = "MLKEM768-X25519 (X-Wing)" if self is HpkeSuite.XWING else "DHKEM(X25519, HKDF-SHA256)"
        return f"{kem}, HKDF-SHA256, AES-256-GCM"

    def cipher_suite(self) -> hpke.Suite:
        """The HPKE suite object of the cryptography library."""
        kem = hpke.KEM.MLKEM768_X25519 if self is HpkeSuite.XWING else hpke.KEM.X25519
        return hpke.Suite(kem, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)

    @property
    def public_key_size(self) -> int:
        """Length of a public key on the wire."""
        return _MLKEM768_PUBLIC_SIZE + _X25519_SIZE if self is HpkeSuite.XWING else _X25519_SIZE


DEFAULT_SUITE = HpkeSuite.XWING


def release_info(model: str, nonce: bytes) -> bytes:
    """The HPKE ``info`` of one release: a label, the model name and the challenge nonce, length-prefixed."""
    parts = [b"ccdeploy/release/v1", model.encode(), nonce]
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


@dataclass(frozen=True, repr=False)
class HpkeKeyPair:
    """An enclave's ephemeral HPKE key pair (never written anywhere)."""

    suite: HpkeSuite
    public: bytes
    """The public key as sent on the wire."""
    _private: hpke.MLKEM768X25519PrivateKey | x25519.X25519PrivateKey

    @classmethod
    def generate(cls, suite: HpkeSuite = DEFAULT_SUITE) -> HpkeKeyPair:
        """A fresh key pair for ``suite``."""
        classic = x25519.X25519PrivateKey.generate()
        classic_public = classic.public_key().public_bytes(*_RAW)
        if suite is HpkeSuite.X25519:
            return cls(suite, classic_public, classic)
        # cryptography's hybrid key has no serialization of its own: encode it from the parts it is built from.
        ml = mlkem.MLKEM768PrivateKey.generate()
        hybrid = hpke.MLKEM768X25519PrivateKey(ml, classic)
        return cls(suite, ml.public_key().public_bytes_raw() + classic_public, hybrid)

    def __repr__(self) -> str:
        return f"HpkeKeyPair(suite={self.suite.value!r}, public={self.public[:8].hex()}…)"

    def open(self, ciphertext: bytes, info: bytes) -> bytes:
        """Open a key sealed to this key pair with ``info``; raise :class:`HpkeError` if it does not open."""
        try:
            return self.suite.cipher_suite().decrypt(ciphertext, self._private, info=info)
        except (InvalidTag, ValueError):
            raise HpkeError("the sealed key does not open with this enclave key and release context") from None


def seal_to(suite: HpkeSuite, public_key: bytes, plaintext: bytes | bytearray, info: bytes) -> bytes:
    """Seal ``plaintext`` (a data key) to ``public_key`` of ``suite``; returns ``enc ‖ ct``.

    ``plaintext`` may be a ``bytearray`` the caller zeroes afterwards (no immutable copy is kept here).

    Raises:
        HpkeError: the public key has the wrong length or is not a usable key of ``suite`` (for example a
            low-order X25519 point, whose shared secret would be all zeros).
    """
    recipient = _public_key(suite, public_key)
    try:
        return suite.cipher_suite().encrypt(plaintext, recipient, info=info)
    except ValueError:  # cryptography: "Error computing shared key." for a low-order / invalid X25519 point
        raise HpkeError(f"the {suite.value} public key cannot be sealed to (invalid or low-order point)") from None


def _public_key(suite: HpkeSuite, data: bytes) -> hpke.MLKEM768X25519PublicKey | x25519.X25519PublicKey:
    if len(data) != suite.public_key_size:
        raise HpkeError(f"a {suite.value} public key is {suite.public_key_size} bytes, got {len(data)}")
    try:
        if suite is HpkeSuite.X25519:
            return x25519.X25519PublicKey.from_public_bytes(data)
        ml = mlkem.MLKEM768PublicKey.from_public_bytes(data[:_MLKEM768_PUBLIC_SIZE])
        return hpke.MLKEM768X25519PublicKey(ml, x25519.X25519PublicKey.from_public_bytes(data[_MLKEM768_PUBLIC_SIZE:]))
    except ValueError:
        raise HpkeError(f"not a valid {suite.value} public key") from None
