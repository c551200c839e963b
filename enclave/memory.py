"""Keeping plaintext in memory: zeroing buffers, and a private staging directory on a RAM-backed tmpfs.

ONNX Runtime loads external data fastest when it can memory-map files (see the project's perf notes);
a memfd does not pass its path validation, so decrypted weights are staged as files on a tmpfs such as
``/dev/shm``: RAM, never a disk. The directory is private (0700, files 0600) and removed on exit.

A staged file must NOT be overwritten while a session uses it: ONNX Runtime keeps a shared mapping of
the file's pages, so zero-filling it would corrupt the weights in use. Once a session holds the
mapping, the files are only unlinked (the pages live until the session is gone); they are zero-filled
before unlinking only when no session took them (a failure on the way).
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from enclave.errors import ModelRejected, RuntimeUnavailable

__all__ = [
    "DEFAULT_RAM_ROOT",
    "RAM_FILESYSTEMS",
    "STAGING_PREFIX",
    "StagingDir",
    "is_ram_backed",
    "mount_type",
    "ram_staging_dir",
    "zero",
]

_log = logging.getLogger(__name__)

DEFAULT_RAM_ROOT = Path("/dev/shm")  # noqa: S108 - checked to be a RAM-backed tmpfs before each use
RAM_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})
STAGING_PREFIX = "ccdeploy-enclave-"
"""Name prefix of every staging directory (so that leftovers can be recognised)."""
_ZERO_CHUNK = 1 << 20


def zero(buf: bytearray | memoryview) -> None:
    """Overwrite a writable buffer with zeros in place (``memset``; no copy is made).

    Raises:
        TypeError: ``buf`` is read-only or not contiguous (``bytes`` cannot be wiped: never keep secrets in it).
    """
    view = memoryview(buf)
    if view.readonly:
        raise TypeError("cannot zero a read-only buffer")
    if not view.contiguous:
        raise TypeError("cannot zero a non-contiguous buffer")
    size = view.nbytes
    if size == 0:
        return
    flat = view.cast("B") if view.format != "B" or view.ndim != 1 else view
    holder = (ctypes.c_char * size).from_buffer(flat)
    try:
        ctypes.memset(ctypes.addressof(holder), 0, size)
    finally:
        del holder  # drop the buffer export now, so an mmap behind ``buf`` can still be closed


def mount_type(path: Path, mounts: str | None = None) -> str | None:
    """The filesystem type of the mount holding ``path``, from ``/proc/mounts`` (``None`` if unknown)."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return None
    target = os.path.realpath(path)
    best: tuple[int, str] | None = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= best[0]):
            best = (len(point), fields[2])
    return None if best is None else best[1]


def is_ram_backed(path: Path) -> bool:
    """Whether ``path`` is a directory on a RAM-backed filesystem (tmpfs or ramfs)."""
    return path.is_dir() and mount_type(path) in RAM_FILESYSTEMS


class StagingDir:
    """A private directory on a RAM-backed tmpfs (see :func:`ram_staging_dir`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.in_use = False
        """Set once a session maps the staged files: they are then unlinked on exit, never overwritten."""

    def create_file(self, relative: str) -> int:
        """Create ``relative`` (a plain relative path, subdirectories made 0700) as a new 0600 file.

        Returns:
            A read-write descriptor (read access lets the caller map the staged bytes to check them).

        Raises:
            ModelRejected: ``relative`` is absolute, empty, or climbs out with ``..``.
        """
        parts = relative.split("/")
        if not relative or relative.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise ModelRejected(f"external-data file name is not a plain relative path: {relative!r}")
        target = self.path.joinpath(*parts)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)

    def remove(self) -> None:
        """Delete every staged file (zero-filled first unless a session uses them) and the directory."""
        for root, _dirs, files in os.walk(self.path):
            for name in files:
                file = Path(root, name)
                if not self.in_use:
                    _zero_fill(file)
                file.unlink(missing_ok=True)
        shutil.rmtree(self.path, ignore_errors=True)


@contextmanager
def ram_staging_dir(root: Path = DEFAULT_RAM_ROOT) -> Iterator[StagingDir]:
    """A fresh private directory (mode 0700) under ``root``, a RAM-backed tmpfs; removed on exit.

    Fails closed when ``root`` is not RAM-backed: staging plaintext there could put it on a disk.

    Raises:
        RuntimeUnavailable: ``root`` is missing or not a tmpfs/ramfs mount.
    """
    if not is_ram_backed(root):
        raise RuntimeUnavailable(
            f"{root} is not a RAM-backed tmpfs: refusing to stage decrypted model data there "
            "(mount a tmpfs, or use the in-memory external-data route)"
        )
    if _swap_active():
        _log.warning("swap is enabled: the kernel may page tmpfs and process memory out to disk")
    path = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root))
    os.chmod(path, 0o700)
    staging = StagingDir(path)
    try:
        yield staging
    finally:
        staging.remove()


def _zero_fill(file: Path) -> None:
    try:
        fd = os.open(file, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        remaining = os.fstat(fd).st_size
        chunk = bytes(min(_ZERO_CHUNK, remaining))
        while remaining > 0:
            remaining -= os.write(fd, chunk[: min(len(chunk), remaining)])
    except OSError:
        pass  # best effort: the file is unlinked next in any case
    finally:
        os.close(fd)


def _swap_active() -> bool:
    try:
        lines = Path("/proc/swaps").read_text().splitlines()
    except OSError:
        return False
    return len(lines) > 1
