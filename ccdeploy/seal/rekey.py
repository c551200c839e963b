"""Rekeying: add or remove recipients, or rotate a KEK, by rewriting the header only.

The payload bytes are copied verbatim (``copy_file_range``: no decryption, no re-encryption); the new
header is authenticated with the same DEK, obtained from a recipient the caller can already open.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from ccdeploy.errors import UsageError
from ccdeploy.kek.base import KeyWrapper
from ccdeploy.seal import _header
from ccdeploy.seal._io import atomic_output_file, pwrite_all
from ccdeploy.seal.keys import KeyProvider
from ccdeploy.seal.reader import open_sealed
from ccdeploy.seal.writer import wrap_for_recipients

__all__ = ["rekey"]


def _removed(recipient: _header.Recipient, selectors: Sequence[str]) -> bool:
    return any(sel in (recipient.key_id, recipient.kek) for sel in selectors)


def _copy_range(src_fd: int, dst_fd: int, src_offset: int, dst_offset: int, length: int) -> None:
    while length:
        try:
            copied = os.copy_file_range(src_fd, dst_fd, length, src_offset, dst_offset)
        except OSError:
            copied = 0
        if copied == 0:
            chunk = os.pread(src_fd, min(length, 8 << 20), src_offset)
            if not chunk:
                raise UsageError("sealed artifact shrank while it was being rekeyed")
            pwrite_all(dst_fd, chunk, dst_offset)
            copied = len(chunk)
        src_offset += copied
        dst_offset += copied
        length -= copied


def rekey(
    sealed: Path,
    output: Path,
    key_provider: KeyProvider,
    *,
    add: Sequence[KeyWrapper] = (),
    remove: Sequence[str] = (),
    overwrite: bool = False,
) -> _header.SealedHeader:
    """Write ``sealed`` to ``output`` with a new recipient list; ``output`` may be ``sealed`` itself.

    Only the header is rewritten; the payload is copied byte for byte (and is not decrypted, so a
    damaged payload stays as detectable as it was). Rewriting in place keeps the file's mode and, for
    a symlink, replaces the file it points to.

    Args:
        sealed: the artifact to rekey.
        output: where to write the result (atomically).
        key_provider: opens the existing artifact (must produce its DEK).
        add: KEKs to add as recipients.
        remove: recipients to drop, each named by key id or by KEK URI.
        overwrite: replace ``output`` if it exists and is not ``sealed`` itself.
    """
    in_place = os.path.lexists(output) and os.path.exists(sealed) and os.path.samefile(output, sealed)
    if in_place:
        output = Path(os.path.realpath(sealed))
    # One open file: the header authenticated and the payload copied come from the same inode.
    with sealed.open("rb") as handle:
        with open_sealed(handle, key_provider) as model:
            header = model.header
            dek = model._dek
            payload_start = model.payload_start
        new_header = _with_recipients(header, dek, add, remove)
        header_bytes = new_header.canonical_json()
        if len(header_bytes) > _header.MAX_HEADER_SIZE:
            raise UsageError("the new header would exceed the format's size limit")
        authenticated = _header.encode_preamble(len(header_bytes)) + header_bytes
        mac = _header.header_mac(dek, header.artifact_id_bytes, authenticated)
        mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode) if in_place else 0o600
        with atomic_output_file(output, overwrite=overwrite or in_place, mode=mode) as dst_fd:
            pwrite_all(dst_fd, authenticated + mac, 0)
            _copy_range(
                handle.fileno(), dst_fd, payload_start, len(authenticated) + len(mac), sum(header.stream_sizes())
            )
    return new_header


def _with_recipients(
    header: _header.SealedHeader, dek: bytes, add: Sequence[KeyWrapper], remove: Sequence[str]
) -> _header.SealedHeader:
    unknown = [sel for sel in remove if not any(_removed(r, [sel]) for r in header.recipients)]
    if unknown:
        raise UsageError(f"no recipient matches {unknown[0]!r}")
    kept = [r for r in header.recipients if not _removed(r, remove)]
    added = wrap_for_recipients(dek, header.artifact_id_bytes, add) if add else ()
    names = {(r.scheme, r.key_id) for r in kept}
    for recipient in added:
        if (recipient.scheme, recipient.key_id) in names:
            raise UsageError(f"{recipient.kek} is already a recipient")
    recipients = tuple(kept) + added
    if not recipients:
        raise UsageError("refusing to remove the last recipient: nobody could open the artifact")
    try:  # validate the new header as a reader will (limits, uniqueness)
        return _header.SealedHeader.model_validate_json(
            header.model_copy(update={"recipients": recipients}).model_dump_json()
        )
    except ValidationError as exc:
        raise UsageError(f"the new recipient list is not valid: {exc.errors()[0]['msg']}") from None
