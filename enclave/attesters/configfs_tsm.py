"""The Linux configfs-tsm report interface (Linux 6.7+), shared by the SEV-SNP and TDX attesters.

``/sys/kernel/config/tsm/report/<entry>/`` (``Documentation/ABI/testing/configfs-tsm``) holds ``inblob`` (write, at
most 64 bytes), ``outblob`` (read: the report or quote), ``auxblob`` (read: e.g. SEV-SNP's certificate table),
``provider`` (read: ``sev_guest``, ``tdx_guest``, ...), ``privlevel`` (write) and ``generation`` (read: counts every
write to the entry). One round: make a fresh entry, write the inputs, read ``generation``, read ``outblob``, read
``generation`` again; if either count is not what our own writes explain, another writer raced us and the
report may be for its input, so it is refused. The entry is removed afterwards.

Not run on hardware: tested against a fake filesystem layer that plays the kernel.
"""

from __future__ import annotations

import errno
import os
import posixpath
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Protocol

from enclave.errors import AttestationFailed, AttesterUnavailable

__all__ = [
    "TSM_INBLOB_MAX",
    "TSM_OUTBLOB_MAX",
    "TSM_REPORT_ROOT",
    "OsTsmFilesystem",
    "TsmFilesystem",
    "TsmReport",
    "TsmReportClient",
]

TSM_REPORT_ROOT = "/sys/kernel/config/tsm/report"
TSM_INBLOB_MAX = 64
TSM_OUTBLOB_MAX = 32 * 1024
_SMALL_ATTRIBUTE = 4096


class TsmFilesystem(Protocol):
    """The few filesystem operations configfs-tsm needs (a fake kernel implements the same)."""

    def mkdir(self, path: str) -> None:
        """Create a directory (in configfs: a report entry with its attributes)."""
        ...

    def rmdir(self, path: str) -> None:
        """Remove a directory (in configfs: release the entry)."""
        ...

    def read(self, path: str, limit: int) -> bytes:
        """Read a whole attribute, at most ``limit`` bytes (one byte more means it is too long)."""
        ...

    def write(self, path: str, data: bytes) -> None:
        """Write a whole attribute in one write."""
        ...


class OsTsmFilesystem:
    """:class:`TsmFilesystem` over the real filesystem."""

    def mkdir(self, path: str) -> None:
        """``os.mkdir`` with mode 0700."""
        os.mkdir(path, 0o700)

    def rmdir(self, path: str) -> None:
        """``os.rmdir``."""
        os.rmdir(path)

    def read(self, path: str, limit: int) -> bytes:
        """Read up to ``limit + 1`` bytes (configfs attributes are read whole)."""
        with open(path, "rb", buffering=0) as handle:
            chunks = []
            remaining = limit + 1
            while remaining > 0:
                chunk = handle.read(remaining)
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
            return b"".join(chunks)

    def write(self, path: str, data: bytes) -> None:
        """One ``write`` of ``data`` (configfs binary attributes commit on close)."""
        descriptor = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            if os.write(descriptor, data) != len(data):
                raise OSError(errno.EIO, f"short write to {path}")
        finally:
            os.close(descriptor)


@dataclass(frozen=True, slots=True)
class TsmReport:
    """One configfs-tsm round.

    Attributes:
        provider: The TSM that produced it (``sev_guest``, ``tdx_guest``).
        generation: The entry's write count the report belongs to.
        outblob: The report or quote.
        auxblob: Auxiliary data (SEV-SNP: the certificate table with the VCEK/VLEK), if the provider gives any.
    """

    provider: str
    generation: int
    outblob: bytes
    auxblob: bytes | None


def _entry_name() -> str:
    return f"ccdeploy-{os.getpid()}-{secrets.token_hex(8)}"


class TsmReportClient:
    """Generates reports through configfs-tsm.

    Args:
        root: The configfs-tsm report directory.
        filesystem: The filesystem layer (default: the real one).
        entry_name: Makes a fresh entry name per round (default: pid and 64 random bits).
    """

    def __init__(
        self,
        root: str = TSM_REPORT_ROOT,
        *,
        filesystem: TsmFilesystem | None = None,
        entry_name: Callable[[], str] | None = None,
    ) -> None:
        self._root = root
        self._fs: TsmFilesystem = filesystem if filesystem is not None else OsTsmFilesystem()
        self._entry_name = entry_name or _entry_name

    @property
    def root(self) -> str:
        """The configfs-tsm report directory."""
        return self._root

    def provider(self) -> str:
        """The provider name a fresh entry reports (``sev_guest``, ``tdx_guest``, ...).

        Raises:
            AttesterUnavailable: No entry can be made or read here.
        """
        with self._entry() as entry:
            return self._read_text(entry, "provider")

    def generate(self, inblob: bytes, *, expected_provider: str, privlevel: int | None = None) -> TsmReport:
        """One report for ``inblob`` from provider ``expected_provider``.

        Args:
            inblob: The report data (1 to 64 bytes).
            expected_provider: Refuse any other provider (``sev_guest`` for SNP, ``tdx_guest`` for TDX).
            privlevel: Written to ``privlevel`` first when given (SEV-SNP: the VMPL, 0-3).

        Raises:
            AttesterUnavailable: configfs-tsm is missing here, or its provider is another one.
            AttestationFailed: The provider failed to produce a report, the report is empty or too large, or
                another writer changed the entry during the round.
        """
        if not 0 < len(inblob) <= TSM_INBLOB_MAX:
            raise ValueError(f"inblob must be 1 to {TSM_INBLOB_MAX} bytes, got {len(inblob)}")
        with self._entry() as entry:
            provider = self._read_text(entry, "provider")
            if provider != expected_provider:
                raise AttesterUnavailable(
                    f"configfs-tsm at {self._root} is served by {provider!r}, not {expected_provider!r}"
                )
            writes = 0
            if privlevel is not None:
                self._write(entry, "privlevel", f"{privlevel}\n".encode())
                writes += 1
            self._write(entry, "inblob", bytes(inblob))
            writes += 1
            before = self._generation(entry)
            if before != writes:
                raise AttestationFailed(
                    f"configfs-tsm generation is {before} after our {writes} write(s): another writer used the entry"
                )
            outblob = self._read(entry, "outblob", TSM_OUTBLOB_MAX, what="report")
            auxblob = self._read_optional(entry, "auxblob")
            after = self._generation(entry)
            if after != before:
                raise AttestationFailed(
                    f"configfs-tsm generation changed from {before} to {after} while the report was read: "
                    "another writer raced us"
                )
        if not outblob:
            raise AttestationFailed(f"the {provider} provider returned an empty report")
        return TsmReport(provider=provider, generation=after, outblob=outblob, auxblob=auxblob or None)

    @contextmanager
    def _entry(self) -> Iterator[str]:
        entry = posixpath.join(self._root, self._entry_name())
        try:
            self._fs.mkdir(entry)
        except OSError as exc:
            raise AttesterUnavailable(
                f"cannot create a configfs-tsm report entry under {self._root}: {os.strerror(exc.errno or 0)}"
            ) from None
        try:
            yield entry
        finally:
            with suppress(OSError):  # a leftover entry holds no secret; failing here would hide the real error
                self._fs.rmdir(entry)

    def _read(self, entry: str, attribute: str, limit: int, *, what: str) -> bytes:
        try:
            data = self._fs.read(posixpath.join(entry, attribute), limit)
        except OSError as exc:
            raise AttestationFailed(f"reading the {what} ({attribute}) failed: {os.strerror(exc.errno or 0)}") from None
        if len(data) > limit:
            raise AttestationFailed(f"configfs-tsm {attribute} is over {limit} bytes")
        return data

    def _read_optional(self, entry: str, attribute: str) -> bytes | None:
        try:
            return self._fs.read(posixpath.join(entry, attribute), TSM_OUTBLOB_MAX)[:TSM_OUTBLOB_MAX]
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.EOPNOTSUPP, errno.ENOTTY):
                return None
            raise AttestationFailed(f"reading configfs-tsm {attribute} failed: {os.strerror(exc.errno or 0)}") from None

    def _read_text(self, entry: str, attribute: str) -> str:
        try:
            data = self._fs.read(posixpath.join(entry, attribute), _SMALL_ATTRIBUTE)
        except OSError as exc:
            raise AttesterUnavailable(f"cannot read configfs-tsm {attribute}: {os.strerror(exc.errno or 0)}") from None
        return data.decode("ascii", errors="replace").strip()

    def _generation(self, entry: str) -> int:
        text = self._read(entry, "generation", _SMALL_ATTRIBUTE, what="generation counter").decode("ascii", "replace")
        try:
            return int(text.strip())
        except ValueError:
            raise AttestationFailed(f"configfs-tsm generation is not a number: {text.strip()[:20]!r}") from None

    def _write(self, entry: str, attribute: str, data: bytes) -> None:
        try:
            self._fs.write(posixpath.join(entry, attribute), data)
        except OSError as exc:
            raise AttestationFailed(f"writing configfs-tsm {attribute} failed: {os.strerror(exc.errno or 0)}") from None
