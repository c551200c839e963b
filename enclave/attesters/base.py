"""The attester interface, the name registry, and detection of the attestation device this machine has.

An attester turns 64 bytes of report data (and, where the format has a field for it, the raw nonce) into raw
evidence bytes that the broker verifies with :func:`attestation.verify` under ``evidence_type``. Device attesters
are imported lazily, so that importing this module touches no device and loads no vendor library.
"""

from __future__ import annotations

import fcntl
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from enclave.attesters.configfs_tsm import TsmFilesystem, TsmReportClient
from enclave.errors import AttesterUnavailable

__all__ = [
    "ATTESTER_FOR_NAME",
    "REPORT_DATA_SIZE",
    "Attester",
    "DetectPaths",
    "IoctlFunction",
    "Opener",
    "attester_from_name",
    "check_report_data",
    "detect_attester",
    "iowr",
    "system_ioctl",
]

#: Every evidence format we accept carries exactly this many bytes of caller data.
REPORT_DATA_SIZE = 64


@runtime_checkable
class Attester(Protocol):
    """Collects evidence from one kind of TEE.

    Attributes:
        name: The attester's name, as ``--attester`` takes it (``"simulator-nitro"``, ``"nitro"``, ...).
        evidence_type: The :class:`attestation.claims.Tee` value the broker verifies the evidence as
            (``"nitro"``, ``"sev-snp"``, ``"tdx"``, ...).
    """

    name: str
    evidence_type: str

    def attest(self, report_data: bytes, nonce: bytes) -> bytes:
        """Raw evidence binding ``report_data`` (exactly 64 bytes) and, where the format carries one, ``nonce``.

        Raises:
            ValueError: ``report_data`` is not 64 bytes (a caller's bug).
            enclave.errors.AttesterUnavailable: The device is absent or unusable here.
            enclave.errors.AttestationFailed: The device answered with an error or with evidence that does not
                hold the report data asked for.
        """
        ...


#: ``ioctl(fd, request, argument)``: the argument is a writable ctypes structure the kernel updates in place.
IoctlFunction = Callable[[int, int, Any], object]
#: ``os.open``-like: ``(path, flags) -> file descriptor``.
Opener = Callable[[str, int], int]


def iowr(kind: int, number: int, size: int) -> int:
    """Linux ``_IOWR(kind, number, size)`` on x86-64 and arm64 (direction read|write = 3, 14-bit size)."""
    return (3 << 30) | (size << 16) | (kind << 8) | number


def system_ioctl(descriptor: int, request: int, argument: Any) -> object:
    """The real ioctl: ``argument`` is passed as a mutable buffer, so the kernel's writes land in it."""
    return fcntl.ioctl(descriptor, request, argument, True)


#: Attester name -> "module:Class", imported on first use.
ATTESTER_FOR_NAME: dict[str, str] = {
    "simulator-nitro": "enclave.attesters.simulator:SimulatorNitroAttester",
    "simulator-snp": "enclave.attesters.simulator:SimulatorSnpAttester",
    "nitro": "enclave.attesters.nitro_nsm:NitroNsmAttester",
    "sev-snp": "enclave.attesters.sev_guest:SevSnpAttester",
    "tdx": "enclave.attesters.tdx:TdxAttester",
    "azure-vtpm": "enclave.attesters.azure_vtpm:AzureVtpmAttester",
    "nvidia-gpu": "enclave.attesters.nvidia:NvidiaGpuAttester",
    # Composite evidence (see enclave.attesters.composite): a hardware CPU with every GPU NVML lists.
    "tdx+nvidia-gpu": "enclave.attesters.composite:TdxNvidiaAttester",
    "sev-snp+nvidia-gpu": "enclave.attesters.composite:SevSnpNvidiaAttester",
    # Simulators built from arguments (``simulator=``...); simulated composites are named <cpu>+<n>gpu (bootstrap).
    "simulator-tdx": "enclave.attesters.simulator_tdx:SimulatorTdxAttester",
    "simulator-nvidia": "enclave.attesters.simulator_nvidia:SimulatorNvidiaAttester",
}


def check_report_data(report_data: bytes) -> bytes:
    """Return ``report_data`` if it is exactly 64 bytes; raise ``ValueError`` otherwise (a caller's bug)."""
    if not isinstance(report_data, bytes | bytearray) or len(report_data) != REPORT_DATA_SIZE:
        size = len(report_data) if isinstance(report_data, bytes | bytearray) else type(report_data).__name__
        raise ValueError(f"report data must be exactly {REPORT_DATA_SIZE} bytes, got {size}")
    return bytes(report_data)


def attester_from_name(name: str, **options: Any) -> Attester:
    """Build the attester registered as ``name``, passing ``options`` to its constructor.

    Args:
        name: A key of :data:`ATTESTER_FOR_NAME`.
        **options: Constructor arguments (the simulators need ``simulator=`` and ``clock=``).

    Returns:
        The attester.

    Raises:
        AttesterUnavailable: ``name`` is not a known attester.
    """
    try:
        target = ATTESTER_FOR_NAME[name]
    except KeyError:
        known = ", ".join(sorted(ATTESTER_FOR_NAME))
        raise AttesterUnavailable(f"unknown attester {name!r}; known attesters: {known}") from None
    module_name, _, class_name = target.partition(":")
    factory: Callable[..., Any] = getattr(importlib.import_module(module_name), class_name)
    attester: Attester = factory(**options)
    return attester


@dataclass(frozen=True, slots=True)
class DetectPaths:
    """Where :func:`detect_attester` looks (tests point these into a temporary directory).

    Attributes:
        nsm: The Nitro Secure Module device.
        tsm_report: The configfs-tsm report directory (Linux 6.7+).
        sev_guest: The SEV-SNP guest device.
        tpm: The TPM resource manager device (the Azure confidential VM path goes through the vTPM).
        dmi_sys_vendor: DMI system vendor; ``Microsoft Corporation`` marks a Hyper-V (Azure) guest, so that an
            ordinary TPM on other machines is not mistaken for Azure's vTPM.
    """

    nsm: str = "/dev/nsm"
    tsm_report: str = "/sys/kernel/config/tsm/report"
    sev_guest: str = "/dev/sev-guest"
    tpm: str = "/dev/tpmrm0"
    dmi_sys_vendor: str = "/sys/class/dmi/id/sys_vendor"


_AZURE_VENDOR = "Microsoft Corporation"


def detect_attester(paths: DetectPaths | None = None, *, tsm_filesystem: TsmFilesystem | None = None) -> Attester:
    """The attester for the attestation device this machine has, probing in a fixed order.

    Order: 1. ``/dev/nsm`` (Nitro); 2. configfs-tsm (its ``provider`` decides: ``sev_guest`` -> SEV-SNP, ``tdx_guest``
    -> TDX); 3. ``/dev/sev-guest`` (SEV-SNP through the ioctl); 4. ``/dev/tpmrm0`` on a Microsoft (Azure) guest
    (the vTPM path). configfs-tsm comes before ``/dev/sev-guest`` because it is the kernel's vendor-neutral
    interface and also hands out the certificate table.

    Args:
        paths: Where to look (default: the real device paths).
        tsm_filesystem: The filesystem layer for configfs-tsm (default: the real one; tests pass a fake kernel).

    Raises:
        AttesterUnavailable: Nothing usable was found; the message names every path probed.
    """
    paths = paths or DetectPaths()
    probed: list[str] = []
    if os.path.exists(paths.nsm):
        return attester_from_name("nitro", device=paths.nsm)
    probed.append(f"{paths.nsm} (absent)")
    found = _probe_tsm(paths.tsm_report, tsm_filesystem, probed)
    if found is not None:
        return found
    if os.path.exists(paths.sev_guest):
        return attester_from_name("sev-snp", device=paths.sev_guest)
    probed.append(f"{paths.sev_guest} (absent)")
    if os.path.exists(paths.tpm):
        if _read_text(paths.dmi_sys_vendor) == _AZURE_VENDOR:
            return attester_from_name("azure-vtpm")
        probed.append(f"{paths.tpm} (present, but {paths.dmi_sys_vendor} does not name {_AZURE_VENDOR})")
    else:
        probed.append(f"{paths.tpm} (absent)")
    raise AttesterUnavailable(
        "no attestation device found; probed " + "; ".join(probed) + ". For demos and tests, "
        "`--attester simulator-nitro` emits simulated evidence (trusted only where a policy names its root)"
    )


def _probe_tsm(root: str, filesystem: TsmFilesystem | None, probed: list[str]) -> Attester | None:
    if not os.path.isdir(root):
        probed.append(f"{root} (absent)")
        return None
    client = TsmReportClient(root=root, filesystem=filesystem)
    try:
        provider = client.provider()
    except AttesterUnavailable as exc:
        probed.append(f"{root} (unusable: {exc})")
        return None
    if provider == "sev_guest":
        return attester_from_name("sev-snp", tsm=client)
    if provider == "tdx_guest":
        return attester_from_name("tdx", tsm=client)
    probed.append(f"{root} (provider {provider!r} is not one we collect evidence from)")
    return None


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None
