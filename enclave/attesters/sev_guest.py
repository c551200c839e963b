"""AMD SEV-SNP: attestation reports through ``/dev/sev-guest`` (SNP_GET_REPORT) or configfs-tsm.

The ioctl ABI is Linux ``include/uapi/linux/sev-guest.h``: ``SNP_GET_REPORT = _IOWR('S', 0x0, struct
snp_guest_request_ioctl)`` whose ``req_data`` points at ``struct snp_report_req {__u8 user_data[64]; __u32 vmpl;
__u8 rsvd[28];}`` and ``resp_data`` at ``struct snp_report_resp {__u8 data[4000];}``. The response holds the
firmware's MSG_REPORT_RSP (SEV-SNP firmware ABI, table "MSG_REPORT_RSP"): ``status`` u32, ``report_size`` u32,
24 reserved bytes, then the 1184-byte ATTESTATION_REPORT. On failure the union ``exitinfo2`` holds the firmware
error (low 32 bits) and the hypervisor's error (high 32 bits).

Neither path has run on SEV-SNP hardware: both are tested against fakes that play the driver and configfs.
"""

from __future__ import annotations

import ctypes
import errno
import os

from enclave.attesters.base import REPORT_DATA_SIZE, IoctlFunction, Opener, check_report_data, iowr, system_ioctl
from enclave.attesters.configfs_tsm import TsmReportClient
from enclave.errors import AttestationFailed, AttesterUnavailable

__all__ = [
    "SEV_GUEST_DEVICE",
    "SNP_GET_REPORT",
    "SNP_REPORT_SIZE",
    "SevGuestDevice",
    "SevSnpAttester",
    "SnpGuestRequestIoctl",
    "SnpReportReq",
    "SnpReportResp",
    "check_snp_report",
]

SEV_GUEST_DEVICE = "/dev/sev-guest"
SNP_REPORT_SIZE = 0x4A0  # 1184
SNP_MSG_VERSION = 1
_RESPONSE_HEADER = 0x20
_REPORT_DATA = slice(0x50, 0x90)
_VMPL_OFFSET = 0x30
_FIRMWARE_STATUS = {0x16: "INVALID_PARAM", 0x27: "INVALID_KEY"}


class SnpReportReq(ctypes.Structure):
    """``struct snp_report_req``."""

    _fields_ = (("user_data", ctypes.c_uint8 * 64), ("vmpl", ctypes.c_uint32), ("rsvd", ctypes.c_uint8 * 28))


class SnpReportResp(ctypes.Structure):
    """``struct snp_report_resp``."""

    _fields_ = (("data", ctypes.c_uint8 * 4000),)


class SnpGuestRequestIoctl(ctypes.Structure):
    """``struct snp_guest_request_ioctl`` (``exitinfo2`` = fw_error | vmm_error << 32 on little-endian x86)."""

    _fields_ = (
        ("msg_version", ctypes.c_uint8),
        ("req_data", ctypes.c_uint64),
        ("resp_data", ctypes.c_uint64),
        ("exitinfo2", ctypes.c_uint64),
    )


SNP_GET_REPORT = iowr(ord("S"), 0x0, ctypes.sizeof(SnpGuestRequestIoctl))


class SevGuestDevice:
    """SNP_GET_REPORT through ``/dev/sev-guest``.

    Args:
        path: The device node.
        ioctl: The ioctl system call (tests pass a fake that plays the driver and the PSP).
        opener: ``os.open``-like.
    """

    def __init__(
        self, path: str = SEV_GUEST_DEVICE, *, ioctl: IoctlFunction | None = None, opener: Opener | None = None
    ) -> None:
        self._path = path
        self._ioctl = ioctl or system_ioctl
        self._open = opener or os.open

    def get_report(self, user_data: bytes, vmpl: int = 0) -> bytes:
        """The 1184-byte report for ``user_data`` at ``vmpl``, after checking the MSG_REPORT_RSP header.

        Raises:
            AttesterUnavailable: The device cannot be opened.
            AttestationFailed: The ioctl fails (firmware and hypervisor error codes named), the firmware status is
                not success, or the report size is not 1184 bytes.
        """
        check_report_data(user_data)
        if not 0 <= vmpl <= 3:
            raise ValueError(f"VMPL must be 0 to 3, got {vmpl}")
        try:
            descriptor = self._open(self._path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise AttesterUnavailable(f"cannot open {self._path}: {os.strerror(exc.errno or 0)}") from None
        try:
            request = SnpReportReq()
            ctypes.memmove(request.user_data, user_data, REPORT_DATA_SIZE)
            request.vmpl = vmpl
            response = SnpReportResp()
            argument = SnpGuestRequestIoctl(
                msg_version=SNP_MSG_VERSION,
                req_data=ctypes.addressof(request),
                resp_data=ctypes.addressof(response),
                exitinfo2=0,
            )
            try:
                self._ioctl(descriptor, SNP_GET_REPORT, argument)
            except OSError as exc:
                name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
                firmware, vmm = argument.exitinfo2 & 0xFFFFFFFF, argument.exitinfo2 >> 32
                raise AttestationFailed(
                    f"SNP_GET_REPORT on {self._path} failed: {name} (firmware error {firmware:#x}, "
                    f"hypervisor error {vmm:#x})"
                ) from None
            return _report_from_response(bytes(response.data))
        finally:
            os.close(descriptor)


def _report_from_response(data: bytes) -> bytes:
    status = int.from_bytes(data[0:4], "little")
    size = int.from_bytes(data[4:8], "little")
    if status != 0:
        name = _FIRMWARE_STATUS.get(status, "error")
        raise AttestationFailed(f"the SEV-SNP firmware answered status {status:#x} ({name})")
    if size != SNP_REPORT_SIZE:
        raise AttestationFailed(f"the SEV-SNP firmware returned a {size}-byte report; expected {SNP_REPORT_SIZE}")
    return data[_RESPONSE_HEADER : _RESPONSE_HEADER + SNP_REPORT_SIZE]


def check_snp_report(report: bytes, report_data: bytes, vmpl: int | None) -> bytes:
    """Return ``report`` if it is 1184 bytes with REPORT_DATA = ``report_data`` (and VMPL = ``vmpl`` if given).

    Raises:
        AttestationFailed: It is not.
    """
    if len(report) != SNP_REPORT_SIZE:
        raise AttestationFailed(f"the SEV-SNP report is {len(report)} bytes; expected {SNP_REPORT_SIZE}")
    if report[_REPORT_DATA] != report_data:
        raise AttestationFailed("the SEV-SNP report carries other REPORT_DATA than was asked for")
    if vmpl is not None and int.from_bytes(report[_VMPL_OFFSET : _VMPL_OFFSET + 4], "little") != vmpl:
        raise AttestationFailed(f"the SEV-SNP report is not for VMPL {vmpl}")
    return report


class SevSnpAttester:
    """SEV-SNP reports with REPORT_DATA = report data, from ``/dev/sev-guest`` or, given ``tsm``, configfs-tsm.

    The evidence is the bare 1184-byte report; the verifier obtains the VCEK from AMD KDS (or as collateral).
    SNP has no nonce field, so the nonce is bound through the report data only.

    Args:
        device: The ``/dev/sev-guest`` node (the ioctl path).
        tsm: A configfs-tsm client; when given, reports come from configfs (provider ``sev_guest``) instead.
        vmpl: The VMPL to request (ioctl: default 0; configfs: written as ``privlevel`` only when given).
        ioctl: The ioctl system call (injectable for tests).
        opener: ``os.open``-like (injectable for tests).
    """

    name = "sev-snp"
    evidence_type = "sev-snp"

    def __init__(
        self,
        device: str = SEV_GUEST_DEVICE,
        *,
        tsm: TsmReportClient | None = None,
        vmpl: int | None = None,
        ioctl: IoctlFunction | None = None,
        opener: Opener | None = None,
    ) -> None:
        self._device = SevGuestDevice(device, ioctl=ioctl, opener=opener)
        self._tsm = tsm
        self._vmpl = vmpl

    def attest(self, report_data: bytes, nonce: bytes) -> bytes:
        """A signed SEV-SNP report whose REPORT_DATA is ``report_data``.

        Raises:
            ValueError: ``report_data`` is not 64 bytes.
            AttesterUnavailable: The device or configfs entry is not usable.
            AttestationFailed: The firmware answered an error or a report for other data.
        """
        data = check_report_data(report_data)
        if self._tsm is not None:
            report = self._tsm.generate(data, expected_provider="sev_guest", privlevel=self._vmpl).outblob
            return check_snp_report(report, data, self._vmpl)
        vmpl = 0 if self._vmpl is None else self._vmpl
        return check_snp_report(self._device.get_report(data, vmpl), data, vmpl)
