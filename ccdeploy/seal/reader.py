"""Opening sealed artifacts: authenticate the header, then decrypt files to memory, disk or a stream.

Nothing is handed to the caller before it is authenticated. :meth:`SealedModel.read_file` and
:meth:`SealedModel.extract` release plaintext only after every segment tag *and* the file's
plaintext digest have verified (extraction writes to a temporary directory renamed into place only
then). :meth:`SealedModel.write_to` (unseal to stdout) releases each batch of segments once their
tags verify and checks the digest at the end; :meth:`SealedModel.open` gives random access where each
segment is authenticated before it is returned, but a partial read cannot check the whole-file digest.
:meth:`SealedModel.write_authenticated` (an enclave staging decrypted weights in RAM) writes batches once
their tags verify and leaves the digest to :meth:`SealedModel.check_digest`, which the caller must pass
before trusting the bytes.
"""

from __future__ import annotations

import errno
import functools
import io
import os
import shutil
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self

from ccdeploy.errors import ArtifactCorrupt, ArtifactTampered, UsageError
from ccdeploy.seal import _header, _segments
from ccdeploy.seal._io import (
    SequentialWriter,
    os_error,
    output_path,
    private_buffer,
    pwrite_all,
    temp_sibling,
    wipe,
    write_all,
)
from ccdeploy.seal._parallel import Stop, check_stop, pool_size, run_all
from ccdeploy.seal._source import SealedSource, Source, open_source
from ccdeploy.seal.keys import KeyProvider
from ccdeploy.seal.manifest import new_hasher
from ccdeploy.seal.writer import BATCH_SEGMENTS, PIPELINE_DEPTH, Progress

__all__ = ["SealedFileReader", "SealedModel", "is_sealed_artifact", "open_sealed", "read_header"]

STAGE_BATCH_SEGMENTS = 2
"""Segments per batch in :meth:`SealedModel.write_authenticated`: 2 MiB buffers stay in the cache between the
decryption and the copy into the file (measured: 4 MiB batches staged 400 MiB about 1.5x slower)."""
DIGEST_CHUNK = 64 << 20
"""Bytes hashed per call in :meth:`SealedModel.check_digest` (each call runs without the GIL)."""


def _read_header(source: Source) -> tuple[_header.SealedHeader, bytes, bytes]:
    scratch = memoryview(bytearray(_header.PREAMBLE_SIZE))
    preamble = bytes(source.view(0, min(_header.PREAMBLE_SIZE, source.size), scratch))
    length = _header.decode_preamble(preamble)
    if _header.PREAMBLE_SIZE + length + _header.MAC_SIZE > source.size:
        raise ArtifactCorrupt("sealed artifact is truncated inside its header")
    raw = bytes(
        source.view(_header.PREAMBLE_SIZE, length + _header.MAC_SIZE, memoryview(bytearray(length + _header.MAC_SIZE)))
    )
    header = _header.parse_header(raw[:length])
    return header, preamble + raw[:length], raw[length:]


def is_sealed_artifact(path: Path) -> bool:
    """Whether ``path`` is a regular file starting with the ``.ccseal`` magic (nothing else is checked).

    Raises:
        UsageError: the file cannot be read (CouldNotCheck for a broken disk).
    """
    if not path.is_file():
        return False
    try:
        with path.open("rb") as handle:
            return handle.read(len(_header.MAGIC)) == _header.MAGIC
    except OSError as exc:
        raise os_error(exc, f"read {path}") from None


def read_header(source: SealedSource) -> _header.SealedHeader:
    """Parse an artifact's header WITHOUT authenticating it (no key needed): for inspection only."""
    src = open_source(source)
    try:
        return _read_header(src)[0]
    finally:
        src.close()


def open_sealed(source: SealedSource, key_provider: KeyProvider) -> SealedModel:
    """Open a sealed artifact: parse and size-check it, obtain the DEK, authenticate the header.

    Raises:
        ArtifactCorrupt: malformed, truncated, or trailing bytes.
        UnsupportedFormat: an unknown version or algorithm.
        WrongKek: the key provider cannot produce the DEK.
        ArtifactTampered: the header MAC fails (edited header, swapped wrapped key, wrong DEK).
    """
    src = open_source(source)
    try:
        header, authenticated, mac = _read_header(src)
        payload_start = len(authenticated) + _header.MAC_SIZE
        expected = payload_start + sum(header.stream_sizes())
        if src.size < expected:
            raise ArtifactCorrupt("sealed artifact is truncated")
        if src.size > expected:
            raise ArtifactCorrupt(f"sealed artifact has {src.size - expected} trailing bytes")
        dek = key_provider.data_key(header)
        if len(dek) != _segments.KEY_SIZE:
            raise ArtifactTampered("the unwrapped data key has the wrong length")
        _header.check_header_mac(dek, header.artifact_id_bytes, authenticated, mac)
    except BaseException:
        src.close()
        raise
    return SealedModel(src, header, dek, payload_start)


class SealedModel:
    """An opened, header-authenticated sealed artifact. Use as a context manager."""

    def __init__(self, source: Source, header: _header.SealedHeader, dek: bytes, payload_start: int) -> None:
        self._source = source
        self.header = header
        self._dek = dek
        self.payload_start = payload_start
        self._offsets = header.stream_offsets(payload_start)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Release the underlying source."""
        self._source.close()

    @property
    def files(self) -> tuple[_header.FileEntry, ...]:
        """The sealed files, in payload order."""
        return self.header.model.files

    def index_of(self, path: str | None) -> int:
        """Position of ``path`` in the payload; ``None`` means the only file of a one-file model."""
        if path is None:
            if len(self.files) != 1:
                raise UsageError("this artifact holds several files; name the one to read")
            return 0
        for index, entry in enumerate(self.files):
            if entry.path == path:
                return index
        raise UsageError(f"no file {path!r} in this artifact")

    def _stream_key(self, index: int) -> _segments.StreamKey:
        scratch = memoryview(bytearray(_segments.HEADER_SIZE))
        raw = bytes(self._source.view(self._offsets[index], _segments.HEADER_SIZE, scratch))
        try:
            return _segments.open_stream(
                self._dek, raw, _header.stream_associated_data(self.header.artifact_id_bytes, index)
            )
        except _segments.SegmentAuthError:
            raise ArtifactTampered(f"{self.files[index].path}: stream header is malformed") from None

    def _decrypt_batch(
        self, index: int, key: _segments.StreamKey, first: int, sizes: list[int], scratch: memoryview, out: memoryview
    ) -> None:
        """Decrypt segments ``first`` onwards (plaintext ``sizes`` each) into ``out``."""
        entry = self.files[index]
        total = _segments.segment_count(entry.size)
        start = self._offsets[index] + _segments.segment_ciphertext_start(first)
        cipher = self._source.view(start, sum(sizes) + _segments.TAG_SIZE * len(sizes), scratch)
        src = dst = 0
        for segment, size in enumerate(sizes, start=first):
            try:
                _segments.decrypt_segment_into(
                    key,
                    segment,
                    segment == total - 1,
                    cipher[src : src + size + _segments.TAG_SIZE],
                    out[dst : dst + size],
                )
            except _segments.SegmentAuthError:
                raise ArtifactTampered(
                    f"{entry.path}: segment {segment} failed authentication "
                    "(payload modified, truncated, reordered or moved)"
                ) from None
            src += size + _segments.TAG_SIZE
            dst += size

    def _pipeline(
        self,
        index: int,
        progress: Progress | None,
        *,
        sink: Callable[[memoryview], None] | None = None,
        target: memoryview | None = None,
        stop: Stop | None = None,
    ) -> None:
        """Decrypt file ``index`` batch by batch, hashing each batch on a second thread; check its digest.

        With ``target`` (a buffer the size of the file) the plaintext is decrypted straight into it;
        otherwise it goes through reused batch buffers handed to ``sink`` in order.
        """
        entry = self.files[index]
        key = self._stream_key(index)
        total = _segments.segment_count(entry.size)
        scratch = memoryview(bytearray(BATCH_SEGMENTS * _segments.CIPHERTEXT_SEGMENT_SIZE))
        batch = BATCH_SEGMENTS * _segments.PLAINTEXT_SEGMENT_SIZE
        buffers = [] if target is not None else [bytearray(batch) for _ in range(PIPELINE_DEPTH)]
        hasher = new_hasher(self.header.model.hash)
        in_flight: list[Future[object] | None] = [None] * PIPELINE_DEPTH
        with ThreadPoolExecutor(1, thread_name_prefix="ccseal-hash") as hash_thread:
            segment = 0
            slot = 0
            offset = 0
            while segment < total:
                check_stop(stop)
                count = min(BATCH_SEGMENTS, total - segment)
                sizes = _segments.batch_sizes(segment, count, entry.size)
                length = sum(sizes)
                previous = in_flight[slot]
                if previous is not None:
                    previous.result()  # the buffer is free again, and a hashing error surfaces here
                plain = target[offset : offset + length] if target is not None else memoryview(buffers[slot])[:length]
                self._decrypt_batch(index, key, segment, sizes, scratch, plain)
                in_flight[slot] = hash_thread.submit(hasher.update, plain)
                if sink is not None:
                    sink(plain)
                if progress is not None:
                    progress(length)
                segment += count
                offset += length
                slot = (slot + 1) % PIPELINE_DEPTH
        for future in in_flight:
            if future is not None:
                future.result()
        if hasher.hexdigest() != entry.digest:
            raise ArtifactTampered(f"{entry.path}: plaintext digest does not match the header")

    def read_file(
        self, path: str | None = None, progress: Progress | None = None, *, stop: Stop | None = None
    ) -> memoryview:
        """Decrypt one file fully into memory; returned only after its tags and digest verify.

        The result is a writable view of private anonymous memory, excluded from core dumps where the
        platform allows (``MADV_DONTDUMP``); overwrite it to wipe the plaintext. The memory is fresh
        and untouched, so its pages are faulted in by the decryption itself (which runs without the
        GIL), not zero-filled first.
        """
        index = self.index_of(path)
        out = private_buffer(self.files[index].size)
        self._pipeline(index, progress, target=out, stop=stop)
        return out

    def read_all(self, progress: Progress | None = None, workers: int | None = None) -> dict[str, memoryview]:
        """Decrypt every file into memory, several files at once; returned only after all verify."""
        paths = [entry.path for entry in self.files]
        tasks = [functools.partial(self._read_task, path, progress) for path in paths]
        return dict(zip(paths, run_all(tasks, workers), strict=True))

    def _read_task(self, path: str, progress: Progress | None, stop: Stop) -> memoryview:
        return self.read_file(path, progress, stop=stop)

    def write_to(self, fd: int, path: str | None = None, progress: Progress | None = None) -> None:
        """Stream one file to a file descriptor (e.g. stdout).

        Each batch is written once its segment tags verify; the whole-file digest is checked at the
        end, so a digest failure is reported after the authenticated segments were written.
        """
        self._pipeline(self.index_of(path), progress, sink=lambda view: write_all(fd, view))

    def write_authenticated(self, fd: int, path: str | None = None, *, workers: int | None = None) -> None:
        """Decrypt one file into ``fd`` (a new, empty, writable file) at its plaintext offsets, on several threads.

        Batches of segments are decrypted on ``workers`` threads (default: one per core) and written with
        ``pwrite`` once each of their segment tags verified, so nothing unauthenticated reaches ``fd``;
        the first failure stops the other threads. The batch buffers are wiped afterwards.

        The whole-file plaintext digest is NOT checked here (this is what lets a caller overlap that
        check with other work): call :meth:`check_digest` on the written bytes before trusting them,
        and discard them if it fails.

        Raises:
            ArtifactTampered: a segment or stream header fails authentication.
            CouldNotCheck: the artifact cannot be read, or the output cannot be written (full, broken).
        """
        index = self.index_of(path)
        threads = pool_size(-(-_segments.segment_count(self.files[index].size) // STAGE_BATCH_SEGMENTS), workers)
        tasks = [functools.partial(self._write_stride, index, fd, first, threads) for first in range(threads)]
        try:
            run_all(tasks, threads)
        except OSError as exc:
            raise os_error(exc, f"write {self.files[index].path}") from None

    def _write_stride(self, index: int, fd: int, first: int, stride: int, stop: Stop) -> None:
        """Decrypt and write batches ``first``, ``first + stride``, ... of file ``index``."""
        entry = self.files[index]
        key = self._stream_key(index)  # one AES-GCM context per thread
        total = _segments.segment_count(entry.size)
        scratch = memoryview(bytearray(STAGE_BATCH_SEGMENTS * _segments.CIPHERTEXT_SEGMENT_SIZE))
        plain = memoryview(bytearray(STAGE_BATCH_SEGMENTS * _segments.PLAINTEXT_SEGMENT_SIZE))
        try:
            for segment in range(first * STAGE_BATCH_SEGMENTS, total, stride * STAGE_BATCH_SEGMENTS):
                check_stop(stop)
                sizes = _segments.batch_sizes(segment, min(STAGE_BATCH_SEGMENTS, total - segment), entry.size)
                out = plain[: sum(sizes)]
                self._decrypt_batch(index, key, segment, sizes, scratch, out)
                pwrite_all(fd, out, _segments.segment_plaintext_start(segment))
        finally:
            wipe(plain)

    def check_digest(self, path: str | None, data: memoryview, *, stop: Stop | None = None) -> None:
        """Check that ``data`` is the whole plaintext of file ``path``: its size and the header's digest.

        ``data`` is hashed in pieces without the GIL (SHA-256 or BLAKE3 on one thread, as sealed), so
        the check can run beside other work; ``stop`` abandons it between pieces.

        Raises:
            ArtifactTampered: the size or the digest differs from the header's.
        """
        entry = self.files[self.index_of(path)]
        view = data.cast("B") if data.format != "B" or data.ndim != 1 else data
        if view.nbytes != entry.size:
            raise ArtifactTampered(f"{entry.path}: plaintext size does not match the header")
        hasher = new_hasher(self.header.model.hash)
        for offset in range(0, entry.size, DIGEST_CHUNK):
            check_stop(stop)
            with view[offset : offset + DIGEST_CHUNK] as piece:
                hasher.update(piece)
        if hasher.hexdigest() != entry.digest:
            raise ArtifactTampered(f"{entry.path}: plaintext digest does not match the header")

    def _extract_one(self, index: int, target: Path, progress: Progress | None, stop: Stop) -> None:
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise os_error(exc, f"create {target}") from None
        try:
            self._pipeline(index, progress, sink=SequentialWriter(fd), stop=stop)
            os.fsync(fd)
        except OSError as exc:
            raise os_error(exc, f"write {target}") from None
        finally:
            os.close(fd)

    def extract(
        self,
        directory: Path,
        *,
        overwrite: bool = False,
        progress: Progress | None = None,
        workers: int | None = None,
    ) -> list[Path]:
        """Decrypt every file into a new directory; nothing appears there unless everything verified.

        Files are written under a temporary directory beside ``directory`` (directories 0700, files
        0600) and renamed into place only once every segment tag and file digest verified. A failure
        removes the temporary directory and leaves ``directory`` as it was.

        Args:
            directory: where to put the files. It must not exist or be an empty directory, unless
                ``overwrite``: then whatever is there is replaced (moved aside, then deleted only after
                the new directory is in place). Never the current directory or one of its parents.
            overwrite: replace an existing ``directory``.
            progress: called with plaintext byte counts.
            workers: files decrypted in parallel (default: one per CPU core).
        """
        target = output_path(directory)
        if target == Path.cwd() or target in Path.cwd().parents:
            raise UsageError(f"refusing to unseal into {directory}: it is the current directory or one of its parents")
        if not overwrite and os.path.lexists(target) and not _is_empty_directory(target):
            raise UsageError(f"{directory} exists and is not an empty directory (use --force to replace it)")
        staging = temp_sibling(target)
        members = [staging.joinpath(*entry.path.split("/")) for entry in self.files]
        try:
            staging.mkdir(mode=0o700)
            for member in members:
                member.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tasks = [
                functools.partial(self._extract_one, index, member, progress) for index, member in enumerate(members)
            ]
            run_all(tasks, workers)
            _install_directory(staging, target, overwrite)
        except OSError as exc:
            raise os_error(exc, f"unseal into {directory}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return [target.joinpath(*entry.path.split("/")) for entry in self.files]

    def open(self, path: str | None = None) -> SealedFileReader:
        """Random access to one file; each segment is authenticated before any of it is returned."""
        return SealedFileReader(self, self.index_of(path))

    def _segment(self, index: int, key: _segments.StreamKey, segment: int) -> bytes:
        size = _segments.segment_plaintext_size(segment, self.files[index].size)
        out = bytearray(size)
        scratch = memoryview(bytearray(size + _segments.TAG_SIZE))
        self._decrypt_batch(index, key, segment, [size], scratch, memoryview(out))
        return bytes(out)


class SealedFileReader(io.RawIOBase):
    """A seekable, read-only view of one sealed file, decrypting only the segments it touches."""

    def __init__(self, model: SealedModel, index: int) -> None:
        super().__init__()
        self._model = model
        self._index = index
        self._size = model.files[index].size
        self._key = model._stream_key(index)
        self._position = 0
        self._cached: tuple[int, bytes] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        bases = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}
        if whence not in bases:
            raise ValueError(f"invalid whence {whence}")
        base = bases[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes (all that is left if negative); short only at end of file."""
        remaining = self._size - self._position
        wanted = remaining if size is None or size < 0 else min(size, remaining)
        out = bytearray(max(wanted, 0))
        view = memoryview(out)
        filled = 0
        while filled < wanted:
            filled += self.readinto(view[filled:])
        return bytes(out)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._position >= self._size:
            return 0
        segment = _segments.segment_of_offset(self._position)
        if self._cached is None or self._cached[0] != segment:
            self._cached = (segment, self._model._segment(self._index, self._key, segment))
        data = self._cached[1]
        start = self._position - _segments.segment_plaintext_start(segment)
        count = min(len(buffer), len(data) - start)
        memoryview(buffer)[:count] = data[start : start + count]
        self._position += count
        return count


def _is_empty_directory(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


_OCCUPIED = (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR)


def _install_directory(staging: Path, target: Path, overwrite: bool) -> None:
    """Rename ``staging`` to ``target`` atomically.

    The rename only succeeds over nothing or an empty directory. With ``overwrite``, whatever is at
    ``target`` is moved aside first and deleted only once the new directory is in place.
    """
    try:
        os.rename(staging, target)
        return
    except OSError as exc:
        if exc.errno not in _OCCUPIED:
            raise
        if not overwrite:
            raise UsageError(f"{target} exists and is not an empty directory (use --force to replace it)") from None
    aside = temp_sibling(target)
    os.rename(target, aside)  # a symlink is moved itself, never followed
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(aside, target)
        raise
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside)
    else:
        aside.unlink()
