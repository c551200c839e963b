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
import mmap
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


def sealed_digest(path: Path) -> SealedDigest:
    """Compute a sealed artifact's digest from its bytes (parses the header; needs no key).

    Raises:
        ArtifactCorrupt: not a ccseal artifact, truncated, or with bytes after its last stream.
    """
    source = open_source(path)
    try:
        header, preamble_and_header, _mac = _read_header(source)
        size = source.size
    finally:
        source.close()
    head_size = len(preamble_and_header) + _header.MAC_SIZE
    sizes = header.stream_sizes()
    expected = head_size + sum(sizes)
    if size != expected:
        which = "truncated" if size < expected else "followed by trailing bytes"
        raise ArtifactCorrupt(f"sealed artifact is {which} ({size} bytes; its header describes {expected})")
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise os_error(exc, f"read {path}") from None
    with handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        if len(mapped) != expected:
            raise ArtifactCorrupt("sealed artifact changed while it was being hashed")
        parts = []
        offset = 0
        for length in (head_size, *sizes):
            with memoryview(mapped)[offset : offset + length] as part:
                parts.append(new_part_hasher(threads=True).update(part).digest())
            offset += length
    header_json = preamble_and_header[_header.PREAMBLE_SIZE :]
    return SealedDigest(
        value=combine_parts(parts),
        header_sha256=hashlib.sha256(header_json).hexdigest(),
        artifact_id=header.artifact_id,
        size=size,
        header=header,
    )


def sealed_digest_cached(path: Path) -> tuple[SealedDigest, bool]:
    """The artifact digest, from its digest record when that still describes the file; else computed.

    Returns:
        The digest and whether it came from the record (``True``) or from hashing the file (``False``).
    """
    record = read_digest_record(path)
    if record is not None:
        try:
            info = path.stat()
        except OSError as exc:
            raise os_error(exc, f"read {path}") from None
        if info.st_size == record.size and info.st_mtime_ns == record.mtime_ns:
            source = open_source(path)
            try:
                header, preamble_and_header, _mac = _read_header(source)
            finally:
                source.close()
            header_sha256 = hashlib.sha256(preamble_and_header[_header.PREAMBLE_SIZE :]).hexdigest()
            if header.artifact_id == record.artifact_id and header_sha256 == record.header_sha256:
                digest = SealedDigest(record.value, header_sha256, header.artifact_id, info.st_size, header)
                return digest, True
    return sealed_digest(path), False
