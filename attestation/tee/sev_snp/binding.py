"""Whether a verified VCEK/VLEK belongs to the report it is used for (raises :class:`CertificateMismatch`).

A VCEK is derived from one chip's secret and one TCB, so its certificate must name the report's CHIP_ID (hwID)
and REPORTED_TCB (the SPL extensions); a VLEK is certified under the ASVK and carries no chip id. The report's
SIGNING_KEY says which kind signed it, and the product of the CPU (CPUID, version 3+) must be the ARK's.
"""

from __future__ import annotations

from attestation.errors import CertificateMismatch
from attestation.tee.sev_snp.certs import Endorsement, KeyKind
from attestation.tee.sev_snp.chain import AmdChain
from attestation.tee.sev_snp.report import AttestationReport, SigningKey
from attestation.tee.sev_snp.tcb import Product, TcbLayout, TcbVersion, product_from_cpuid

_KIND_OF_SIGNER = {SigningKey.VCEK: KeyKind.VCEK, SigningKey.VLEK: KeyKind.VLEK}


def tcb_layout(report: AttestationReport, chain: AmdChain) -> TcbLayout:
    """The report's TCB layout: from its CPUID family (version 3+), else from the product of the verified chain.

    Raises:
        CertificateMismatch: The CPUID names a product other than the chain's.
    """
    if report.cpuid_fam_id is not None and report.cpuid_mod_id is not None:
        cpu = product_from_cpuid(report.cpuid_fam_id, report.cpuid_mod_id)
        if cpu is not None and cpu is not chain.product:
            raise CertificateMismatch(
                f"the report comes from a {cpu} CPU (CPUID family {report.cpuid_fam_id:#x} model "
                f"{report.cpuid_mod_id:#x}) but its signing key chains to the {chain.product} ARK"
            )
    return report.cpuid_layout() or TcbLayout.for_product(chain.product)


def check_binding(report: AttestationReport, chain: AmdChain, endorsement: Endorsement, layout: TcbLayout) -> None:
    """Raise :class:`CertificateMismatch` unless ``endorsement`` (of ``chain.leaf``) is the key of ``report``."""
    _check_kind(report, chain, endorsement)
    if endorsement.product_line != chain.product:
        raise CertificateMismatch(
            f"the {endorsement.kind.upper()} is for product '{endorsement.product_name}' but chains to the "
            f"{chain.product} ARK"
        )
    reported = TcbVersion.decode(report.reported_tcb, layout)
    if reported.components() != endorsement.tcb.components():
        raise CertificateMismatch(
            f"the {endorsement.kind.upper()} certifies TCB {endorsement.tcb.components()} but the report's "
            f"REPORTED_TCB is {reported.components()}; use the {endorsement.kind.upper()} for the reported TCB"
        )
    _check_hwid(report, endorsement, chain.product)


def _check_kind(report: AttestationReport, chain: AmdChain, endorsement: Endorsement) -> None:
    if endorsement.kind is not chain.issues:
        raise CertificateMismatch(
            f"a {endorsement.kind.upper()} certificate issued by an {'ASVK' if chain.issues is KeyKind.VLEK else 'ASK'}"
            "; VCEKs come from the ASK and VLEKs from the ASVK"
        )
    signer = _KIND_OF_SIGNER.get(report.signing_key)
    if signer is not endorsement.kind:
        raise CertificateMismatch(
            f"the report's SIGNING_KEY says {report.signing_key.name} but the certificate given is a "
            f"{endorsement.kind.upper()}"
        )


def _check_hwid(report: AttestationReport, endorsement: Endorsement, product: Product) -> None:
    hwid = endorsement.hwid
    if hwid is None or report.chip_id_masked:  # a VLEK, or CHIP_ID masked by the platform owner
        return
    turin_short = (
        product is Product.TURIN and len(hwid) == 8 and report.chip_id[:8] == hwid and not any(report.chip_id[8:])
    )
    if hwid != report.chip_id and not turin_short:
        raise CertificateMismatch(
            f"the VCEK is for chip {hwid.hex()[:16]}… but the report's CHIP_ID is {report.chip_id.hex()[:16]}…"
        )
