"""Where a sealed artifact's bytes come from: a path, an in-memory buffer, or a seekable binary file."""

from __future__ import annotations

import abc
import io
import os
import stat
import threading
from pathlib import Path

from ccdeploy.errors import ArtifactCorrupt, CouldNotCheck, UsageError

SealedSource = str | os.PathLike[str] | bytes | bytearray | memoryview | io.RawIOBase | io.BufferedIOBase
"""Anything :func:`ccdeploy.seal.open_sealed` can read an artifact from."""


class Source(abc.ABC):
    """Random-access, thread-safe reads of an artifact's bytes."""

    size: int

    @abc.abstractmethod
    def view(self, offset: int, length: int, scratch: memoryview) -> memoryview:
        """Exactly ``length`` bytes at ``offset``: a slice of the source, or ``scratch`` filled."""

    def close(self) -> None:  # noqa: B027 - most sources hold nothing to release
        """Release what the source holds."""

    def _truncated(self) -> ArtifactCorrupt:
        return ArtifactCorrupt("sealed artifact is truncated")


class _FdSource(Source):
    def __init__(self, path: Path) -> None:
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise UsageError(f"cannot open {path}: {exc.strerror}") from None
        info = os.fstat(self._fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(self._fd)
            raise UsageError(f"{path} is not a regular file")
        self.size = info.st_size

    def view(self, offset: int, length: int, scratch: memoryview) -> memoryview:
        out = scratch[:length]
        got = 0
        while got < length:
            if self._fd < 0:
                raise UsageError("the sealed artifact is closed")
            try:
                n = os.preadv(self._fd, [out[got:]], offset + got)
            except OSError as exc:
                raise CouldNotCheck(f"cannot read the sealed artifact: {exc.strerror}") from None
            if n == 0:
                raise self._truncated()
            got += n
        return out

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _BufferSource(Source):
    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._data = memoryview(data).cast("B")
        self.size = len(self._data)

    def view(self, offset: int, length: int, scratch: memoryview) -> memoryview:
        if offset + length > self.size:
            raise self._truncated()
        return self._data[offset : offset + length]


class _FileObjectSource(Source):
    def __init__(self, handle: io.RawIOBase | io.BufferedIOBase) -> None:
        if not handle.seekable():
            raise UsageError("a sealed artifact must be read from a seekable file")
        self._handle = handle
        self._lock = threading.Lock()
        self.size = handle.seek(0, os.SEEK_END)

    def view(self, offset: int, length: int, scratch: memoryview) -> memoryview:
        out = scratch[:length]
        with self._lock:
            self._handle.seek(offset)
            got = 0
            while got < length:
                n = self._handle.readinto(out[got:])
                if not n:
                    raise self._truncated()
                got += n
        return out


def open_source(source: SealedSource) -> Source:
    """Wrap whatever the caller handed over in a :class:`Source`."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _BufferSource(source)
    if isinstance(source, (str, os.PathLike)):
        return _FdSource(Path(source))
    return _FileObjectSource(source)
