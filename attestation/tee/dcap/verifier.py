"""The DCAP verifiers: quote -> PCK chain -> QE report -> quote signature -> collateral -> TCB status -> claims."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import ClassVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from attestation._x509 import fingerprint, is_simulator_certificate, subject
from attestation.claims import Claims, SignerChain, Tee, VendorValue, rfc3339
from attestation.collateral import Collateral
from attestation.errors import BadSignature, CollateralMissing, MalformedEvidence
from attestation.fetch import Fetcher
from attestation.tee.dcap.checks import verify_raw_p256
from attestation.tee.dcap.collateral import DcapCollateral
from attestation.tee.dcap.errors import QeReportBindingMismatch
from attestation.tee.dcap.evaluate import CollateralOutcome, evaluate_collateral
from attestation.tee.dcap.fields import body_fields, decode_quote, measurements
from attestation.tee.dcap.pck import CertChain, SgxExtensions, load_pck_chain, p256_key, sgx_extensions, walk_chain
from attestation.tee.dcap.pcs import INTEL_PCS_URL, INTEL_ROOT_CA_CRL_URL, fetch_collateral, pck_ca_kind
from attestation.tee.dcap.quote import INTEL_QE_VENDOR_ID, Quote, looks_like_quote, parse_quote


class _DcapVerifier:
    """Shared DCAP verification; :class:`TdxVerifier` and :class:`SgxVerifier` pick the quote type.

    Args:
        pcs_base_url: Intel PCS, or a PCCS base URL, to fetch collateral from when none is given and a fetcher is.
        root_ca_crl_url: Where the Intel SGX Root CA CRL is fetched from; ``None`` for the PCCS ``rootcacrl``
            endpoint under ``pcs_base_url``.
    """

    tee: ClassVar[Tee]
    _tdx: ClassVar[bool]

    def __init__(
        self, *, pcs_base_url: str = INTEL_PCS_URL, root_ca_crl_url: str | None = INTEL_ROOT_CA_CRL_URL
    ) -> None:
        self._pcs_base_url = pcs_base_url
        self._root_ca_crl_url = root_ca_crl_url

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
        """Verify a DCAP quote at ``at`` against ``roots`` (the Intel SGX Root CA) and return its claims.

        The quote signature, QE report signature, QE binding and PCK chain are always checked. The TCB status needs
        collateral: ``collateral.dcap``, else fetched from PCS/PCCS through ``fetcher``; with neither, the claims
        name the unchecked collateral in ``unchecked`` and carry no ``tcb_status``.

        Raises:
            MalformedEvidence: Not a quote of this verifier's type, or malformed.
            CollateralMissing: ``at`` is None (a quote states no time).
            BadChain, BadSignature, OutsideValidity, Revoked, CollateralMismatch, QeIdentityMismatch,
            TdxModuleMismatch, NoMatchingTcbLevel: See :mod:`attestation.tee.dcap.evaluate`.
        """
        quote = self._parse(evidence)
        if at is None:
            raise CollateralMissing("DCAP quotes state no time; pass the time to verify at")
        if at.utcoffset() is None:
            raise ValueError("the time of the check must be timezone-aware")
        chain, pck = _verify_quote(quote, collateral, roots=roots, at=at, allow_simulator=allow_simulator)
        dcap = collateral.dcap if collateral.dcap is not None else self._fetch(fetcher, pck, chain)
        if dcap is None:
            return _claims(quote, chain, pck, None, at)
        outcome = evaluate_collateral(quote, chain, pck, dcap, roots=roots, at=at, allow_simulator=allow_simulator)
        return _claims(quote, chain, pck, outcome, at)

    def decode(self, evidence: bytes) -> Mapping[str, VendorValue]:
        """Every field of the quote, without verifying anything."""
        return decode_quote(self._parse(evidence))

    def looks_like(self, evidence: bytes) -> bool:
        """A DCAP quote header of this verifier's type (TDX v4/v5, SGX v3)."""
        return looks_like_quote(evidence, tdx=self._tdx)

    def _parse(self, evidence: bytes) -> Quote:
        quote = parse_quote(evidence)
        if quote.is_tdx != self._tdx:
            kind, other = ("TDX", "SGX") if quote.is_tdx else ("SGX", "TDX")
            raise MalformedEvidence(f"this is an {kind} quote, not an {other} quote; verify it as {kind.lower()}")
        return quote

    def _fetch(self, fetcher: Fetcher | None, pck: SgxExtensions, chain: CertChain) -> DcapCollateral | None:
        if fetcher is None:
            return None
        return fetch_collateral(
            fetcher,
            tdx=self._tdx,
            fmspc=pck.fmspc,
            pck_ca=pck_ca_kind(chain.issuer_ca),
            base_url=self._pcs_base_url,
            root_ca_crl_url=self._root_ca_crl_url,
        )


class TdxVerifier(_DcapVerifier):
    """Verifies Intel TDX quotes (v4, v5; TD 1.0 and TD 1.5 bodies) with DCAP collateral."""

    tee: ClassVar[Tee] = Tee.TDX
    _tdx: ClassVar[bool] = True


class SgxVerifier(_DcapVerifier):
    """Verifies Intel SGX ECDSA quotes (v3) with DCAP collateral."""

    tee: ClassVar[Tee] = Tee.SGX
    _tdx: ClassVar[bool] = False


def _verify_quote(
    quote: Quote, collateral: Collateral, *, roots: Sequence[x509.Certificate], at: datetime, allow_simulator: bool
) -> tuple[CertChain, SgxExtensions]:
    """PCK chain, QE report signature, QE binding, quote signature; the PCK's SGX extension."""
    if quote.header.qe_vendor_id != INTEL_QE_VENDOR_ID:
        raise MalformedEvidence(f"unknown QE vendor id {quote.header.qe_vendor_id.hex()} (not Intel's QE)")
    certs = load_pck_chain(quote.certification.pck_chain_pem)
    chain = walk_chain(
        [*certs, *collateral.certificates],
        roots=roots,
        at=at,
        allow_simulator=allow_simulator,
        what="the PCK certificate chain",
    )
    pck_key = p256_key(chain.leaf, "PCK keys are ECDSA P-256")
    certification = quote.certification
    if not verify_raw_p256(pck_key, certification.qe_report_signature, certification.qe_report_raw):
        raise BadSignature(f"the QE report signature does not verify with the PCK key of {subject(chain.leaf)}")
    expected = hashlib.sha256(quote.attestation_key + certification.qe_auth_data).digest()
    report_data = certification.qe_report.report_data
    if report_data[:32] != expected or any(report_data[32:]):
        raise QeReportBindingMismatch(
            "the QE report data is not SHA-256(attestation key || QE authentication data) followed by zeros"
        )
    try:
        attestation_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + quote.attestation_key)
    except ValueError:
        raise MalformedEvidence("the attestation key is not a P-256 point") from None
    if not verify_raw_p256(attestation_key, quote.signature, quote.signed_bytes):
        raise BadSignature("the quote signature does not verify with the attestation key")
    return chain, sgx_extensions(chain.leaf)


@functools.lru_cache(maxsize=64)
def _describe(certificates: tuple[x509.Certificate, ...]) -> tuple[tuple[str, ...], str, bool]:
    """(subjects, anchor SHA-256, simulated) of a verified chain; cached, as a platform's chain repeats."""
    anchor = certificates[-1]
    return tuple(subject(cert) for cert in certificates), fingerprint(anchor), is_simulator_certificate(anchor)


def _claims(
    quote: Quote, chain: CertChain, pck: SgxExtensions, outcome: CollateralOutcome | None, at: datetime
) -> Claims:
    tee = Tee.TDX if quote.is_tdx else Tee.SGX
    vendor: dict[str, VendorValue] = {
        **body_fields(quote),
        "fmspc": pck.fmspc.hex(),
        "pce_svn": pck.pce_svn,
        "cpu_svn": pck.cpu_svn,
        "pce_id": pck.pce_id.hex(),
        "sgx_type": pck.sgx_type,
    }
    unchecked: dict[str, str] = {}
    if outcome is None:
        unchecked[f"{tee.value}.collateral"] = (
            "no DCAP collateral (TCB Info, QE Identity, CRLs) was given and fetching is off, so the TCB status and "
            "revocation were not checked"
        )
        revocation = "not checked (no collateral)"
    else:
        vendor.update(outcome.vendor_fields())
        revocation = f"PCK CRL and Intel SGX Root CA CRL checked at {rfc3339(at)}"
    return Claims(
        tee=tee,
        platform="intel-tdx" if quote.is_tdx else "intel-sgx",
        measurements=measurements(quote),
        report_data=quote.body.report_data,
        nonce=None,
        tcb={"pce_svn": pck.pce_svn},
        debug=quote.body.debug,
        hardware_id=None,
        signer=SignerChain(*_describe(chain.certificates), revocation=revocation),
        issued_at=None,
        vendor=vendor,
        unchecked=unchecked,
    )
