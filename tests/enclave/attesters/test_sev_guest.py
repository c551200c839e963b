"""SEV-SNP through a fake /dev/sev-guest driver and a fake configfs-tsm, answering with simulator reports."""

from __future__ import annotations

import ctypes
import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from attestation import verify
from attestation.collateral import Collateral
from attestation.simulator.snp import SnpSimulator
from enclave.attesters.configfs_tsm import TsmReportClient
from enclave.attesters.sev_guest import (
    SNP_GET_REPORT,
    SevSnpAttester,
    SnpGuestRequestIoctl,
    SnpReportReq,
    SnpReportResp,
)
from enclave.errors import AttestationFailed, AttesterUnavailable
from tests.enclave.attesters.conftest import AT
from tests.enclave.attesters.fake_tsm import FakeTsmKernel

REPORT_DATA = bytes(range(64, 128))
NONCE = b"\x01" * 32
MEASUREMENT = b"\x5a" * 48


def msg_report_rsp(report: bytes, *, status: int = 0, size: int | None = None) -> bytes:
    """MSG_REPORT_RSP: status, report_size, 24 reserved bytes, the report."""
    header = status.to_bytes(4, "little") + (len(report) if size is None else size).to_bytes(4, "little") + bytes(24)
    return header + report


class FakeSevGuestDriver:
    """Plays ``drivers/virt/coco/sev-guest``: reads snp_report_req, writes snp_report_resp (or fails)."""

    def __init__(self, respond: Callable[[bytes, int], bytes], *, error: tuple[int, int] | None = None) -> None:
        self.respond = respond
        self.error = error
        self.calls: list[tuple[bytes, int, int]] = []

    def __call__(self, descriptor: int, request: int, argument: Any) -> int:
        assert request == SNP_GET_REPORT
        assert isinstance(argument, SnpGuestRequestIoctl)
        req = SnpReportReq.from_address(argument.req_data)
        assert bytes(req.rsvd) == bytes(28)
        self.calls.append((bytes(req.user_data), req.vmpl, argument.msg_version))
        if self.error is not None:
            argument.exitinfo2 = self.error[0] | self.error[1] << 32
            raise OSError(errno.EIO, "Input/output error")
        response = self.respond(bytes(req.user_data), req.vmpl)
        ctypes.memmove(argument.resp_data, response, len(response))
        return 0


@pytest.fixture
def device(tmp_path: Path) -> str:
    path = tmp_path / "sev-guest"
    path.write_bytes(b"")
    return str(path)


def _report(simulator: SnpSimulator, data: bytes, vmpl: int = 0) -> bytes:
    return simulator.report(measurement=MEASUREMENT, report_data=data, vmpl=vmpl).report


def _verify(simulator: SnpSimulator, evidence: bytes) -> bytes | None:
    cert = simulator.report(measurement=MEASUREMENT).signing_cert
    claims = verify(
        evidence,
        tee="sev-snp",
        at=AT,
        roots=[simulator.ark],
        collateral=Collateral(certificates=simulator.chain(), signing_cert=cert),
        unsafe_allow_simulator_roots=True,
    )
    return claims.report_data


def test_abi_sizes_and_ioctl_number() -> None:
    assert ctypes.sizeof(SnpReportReq) == 96
    assert ctypes.sizeof(SnpReportResp) == 4000
    assert ctypes.sizeof(SnpGuestRequestIoctl) == 32
    assert SNP_GET_REPORT == 0xC0205300


def test_ioctl_report_verifies(device: str, snp_simulator: SnpSimulator) -> None:
    driver = FakeSevGuestDriver(lambda data, vmpl: msg_report_rsp(_report(snp_simulator, data, vmpl)))
    evidence = SevSnpAttester(device, ioctl=driver).attest(REPORT_DATA, NONCE)
    assert driver.calls == [(REPORT_DATA, 0, 1)]
    assert len(evidence) == 1184
    assert _verify(snp_simulator, evidence) == REPORT_DATA


def test_firmware_error_status(device: str, snp_simulator: SnpSimulator) -> None:
    driver = FakeSevGuestDriver(lambda data, vmpl: msg_report_rsp(bytes(1184), status=0x16))
    with pytest.raises(AttestationFailed, match="INVALID_PARAM"):
        SevSnpAttester(device, ioctl=driver).attest(REPORT_DATA, NONCE)


def test_wrong_report_size(device: str, snp_simulator: SnpSimulator) -> None:
    driver = FakeSevGuestDriver(lambda data, vmpl: msg_report_rsp(_report(snp_simulator, data), size=1000))
    with pytest.raises(AttestationFailed, match="1000-byte report"):
        SevSnpAttester(device, ioctl=driver).attest(REPORT_DATA, NONCE)


def test_ioctl_failure_names_firmware_and_hypervisor_errors(device: str) -> None:
    driver = FakeSevGuestDriver(lambda data, vmpl: b"", error=(0x16, 0x2))
    with pytest.raises(AttestationFailed, match=r"EIO \(firmware error 0x16, hypervisor error 0x2\)"):
        SevSnpAttester(device, ioctl=driver).attest(REPORT_DATA, NONCE)


def test_report_for_other_data_is_refused(device: str, snp_simulator: SnpSimulator) -> None:
    driver = FakeSevGuestDriver(lambda data, vmpl: msg_report_rsp(_report(snp_simulator, bytes(64))))
    with pytest.raises(AttestationFailed, match="other REPORT_DATA"):
        SevSnpAttester(device, ioctl=driver).attest(REPORT_DATA, NONCE)


def test_report_for_other_vmpl_is_refused(device: str, snp_simulator: SnpSimulator) -> None:
    driver = FakeSevGuestDriver(lambda data, vmpl: msg_report_rsp(_report(snp_simulator, data, vmpl=1)))
    with pytest.raises(AttestationFailed, match="VMPL 0"):
        SevSnpAttester(device, ioctl=driver).attest(REPORT_DATA, NONCE)


def test_missing_device(tmp_path: Path) -> None:
    with pytest.raises(AttesterUnavailable, match="cannot open"):
        SevSnpAttester(str(tmp_path / "sev-guest")).attest(REPORT_DATA, NONCE)


def test_configfs_report_verifies(snp_simulator: SnpSimulator) -> None:
    root = "/cfg/tsm/report"
    kernel = FakeTsmKernel(root, "sev_guest", lambda data, level: _report(snp_simulator, data, level or 0))
    attester = SevSnpAttester(tsm=TsmReportClient(root, filesystem=kernel), vmpl=2)
    evidence = attester.attest(REPORT_DATA, NONCE)
    assert _verify(snp_simulator, evidence) == REPORT_DATA
    assert kernel.entries == {}


def test_configfs_short_outblob(snp_simulator: SnpSimulator) -> None:
    root = "/cfg/tsm/report"
    kernel = FakeTsmKernel(root, "sev_guest", lambda data, level: _report(snp_simulator, data)[:1000])
    with pytest.raises(AttestationFailed, match="1000 bytes"):
        SevSnpAttester(tsm=TsmReportClient(root, filesystem=kernel)).attest(REPORT_DATA, NONCE)
