"""Simulator state on disk: private keys (mode 0600) in an owner-only directory, and when the simulator was made.

A simulator's certificates are derived from its keys and its creation time, so that another process (the enclave)
rebuilds exactly the roots a policy names from the stored keys and time.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

from enclave.errors import AttesterUnavailable

__all__ = ["AT_FILE", "check_private", "load_state", "write_private", "write_state"]

#: When the simulator was created (RFC 3339): its certificates are valid around this time.
AT_FILE = "created-at"
_KEY_SUFFIX = "-key.pem"


def write_state(directory: str | os.PathLike[str], keys: Mapping[str, bytes], at: datetime, **files: bytes) -> Path:
    """Write ``<role>-key.pem`` for each key, the creation time, and ``files`` (name -> bytes), all mode 0600.

    Raises:
        AttesterUnavailable: ``directory`` exists but is not a directory, or is a symbolic link.
    """
    path = state_directory(directory)
    write_keys(path, keys)
    write_private(path / AT_FILE, at.isoformat().encode())
    for name, data in files.items():
        write_private(path / name, data)
    return path


def state_directory(directory: str | os.PathLike[str]) -> Path:
    """``directory``, created or tightened to mode 0700, ready for simulator keys.

    Raises:
        AttesterUnavailable: ``directory`` exists but is not a directory, or is a symbolic link.
    """
    path = Path(directory)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise AttesterUnavailable(f"{path} is not a plain directory; refusing to write simulator keys there")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_keys(path: Path, keys: Mapping[str, bytes]) -> None:
    """Write each PEM key of ``keys`` to ``<role>-key.pem`` in ``path``, mode 0600."""
    for role, pem in keys.items():
        write_private(path / f"{role}{_KEY_SUFFIX}", pem)


def read_keys(path: Path, roles: Iterable[str]) -> dict[str, bytes]:
    """The PEM keys of ``roles`` in ``path``; ``ValueError`` if one is readable by others, ``OSError`` if missing."""
    pems = {}
    for role in roles:
        key_path = path / f"{role}{_KEY_SUFFIX}"
        check_private(key_path)
        pems[role] = key_path.read_bytes()
    return pems


def load_state(directory: str | os.PathLike[str], roles: Iterable[str]) -> tuple[dict[str, bytes], datetime]:
    """The PEM keys of ``roles`` and the creation time written by :func:`write_state`.

    Raises:
        AttesterUnavailable: Files are missing, unreadable, readable by others, or the time is not RFC 3339.
    """
    path = Path(directory)
    try:
        check_private(path)
        pems = read_keys(path, roles)
        check_private(path / AT_FILE)
        at = datetime.fromisoformat((path / AT_FILE).read_text(encoding="ascii").strip())
    except (OSError, ValueError, UnicodeError) as exc:
        raise AttesterUnavailable(f"cannot load the simulator state in {path}: {exc}") from None
    if at.utcoffset() is None:
        raise AttesterUnavailable(f"{path / AT_FILE} holds a time without a time zone")
    return pems, at


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, never through a symbolic link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(path, flags, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # an existing file keeps its mode through O_CREAT
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view) :]
    finally:
        os.close(descriptor)


def check_private(path: Path) -> None:
    """Raise ``ValueError`` when ``path`` is a symbolic link or accessible to group or others."""
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        raise ValueError(f"{path} is a symbolic link")
    if mode & 0o077:
        raise ValueError(f"{path} is accessible to group or others (mode {stat.S_IMODE(mode):o}); expected owner-only")
