"""The broker's state directory: its receipt signing key, checkpoint key, admin token and identity.

Layout (written by :func:`init_state`, every secret mode 0600, the directory 0700)::

    broker-id            the broker's name (public): names receipts and the log's origin
    receipt-key.pem      ECDSA P-256 private key, PKCS#8 PEM: signs release receipts (file: signer)
    checkpoint-key.pem   Ed25519 private key, PKCS#8 PEM: signs transparency-log checkpoints
    admin-token          the bearer token of admin calls (one line)

Nothing here is ever overwritten: :func:`init_state` refuses a directory that already holds any of it.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass, field
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
    "RECEIPT_KEY_FILE",
    "BrokerState",
    "init_state",
    "load_state",
]

BROKER_ID_FILE = "broker-id"
RECEIPT_KEY_FILE = "receipt-key.pem"
CHECKPOINT_KEY_FILE = "checkpoint-key.pem"
ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 - a file name, not a secret
_ALL = (BROKER_ID_FILE, RECEIPT_KEY_FILE, CHECKPOINT_KEY_FILE, ADMIN_TOKEN_FILE)
_PKCS8 = (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@dataclass(frozen=True, repr=False)
class BrokerState:
    """A loaded state directory."""

    directory: Path
    broker_id: str
    receipt_signer: EcdsaKeySigner
    checkpoint_key: ed25519.Ed25519PrivateKey = field(repr=False)

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
        _write_secret(directory / ADMIN_TOKEN_FILE, secrets.token_urlsafe(32).encode() + b"\n")
        _write_secret(directory / BROKER_ID_FILE, broker_id.encode() + b"\n")
    except OSError as exc:
        raise BrokerConfigError(f"cannot write broker state in {directory}: {exc.strerror}") from None
    return broker_id


def _check_private(path: Path) -> None:
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
        BrokerConfigError: a file is missing, too permissive or unusable.
    """
    for name in (RECEIPT_KEY_FILE, CHECKPOINT_KEY_FILE, ADMIN_TOKEN_FILE):
        _check_private(directory / name)
    try:
        broker_id = (directory / BROKER_ID_FILE).read_text(encoding="utf-8").strip()
        checkpoint_pem = (directory / CHECKPOINT_KEY_FILE).read_bytes()
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
    return BrokerState(directory, broker_id, signer, checkpoint)
