"""Staging a file through ``write_authenticated`` (several threads, tags only) and ``check_digest`` after it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ccdeploy.errors import ArtifactTampered
from ccdeploy.kek import KeyWrapper
from ccdeploy.seal import KekKeyProvider, _segments, open_sealed, seal_model
from ccdeploy.seal._io import wipe
from ccdeploy.seal.reader import STAGE_BATCH_SEGMENTS
from tests.seal.conftest import random_bytes
from tests.seal.forge import layout

# enough segments for several batches per thread, and a short last one
SIZE = (3 * STAGE_BATCH_SEGMENTS + 1) * _segments.PLAINTEXT_SEGMENT_SIZE + 12345


def _seal(tmp_path: Path, kek: KeyWrapper, data: bytes, hash_algorithm: str = "sha256") -> Path:
    model = tmp_path / "w.bin"
    model.write_bytes(data)
    sealed = tmp_path / "w.ccseal"
    seal_model(model, sealed, [kek], hash_algorithm=hash_algorithm)  # type: ignore[arg-type]
    return sealed


def _stage(sealed: Path, kek: KeyWrapper, target: Path, workers: int | None) -> bytes:
    fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with open_sealed(sealed, KekKeyProvider([kek])) as artifact:
            artifact.write_authenticated(fd, workers=workers)
    finally:
        os.close(fd)
    return target.read_bytes()


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("hash_algorithm", ["sha256", "blake3"])
def test_staged_bytes_equal_the_plaintext_and_pass_the_digest(
    kek: KeyWrapper, tmp_path: Path, workers: int, hash_algorithm: str
) -> None:
    data = random_bytes(SIZE, seed=workers)
    sealed = _seal(tmp_path, kek, data, hash_algorithm)
    assert _stage(sealed, kek, tmp_path / "out", workers) == data
    with open_sealed(sealed, KekKeyProvider([kek])) as artifact:
        artifact.check_digest(None, memoryview(data))


@pytest.mark.parametrize("size", [0, 1, _segments.FIRST_PLAINTEXT_SEGMENT_SIZE + 1])
def test_small_and_empty_files(kek: KeyWrapper, tmp_path: Path, size: int) -> None:
    data = random_bytes(size, seed=size)
    sealed = _seal(tmp_path, kek, data)
    assert _stage(sealed, kek, tmp_path / "out", 2) == data
    with open_sealed(sealed, KekKeyProvider([kek])) as artifact:
        artifact.check_digest(None, memoryview(data))


def test_a_tampered_segment_is_never_written(kek: KeyWrapper, tmp_path: Path) -> None:
    data = random_bytes(SIZE, seed=9)
    sealed = _seal(tmp_path, kek, data)
    raw = bytearray(sealed.read_bytes())
    bad_segment = 2 * STAGE_BATCH_SEGMENTS + 1  # inside the third batch: the second thread's second one
    start, _end = layout(bytes(raw)).segment_span(0, bad_segment)
    raw[start + 100] ^= 1
    sealed.write_bytes(raw)
    target = tmp_path / "out"
    with pytest.raises(ArtifactTampered, match=f"segment {bad_segment} failed"):
        _stage(sealed, kek, target, 2)
    written = target.read_bytes()
    batch_start = _segments.segment_plaintext_start(2 * STAGE_BATCH_SEGMENTS)
    batch_end = _segments.segment_plaintext_start(3 * STAGE_BATCH_SEGMENTS)
    # nothing of the tampered batch reached the file (a hole reads as zeros), and whatever was written is genuine
    assert written[batch_start:batch_end].strip(b"\0") == b""
    for segment in range(_segments.segment_count(SIZE)):
        offset = _segments.segment_plaintext_start(segment)
        piece = written[offset : offset + _segments.segment_plaintext_size(segment, SIZE)]
        assert piece.strip(b"\0") == b"" or piece == data[offset : offset + len(piece)]


def test_check_digest_refuses_other_bytes(kek: KeyWrapper, tmp_path: Path) -> None:
    data = random_bytes(SIZE, seed=3)
    sealed = _seal(tmp_path, kek, data)
    changed = bytearray(data)
    changed[-1] ^= 1
    with open_sealed(sealed, KekKeyProvider([kek])) as artifact:
        with pytest.raises(ArtifactTampered, match="digest does not match"):
            artifact.check_digest(None, memoryview(changed))
        with pytest.raises(ArtifactTampered, match="size does not match"):
            artifact.check_digest(None, memoryview(data)[:-1])


def test_wipe_zeroes_in_place() -> None:
    buf = bytearray(os.urandom(4096))
    view = memoryview(buf)
    wipe(view[10:20])
    assert buf[10:20] == bytes(10) and buf[:10] != bytes(10)
    wipe(bytearray())
