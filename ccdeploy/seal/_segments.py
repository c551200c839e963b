"""The Tink streaming-AEAD construction ``AES256_GCM_HKDF_1MB``, on ``cryptography``'s AES-GCM.

Written here rather than taken from the ``tink`` package because tink offers only whole-stream
encrypt/decrypt: ccdeploy needs random access by segment, encryption into preallocated buffers
(about twice tink's throughput) and hashing overlapped with encryption. The bytes are identical to
tink's; the test suite checks that in both directions.

Stream layout (Tink's ``AesGcmHkdfStreaming`` with a 1 MiB ciphertext segment, offset 0)::

    header  = 0x28 || salt (32 B) || nonce prefix (7 B)                      (40 bytes)
    segment = AES-256-GCM(key, nonce_prefix || u32be(index) || last, pt, aad=b"")
    key     = HKDF-SHA256(ikm=DEK, salt=salt, info=associated data, length=32)

Every ciphertext segment is 1 MiB long (the first one includes the 40-byte header), except the last,
which is shorter and may be empty of plaintext (an empty stream is the header plus one 16-byte tag).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ALGORITHM = "AES256_GCM_HKDF_1MB"
KEY_SIZE = 32
NONCE_PREFIX_SIZE = 7
TAG_SIZE = 16
HEADER_SIZE = 1 + KEY_SIZE + NONCE_PREFIX_SIZE
CIPHERTEXT_SEGMENT_SIZE = 1 << 20
PLAINTEXT_SEGMENT_SIZE = CIPHERTEXT_SEGMENT_SIZE - TAG_SIZE
FIRST_PLAINTEXT_SEGMENT_SIZE = PLAINTEXT_SEGMENT_SIZE - HEADER_SIZE
MAX_SEGMENTS = 1 << 32

_LAST = b"\x01"
_NOT_LAST = b"\x00"


class SegmentAuthError(Exception):
    """A segment or stream header failed authentication (internal; callers map it to a CcdError)."""


def segment_count(plaintext_size: int) -> int:
    """Number of segments Tink writes for a plaintext of ``plaintext_size`` bytes (at least one)."""
    if plaintext_size <= FIRST_PLAINTEXT_SEGMENT_SIZE:
        return 1
    rest = plaintext_size - FIRST_PLAINTEXT_SEGMENT_SIZE
    return 1 + -(-rest // PLAINTEXT_SEGMENT_SIZE)


def max_plaintext_size() -> int:
    """The largest plaintext one stream can carry: 2^32 segments (the nonce's counter is 32 bits)."""
    return FIRST_PLAINTEXT_SEGMENT_SIZE + (MAX_SEGMENTS - 1) * PLAINTEXT_SEGMENT_SIZE


def ciphertext_size(plaintext_size: int) -> int:
    """Length of the Tink ciphertext stream for ``plaintext_size`` bytes of plaintext."""
    return HEADER_SIZE + plaintext_size + TAG_SIZE * segment_count(plaintext_size)


def segment_plaintext_start(index: int) -> int:
    """Offset in the plaintext of the first byte carried by segment ``index``."""
    if index == 0:
        return 0
    return FIRST_PLAINTEXT_SEGMENT_SIZE + (index - 1) * PLAINTEXT_SEGMENT_SIZE


def segment_ciphertext_start(index: int) -> int:
    """Offset in the stream (header included) of segment ``index``'s ciphertext."""
    if index == 0:
        return HEADER_SIZE
    return index * CIPHERTEXT_SEGMENT_SIZE


def segment_plaintext_size(index: int, plaintext_size: int) -> int:
    """Plaintext bytes carried by segment ``index`` of a stream of ``plaintext_size`` bytes."""
    full = FIRST_PLAINTEXT_SEGMENT_SIZE if index == 0 else PLAINTEXT_SEGMENT_SIZE
    return min(full, plaintext_size - segment_plaintext_start(index))


def batch_sizes(first: int, count: int, plaintext_size: int) -> list[int]:
    """Plaintext bytes carried by segments ``first`` .. ``first + count - 1`` of a stream."""
    return [segment_plaintext_size(index, plaintext_size) for index in range(first, first + count)]


def segment_of_offset(offset: int) -> int:
    """Index of the segment that carries plaintext byte ``offset``."""
    if offset < FIRST_PLAINTEXT_SEGMENT_SIZE:
        return 0
    return 1 + (offset - FIRST_PLAINTEXT_SEGMENT_SIZE) // PLAINTEXT_SEGMENT_SIZE


@dataclass(frozen=True)
class StreamKey:
    """The per-stream AES-GCM key and nonce prefix, derived from a DEK and a stream header."""

    aead: AESGCM
    nonce_prefix: bytes

    def nonce(self, index: int, last: bool) -> bytes:
        """The 12-byte nonce of segment ``index``."""
        return self.nonce_prefix + struct.pack(">I", index) + (_LAST if last else _NOT_LAST)


def _derive(dek: bytes, salt: bytes, associated_data: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=associated_data).derive(dek)
    return AESGCM(key)


def new_stream(dek: bytes, associated_data: bytes) -> tuple[bytes, StreamKey]:
    """Start a stream: a fresh random salt and nonce prefix. Returns (stream header, key)."""
    _check_dek(dek)
    salt = os.urandom(KEY_SIZE)
    prefix = os.urandom(NONCE_PREFIX_SIZE)
    header = bytes([HEADER_SIZE]) + salt + prefix
    return header, StreamKey(_derive(dek, salt, associated_data), prefix)


def open_stream(dek: bytes, header: bytes, associated_data: bytes) -> StreamKey:
    """Derive the key of an existing stream from its 40-byte header."""
    _check_dek(dek)
    if len(header) != HEADER_SIZE or header[0] != HEADER_SIZE:
        raise SegmentAuthError("stream header is malformed")
    salt = header[1 : 1 + KEY_SIZE]
    prefix = header[1 + KEY_SIZE :]
    return StreamKey(_derive(dek, salt, associated_data), prefix)


def _check_dek(dek: bytes) -> None:
    if len(dek) != KEY_SIZE:
        raise ValueError("the data-encryption key must be 32 bytes")


def encrypt_segment_into(key: StreamKey, index: int, last: bool, plaintext: memoryview, out: memoryview) -> None:
    """Encrypt one segment's plaintext into ``out`` (exactly ``len(plaintext) + 16`` bytes)."""
    key.aead.encrypt_into(key.nonce(index, last), plaintext, None, out)


def decrypt_segment_into(key: StreamKey, index: int, last: bool, ciphertext: memoryview, out: memoryview) -> None:
    """Decrypt and authenticate one segment into ``out`` (exactly ``len(ciphertext) - 16`` bytes)."""
    try:
        key.aead.decrypt_into(key.nonce(index, last), ciphertext, None, out)
    except InvalidTag:
        raise SegmentAuthError(f"segment {index} failed authentication") from None
