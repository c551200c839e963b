"""The broker's state directory: its receipt signing key, checkpoint key, nonce key, admin token and identity.

Layout (written by :func:`init_state`, every secret mode 0600, the directory 0700)::

    broker-id            the broker's name (public): names receipts and the log's origin
    receipt-key.pem      ECDSA P-256 private key, PKCS#8 PEM: signs release receipts (file: signer)
    checkpoint-key.pem   Ed25519 private key, PKCS#8 PEM: signs transparency-log checkpoints
    nonce-key            32 random bytes, hex (one line): authenticates challenge nonces (HMAC-SHA256)
    admin-token          the bearer token of admin calls (one line)

Nothing here is ever overwritten: :func:`init_state` refuses a directory that already holds any of it. Replicas
must share the whole directory (the nonce key included: a nonce taken from one replica is released by another).

Challenge nonces are stateless, 32 bytes::

    0x01 (version) ‖ expiry (Unix milliseconds, 6 bytes big-endian) ‖ 9 random bytes ‖ tag (16 bytes)
    tag = HMAC-SHA256(nonce key, "ccdeploy/broker-nonce/v1" ‖ 0x00 ‖ the first 16 bytes)[:16]

so issuing one writes nothing; single use is enforced when the release or denial is audited
(:class:`ccdeploy.broker.store.NonceUse`). A state directory made before nonce keys existed is refused with the
command that adds one (:data:`NONCE_KEY_UPGRADE`).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ccdeploy.errors import BrokerConfigError, CcdError
from ccdeploy.provenance.signers.base import EcdsaKeySigner, signer_from_uri

__all__ = [
    "ADMIN_TOKEN_FILE",
    "BROKER_ID_FILE",
    "CHECKPOINT_KEY_FILE",
    "NONCE_KEY_FILE",
    "NONCE_KEY_UPGRADE",
    "NONCE_SIZE",
    "RECEIPT_KEY_FILE",
    "BrokerState",
    "NonceKey",
    "NonceStatus",
    "check_secret_file",
    "init_state",
    "load_state",
]

BROKER_ID_FILE = "broker-id"
RECEIPT_KEY_FILE = "receipt-key.pem"
CHECKPOINT_KEY_FILE = "checkpoint-key.pem"
ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 - a file name, not a secret
NONCE_KEY_FILE = "nonce-key"
NONCE_KEY_UPGRADE = "(umask 077 && openssl rand -hex 32 > {path})"
"""The documented command that adds a nonce key to a state directory made before nonce keys existed."""
_ALL = (BROKER_ID_FILE, RECEIPT_KEY_FILE, CHECKPOINT_KEY_FILE, NONCE_KEY_FILE, ADMIN_TOKEN_FILE)
_PKCS8 = (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

NONCE_SIZE = 32
_NONCE_VERSION = 1
_NONCE_LABEL = b"ccdeploy/broker-nonce/v1\x00"
_NONCE_KEY_SIZE = 32
_EXPIRY_SIZE = 6
_RANDOM_SIZE = 9
_BODY_SIZE = 1 + _EXPIRY_SIZE + _RANDOM_SIZE
_TAG_SIZE = NONCE_SIZE - _BODY_SIZE
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class NonceStatus(enum.StrEnum):
    """What the stateless check of a nonce found (whether it was used is the store's business)."""

    VALID = "valid"
    UNKNOWN = "unknown"
    """Not made by a broker holding this key (or altered, or of another format)."""
    EXPIRED = "expired"


class NonceKey:
    """Makes and checks the broker's MAC-authenticated challenge nonces (layout in the module documentation).

    Args:
        key: the 32-byte secret shared by every replica of the broker.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != _NONCE_KEY_SIZE:
            raise BrokerConfigError(f"a nonce key is {_NONCE_KEY_SIZE} bytes")
        self._key = bytes(key)

    def __repr__(self) -> str:
        return "NonceKey(<secret>)"

    def _tag(self, body: bytes) -> bytes:
        return hmac.new(self._key, _NONCE_LABEL + body, hashlib.sha256).digest()[:_TAG_SIZE]

    def mint(self, expires_at: datetime) -> tuple[bytes, datetime]:
        """A fresh nonce usable until ``expires_at`` (timezone-aware; kept to the millisecond).

        Returns:
            The nonce and its expiry as the nonce encodes it (``expires_at`` truncated to milliseconds).
        """
        millis = (expires_at.astimezone(UTC) - _EPOCH) // timedelta(milliseconds=1)
        body = bytes([_NONCE_VERSION]) + millis.to_bytes(_EXPIRY_SIZE, "big") + secrets.token_bytes(_RANDOM_SIZE)
        return body + self._tag(body), _EPOCH + timedelta(milliseconds=millis)

    def check(self, nonce: bytes, now: datetime) -> tuple[NonceStatus, datetime | None]:
        """Whether ``nonce`` is one of this key's and not yet expired at ``now`` (expiry is exclusive).

        Returns:
            The status and, unless UNKNOWN, the nonce's expiry.
        """
        if len(nonce) != NONCE_SIZE or nonce[0] != _NONCE_VERSION:
            return NonceStatus.UNKNOWN, None
        body, tag = nonce[:_BODY_SIZE], nonce[_BODY_SIZE:]
        if not hmac.compare_digest(self._tag(body), tag):
            return NonceStatus.UNKNOWN, None
        expires = _EPOCH + timedelta(milliseconds=int.from_bytes(body[1 : 1 + _EXPIRY_SIZE], "big"))
        return (NonceStatus.VALID if now < expires else NonceStatus.EXPIRED), expires


@dataclass(frozen=True, repr=False)
class BrokerState:
    """A loaded state directory."""

    directory: Path
    broker_id: str
    receipt_signer: EcdsaKeySigner
    checkpoint_key: ed25519.Ed25519PrivateKey = field(repr=False)
    nonce_key: NonceKey = field(repr=False)

    @property
    def admin_token_path(self) -> Path:
        """The admin token file."""
        return self.directory / ADMIN_TOKEN_FILE

    @property
    def log_origin(self) -> str:
        """The transparency log's checkpoint origin (and signed-note key name)."""
        return f"ccdeploy-broker/{self.broker_id}"

    def receipt_public_pem(self) -> str:
        """The receipt signing key's public half, SubjectPublicKeyInfo PEM."""
        return (
            self.receipt_signer.public_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
            .strip()
            + "\n"
        )

    def __repr__(self) -> str:
        return f"BrokerState({str(self.directory)!r}, broker_id={self.broker_id!r})"


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def init_state(directory: Path) -> str:
    """Create a broker state directory with fresh keys, token and id; return the broker id.

    Raises:
        BrokerConfigError: the directory already holds broker state, or cannot be written.
    """
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        present = [name for name in _ALL if os.path.lexists(directory / name)]
        if present:
            raise BrokerConfigError(
                f"{directory} already holds broker state ({', '.join(present)}); refusing to overwrite"
            )
        broker_id = f"broker-{secrets.token_hex(8)}"
        receipt = ec.generate_private_key(ec.SECP256R1())
        checkpoint = ed25519.Ed25519PrivateKey.generate()
        _write_secret(directory / RECEIPT_KEY_FILE, receipt.private_bytes(*_PKCS8))
        _write_secret(directory / CHECKPOINT_KEY_FILE, checkpoint.private_bytes(*_PKCS8))
        _write_secret(directory / NONCE_KEY_FILE, secrets.token_hex(_NONCE_KEY_SIZE).encode() + b"\n")
        _write_secret(directory / ADMIN_TOKEN_FILE, secrets.token_urlsafe(32).encode() + b"\n")
        _write_secret(directory / BROKER_ID_FILE, broker_id.encode() + b"\n")
    except OSError as exc:
        raise BrokerConfigError(f"cannot write broker state in {directory}: {exc.strerror}") from None
    return broker_id


def check_secret_file(path: Path) -> None:
    """Refuse a secret file (a private key, a token) that is not a regular file or is readable by other users.

    Raises:
        BrokerConfigError: missing, not a regular file, or group/other permissions set (POSIX).
    """
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise BrokerConfigError(f"cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise BrokerConfigError(f"{path} is not a regular file")
    if os.name == "posix" and mode & 0o077:
        raise BrokerConfigError(f"{path} is readable by other users (mode {stat.S_IMODE(mode):04o}); chmod 600 it")


def load_state(directory: Path) -> BrokerState:
    """Load a state directory written by :func:`init_state`.

    Raises:
        BrokerConfigError: a file is missing, too permissive or unusable. A directory without a nonce key (made by
            an older ccdeploy) is refused with the command that adds one, :data:`NONCE_KEY_UPGRADE`.
    """
    nonce_path = directory / NONCE_KEY_FILE
    if not os.path.lexists(nonce_path) and os.path.lexists(directory / RECEIPT_KEY_FILE):
        raise BrokerConfigError(
            f"{directory} has no {NONCE_KEY_FILE} (it was made before challenge nonces were authenticated); add one"
            f" with: {NONCE_KEY_UPGRADE.format(path=nonce_path)} (copy the same file to every replica)"
        )
    for name in (RECEIPT_KEY_FILE, CHECKPOINT_KEY_FILE, NONCE_KEY_FILE, ADMIN_TOKEN_FILE):
        check_secret_file(directory / name)
    try:
        broker_id = (directory / BROKER_ID_FILE).read_text(encoding="utf-8").strip()
        checkpoint_pem = (directory / CHECKPOINT_KEY_FILE).read_bytes()
        nonce_hex = nonce_path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise BrokerConfigError(f"cannot read the broker state in {directory}: {type(exc).__name__}") from None
    if not broker_id or not broker_id.isascii() or any(not (c.isalnum() or c in "-_.") for c in broker_id):
        raise BrokerConfigError(f"{directory / BROKER_ID_FILE} does not hold a broker id")
    try:
        checkpoint = serialization.load_pem_private_key(checkpoint_pem, password=None)
    except (ValueError, TypeError):
        raise BrokerConfigError(f"{directory / CHECKPOINT_KEY_FILE} is not an unencrypted PEM private key") from None
    if not isinstance(checkpoint, ed25519.Ed25519PrivateKey):
        raise BrokerConfigError(f"{directory / CHECKPOINT_KEY_FILE} is not an Ed25519 key")
    try:
        signer = signer_from_uri("file:" + quote(str((directory / RECEIPT_KEY_FILE).resolve())))
    except CcdError as exc:
        raise BrokerConfigError(f"the receipt signing key is unusable: {exc.message}") from None
    if not isinstance(signer, EcdsaKeySigner) or not isinstance(signer.public_key.curve, ec.SECP256R1):
        raise BrokerConfigError("the receipt signing key must be ECDSA P-256")
    try:
        nonce_key = NonceKey(bytes.fromhex(nonce_hex))
    except (ValueError, BrokerConfigError):
        raise BrokerConfigError(f"{nonce_path} does not hold {_NONCE_KEY_SIZE} bytes of hex") from None
    return BrokerState(directory, broker_id, signer, checkpoint, nonce_key)
