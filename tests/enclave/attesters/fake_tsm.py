"""A fake configfs-tsm kernel behind the :class:`~enclave.attesters.configfs_tsm.TsmFilesystem` interface."""

from __future__ import annotations

import errno
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Entry:
    generation: int = 0
    inblob: bytes = b""
    privlevel: int | None = None


@dataclass
class FakeTsmKernel:
    """Plays ``drivers/virt/coco/tsm.c`` for one provider.

    ``make_report(inblob, privlevel)`` answers ``outblob``; ``auxblob`` is returned as is (``None``: absent).
    ``on_read`` runs before each attribute read with (entry state, attribute) so tests can race the round.
    """

    root: str
    provider: str
    make_report: Callable[[bytes, int | None], bytes]
    auxblob: bytes | None = None
    on_read: Callable[[_Entry, str], None] | None = None
    fail_outblob: int | None = None
    entries: dict[str, _Entry] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)

    def _split(self, path: str) -> tuple[_Entry, str]:
        directory, attribute = posixpath.split(path)
        entry = self.entries.get(directory)
        if entry is None:
            raise OSError(errno.ENOENT, path)
        return entry, attribute

    def mkdir(self, path: str) -> None:
        if posixpath.dirname(path) != self.root:
            raise OSError(errno.ENOENT, path)
        if path in self.entries:
            raise OSError(errno.EEXIST, path)
        self.entries[path] = _Entry()
        self.created.append(path)

    def rmdir(self, path: str) -> None:
        if self.entries.pop(path, None) is None:
            raise OSError(errno.ENOENT, path)

    def read(self, path: str, limit: int) -> bytes:
        entry, attribute = self._split(path)
        if self.on_read is not None:
            self.on_read(entry, attribute)
        if attribute == "provider":
            return f"{self.provider}\n".encode()
        if attribute == "generation":
            return f"{entry.generation}\n".encode()
        if attribute == "outblob":
            if self.fail_outblob is not None:
                raise OSError(self.fail_outblob, path)
            return self.make_report(entry.inblob, entry.privlevel)[: limit + 1]
        if attribute == "auxblob":
            if self.auxblob is None:
                raise OSError(errno.ENOENT, path)
            return self.auxblob
        raise OSError(errno.EACCES, path)

    def write(self, path: str, data: bytes) -> None:
        entry, attribute = self._split(path)
        if attribute == "inblob":
            if len(data) > 64:
                raise OSError(errno.EINVAL, path)
            entry.inblob = data
        elif attribute == "privlevel":
            entry.privlevel = int(data)
        else:
            raise OSError(errno.EACCES, path)
        entry.generation += 1
