r"""The digest that names a sealed artifact in signed statements (``ccseal.v1.blake3``).

A ``.ccseal`` file is written header-last: its header records plaintext digests known only after the
last byte is sealed, so no digest of the whole file in file order can be computed while sealing. The
artifact digest is therefore defined over the artifact's *parts*, in the manner of an OCI manifest
over its layers::

    part 0      = preamble ‖ header ‖ header MAC           (the "head")
    part 1 + i  = the ciphertext stream of file i
    digest      = BLAKE3( "ccseal/v1 artifact digest\\n" ‖ BLAKE3(part 0) ‖ BLAKE3(part 1) ‖ … )

Every byte of the file belongs to exactly one part; the head fixes the number and length of the
streams, and a file with any byte after the last stream is refused, so the digest names exactly one
byte string. Sealing hashes each stream's ciphertext as it writes it (hidden behind the plaintext
SHA-256 on the other core), so signing never reads the sealed bytes again; verification recomputes
the digest with multi-threaded BLAKE3 over a memory map, a fraction of one SHA-256 pass.

The ``.ccseal.digest.json`` record (see :class:`DigestRecord`) carries a digest from sealing to
signing. It is a cache, not a trust input: it is used only while the artifact's size, modification
time, artifact id and header digest still match, and a wrong record can only make a signature that
fails verification.
"""

from __future__ import annotations

import hashlib
import io
import mmap
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ccdeploy.errors import ArtifactCorrupt
from ccdeploy.seal import _header
from ccdeploy.seal._io import os_error
from ccdeploy.seal._parts import (
    DIGEST_ALGORITHM,
    DIGEST_RECORD_SUFFIX,
    DigestRecord,
    combine_parts,
    new_part_hasher,
    read_digest_record,
    record_path,
    write_digest_record,
)
from ccdeploy.seal._source import open_source
from ccdeploy.seal.reader import _read_header

__all__ = [
    "DIGEST_ALGORITHM",
    "DIGEST_RECORD_SUFFIX",
    "DigestRecord",
    "SealedDigest",
    "combine_parts",
    "new_part_hasher",
    "read_digest_record",
    "record_path",
    "sealed_digest",
    "sealed_digest_cached",
    "sealed_digest_from_parts",
    "sealed_head_and_parts",
    "write_digest_record",
]


@dataclass(frozen=True)
class SealedDigest:
    """What names a sealed artifact: its parts digest, its header and its identity."""

    value: str
    """Hex ``ccseal.v1.blake3`` digest of the whole artifact."""
    header_sha256: str
    """SHA-256 of the canonical header JSON (the bytes between preamble and MAC)."""
    artifact_id: str
    size: int
    header: _header.SealedHeader

    def digest_set(self) -> dict[str, str]:
        """The in-toto ``DigestSet`` of the artifact."""
        return {DIGEST_ALGORITHM: self.value}


def _open(path: Path) -> io.BufferedReader:
    try:
        return path.open("rb")
    except OSError as exc:
        raise os_error(exc, f"read {path}") from None


def _head(handle: io.BufferedReader) -> tuple[_header.SealedHeader, bytes, int]:
    """Parse the header from an open artifact; return it, the head's bytes and the artifact's exact size."""
    header, preamble_and_header, mac = _read_header(open_source(handle))
    head = preamble_and_header + mac
    expected = len(head) + sum(header.stream_sizes())
    size = os.fstat(handle.fileno()).st_size
    if size != expected:
        which = "truncated" if size < expected else "followed by trailing bytes"
        raise ArtifactCorrupt(f"sealed artifact is {which} ({size} bytes; its header describes {expected})")
    return header, head, size


def _sealed(header: _header.SealedHeader, head: bytes, size: int, parts: list[bytes]) -> SealedDigest:
    header_json = head[_header.PREAMBLE_SIZE : len(head) - _header.MAC_SIZE]
    return SealedDigest(
        value=combine_parts(parts),
        header_sha256=hashlib.sha256(header_json).hexdigest(),
        artifact_id=header.artifact_id,
        size=size,
        header=header,
    )


def sealed_digest(path: Path) -> SealedDigest:
    """Compute a sealed artifact's digest from its bytes (parses the header; needs no key).

    The header is parsed from, and every part hashed through, one open file, so the digest and the
    header it reports always come from the same file.

    Raises:
        ArtifactCorrupt: not a ccseal artifact, truncated, or with bytes after its last stream.
    """
    with _open(path) as handle:
        header, head, size = _head(handle)
        parts = [new_part_hasher().update(head).digest()]
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            offset = len(head)
            for length in header.stream_sizes():
                with memoryview(mapped)[offset : offset + length] as part:
                    parts.append(new_part_hasher(threads=True).update(part).digest())
                offset += length
    return _sealed(header, head, size, parts)


def sealed_digest_cached(path: Path) -> tuple[SealedDigest, bool]:
    """The artifact digest, from the seal-time digest record when that still describes the file; else computed.

    The record is used only while the file's size and modification time, its artifact id and header
    digest match, and only for the streams: the head's digest (preamble, header, MAC) is recomputed
    from the file, so the digest returned always covers this file's header.

    Returns:
        The digest and whether the stream digests came from the record (``True``) or from hashing (``False``).
    """
    record = read_digest_record(path)
    if record is not None:
        with _open(path) as handle:
            header, head, size = _head(handle)
            info = os.fstat(handle.fileno())
        header_json = head[_header.PREAMBLE_SIZE : len(head) - _header.MAC_SIZE]
        usable = (
            info.st_mtime_ns == record.mtime_ns
            and size == record.size
            and header.artifact_id == record.artifact_id
            and hashlib.sha256(header_json).hexdigest() == record.header_sha256
            and len(record.parts) == 1 + len(header.model.files)
            and record.parts[0] == new_part_hasher().update(head).hexdigest()
        )
        if usable:
            parts = [bytes.fromhex(part) for part in record.parts]
            return _sealed(header, head, size, parts), True
    return sealed_digest(path), False


def sealed_digest_from_parts(head: bytes, part_digests: Sequence[str]) -> SealedDigest:
    """The artifact digest of an artifact known only by its head and the digests of its streams.

    ``head`` is the artifact's first part exactly as on disk (preamble, header, MAC); its digest is
    recomputed here. ``part_digests`` are the hex BLAKE3 digests of the streams in payload order (from
    the digest record, or recomputed by whoever holds the streams). The result is the digest
    :func:`sealed_digest` computes from the whole file, when the stream digests are right.

    Raises:
        ArtifactCorrupt: the head does not parse, has bytes after its MAC, or the number or form of the
            stream digests does not match its header.
    """
    source = open_source(bytes(head))
    try:
        header, preamble_and_header, mac = _read_header(source)
    finally:
        source.close()
    if len(preamble_and_header) + len(mac) != len(head):
        raise ArtifactCorrupt("the head part of the sealed artifact has bytes after its header MAC")
    streams = header.stream_sizes()
    if len(part_digests) != len(streams):
        raise ArtifactCorrupt(f"{len(part_digests)} stream digests given; the header describes {len(streams)} streams")
    parts = [new_part_hasher().update(head).digest()]
    for index, text in enumerate(part_digests):
        try:
            raw = bytes.fromhex(text)
        except (ValueError, TypeError):
            raise ArtifactCorrupt(f"stream digest {index} is not hex") from None
        if len(raw) != len(parts[0]):
            raise ArtifactCorrupt(f"stream digest {index} is not a {len(parts[0])}-byte BLAKE3 digest")
        parts.append(raw)
    return _sealed(header, bytes(head), len(head) + sum(streams), parts)


def sealed_head_and_parts(path: Path) -> tuple[bytes, tuple[str, ...]]:
    """An artifact's head part (preamble, header, MAC) and the hex BLAKE3 digests of its streams, from its bytes.

    What a release broker keeps of a registered artifact: :func:`sealed_digest_from_parts` recombines them
    into the artifact digest.

    Raises:
        ArtifactCorrupt: not a ccseal artifact, truncated, or with bytes after its last stream.
    """
    with _open(path) as handle:
        header, head, _size = _head(handle)
        parts: list[str] = []
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            offset = len(head)
            for length in header.stream_sizes():
                with memoryview(mapped)[offset : offset + length] as part:
                    parts.append(new_part_hasher(threads=True).update(part).hexdigest())
                offset += length
    return head, tuple(parts)
