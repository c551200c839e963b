"""GPU evidence through a fake NVML with the C library's calling convention (ctypes pointers in, codes out)."""

from __future__ import annotations

import ctypes
import json
from base64 import b64decode
from typing import Any

import pytest

from enclave.attesters import attester_from_name
from enclave.attesters.nvidia import (
    NvidiaGpuAttester,
    NvmlConfComputeGpuAttestationReport,
    NvmlConfComputeGpuCertificate,
    gpu_nonce,
    load_nvml,
)
from enclave.errors import AttestationFailed, AttesterUnavailable

REPORT_DATA = bytes(range(7, 71))
NONCE = b"\x04" * 32


class FakeNvml:
    """Fills NVML's structures through the pointers it is given, like libnvidia-ml.so.1."""

    def __init__(self, gpus: int = 2, **faults: Any) -> None:
        self.gpus = gpus
        self.faults = faults
        self.initialized = 0

    def nvmlInit_v2(self) -> int:
        status: int = self.faults.get("init", 0)
        self.initialized += status == 0
        return status

    def nvmlShutdown(self) -> int:
        self.initialized -= 1
        return 0

    def nvmlDeviceGetCount_v2(self, count: Any) -> int:
        count.contents.value = self.gpus
        return 0

    def nvmlDeviceGetHandleByIndex_v2(self, index: ctypes.c_uint, handle: Any) -> int:
        handle.contents.value = 0x1000 + index.value
        return 0

    def nvmlDeviceGetUUID(self, handle: ctypes.c_void_p, buffer: Any, length: ctypes.c_uint) -> int:
        buffer.value = f"GPU-{handle.value:08x}".encode()
        return 0

    def nvmlDeviceGetConfComputeGpuAttestationReport(self, handle: ctypes.c_void_p, report: Any) -> int:
        if "report" in self.faults:
            return int(self.faults["report"])
        out: NvmlConfComputeGpuAttestationReport = report.contents
        nonce = bytes(out.nonce) if not self.faults.get("other_nonce") else bytes(32)
        spdm = (
            bytes([0x11, 0xE0, 0x00, 0xFF]) + nonce + b"\x00" + b"signed measurements" + (handle.value or 0).to_bytes(2)
        )
        ctypes.memmove(out.attestationReport, spdm, len(spdm))
        out.attestationReportSize = self.faults.get("size", len(spdm))
        out.isCecAttestationReportPresent = 1
        ctypes.memmove(out.cecAttestationReport, b"cec", 3)
        out.cecAttestationReportSize = 3
        return 0

    def nvmlDeviceGetConfComputeGpuCertificate(self, handle: ctypes.c_void_p, certificate: Any) -> int:
        out: NvmlConfComputeGpuCertificate = certificate.contents
        chain = b"-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n"
        ctypes.memmove(out.attestationCertChain, chain, len(chain))
        out.attestationCertChainSize = len(chain)
        ctypes.memmove(out.certChain, b"device chain", 12)
        out.certChainSize = 12
        return 0


def test_struct_layouts_match_nvml_h() -> None:
    assert ctypes.sizeof(NvmlConfComputeGpuAttestationReport) == 12 + 32 + 0x2000 + 0x1000
    assert NvmlConfComputeGpuAttestationReport.nonce.offset == 12
    assert NvmlConfComputeGpuAttestationReport.attestationReport.offset == 44
    assert ctypes.sizeof(NvmlConfComputeGpuCertificate) == 8 + 0x1000 + 0x1400
    assert NvmlConfComputeGpuCertificate.attestationCertChain.offset == 8 + 0x1000


def test_collect_returns_each_gpu_and_shuts_nvml_down() -> None:
    library = FakeNvml(gpus=2)
    evidence = NvidiaGpuAttester(library=library).collect(NONCE)
    assert [gpu.uuid for gpu in evidence] == ["GPU-00001000", "GPU-00001001"]
    assert all(gpu.attestation_report[4:36] == NONCE for gpu in evidence)
    assert evidence[0].cec_attestation_report == b"cec"
    assert evidence[0].attestation_cert_chain.startswith(b"-----BEGIN CERTIFICATE-----")
    assert evidence[0].cert_chain == b"device chain"
    assert library.initialized == 0


def test_attest_derives_the_nonce_from_report_data() -> None:
    attester = attester_from_name("nvidia-gpu", library=FakeNvml(gpus=1))
    document = json.loads(attester.attest(REPORT_DATA, NONCE))
    assert document["version"] == 1
    assert bytes.fromhex(document["nonce"]) == gpu_nonce(REPORT_DATA)
    (gpu,) = document["gpus"]
    assert b64decode(gpu["attestation_report"])[4:36] == gpu_nonce(REPORT_DATA)


def test_init_failure_and_no_gpu_are_unavailable() -> None:
    with pytest.raises(AttesterUnavailable, match="DRIVER_NOT_LOADED"):
        NvidiaGpuAttester(library=FakeNvml(init=9)).collect(NONCE)
    library = FakeNvml(gpus=0)
    with pytest.raises(AttesterUnavailable, match="no GPU"):
        NvidiaGpuAttester(library=library).collect(NONCE)
    assert library.initialized == 0


def test_cc_off_is_unavailable_and_other_errors_fail() -> None:
    with pytest.raises(AttesterUnavailable, match="confidential computing"):
        NvidiaGpuAttester(library=FakeNvml(report=3)).collect(NONCE)
    with pytest.raises(AttestationFailed, match="GPU_IS_LOST"):
        NvidiaGpuAttester(library=FakeNvml(report=15)).collect(NONCE)


@pytest.mark.parametrize("size", [0, 0x2001])
def test_impossible_report_size(size: int) -> None:
    with pytest.raises(AttestationFailed, match="bytes in a 8192-byte buffer"):
        NvidiaGpuAttester(library=FakeNvml(size=size)).collect(NONCE)


def test_report_for_another_nonce() -> None:
    with pytest.raises(AttestationFailed, match="another nonce"):
        NvidiaGpuAttester(library=FakeNvml(other_nonce=True)).collect(NONCE)


def test_nonce_size() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        NvidiaGpuAttester(library=FakeNvml()).collect(bytes(16))


def test_missing_library() -> None:
    with pytest.raises(AttesterUnavailable, match="cannot load NVML"):
        load_nvml("libccdeploy-no-such-nvml.so.1")
