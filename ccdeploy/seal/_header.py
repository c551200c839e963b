r"""The ``.ccseal`` preamble, header model and header MAC (format version 1; see docs/formats/ccseal.md).

Layout::

    magic "\\x89CCSEAL\\n" (8) | version u16be (2) | header length u32be (4) | header (JCS JSON) | MAC (32) | payload

The header is parsed straight into frozen pydantic models (parse, don't validate): anything that is
not exactly a version-1 header is rejected before a key is touched.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import struct
import unicodedata
from datetime import datetime
from pathlib import PurePosixPath
from typing import Annotated, Any, Final, Literal, get_args

import rfc8785
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ccdeploy.errors import ArtifactCorrupt, ArtifactTampered, UnsupportedFormat
from ccdeploy.kek.base import WrappedKey
from ccdeploy.seal import _segments

MAGIC = b"\x89CCSEAL\n"
FORMAT_VERSION: Final = 1
PREAMBLE = struct.Struct(">8sHI")
PREAMBLE_SIZE = PREAMBLE.size
MAC_SIZE = 32
MAX_HEADER_SIZE = 16 << 20
ARTIFACT_ID_SIZE = 32
HashAlgorithm = Literal["sha256", "blake3"]
"""Per-file plaintext digest algorithms (both supported by OpenSSF model_signing)."""
HASH_ALGORITHMS: tuple[str, ...] = get_args(HashAlgorithm)
MAX_FILES = 100_000
MAX_FILE_SIZE = min((1 << 53) - 1, _segments.max_plaintext_size())
"""Largest file: JSON-safe integers (RFC 8785) and at most 2^32 segments per stream."""

_RFC3339 = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})\Z")
_MAC_INFO = b"ccseal/v1 header-mac"
_STREAM_AD_LABEL = b"ccseal/v1 stream\x00"

Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


def _no_control_characters(value: str) -> str:
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise ValueError("control characters are not allowed")
    return value


Text = Annotated[str, AfterValidator(_no_control_characters)]
"""A header string shown to people: no control characters (no terminal escapes, no newlines)."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class FileEntry(_Model):
    """One plaintext file of the sealed model."""

    path: str
    """Relative POSIX path inside the model (a single-file model: the file's name)."""
    size: int = Field(ge=0, le=MAX_FILE_SIZE)
    digest: Hex64
    """Hex digest of the plaintext with the model's hash algorithm."""

    @field_validator("path")
    @classmethod
    def _safe_path(cls, value: str) -> str:
        check_member_path(value)
        return value


class ModelInfo(_Model):
    """What was sealed: the model's name, its files and their digests."""

    name: Text = Field(min_length=1, max_length=1024)
    hash: HashAlgorithm
    manifest_digest: Hex64
    """SHA-256 over the files' raw digests in manifest order: OpenSSF model_signing's root digest."""
    files: tuple[FileEntry, ...] = Field(min_length=1, max_length=MAX_FILES)

    @field_validator("files")
    @classmethod
    def _canonical_order(cls, files: tuple[FileEntry, ...]) -> tuple[FileEntry, ...]:
        keys = [manifest_sort_key(entry.path) for entry in files]
        if keys != sorted(keys) or len(set(keys)) != len(keys):
            raise ValueError("files must be unique and in manifest order")
        paths = {entry.path for entry in files}
        for key in keys:
            for depth in range(1, len(key)):
                if "/".join(key[:depth]) in paths:
                    raise ValueError("a file path is also used as a directory of another file")
        return files


class PayloadInfo(_Model):
    """How the payload is encrypted."""

    aead: Literal["AES256_GCM_HKDF_1MB"]


class Recipient(_Model):
    """The DEK wrapped under one KEK."""

    kek: Text = Field(min_length=1, max_length=4096, pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:")
    key_id: Text = Field(min_length=1, max_length=1024)
    wrap: Text = Field(min_length=1, max_length=128)
    wrapped_dek: str = Field(min_length=1, max_length=65536)
    """Base64 (standard alphabet, padded) of the backend's opaque wrapped key."""
    context: dict[Text, Text] = Field(default_factory=dict)

    @field_validator("wrapped_dek")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("wrapped_dek is not base64") from None
        return value

    @property
    def scheme(self) -> str:
        """The KEK URI's scheme, lower-cased (schemes are case-insensitive)."""
        return self.kek.split(":", 1)[0].lower()

    @classmethod
    def from_wrapped(cls, wrapped: WrappedKey) -> Recipient:
        """The header entry of a freshly wrapped DEK."""
        return cls(
            kek=wrapped.kek,
            key_id=wrapped.key_id,
            wrap=wrapped.algorithm,
            wrapped_dek=base64.b64encode(wrapped.blob).decode(),
            context=dict(wrapped.context),
        )

    def to_wrapped(self) -> WrappedKey:
        """This entry as the KEK interface's :class:`WrappedKey`."""
        return WrappedKey(self.kek, self.key_id, self.wrap, base64.b64decode(self.wrapped_dek), self.context)


class SealedHeader(_Model):
    """The header of a ``.ccseal`` artifact, format version 1."""

    version: Literal[1] = 1
    """The format version, repeated from the preamble so the header is self-describing."""
    artifact_id: Hex64
    """32 random bytes, hex: names the artifact and binds every payload stream to it."""
    created: str
    tool: Text = Field(max_length=256)
    model: ModelInfo
    payload: PayloadInfo
    recipients: tuple[Recipient, ...] = Field(min_length=1, max_length=256)
    policy_digest: Hex64 | None = None
    bom_digest: Hex64 | None = None

    @field_validator("created")
    @classmethod
    def _rfc3339(cls, value: str) -> str:
        if not _RFC3339.match(value):
            raise ValueError("created is not an RFC 3339 date-time")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("created is not an RFC 3339 time") from None
        if parsed.tzinfo is None:
            raise ValueError("created must carry a time zone")
        return value

    @model_validator(mode="after")
    def _unique_recipients(self) -> SealedHeader:
        ids = [(r.scheme, r.key_id) for r in self.recipients]
        if len(set(ids)) != len(ids):
            raise ValueError("two recipients name the same KEK")
        return self

    def canonical_json(self) -> bytes:
        """The header's RFC 8785 canonical JSON bytes."""
        return rfc8785.dumps(self.model_dump(mode="json"))

    @property
    def artifact_id_bytes(self) -> bytes:
        """The artifact id as raw bytes."""
        return bytes.fromhex(self.artifact_id)

    def stream_sizes(self) -> list[int]:
        """The ciphertext length of each file's stream, in payload order."""
        return [_segments.ciphertext_size(entry.size) for entry in self.model.files]

    def stream_offsets(self, payload_start: int) -> list[int]:
        """Where each file's stream starts in the artifact, given where the payload starts."""
        offsets = []
        for size in self.stream_sizes():
            offsets.append(payload_start)
            payload_start += size
        return offsets


def check_member_path(path: str) -> None:
    """Raise ValueError unless ``path`` is a safe relative POSIX path to extract under a directory."""
    if not path or len(path) > 4096 or "\x00" in path or "\\" in path:
        raise ValueError("file path is empty, too long or has NUL or backslash")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("file path is not valid UTF-8") from None
    _no_control_characters(path)
    if path.startswith("/"):
        raise ValueError("file path is absolute")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError("file path has an empty, '.' or '..' component")


def manifest_sort_key(path: str) -> tuple[str, ...]:
    """The order model_signing gives files: ``pathlib.PurePosixPath`` ordering, i.e. by components."""
    return PurePosixPath(path).parts


def encode_preamble(header_length: int) -> bytes:
    """The 14-byte preamble for a header of ``header_length`` bytes."""
    return PREAMBLE.pack(MAGIC, FORMAT_VERSION, header_length)


def decode_preamble(raw: bytes) -> int:
    """Check a preamble; return the header length it announces."""
    if len(raw) < PREAMBLE_SIZE:
        raise ArtifactCorrupt("not a ccseal artifact: shorter than its preamble")
    magic, version, length = PREAMBLE.unpack(raw[:PREAMBLE_SIZE])
    if magic != MAGIC:
        raise ArtifactCorrupt("not a ccseal artifact: bad magic")
    if version != FORMAT_VERSION:
        raise UnsupportedFormat(f"ccseal format version {version} is not supported (this build reads 1)")
    if not 0 < length <= MAX_HEADER_SIZE:
        raise ArtifactCorrupt(f"ccseal header length {length} is out of range")
    return int(length)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key in header JSON")
    return dict(pairs)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def parse_header(raw: bytes) -> SealedHeader:
    """Parse header bytes into a :class:`SealedHeader`; they must be exactly its canonical form."""
    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ArtifactCorrupt("ccseal header is not valid JSON") from None
    if isinstance(doc, dict):
        payload = doc.get("payload")
        aead = payload.get("aead") if isinstance(payload, dict) else None
        if isinstance(aead, str) and aead != _segments.ALGORITHM:
            raise UnsupportedFormat(f"payload algorithm {aead!r} is not supported")
        model = doc.get("model")
        digest = model.get("hash") if isinstance(model, dict) else None
        if isinstance(digest, str) and digest not in HASH_ALGORITHMS:
            raise UnsupportedFormat(f"digest algorithm {digest!r} is not supported")
    try:
        header = SealedHeader.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "header"
        raise ArtifactCorrupt(f"ccseal header is invalid at {where}: {first['msg']}") from None
    if header.canonical_json() != raw:
        raise ArtifactCorrupt("ccseal header is not in canonical (RFC 8785) form")
    return header


def _mac_key(dek: bytes | bytearray, artifact_id: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=artifact_id, info=_MAC_INFO).derive(dek)


def header_mac(dek: bytes | bytearray, artifact_id: bytes, preamble_and_header: bytes) -> bytes:
    """HMAC-SHA256 over preamble and header under a key derived from the DEK (key-committing)."""
    return hmac.new(_mac_key(dek, artifact_id), preamble_and_header, hashlib.sha256).digest()


def check_header_mac(dek: bytes | bytearray, artifact_id: bytes, preamble_and_header: bytes, mac: bytes) -> None:
    """Raise :class:`ArtifactTampered` unless ``mac`` authenticates the header under ``dek``."""
    if not hmac.compare_digest(header_mac(dek, artifact_id, preamble_and_header), mac):
        raise ArtifactTampered("header authentication failed: the header was edited or a wrapped key was swapped")


def stream_associated_data(artifact_id: bytes, index: int) -> bytes:
    """Tink associated data of file ``index``'s stream: binds it to this artifact and position."""
    return hashlib.sha256(_STREAM_AD_LABEL + artifact_id + struct.pack(">I", index)).digest()
