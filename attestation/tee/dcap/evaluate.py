"""Checking a quote's collateral: CRLs, signed TCB Info and QE Identity, and the TCB evaluation they drive."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from attestation.claims import VendorValue, rfc3339
from attestation.errors import Revoked
from attestation.tee.dcap.checks import (
    check_crl,
    check_document_signature,
    check_not_revoked,
    check_signer_chain,
    check_window,
)
from attestation.tee.dcap.collateral import DcapCollateral
from attestation.tee.dcap.errors import CollateralMismatch
from attestation.tee.dcap.models import QeIdentity, TcbInfo
from attestation.tee.dcap.pck import CertChain, SgxExtensions
from attestation.tee.dcap.quote import Quote, TdReport
from attestation.tee.dcap.tcb import TcbStatus, evaluate_qe_identity, platform_tcb, tdx_module_tcb


@dataclass(frozen=True, slots=True)
class CollateralOutcome:
    """What the collateral says about the quote.

    Attributes:
        final: The platform status merged with the TDX module's and the QE's.
        platform: The platform TCB level's status (with the TDX module's merged in, as Intel's QVL reports it).
        qe: The QE identity's TCB status.
        tdx_module: The TDX module's status, when the TCB Info has levels for it.
        not_before, not_after: The window in which every certificate, CRL and document used is valid.
    """

    final: TcbStatus
    platform: TcbStatus
    qe: TcbStatus
    tdx_module: TcbStatus | None
    not_before: datetime
    not_after: datetime

    def vendor_fields(self) -> dict[str, VendorValue]:
        """The claim fields of the contract (``tcb_status``, ``advisory_ids``, ...)."""
        fields: dict[str, VendorValue] = {
            "tcb_status": self.final.status,
            "advisory_ids": tuple(sorted(set(self.final.advisory_ids))),
            "platform_tcb_status": self.platform.status,
            "qe_tcb_status": self.qe.status,
            "tcb_date": self.platform.tcb_date,
            "collateral_window": {"not_before": rfc3339(self.not_before), "not_after": rfc3339(self.not_after)},
        }
        if self.tdx_module is not None:
            fields["tdx_module_tcb_status"] = self.tdx_module.status
        return fields


def evaluate_collateral(
    quote: Quote,
    pck_chain: CertChain,
    pck: SgxExtensions,
    dcap: DcapCollateral,
    *,
    roots: Sequence[x509.Certificate],
    at: datetime,
    allow_simulator: bool,
) -> CollateralOutcome:
    """Check ``dcap`` at ``at`` and evaluate the quote's TCB with it.

    Raises:
        BadChain, BadSignature: A CRL or document is not Intel's (by the chain to ``roots``).
        Expired, NotYetValid: A CRL or document is not current at ``at``.
        Revoked: The PCK certificate, its CA or a signing certificate is revoked, or the TCB status is Revoked.
        CollateralMismatch: The collateral is for another FMSPC or TEE type.
        QeIdentityMismatch, TdxModuleMismatch, NoMatchingTcbLevel: The TCB evaluation fails.
    """
    root = pck_chain.anchor
    check_crl(dcap.root_ca_crl, root, at, "the Intel SGX Root CA CRL")
    check_crl(dcap.pck_crl, pck_chain.issuer_ca, at, "the PCK CRL")
    check_not_revoked(dcap.pck_crl, pck_chain.leaf, "the PCK CRL")
    for ca in pck_chain.certificates[1:-1]:
        check_not_revoked(dcap.root_ca_crl, ca, "the Intel SGX Root CA CRL")
    signers: dict[tuple[x509.Certificate, ...], CertChain] = {}
    for document, signature, issuer_chain, dates, what in (
        (dcap.tcb_info_json, dcap.tcb_info_signature, dcap.tcb_issuer_chain, dcap.tcb_info, "TCB Info"),
        (
            dcap.qe_identity_json,
            dcap.qe_identity_signature,
            dcap.qe_identity_issuer_chain,
            dcap.qe_identity,
            "QE Identity",
        ),
    ):
        # PCS signs both documents with the same TCB Signing certificate: walk its chain once.
        signer = signers.get(issuer_chain)
        if signer is None:
            signer = check_signer_chain(
                issuer_chain, roots=roots, root_crl=dcap.root_ca_crl, at=at, allow_simulator=allow_simulator, what=what
            )
            signers[issuer_chain] = signer
        check_document_signature(document, signature, signer, what)
        check_window(dates.issue_date, dates.next_update, at, f"the {what}")
    final, platform, qe, module = evaluate_tcb(quote, pck, dcap.tcb_info, dcap.qe_identity)
    lower, upper = _window(dcap, pck_chain, list(signers.values()))
    return CollateralOutcome(final, platform, qe, module, lower, upper)


def evaluate_tcb(
    quote: Quote, pck: SgxExtensions, info: TcbInfo, identity: QeIdentity
) -> tuple[TcbStatus, TcbStatus, TcbStatus, TcbStatus | None]:
    """(final, platform, QE, TDX module) TCB statuses of a quote whose collateral has been checked.

    Raises:
        CollateralMismatch: The TCB Info / QE Identity are for another TEE type, FMSPC or PCE.
        QeIdentityMismatch, TdxModuleMismatch, NoMatchingTcbLevel: The evaluation fails.
        Revoked: A status is Revoked.
    """
    _check_binding(quote, pck, info, identity)
    qe = evaluate_qe_identity(quote.certification.qe_report, identity)
    body = quote.body
    platform = platform_tcb(info, pck, body.tee_tcb_svn if isinstance(body, TdReport) else None)
    module = tdx_module_tcb(info, body) if isinstance(body, TdReport) else None
    if module is not None:
        platform = platform.merge(module)
    final = platform.merge(qe)
    for name, status in (("platform", platform), ("QE", qe)):
        if status.status == "Revoked":
            raise Revoked(f"the {name} TCB status is Revoked (advisories: {', '.join(status.advisory_ids) or 'none'})")
    return final, platform, qe, module


def _check_binding(quote: Quote, pck: SgxExtensions, info: TcbInfo, identity: QeIdentity) -> None:
    want_info, want_qe = ("TDX", "TD_QE") if quote.is_tdx else ("SGX", "QE")
    kind = "TDX" if quote.is_tdx else "SGX"
    if info.id != want_info:
        raise CollateralMismatch(f"the TCB Info is for {info.id}, the quote is {kind}")
    if identity.id != want_qe:
        raise CollateralMismatch(f"the QE Identity is {identity.id!r}, a {kind} quote needs {want_qe!r}")
    if info.fmspc != pck.fmspc:
        raise CollateralMismatch(
            f"the TCB Info is for FMSPC {info.fmspc.hex()}, the PCK certificate's FMSPC is {pck.fmspc.hex()}"
        )
    if info.pce_id != pck.pce_id:
        raise CollateralMismatch(f"the TCB Info is for PCE-ID {info.pce_id.hex()}, the PCK's is {pck.pce_id.hex()}")


def _window(dcap: DcapCollateral, pck_chain: CertChain, signers: list[CertChain]) -> tuple[datetime, datetime]:
    certs = [*pck_chain.certificates, *(cert for chain in signers for cert in chain.certificates)]
    lower = [cert.not_valid_before_utc for cert in certs]
    upper = [cert.not_valid_after_utc for cert in certs]
    for crl in (dcap.pck_crl, dcap.root_ca_crl):
        lower.append(crl.last_update_utc)
        if crl.next_update_utc is not None:
            upper.append(crl.next_update_utc)
    for document in (dcap.tcb_info, dcap.qe_identity):
        lower.append(document.issue_date)
        upper.append(document.next_update)
    return max(lower), min(upper)
