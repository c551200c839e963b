"""NVIDIA confidential-computing GPUs (Hopper, Blackwell): evidence through NVML, loaded with ctypes.

Per GPU, ``nvmlDeviceGetConfComputeGpuAttestationReport`` returns the signed SPDM measurement report for a 32-byte
nonce the caller puts into the structure, and ``nvmlDeviceGetConfComputeGpuCertificate`` the device certificate
chains. The structures follow NVIDIA's ``nvml.h``:

* ``nvmlConfComputeGpuAttestationReport_t``: ``isCecAttestationReportPresent``, ``attestationReportSize``,
  ``cecAttestationReportSize`` (unsigned int each), ``nonce[32]``, ``attestationReport[0x2000]``,
  ``cecAttestationReport[0x1000]``;
* ``nvmlConfComputeGpuCertificate_t``: ``certChainSize``, ``attestationCertChainSize``, ``certChain[0x1000]``,
  ``attestationCertChain[0x1400]``.

The GPU nonce binding our report data is :func:`attestation.composite.gpu_nonce`
(``SHA-256("ccdeploy/gpu-nonce/v1" || report_data)``); each report is checked to open with the SPDM
GET_MEASUREMENTS request (code 0xE0) carrying that nonce. :meth:`NvidiaGpuAttester.gpu_evidence` feeds
:class:`enclave.attesters.composite.CompositeAttester`, whose composite evidence the broker verifies.

Not run on a confidential GPU: tested against a fake library object with NVML's calling convention.
"""

from __future__ import annotations

import base64
import ctypes
import hmac
import json
from dataclasses import dataclass
from typing import Any

from attestation import composite
from attestation.composite import GPU_NONCE_DOMAIN
from enclave.attesters.base import check_report_data
from enclave.errors import AttestationFailed, AttesterUnavailable

__all__ = [
    "GPU_NONCE_DOMAIN",
    "NVML_LIBRARY",
    "GpuEvidence",
    "NvidiaGpuAttester",
    "NvmlConfComputeGpuAttestationReport",
    "NvmlConfComputeGpuCertificate",
    "gpu_nonce",
    "load_nvml",
]

NVML_LIBRARY = "libnvidia-ml.so.1"
NVML_SUCCESS = 0
NVML_ERROR_NOT_SUPPORTED = 3
NONCE_SIZE = 0x20
ATTESTATION_REPORT_SIZE = 0x2000
CEC_ATTESTATION_REPORT_SIZE = 0x1000
CERT_CHAIN_SIZE = 0x1000
ATTESTATION_CERT_CHAIN_SIZE = 0x1400
UUID_BUFFER_SIZE = 96  # NVML_DEVICE_UUID_V2_BUFFER_SIZE
_SPDM_GET_MEASUREMENTS = 0xE0
_NVML_ERRORS = {
    1: "UNINITIALIZED",
    2: "INVALID_ARGUMENT",
    3: "NOT_SUPPORTED",
    4: "NO_PERMISSION",
    6: "NOT_FOUND",
    7: "INSUFFICIENT_SIZE",
    9: "DRIVER_NOT_LOADED",
    12: "LIBRARY_NOT_FOUND",
    15: "GPU_IS_LOST",
    999: "UNKNOWN",
}


class NvmlConfComputeGpuAttestationReport(ctypes.Structure):
    """``nvmlConfComputeGpuAttestationReport_t``."""

    _fields_ = (
        ("isCecAttestationReportPresent", ctypes.c_uint),
        ("attestationReportSize", ctypes.c_uint),
        ("cecAttestationReportSize", ctypes.c_uint),
        ("nonce", ctypes.c_uint8 * NONCE_SIZE),
        ("attestationReport", ctypes.c_uint8 * ATTESTATION_REPORT_SIZE),
        ("cecAttestationReport", ctypes.c_uint8 * CEC_ATTESTATION_REPORT_SIZE),
    )


class NvmlConfComputeGpuCertificate(ctypes.Structure):
    """``nvmlConfComputeGpuCertificate_t``."""

    _fields_ = (
        ("certChainSize", ctypes.c_uint),
        ("attestationCertChainSize", ctypes.c_uint),
        ("certChain", ctypes.c_uint8 * CERT_CHAIN_SIZE),
        ("attestationCertChain", ctypes.c_uint8 * ATTESTATION_CERT_CHAIN_SIZE),
    )


def gpu_nonce(report_data: bytes) -> bytes:
    """:func:`attestation.composite.gpu_nonce` of exactly 64 bytes of report data (``ValueError`` otherwise)."""
    return composite.gpu_nonce(check_report_data(report_data))


def load_nvml(path: str = NVML_LIBRARY) -> Any:
    """``ctypes.CDLL`` of NVML.

    Raises:
        AttesterUnavailable: The library cannot be loaded (no NVIDIA driver here).
    """
    try:
        return ctypes.CDLL(path)
    except OSError as exc:
        raise AttesterUnavailable(f"cannot load NVML ({path}): {exc}") from None


@dataclass(frozen=True, slots=True)
class GpuEvidence:
    """One GPU's evidence.

    Attributes:
        index: NVML device index.
        uuid: The GPU's UUID as NVML names it.
        nonce: The 32-byte nonce the report was made for.
        attestation_report: The SPDM measurement report (request message, then the signed response).
        cec_attestation_report: The report of the GPU's CEC, when NVML says one is present.
        attestation_cert_chain: The certificate chain of the attestation key (PEM text as NVML returns it).
        cert_chain: The GPU's device certificate chain.
    """

    index: int
    uuid: str
    nonce: bytes
    attestation_report: bytes
    cec_attestation_report: bytes | None
    attestation_cert_chain: bytes
    cert_chain: bytes

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, bytes as standard base64."""
        return {
            "index": self.index,
            "uuid": self.uuid,
            "nonce": self.nonce.hex(),
            "attestation_report": _b64(self.attestation_report),
            "cec_attestation_report": None
            if self.cec_attestation_report is None
            else _b64(self.cec_attestation_report),
            "attestation_cert_chain": _b64(self.attestation_cert_chain),
            "cert_chain": _b64(self.cert_chain),
        }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class NvidiaGpuAttester:
    """GPU evidence from every NVIDIA GPU NVML lists.

    Args:
        library: An object with NVML's C functions as attributes (default: :func:`load_nvml` on first use).
    """

    name = "nvidia-gpu"
    evidence_type = "nvidia-gpu"

    def __init__(self, *, library: Any = None) -> None:
        self._library = library

    def collect(self, nonce: bytes) -> tuple[GpuEvidence, ...]:
        """Evidence from each GPU for the 32-byte ``nonce``.

        Raises:
            AttesterUnavailable: NVML is missing or fails to start, there is no GPU, or confidential computing
                is not enabled (NOT_SUPPORTED).
            AttestationFailed: NVML fails otherwise, returns impossible sizes, or a report for another nonce.
        """
        if len(nonce) != NONCE_SIZE:
            raise ValueError(f"the GPU nonce must be {NONCE_SIZE} bytes, got {len(nonce)}")
        lib = self._library if self._library is not None else load_nvml()
        status = lib.nvmlInit_v2()
        if status != NVML_SUCCESS:
            raise AttesterUnavailable(f"nvmlInit_v2 failed: {_error(status)}")
        try:
            count = ctypes.c_uint(0)
            _call(lib.nvmlDeviceGetCount_v2(ctypes.pointer(count)), "nvmlDeviceGetCount_v2")
            if count.value == 0:
                raise AttesterUnavailable("NVML lists no GPU")
            return tuple(self._one(lib, index, bytes(nonce)) for index in range(count.value))
        finally:
            lib.nvmlShutdown()

    def gpu_evidence(self, nonce: bytes) -> tuple[composite.GpuEvidence, ...]:
        """Each GPU's report for ``nonce`` with its attestation certificate chain, for composite evidence.

        Raises:
            AttesterUnavailable: See :meth:`collect`.
            AttestationFailed: See :meth:`collect`, or a certificate chain that is not PEM text.
        """
        found = []
        for evidence in self.collect(nonce):
            chain = evidence.attestation_cert_chain.rstrip(b"\0")
            if not chain.isascii() or b"-----BEGIN CERTIFICATE-----" not in chain:
                raise AttestationFailed(f"GPU {evidence.index}: the attestation certificate chain is not PEM text")
            found.append(composite.GpuEvidence(f"GPU-{evidence.index}", evidence.attestation_report, chain))
        return tuple(found)

    def attest(self, report_data: bytes, nonce: bytes) -> bytes:
        """JSON ``{"version": 1, "nonce": hex, "gpus": [...]}`` for the nonce :func:`gpu_nonce` derives.

        Raises:
            ValueError: ``report_data`` is not 64 bytes.
            AttesterUnavailable: See :meth:`collect`.
            AttestationFailed: See :meth:`collect`.
        """
        derived = gpu_nonce(report_data)
        gpus = [evidence.to_dict() for evidence in self.collect(derived)]
        document = {"version": 1, "nonce": derived.hex(), "gpus": gpus}
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    def _one(self, lib: Any, index: int, nonce: bytes) -> GpuEvidence:
        handle = ctypes.c_void_p()
        _call(lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(index), ctypes.pointer(handle)), f"GPU {index} handle")
        uuid = ctypes.create_string_buffer(UUID_BUFFER_SIZE)
        _call(lib.nvmlDeviceGetUUID(handle, uuid, ctypes.c_uint(UUID_BUFFER_SIZE)), f"GPU {index} UUID")
        report = NvmlConfComputeGpuAttestationReport()
        ctypes.memmove(report.nonce, nonce, NONCE_SIZE)
        status = lib.nvmlDeviceGetConfComputeGpuAttestationReport(handle, ctypes.pointer(report))
        if status == NVML_ERROR_NOT_SUPPORTED:
            raise AttesterUnavailable(f"GPU {index} gives no attestation report: confidential computing is not on")
        _call(status, f"GPU {index} attestation report")
        certificate = NvmlConfComputeGpuCertificate()
        _call(
            lib.nvmlDeviceGetConfComputeGpuCertificate(handle, ctypes.pointer(certificate)),
            f"GPU {index} certificate",
        )
        attestation = _sized(report.attestationReport, report.attestationReportSize, f"GPU {index} attestation report")
        _check_spdm_nonce(attestation, nonce, index)
        cec = None
        if report.isCecAttestationReportPresent:
            cec = _sized(report.cecAttestationReport, report.cecAttestationReportSize, f"GPU {index} CEC report")
        return GpuEvidence(
            index=index,
            uuid=uuid.value.decode("ascii", "replace"),
            nonce=nonce,
            attestation_report=attestation,
            cec_attestation_report=cec,
            attestation_cert_chain=_sized(
                certificate.attestationCertChain,
                certificate.attestationCertChainSize,
                f"GPU {index} attestation certificate chain",
            ),
            cert_chain=_sized(certificate.certChain, certificate.certChainSize, f"GPU {index} certificate chain"),
        )


def _call(status: int, what: str) -> None:
    if status != NVML_SUCCESS:
        raise AttestationFailed(f"NVML call for {what} failed: {_error(status)}")


def _error(status: int) -> str:
    return f"NVML_ERROR_{_NVML_ERRORS.get(status, 'UNKNOWN')} ({status})"


def _sized(array: ctypes.Array[ctypes.c_uint8], size: int, what: str) -> bytes:
    if not 0 < size <= len(array):
        raise AttestationFailed(f"{what}: NVML reports {size} bytes in a {len(array)}-byte buffer")
    return bytes(array[:size])


def _check_spdm_nonce(report: bytes, nonce: bytes, index: int) -> None:
    # The report opens with the SPDM GET_MEASUREMENTS request: version, code 0xE0, param1, param2, nonce[32], slot.
    if len(report) < 4 + NONCE_SIZE or report[1] != _SPDM_GET_MEASUREMENTS:
        raise AttestationFailed(f"GPU {index}: the attestation report does not open with an SPDM GET_MEASUREMENTS")
    if not hmac.compare_digest(report[4 : 4 + NONCE_SIZE], nonce):
        raise AttestationFailed(f"GPU {index}: the attestation report was made for another nonce")
