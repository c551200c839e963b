"""NVIDIA GPU confidential-computing evidence: SPDM measurements, device chain, FWID, RIMs, OCSP.

See :mod:`attestation.tee.nvidia.verifier` for the order of checks.
"""

from attestation.tee.nvidia.measurements import DuplicateRim, MeasurementMismatch, RimVersionMismatch
from attestation.tee.nvidia.rim import Rim, RimKind, RimMalformed, verify_rim
from attestation.tee.nvidia.spdm import SpdmMalformed, SpdmReport, parse_spdm_report
from attestation.tee.nvidia.verifier import UNCHECKED_MEASUREMENTS, NvidiaGpuVerifier

__all__ = [
    "UNCHECKED_MEASUREMENTS",
    "DuplicateRim",
    "MeasurementMismatch",
    "NvidiaGpuVerifier",
    "Rim",
    "RimKind",
    "RimMalformed",
    "RimVersionMismatch",
    "SpdmMalformed",
    "SpdmReport",
    "parse_spdm_report",
    "verify_rim",
]
