"""The NVIDIA GPU confidential-computing evidence verifier (Hopper and later, local verification).

Evidence is an SPDM GET_MEASUREMENTS request followed by the GPU's signed MEASUREMENTS response
(:mod:`~attestation.tee.nvidia.spdm`). :class:`NvidiaGpuVerifier` checks, in this order:

1. the request and response parse by their lengths (unsigned trailing bytes are allowed and ignored);
2. the attestation-key chain (``collateral.certificates``, leaf first, as the driver returns it) leads to a
   trusted NVIDIA Device Identity root, every certificate valid at ``at``; simulator roots only if allowed;
3. the report signature: ECDSA P-384 over SHA-384(request || response up to the signature), r||s, by the leaf;
4. the FWID of the leaf's TCG DICE extension equals the report's FWID field (when the report has one);
5. each RIM (``collateral.rims``): signer chain to a trusted NVIDIA RIM root at ``at``, then its XML signature
   (:mod:`~attestation.tee.nvidia.rim`); at most one driver and one VBIOS RIM;
6. the OCSP responses given (``collateral.ocsp``) for the device and RIM signer chains
   (:mod:`~attestation.tee.nvidia.ocsp`);
7. the measurements: every active RIM measurement ``i`` against SPDM block ``i + 1``, and the RIM versions against
   the report's driver and VBIOS versions (:mod:`~attestation.tee.nvidia.measurements`).

A missing driver or VBIOS RIM is no error: ``claims.unchecked["nvidia-gpu.measurements"]`` names it, and appraisal
turns it into "could not check" unless the reference values waive it. The nonce is the appraiser's to compare.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attestation._x509 import p384_key
from attestation.claims import Claims, Tee, VendorValue
from attestation.collateral import Collateral
from attestation.errors import BadSignature, CollateralMissing
from attestation.fetch import Fetcher
from attestation.roots import pinned_rim_roots
from attestation.tee.nvidia.chain import ValidatedChain, validate_chain
from attestation.tee.nvidia.fwid import check_fwid
from attestation.tee.nvidia.measurements import Comparison, check_comparisons, compare, rims_by_kind
from attestation.tee.nvidia.ocsp import check_ocsp
from attestation.tee.nvidia.rim import RimKind, verify_rim
from attestation.tee.nvidia.spdm import (
    GET_MEASUREMENTS,
    MEASUREMENTS,
    REQUEST_BYTES,
    SPDM_VERSION_1_1,
    SpdmReport,
    parse_spdm_report,
)

#: The check name a missing RIM is reported under (and waived by, in reference values).
UNCHECKED_MEASUREMENTS = "nvidia-gpu.measurements"
_COORDINATE_BYTES = 48
#: NVIDIA GPU architecture names as they start the attestation certificates' common names (``GH100 A01 ...``).
_CHIP_NAME = re.compile(r"G[A-Z]\d{3}[A-Z]?")


def _check_report_signature(report: SpdmReport, leaf: x509.Certificate) -> None:
    key = p384_key(leaf, "NVIDIA GPU attestation reports are signed with ECDSA P-384")
    r = int.from_bytes(report.signature[:_COORDINATE_BYTES], "big")
    s = int.from_bytes(report.signature[_COORDINATE_BYTES:], "big")
    try:
        key.verify(encode_dss_signature(r, s), report.signed, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise BadSignature("the SPDM measurement report signature does not verify with the attestation key") from None


def _architecture(report: SpdmReport, leaf: x509.Certificate) -> str:
    chip = report.opaque.text("chip_info")
    if chip:
        return chip
    for attribute in leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME):
        value = attribute.value if isinstance(attribute.value, str) else ""
        match = _CHIP_NAME.match(value)
        if match:
            return match.group(0)
    return "unknown"


def _missing_rims(found: Mapping[RimKind, Any], report: SpdmReport) -> str | None:
    missing = []
    if RimKind.DRIVER not in found:
        missing.append(f"driver RIM (driver {report.opaque.text('driver_version') or 'version not stated'})")
    if RimKind.VBIOS not in found:
        missing.append(f"VBIOS RIM (VBIOS {report.opaque.text('vbios_version') or 'version not stated'})")
    if not missing:
        return None
    return f"no {' and no '.join(missing)} was given, so those measurements were not compared"


def _opaque_claims(report: SpdmReport) -> dict[str, Any]:
    return dict(report.opaque.fields)


class NvidiaGpuVerifier:
    """Verifies NVIDIA GPU SPDM measurement reports with their device chain, RIMs and OCSP responses.

    Args:
        rim_roots: Trust anchors of RIM signer chains (default: the pinned NVIDIA CoRIM signing Root CA). Device
            identity roots are never used for RIMs.
        allow_hold: Accept a certificate whose OCSP status is revoked with reason certificateHold (NVIDIA's own
            verifier has the same opt-in); by default that is :class:`~attestation.errors.Revoked`.
    """

    tee: ClassVar[Tee] = Tee.NVIDIA_GPU

    def __init__(self, rim_roots: Sequence[x509.Certificate] | None = None, *, allow_hold: bool = False) -> None:
        self._rim_roots = tuple(rim_roots) if rim_roots is not None else None
        self._allow_hold = allow_hold

    @property
    def rim_roots(self) -> tuple[x509.Certificate, ...]:
        """The anchors RIM signer chains must lead to."""
        return self._rim_roots if self._rim_roots is not None else pinned_rim_roots()

    def verify(
        self,
        evidence: bytes,
        *,
        at: datetime | None,
        roots: Sequence[x509.Certificate],
        collateral: Collateral,
        fetcher: Fetcher | None,
        allow_simulator: bool,
    ) -> Claims:
        """Verify the report, its chain, FWID, RIMs and OCSP responses at ``at`` and return its claims.

        ``fetcher`` is not used: RIMs and OCSP responses are collateral the caller supplies.

        Raises:
            CollateralMissing: ``at`` is ``None`` (the report states no time) or no device chain was given.
            attestation.errors.EvidenceInvalid: Any check above failed (see the module docstring).
            attestation.errors.CouldNotVerify: An OCSP responder answered "unknown" or unsuccessfully.
        """
        if at is None:
            raise CollateralMissing("NVIDIA GPU reports state no time; give the instant to check them at")
        report = parse_spdm_report(evidence)
        device = validate_chain(
            collateral.certificates, roots, at=at, allow_simulator=allow_simulator, what="GPU attestation"
        )
        _check_report_signature(report, device.leaf)
        fwid = check_fwid(device.leaf, report.opaque.fwid)
        rims = rims_by_kind(
            [verify_rim(doc, at=at, roots=self.rim_roots, allow_simulator=allow_simulator) for doc in collateral.rims]
        )
        chains: list[ValidatedChain] = [device, *(rim.chain for rim in rims.values())]
        ocsp = check_ocsp(collateral.ocsp, chains, at=at, allow_hold=self._allow_hold)
        reported = {
            RimKind.DRIVER: report.opaque.text("driver_version"),
            RimKind.VBIOS: report.opaque.text("vbios_version"),
        }
        comparisons: list[Comparison] = [compare(rim, report.blocks, reported[kind]) for kind, rim in rims.items()]
        check_comparisons(comparisons)
        missing = _missing_rims(rims, report)
        vendor: dict[str, VendorValue] = {
            "driver_version": reported[RimKind.DRIVER],
            "vbios_version": reported[RimKind.VBIOS],
            "fwid": fwid,
            "chip_sku": report.opaque.text("chip_sku"),
            "project": report.opaque.text("project"),
            "project_sku": report.opaque.text("project_sku"),
            "opaque": _opaque_claims(report),
            "rims": {c.rim.kind.value: c.summary() for c in comparisons},
            "ocsp": ocsp.status,
            "spdm_version": report.version,
            "responder_nonce": report.responder_nonce,
            "trailing_bytes": len(report.trailing),
        }
        return Claims(
            tee=Tee.NVIDIA_GPU,
            platform=f"nvidia/{_architecture(report, device.leaf)}",
            measurements={f"spdm{index}": block.value for index, block in sorted(report.blocks.items())},
            report_data=None,
            nonce=report.nonce,
            tcb={},
            # The SPDM report does not state the GPU's DevTools (debug) mode; NVIDIA reads it through NVML.
            debug=False,
            hardware_id=fwid.hex(),
            signer=device.signer(ocsp.revocation),
            vendor=vendor,
            unchecked={UNCHECKED_MEASUREMENTS: missing} if missing else {},
        )

    def decode(self, evidence: bytes) -> Mapping[str, VendorValue]:
        """The report's fields, parsed but **not verified**."""
        report = parse_spdm_report(evidence)
        return {
            "spdm_version": report.version,
            "nonce": report.nonce,
            "request_param1": report.request.param1,
            "request_param2": report.request.param2,
            "slot_id": report.request.slot_id,
            "response_param1": report.param1,
            "response_param2": report.param2,
            "measurements": {f"spdm{i}": b.value for i, b in sorted(report.blocks.items())},
            "responder_nonce": report.responder_nonce,
            "opaque": _opaque_claims(report),
            "signature": report.signature,
            "trailing_bytes": len(report.trailing),
        }

    def looks_like(self, evidence: bytes) -> bool:
        """Whether ``evidence`` starts like an SPDM 1.1 GET_MEASUREMENTS request followed by its response."""
        data = bytes(evidence[: REQUEST_BYTES + 2])
        return len(data) == REQUEST_BYTES + 2 and (
            data[0] == SPDM_VERSION_1_1
            and data[1] == GET_MEASUREMENTS
            and data[REQUEST_BYTES] == SPDM_VERSION_1_1
            and data[REQUEST_BYTES + 1] == MEASUREMENTS
        )
