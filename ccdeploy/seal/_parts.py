"""Pieces of the sealed-artifact digest shared by the writer and :mod:`ccdeploy.seal.digest`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import blake3

from ccdeploy.seal._io import atomic_output_file, pwrite_all

DIGEST_ALGORITHM = "ccseal.v1.blake3"
"""The in-toto ``DigestSet`` key of a sealed artifact's digest."""
DIGEST_RECORD_SUFFIX = ".digest.json"
_DOMAIN = b"ccseal/v1 artifact digest\n"
_RECORD_FORMAT = "ccseal-digest-record/v2"


def new_part_hasher(threads: bool = False) -> blake3.blake3:
    """A BLAKE3 hasher for one part; ``threads`` lets it use every core on large inputs."""
    return blake3.blake3(max_threads=blake3.blake3.AUTO if threads else 1)


def combine_parts(part_digests: Sequence[bytes]) -> str:
    """The artifact digest (hex) from the raw BLAKE3 digests of its parts, head first."""
    outer = blake3.blake3(_DOMAIN)
    for part in part_digests:
        outer.update(part)
    return outer.hexdigest()


@dataclass(frozen=True)
class DigestRecord:
    """The sidecar ``<artifact>.digest.json`` written by ``ccdeploy seal``: the part digests of the artifact.

    Only the stream digests are ever taken from it: a reader recomputes the head's digest from the file
    and the artifact digest from the parts, so a record cannot name an artifact with another header.
    """

    parts: tuple[str, ...]
    """Hex BLAKE3 of each part: the head, then every stream in payload order."""
    header_sha256: str
    artifact_id: str
    size: int
    mtime_ns: int

    @property
    def value(self) -> str:
        """The artifact digest these parts combine to."""
        return combine_parts([bytes.fromhex(part) for part in self.parts])

    def to_json(self) -> bytes:
        """The record's JSON bytes."""
        document = {
            "format": _RECORD_FORMAT,
            "algorithm": DIGEST_ALGORITHM,
            "digest": self.value,
            "parts": list(self.parts),
            "header_sha256": self.header_sha256,
            "artifact_id": self.artifact_id,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
        }
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def record_path(artifact: Path) -> Path:
    """Where the digest record of ``artifact`` lives."""
    return artifact.with_name(artifact.name + DIGEST_RECORD_SUFFIX)


def write_digest_record(artifact: Path, parts: Sequence[bytes], header_json: bytes, artifact_id: str) -> Path:
    """Write the digest record beside a freshly sealed ``artifact`` (atomically); return its path."""
    info = artifact.stat()
    record = DigestRecord(
        parts=tuple(part.hex() for part in parts),
        header_sha256=hashlib.sha256(header_json).hexdigest(),
        artifact_id=artifact_id,
        size=info.st_size,
        mtime_ns=info.st_mtime_ns,
    )
    target = record_path(artifact)
    with atomic_output_file(target, overwrite=True, mode=0o644) as fd:
        pwrite_all(fd, record.to_json(), 0)
    return target


def read_digest_record(artifact: Path) -> DigestRecord | None:
    """The digest record beside ``artifact``, or ``None`` if there is none or it is unreadable."""
    try:
        document = json.loads(record_path(artifact).read_bytes())
        if document.get("format") != _RECORD_FORMAT or document.get("algorithm") != DIGEST_ALGORITHM:
            return None
        parts = tuple(str(part) for part in document["parts"])
        if not parts or any(len(bytes.fromhex(part)) != 32 for part in parts):
            return None
        return DigestRecord(
            parts=parts,
            header_sha256=str(document["header_sha256"]),
            artifact_id=str(document["artifact_id"]),
            size=int(document["size"]),
            mtime_ns=int(document["mtime_ns"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
