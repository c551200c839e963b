"""C2SP checkpoints (https://c2sp.org/tlog-checkpoint) in C2SP signed notes (https://c2sp.org/signed-note), Ed25519.

A checkpoint body is three lines and optional extension lines, each ending in a newline::

    <origin>
    <tree size, decimal>
    <root hash, standard base64>
    [extension lines]

A signed note is the body, a blank line, and one line per signature: ``— <key name> <base64(key id ‖ sig)>``
(an em dash U+2014, then a space). For Ed25519 the key id is the first four bytes of
``SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key)`` and the signature is Ed25519 over the body bytes.
A verifier key is written ``<name>+<key id, 8 hex>+<base64(0x01 ‖ public key)>``, as
``golang.org/x/mod/sumdb/note`` writes it; the same strings work with Go's ``note.NewVerifier``, Sigsum
and Rekor v2 tooling.

Opening a note follows Go's ``note.Open``: the text must be UTF-8 without control characters other
than newline; signatures by keys not given are ignored (so witness cosignatures pass through); a
signature by a given key that does not verify fails the whole note; at least one given key must have
signed. Every failure of a note or checkpoint is :class:`~ccdeploy.errors.AuditChainBroken`; a verifier
key string that cannot be parsed is :class:`~ccdeploy.errors.TrustRootInvalid` (the caller's input).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ccdeploy.errors import AuditChainBroken, TrustRootInvalid
from ccdeploy.transparency.merkle import HASH_SIZE

__all__ = [
    "ALG_ED25519",
    "Checkpoint",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "key_id",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint",
    "parse_note",
    "sign_checkpoint",
    "sign_note",
]

ALG_ED25519: Final = 0x01
SIGNATURE_PREFIX: Final = "\u2014 "
MAX_SIGNATURES: Final = 100
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


def key_id(name: str, algorithm_and_key: bytes) -> int:
    """The 32-bit key id: the first 4 bytes (big-endian) of ``SHA-256(name ‖ 0x0A ‖ algorithm byte ‖ key)``."""
    return int.from_bytes(hashlib.sha256(name.encode() + b"\n" + algorithm_and_key).digest()[:4], "big")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass(frozen=True)
class Checkpoint:
    """A transparency log checkpoint: who (origin), how big (size) and what (root hash)."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise ValueError("a checkpoint origin is one non-empty line")
        if self.size < 0:
            raise ValueError("a checkpoint size is not negative")
        if len(self.root_hash) != HASH_SIZE:
            raise ValueError(f"a checkpoint root hash is {HASH_SIZE} bytes")
        if any(not line or "\n" in line for line in self.extensions):
            raise ValueError("checkpoint extension lines are non-empty single lines")

    def body(self) -> str:
        """The checkpoint body text (what a note signature covers), ending in a newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(body: str) -> Checkpoint:
    """Parse a checkpoint body (no signature is checked here).

    Raises:
        AuditChainBroken: not a checkpoint body: missing lines, a malformed size or root hash, an empty
            extension line, no final newline.
    """
    if not body.endswith("\n"):
        raise AuditChainBroken("a checkpoint body ends with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise AuditChainBroken("a checkpoint body has an origin, a size and a root hash line")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise AuditChainBroken("the checkpoint origin line is empty")
    if not _DECIMAL.fullmatch(size_text):
        raise AuditChainBroken("the checkpoint size is not a decimal number")
    try:
        root = _b64decode(root_text)
    except (binascii.Error, ValueError):
        raise AuditChainBroken("the checkpoint root hash is not base64") from None
    if len(root) != HASH_SIZE:
        raise AuditChainBroken(f"the checkpoint root hash is {len(root)} bytes, not {HASH_SIZE}")
    if any(not line for line in extensions):
        raise AuditChainBroken("a checkpoint extension line is empty")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note: the key name, the 32-bit key id and the signature bytes."""

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        """The signature line, without its newline."""
        encoded = base64.b64encode(self.key_id.to_bytes(4, "big") + self.signature).decode()
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}"


@dataclass(frozen=True)
class Note:
    """A note's text (ending in a newline) and its signatures (all of them, or only the verified ones)."""

    text: str
    signatures: tuple[NoteSignature, ...] = field(default_factory=tuple)


def _check_text(message: str) -> None:
    if any((ord(ch) < 0x20 and ch != "\n") or 0xD800 <= ord(ch) <= 0xDFFF for ch in message):
        raise AuditChainBroken("malformed note: control characters")


def parse_note(message: str | bytes) -> Note:
    """Split a signed note into its text and signature lines; nothing is verified.

    Raises:
        AuditChainBroken: not a well-formed signed note.
    """
    if isinstance(message, bytes):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError:
            raise AuditChainBroken("malformed note: not UTF-8") from None
    _check_text(message)
    split = message.rfind("\n\n")
    if split < 0:
        raise AuditChainBroken("malformed note: no signature block")
    text, block = message[: split + 1], message[split + 2 :]
    if not block.endswith("\n"):
        raise AuditChainBroken("malformed note: no signature, or no final newline")
    signatures: list[NoteSignature] = []
    for line in block[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise AuditChainBroken("malformed note: a line of the signature block is not a signature")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        try:
            raw = _b64decode(encoded)
        except (binascii.Error, ValueError):
            raw = b""
        if not _valid_name(name) or len(raw) < 5:
            raise AuditChainBroken("malformed note: a signature line is malformed")
        signatures.append(NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
        if len(signatures) > MAX_SIGNATURES:
            raise AuditChainBroken(f"malformed note: more than {MAX_SIGNATURES} signatures")
    return Note(text, tuple(signatures))


class NoteVerifier:
    """An Ed25519 note verifier, from a verifier key string ``<name>+<keyid hex>+<base64(0x01 ‖ key)>``."""

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        if not _valid_name(name):
            raise TrustRootInvalid(f"{name!r} is not a valid note key name (no spaces, no '+')")
        self.name = name
        self.public_key = public_key
        self._encoded = bytes([ALG_ED25519]) + public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = key_id(name, self._encoded)

    @classmethod
    def from_key(cls, vkey: str) -> NoteVerifier:
        """Parse a verifier key string.

        Raises:
            TrustRootInvalid: malformed, a key id that does not match, an algorithm other than Ed25519,
                or a key of the wrong length.
        """
        name, _, rest = vkey.partition("+")
        id_hex, _, key_b64 = rest.partition("+")
        if not _valid_name(name) or not _HEX8.fullmatch(id_hex) or not key_b64:
            raise TrustRootInvalid("a note verifier key is <name>+<8 hex digits>+<base64 key>")
        try:
            encoded = _b64decode(key_b64)
        except (binascii.Error, ValueError):
            raise TrustRootInvalid("the note verifier key is not base64") from None
        if not encoded or key_id(name, encoded) != int(id_hex, 16):
            raise TrustRootInvalid(f"the key id of note verifier key {name!r} does not match its key")
        if encoded[0] != ALG_ED25519 or len(encoded) != 33:
            raise TrustRootInvalid(f"note verifier key {name!r} is not an Ed25519 key (algorithm 0x01, 32 bytes)")
        return cls(name, Ed25519PublicKey.from_public_bytes(encoded[1:]))

    def verifier_key(self) -> str:
        """The verifier key string."""
        return f"{self.name}+{self.key_id:08x}+{base64.b64encode(self._encoded).decode()}"

    def verify(self, text: str, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature over ``text``."""
        try:
            self.public_key.verify(signature, text.encode())
        except InvalidSignature:
            return False
        return True


class NoteSigner:
    """Signs notes with an Ed25519 key under a key name (for a log: its origin)."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._verifier = NoteVerifier(name, private_key.public_key())

    def __repr__(self) -> str:
        return f"NoteSigner({self._verifier.verifier_key()!r})"

    @property
    def name(self) -> str:
        """The key name."""
        return self._verifier.name

    @property
    def key_id(self) -> int:
        """The 32-bit key id."""
        return self._verifier.key_id

    def verifier(self) -> NoteVerifier:
        """The matching verifier."""
        return self._verifier

    def verifier_key(self) -> str:
        """The verifier key string ``<name>+<keyid hex>+<base64(0x01 ‖ public key)>``."""
        return self._verifier.verifier_key()

    def sign(self, text: str) -> NoteSignature:
        """Sign note text."""
        return NoteSignature(self.name, self.key_id, self._key.sign(text.encode()))


def sign_note(text: str, signers: Iterable[NoteSigner]) -> str:
    """Sign ``text`` (which ends in a newline and has no blank line) with each signer; return the note.

    Raises:
        ValueError: the text cannot be a note text.
    """
    if not text.endswith("\n") or "\n\n" in text or text.startswith("\n"):
        raise ValueError("note text ends in a newline and holds no blank line")
    try:
        _check_text(text)
    except AuditChainBroken:
        raise ValueError("note text holds control characters") from None
    lines = [signer.sign(text).line() for signer in signers]
    if not lines:
        raise ValueError("a signed note needs at least one signer")
    return text + "\n" + "".join(line + "\n" for line in lines)


def _verifiers(verifier_keys: Sequence[str | NoteVerifier]) -> dict[tuple[str, int], NoteVerifier]:
    known: dict[tuple[str, int], NoteVerifier] = {}
    for item in verifier_keys:
        verifier = item if isinstance(item, NoteVerifier) else NoteVerifier.from_key(item)
        slot = (verifier.name, verifier.key_id)
        previous = known.get(slot)
        if previous is not None and previous.verifier_key() != verifier.verifier_key():
            raise TrustRootInvalid(f"two different note verifier keys share name and id {verifier.name}+{slot[1]:08x}")
        known[slot] = verifier
    return known


def open_note(message: str | bytes, verifier_keys: Sequence[str | NoteVerifier]) -> Note:
    """Parse a signed note and verify it; return it with only the verified signatures.

    Raises:
        TrustRootInvalid: a verifier key string is malformed.
        AuditChainBroken: malformed note, a signature by a given key that does not verify, or no
            signature by any given key.
    """
    known = _verifiers(verifier_keys)
    note = parse_note(message)
    verified: dict[tuple[str, int], NoteSignature] = {}
    for signature in note.signatures:
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            continue
        if not verifier.verify(note.text, signature.signature):
            raise AuditChainBroken(f"invalid note signature for key {signature.name}+{signature.key_id:08x}")
        verified.setdefault((signature.name, signature.key_id), signature)
    if not verified:
        raise AuditChainBroken("the note has no signature by a trusted key")
    return Note(note.text, tuple(verified.values()))


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    """The checkpoint as a signed note."""
    return sign_note(checkpoint.body(), [signer])


def open_checkpoint(
    message: str | bytes, verifier_keys: Sequence[str | NoteVerifier], *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint and parse its body.

    Args:
        message: the signed note.
        verifier_keys: trusted verifier key strings (or verifiers); one of them must have signed.
        origin: when given, the checkpoint's origin line must be exactly this.

    Raises:
        TrustRootInvalid: a verifier key string is malformed.
        AuditChainBroken: the note or its body is malformed, a signature fails, no trusted key signed,
            or the origin differs.
    """
    note = open_note(message, verifier_keys)
    checkpoint = parse_checkpoint(note.text)
    if origin is not None and checkpoint.origin != origin:
        raise AuditChainBroken(f"the checkpoint is for log {checkpoint.origin!r}, not {origin!r}")
    return checkpoint
