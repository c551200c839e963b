"""Evidence collection behind one interface: the simulator, Nitro NSM, SEV-SNP, TDX, Azure vTPM, NVIDIA GPUs.

Only the interface, the registry and detection are imported here; each device attester is imported when it is
named (:func:`attester_from_name`) or found (:func:`detect_attester`). See ``docs/attesters.md``.
"""

from __future__ import annotations

from enclave.attesters.base import (
    ATTESTER_FOR_NAME,
    REPORT_DATA_SIZE,
    Attester,
    DetectPaths,
    attester_from_name,
    check_report_data,
    detect_attester,
)

__all__ = [
    "ATTESTER_FOR_NAME",
    "REPORT_DATA_SIZE",
    "Attester",
    "DetectPaths",
    "attester_from_name",
    "check_report_data",
    "detect_attester",
]
