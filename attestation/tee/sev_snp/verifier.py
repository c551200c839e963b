"""The SEV-SNP verifier: report -> VCEK/VLEK -> AMD chain -> binding -> signature -> revocation -> claims."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import ClassVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attestation._x509 import fingerprint, is_simulator_certificate, p384_key, subject
from attestation.claims import Claims, SignerChain, Tee, VendorValue
from attestation.collateral import Collateral
from attestation.errors import BadSignature, CollateralMissing, FetchFailed, MalformedEvidence
from attestation.fetch import Fetcher
from attestation.tee.sev_snp import kds
from attestation.tee.sev_snp.binding import check_binding, tcb_layout
from attestation.tee.sev_snp.certs import read_endorsement
from attestation.tee.sev_snp.chain import AmdChain, common_name, walk_chain
from attestation.tee.sev_snp.fields import vendor_fields
from attestation.tee.sev_snp.report import AttestationReport, SigningKey, looks_like_report, parse_report
from attestation.tee.sev_snp.revocation import check_revocation
from attestation.tee.sev_snp.tcb import Product, TcbLayout, TcbVersion, product_from_cpuid


class SevSnpVerifier:
    """Verifies AMD SEV-SNP attestation reports (versions 2 to 5) into TEE-neutral claims.

    Pure: it reads no clock, environment or file, and reaches the network only through the ``fetcher`` passed to
    :meth:`verify`.

    Args:
        kds_base_url: Where AMD's Key Distribution Service answers (a mirror or a test server may replace it).
        fetch_crls: With a fetcher and no CRL in the collateral, also fetch the ARK's CRL from KDS and check the
            chain against it, failing closed (FetchFailed) if it cannot be fetched. Off by default, so that a
            verification with every certificate at hand needs no network; CRLs in the collateral are always
            checked.
    """

    tee: ClassVar[Tee] = Tee.SEV_SNP

    def __init__(self, *, kds_base_url: str = kds.KDS_URL, fetch_crls: bool = False) -> None:
        self._kds_base_url = kds_base_url
        self._fetch_crls = fetch_crls

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
        """Verify a raw 1184-byte report at ``at`` against ``roots`` (AMD ARKs) and return its claims.

        The VCEK or VLEK comes from ``collateral.signing_cert``, or else (VCEK only) from KDS through ``fetcher``.

        Raises:
            MalformedEvidence: Not a report of a supported version, or not signed (SIGNING_KEY none).
            BadChain: The signing certificate does not chain to one of ``roots`` (wrong ARK, another product's ASK).
            CertificateMismatch: The certificate is not this report's key (kind, TCB, chip id, product).
            BadSignature: The report's signature does not verify.
            OutsideValidity: A certificate is not valid at ``at``.
            Revoked: The ASK/ASVK is on the ARK's CRL.
            CollateralMissing: ``at`` is None, no VCEK and offline, or a CRL is not current at ``at``.
            FetchFailed: KDS could not be reached or gave an unexpected answer.
        """
        report = parse_report(evidence)
        if report.signing_key is SigningKey.NONE:
            raise MalformedEvidence("the report is not signed (SIGNING_KEY is none), so it proves nothing")
        if at is None:
            raise CollateralMissing("SEV-SNP reports carry no time; pass an explicit time")
        if at.tzinfo is None:
            raise ValueError("the time of the check must be timezone-aware")
        leaf = collateral.signing_cert or self._fetch_vcek(report, roots, fetcher)
        chain = walk_chain(
            leaf, candidates=collateral.certificates, roots=roots, at=at, allow_simulator=allow_simulator
        )
        layout = tcb_layout(report, chain)
        check_binding(report, chain, read_endorsement(leaf), layout)
        _check_signature(report, leaf)
        revocation = check_revocation(chain, self._crls(chain, collateral, fetcher), at)
        return _claims(report, chain, layout, revocation)

    def decode(self, evidence: bytes) -> Mapping[str, VendorValue]:
        """Every field of the report, without verifying anything (for ``ccdeploy attest inspect``).

        A version-2 report does not say its CPU family; its TCB layout is then guessed from CHIP_ID (Turin fills only
        the first 8 bytes), and ``tcb_layout`` names the guess.
        """
        report = parse_report(evidence)
        return vendor_fields(report, report.cpuid_layout() or _guess_layout(report))

    def looks_like(self, evidence: bytes) -> bool:
        """1184 bytes with a supported version number."""
        return looks_like_report(evidence)

    def _fetch_vcek(
        self, report: AttestationReport, roots: Sequence[x509.Certificate], fetcher: Fetcher | None
    ) -> x509.Certificate:
        if report.signing_key is SigningKey.VLEK:
            raise CollateralMissing(
                "the report is signed by a VLEK, which AMD KDS does not hand out; pass the VLEK certificate "
                "from the cloud provider"
            )
        if fetcher is None:
            raise CollateralMissing("no VCEK given and offline; pass the VCEK certificate or allow fetching")
        if report.chip_id_masked:
            raise CollateralMissing("CHIP_ID is masked, so KDS cannot be asked for the VCEK; pass the VCEK")
        failures: list[FetchFailed] = []
        for product in _candidate_products(report, roots):
            tcb = TcbVersion.decode(report.reported_tcb, TcbLayout.for_product(product))
            try:
                return kds.fetch_vcek(fetcher, product, report.chip_id, tcb, base_url=self._kds_base_url)
            except FetchFailed as failure:
                failures.append(failure)
        if not failures:
            raise CollateralMissing("no trusted AMD root names a product to fetch the VCEK for")
        raise FetchFailed("; ".join(failure.message for failure in failures))

    def _crls(
        self, chain: AmdChain, collateral: Collateral, fetcher: Fetcher | None
    ) -> tuple[x509.CertificateRevocationList, ...]:
        if collateral.crls or fetcher is None or not self._fetch_crls:
            return collateral.crls
        return (kds.fetch_crl(fetcher, chain.product, chain.issues, base_url=self._kds_base_url),)


def _check_signature(report: AttestationReport, leaf: x509.Certificate) -> None:
    key = p384_key(leaf, "SEV-SNP reports are signed with ECDSA P-384")
    signature = encode_dss_signature(report.signature_r, report.signature_s)
    try:
        key.verify(signature, report.signed_bytes, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise BadSignature(f"the report's signature does not verify with the key of {subject(leaf)}") from None


def _candidate_products(report: AttestationReport, roots: Sequence[x509.Certificate]) -> list[Product]:
    if report.cpuid_fam_id is not None and report.cpuid_mod_id is not None:
        cpu = product_from_cpuid(report.cpuid_fam_id, report.cpuid_mod_id)
        if cpu is not None:
            return [cpu]
    trusted = {common_name(root).removeprefix("ARK-") for root in roots}
    products = [product for product in Product if product.value in trusted]
    if _guess_layout(report) is TcbLayout.TURIN:  # try the likeliest first: KDS rate-limits every request
        products.sort(key=lambda product: product is not Product.TURIN)
    return products


def _guess_layout(report: AttestationReport) -> TcbLayout:
    turin_like = any(report.chip_id[:8]) and not any(report.chip_id[8:])
    return TcbLayout.TURIN if turin_like else TcbLayout.MILAN_GENOA


def _claims(report: AttestationReport, chain: AmdChain, layout: TcbLayout, revocation: str) -> Claims:
    return Claims(
        tee=Tee.SEV_SNP,
        platform=f"amd-sev-snp/{chain.product}",
        measurements={"measurement": report.measurement},
        report_data=report.report_data,
        nonce=None,
        tcb=TcbVersion.decode(report.reported_tcb, layout).components(),
        debug=report.policy.debug,
        hardware_id=None if report.chip_id_masked else report.chip_id.hex(),
        signer=SignerChain(
            subjects=tuple(subject(cert) for cert in chain.certificates),
            root_sha256=fingerprint(chain.ark),
            simulated=is_simulator_certificate(chain.ark),
            revocation=revocation,
        ),
        issued_at=None,
        vendor=vendor_fields(report, layout),
    )
