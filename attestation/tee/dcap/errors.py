"""Errors specific to Intel DCAP verification, each on the right branch of :mod:`attestation.errors`."""

from __future__ import annotations

from attestation.errors import EvidenceInvalid, MalformedEvidence


class MalformedCollateral(MalformedEvidence):
    """DCAP collateral (TCB Info, QE Identity, issuer chains, CRLs) cannot be decoded."""

    check = "collateral-format"


class CollateralMismatch(EvidenceInvalid):
    """The collateral is genuine but not for this quote (another FMSPC, TEE type or PCK CA)."""

    check = "collateral-binding"


class QeIdentityMismatch(EvidenceInvalid):
    """The quoting enclave's report does not match Intel's QE Identity (MRSIGNER, ISVPRODID, masked fields)."""

    check = "qe-identity"


class TdxModuleMismatch(EvidenceInvalid):
    """The TDX module (SEAM) does not match the TCB Info's TDX module identity."""

    check = "tdx-module"


class NoMatchingTcbLevel(EvidenceInvalid):
    """No TCB level of the TCB Info (or QE Identity) is met by the platform: it is below every known level."""

    check = "tcb-level"


class QeReportBindingMismatch(EvidenceInvalid):
    """The QE report does not bind the attestation key and QE authentication data."""

    check = "qe-binding"
