"""configfs-tsm rounds against a fake kernel: success, generation races, provider checks, cleanup."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from enclave.attesters.configfs_tsm import OsTsmFilesystem, TsmReportClient
from enclave.errors import AttestationFailed, AttesterUnavailable
from tests.enclave.attesters.fake_tsm import FakeTsmKernel, _Entry

ROOT = "/sys/kernel/config/tsm/report"
INBLOB = bytes(range(64))


def _kernel(**options: object) -> FakeTsmKernel:
    return FakeTsmKernel(ROOT, "sev_guest", lambda inblob, level: b"REPORT:" + inblob, **options)  # type: ignore[arg-type]


def test_round_returns_outblob_auxblob_and_removes_the_entry() -> None:
    kernel = _kernel(auxblob=b"certificate table")
    report = TsmReportClient(ROOT, filesystem=kernel).generate(INBLOB, expected_provider="sev_guest")
    assert report.outblob == b"REPORT:" + INBLOB
    assert report.auxblob == b"certificate table"
    assert (report.provider, report.generation) == ("sev_guest", 1)
    assert kernel.entries == {}
    assert len(kernel.created) == 1 and kernel.created[0].startswith(ROOT + "/ccdeploy-")


def test_each_round_uses_a_fresh_entry() -> None:
    kernel = _kernel()
    client = TsmReportClient(ROOT, filesystem=kernel)
    client.generate(INBLOB, expected_provider="sev_guest")
    client.generate(INBLOB, expected_provider="sev_guest")
    assert len(set(kernel.created)) == 2


def test_privlevel_is_written_first_and_counted() -> None:
    kernel = FakeTsmKernel(ROOT, "sev_guest", lambda inblob, level: bytes([level or 0]) + inblob)
    report = TsmReportClient(ROOT, filesystem=kernel).generate(INBLOB, expected_provider="sev_guest", privlevel=2)
    assert report.outblob[0] == 2
    assert report.generation == 2


def test_absent_auxblob_is_none() -> None:
    report = TsmReportClient(ROOT, filesystem=_kernel()).generate(INBLOB, expected_provider="sev_guest")
    assert report.auxblob is None


def test_race_while_reading_outblob_is_refused() -> None:
    def other_writer(entry: _Entry, attribute: str) -> None:
        if attribute == "outblob":
            entry.inblob, entry.generation = bytes(64), entry.generation + 1

    kernel = _kernel(on_read=other_writer)
    with pytest.raises(AttestationFailed, match="raced"):
        TsmReportClient(ROOT, filesystem=kernel).generate(INBLOB, expected_provider="sev_guest")
    assert kernel.entries == {}


def test_write_before_our_read_is_refused() -> None:
    def other_writer(entry: _Entry, attribute: str) -> None:
        if attribute == "generation" and entry.generation == 1:
            entry.generation += 1

    with pytest.raises(AttestationFailed, match="another writer"):
        TsmReportClient(ROOT, filesystem=_kernel(on_read=other_writer)).generate(INBLOB, expected_provider="sev_guest")


def test_other_provider_is_unavailable() -> None:
    kernel = FakeTsmKernel(ROOT, "tdx_guest", lambda inblob, level: inblob)
    with pytest.raises(AttesterUnavailable, match="tdx_guest"):
        TsmReportClient(ROOT, filesystem=kernel).generate(INBLOB, expected_provider="sev_guest")
    assert kernel.entries == {}


def test_provider_failure_on_outblob() -> None:
    with pytest.raises(AttestationFailed, match="reading the report"):
        TsmReportClient(ROOT, filesystem=_kernel(fail_outblob=errno.EIO)).generate(
            INBLOB, expected_provider="sev_guest"
        )


def test_empty_and_oversized_outblob() -> None:
    empty = FakeTsmKernel(ROOT, "sev_guest", lambda inblob, level: b"")
    with pytest.raises(AttestationFailed, match="empty"):
        TsmReportClient(ROOT, filesystem=empty).generate(INBLOB, expected_provider="sev_guest")
    huge = FakeTsmKernel(ROOT, "sev_guest", lambda inblob, level: bytes(40_000))
    with pytest.raises(AttestationFailed, match="over"):
        TsmReportClient(ROOT, filesystem=huge).generate(INBLOB, expected_provider="sev_guest")


def test_missing_configfs_is_unavailable() -> None:
    with pytest.raises(AttesterUnavailable, match="cannot create"):
        TsmReportClient("/elsewhere", filesystem=_kernel()).provider()


@pytest.mark.parametrize("size", [0, 65])
def test_inblob_size(size: int) -> None:
    with pytest.raises(ValueError, match="inblob"):
        TsmReportClient(ROOT, filesystem=_kernel()).generate(bytes(size), expected_provider="sev_guest")


def test_provider_probe() -> None:
    kernel = _kernel()
    assert TsmReportClient(ROOT, filesystem=kernel).provider() == "sev_guest"
    assert kernel.entries == {}


def test_os_filesystem_operations(tmp_path: Path) -> None:
    fs = OsTsmFilesystem()
    entry = str(tmp_path / "entry")
    fs.mkdir(entry)
    assert (os.stat(entry).st_mode & 0o777) == 0o700
    attribute = os.path.join(entry, "inblob")
    Path(attribute).write_bytes(b"")
    fs.write(attribute, b"abc")
    assert fs.read(attribute, 10) == b"abc"
    Path(attribute).write_bytes(bytes(100))
    assert len(fs.read(attribute, 10)) == 11  # one byte over the limit tells the caller it is too long
    os.unlink(attribute)
    fs.rmdir(entry)
    assert not os.path.exists(entry)
