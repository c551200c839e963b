"""Sealing: one pass over the model that hashes (on a second thread) and encrypts (on this one).

The header records digests that are known only after the last byte, so the writer reserves the
header's exact length first (every digest is 64 hex characters whatever its value), writes the
payload streams at their precomputed offsets, then fills in the header and its MAC. Everything goes
to a temporary file beside the output, renamed into place only once complete.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from ccdeploy import __version__
from ccdeploy.errors import ModelInputError, UsageError
from ccdeploy.kek.base import KeyWrapper
from ccdeploy.seal import _header, _segments
from ccdeploy.seal._io import atomic_output_file, os_error, pwrite_all, readinto_exactly, start_writeback
from ccdeploy.seal._parallel import Stop, check_stop, run_all
from ccdeploy.seal._parts import new_part_hasher, write_digest_record
from ccdeploy.seal.manifest import HashAlgorithm, ModelFile, collect_model_files, manifest_digest, new_hasher

__all__ = ["BATCH_SEGMENTS", "PIPELINE_DEPTH", "Progress", "seal_model", "wrap_for_recipients"]

Progress = Callable[[int], None]
"""Called with a count of plaintext bytes processed; may be called from worker threads."""

BATCH_SEGMENTS = 4
"""Segments handled per read/encrypt/write step: large enough to amortise Python overhead, small
enough that peak memory stays a few MiB per file in flight."""

PIPELINE_DEPTH = 3
"""Plaintext batch buffers per file: while one is read and encrypted, the hashing thread works through
the others, so jitter in either stage (fresh page-cache pages are slow to fault in) does not stall
the other."""

_PLACEHOLDER_DIGEST = "0" * 64


def wrap_for_recipients(dek: bytes, artifact_id: bytes, keks: Sequence[KeyWrapper]) -> tuple[_header.Recipient, ...]:
    """Wrap ``dek`` under every KEK, binding the artifact id as encryption context."""
    if not keks:
        raise UsageError("at least one KEK is needed to seal")
    names = [(kek.scheme, kek.key_id) for kek in keks]
    if len(set(names)) != len(names):
        raise UsageError("the same KEK is given twice")
    context: Mapping[str, str] = {"ccdeploy:artifact_id": artifact_id.hex()}
    return tuple(_header.Recipient.from_wrapped(kek.wrap(dek, context)) for kek in keks)


def _build_header(
    *,
    artifact_id: bytes,
    created: datetime,
    name: str,
    algorithm: HashAlgorithm,
    files: Sequence[ModelFile],
    digests: Sequence[str],
    recipients: tuple[_header.Recipient, ...],
    bom_digest: str | None,
) -> _header.SealedHeader:
    try:
        return _header.SealedHeader(
            version=_header.FORMAT_VERSION,
            artifact_id=artifact_id.hex(),
            created=created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            tool=f"ccdeploy/{__version__}",
            model=_header.ModelInfo(
                name=name,
                hash=algorithm,
                manifest_digest=manifest_digest(bytes.fromhex(d) for d in digests),
                files=tuple(
                    _header.FileEntry(path=f.path, size=f.size, digest=d) for f, d in zip(files, digests, strict=True)
                ),
            ),
            payload=_header.PayloadInfo(aead="AES256_GCM_HKDF_1MB"),
            recipients=recipients,
            bom_digest=bom_digest,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ModelInputError(f"this model cannot be recorded in a header ({where}: {first['msg']})") from None


def _seal_stream(
    out_fd: int,
    offset: int,
    entry: ModelFile,
    dek: bytes,
    associated_data: bytes,
    algorithm: HashAlgorithm,
    progress: Progress | None,
    stop: Stop | None = None,
) -> tuple[str, bytes]:
    """Encrypt one file into its stream at ``offset``.

    Returns:
        The plaintext hex digest, and the raw BLAKE3 digest of the stream's ciphertext (an artifact-digest part).
    """
    stream_header, key = _segments.new_stream(dek, associated_data)
    pwrite_all(out_fd, stream_header, offset)
    part = new_part_hasher()
    part.update(stream_header)
    position = offset + _segments.HEADER_SIZE
    total_segments = _segments.segment_count(entry.size)
    batch_plain = BATCH_SEGMENTS * _segments.PLAINTEXT_SEGMENT_SIZE
    plain_buffers = [bytearray(batch_plain) for _ in range(PIPELINE_DEPTH)]
    cipher_view = memoryview(bytearray(BATCH_SEGMENTS * _segments.CIPHERTEXT_SEGMENT_SIZE))
    hasher = new_hasher(algorithm)
    pending: list[Future[object] | None] = [None] * PIPELINE_DEPTH
    try:
        source = entry.source.open("rb", 0)
    except OSError as exc:
        raise os_error(exc, f"read {entry.source}") from None
    # The ciphertext's BLAKE3 runs on its own thread while the next batch is read, so it never adds to the
    # encrypt-and-write thread; the cipher buffer is reused only once that hash of it has finished.
    part_hashed: Future[object] | None = None
    with (
        ThreadPoolExecutor(1, thread_name_prefix="ccseal-hash") as hash_thread,
        ThreadPoolExecutor(1, thread_name_prefix="ccseal-part") as part_thread,
        source as src,
    ):
        segment = 0
        slot = 0
        while segment < total_segments:
            check_stop(stop)
            previous = pending[slot]
            if previous is not None:
                previous.result()
            count = min(BATCH_SEGMENTS, total_segments - segment)
            sizes = _segments.batch_sizes(segment, count, entry.size)
            plain = memoryview(plain_buffers[slot])[: sum(sizes)]
            if readinto_exactly(src, plain) != len(plain):
                raise ModelInputError(f"{entry.source} shrank while it was being sealed")
            pending[slot] = hash_thread.submit(hasher.update, plain)
            if part_hashed is not None:
                part_hashed.result()
            src_pos = dst_pos = 0
            for index, size in zip(range(segment, segment + count), sizes, strict=True):
                _segments.encrypt_segment_into(
                    key,
                    index,
                    index == total_segments - 1,
                    plain[src_pos : src_pos + size],
                    cipher_view[dst_pos : dst_pos + size + _segments.TAG_SIZE],
                )
                src_pos += size
                dst_pos += size + _segments.TAG_SIZE
            pwrite_all(out_fd, cipher_view[:dst_pos], position)
            part_hashed = part_thread.submit(part.update, cipher_view[:dst_pos])
            start_writeback(out_fd, position, dst_pos)
            position += dst_pos
            segment += count
            slot = (slot + 1) % PIPELINE_DEPTH
            if progress is not None:
                progress(len(plain))
        if src.read(1):
            raise ModelInputError(f"{entry.source} grew while it was being sealed")
        for future in (*pending, part_hashed):
            if future is not None:
                future.result()
    return hasher.hexdigest(), part.digest()


def seal_model(
    model: Path,
    output: Path,
    keks: Sequence[KeyWrapper],
    *,
    hash_algorithm: HashAlgorithm = "sha256",
    name: str | None = None,
    created: datetime | None = None,
    overwrite: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
    bom_digest: str | None = None,
    digest_record: bool = True,
) -> _header.SealedHeader:
    """Seal a model file or directory into a ``.ccseal`` artifact at ``output``.

    Args:
        model: an ONNX file, or a directory (ONNX plus external-data files).
        output: the artifact to write; written beside it first and renamed when complete.
        keks: the KEKs the DEK is wrapped under (one recipient each).
        hash_algorithm: per-file plaintext digest, ``sha256`` or ``blake3``.
        name: the model name recorded in the header (default: the file's stem or directory name).
        created: the creation time recorded (default: now).
        overwrite: replace an existing ``output``.
        workers: files sealed in parallel (default: one per CPU core, at most one per file).
        progress: called with plaintext byte counts as they are sealed.
        bom_digest: SHA-256 (hex) of the AI BOM to record in the header's ``bom_digest`` slot.
        digest_record: also write ``<output>.digest.json``, the artifact digest computed while sealing,
            so that signing need not read the sealed bytes again (see :mod:`ccdeploy.seal.digest`).

    Returns:
        The header written.
    """
    files = collect_model_files(model)
    if hash_algorithm not in _header.HASH_ALGORITHMS:
        raise UsageError(f"unknown hash algorithm {hash_algorithm!r} (sha256 or blake3)")
    dek = os.urandom(_segments.KEY_SIZE)
    artifact_id = os.urandom(_header.ARTIFACT_ID_SIZE)
    build_header = functools.partial(
        _build_header,
        artifact_id=artifact_id,
        created=created or datetime.now(UTC),
        name=name or (model.name if model.is_dir() else model.stem) or "model",
        algorithm=hash_algorithm,
        files=files,
        recipients=wrap_for_recipients(dek, artifact_id, keks),
        bom_digest=bom_digest,
    )
    # Every digest is 64 hex characters, so the header written at the end has the reserved length.
    reserved = build_header(digests=[_PLACEHOLDER_DIGEST] * len(files))
    header_length = len(reserved.canonical_json())
    if header_length > _header.MAX_HEADER_SIZE:
        raise ModelInputError(
            f"the model's header would be {header_length} bytes, over the format's {_header.MAX_HEADER_SIZE}: "
            "too many files or too long names"
        )
    offsets = reserved.stream_offsets(_header.PREAMBLE_SIZE + header_length + _header.MAC_SIZE)

    def seal_file(index: int) -> Callable[[Stop], tuple[str, bytes]]:
        return lambda stop: _seal_stream(
            fd,
            offsets[index],
            files[index],
            dek,
            _header.stream_associated_data(artifact_id, index),
            hash_algorithm,
            progress,
            stop,
        )

    with atomic_output_file(output, overwrite=overwrite) as fd:
        results = run_all([seal_file(index) for index in range(len(files))], workers)
        header = build_header(digests=[plain for plain, _ in results])
        header_bytes = header.canonical_json()
        if len(header_bytes) != header_length:  # pragma: no cover - guarded by fixed-width digests
            raise AssertionError("sealed header changed length after hashing")
        preamble_and_header = _header.encode_preamble(header_length) + header_bytes
        mac = _header.header_mac(dek, artifact_id, preamble_and_header)
        pwrite_all(fd, preamble_and_header + mac, 0)
        head = new_part_hasher().update(preamble_and_header + mac).digest()
    if digest_record:
        write_digest_record(output, [head, *(part for _, part in results)], header_bytes, header.artifact_id)
    return header
