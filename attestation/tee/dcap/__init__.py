"""Intel DCAP: TDX quotes (v4, v5; TD 1.0 and 1.5) and SGX quotes (v3) with their collateral, on one code path.

Modules: :mod:`.quote` (the quote parser), :mod:`.pck` (PCK chain and SGX extension), :mod:`.collateral` (dcap-qvl
JSON and Intel PCS responses), :mod:`.models` (TCB Info and QE Identity), :mod:`.checks` (CRLs, signed documents),
:mod:`.tcb` (TCB levels and status merging), :mod:`.evaluate` (collateral against a quote), :mod:`.pcs` (fetching
from PCS/PCCS), :mod:`.fields` (claim names), :mod:`.errors` (DCAP-specific errors), :mod:`.verifier`.
"""

from attestation.tee.dcap.collateral import DcapCollateral
from attestation.tee.dcap.errors import (
    CollateralMismatch,
    MalformedCollateral,
    NoMatchingTcbLevel,
    QeIdentityMismatch,
    QeReportBindingMismatch,
    TdxModuleMismatch,
)
from attestation.tee.dcap.quote import Quote, parse_quote
from attestation.tee.dcap.verifier import SgxVerifier, TdxVerifier

__all__ = [
    "CollateralMismatch",
    "DcapCollateral",
    "MalformedCollateral",
    "NoMatchingTcbLevel",
    "QeIdentityMismatch",
    "QeReportBindingMismatch",
    "Quote",
    "SgxVerifier",
    "TdxModuleMismatch",
    "TdxVerifier",
    "parse_quote",
]
