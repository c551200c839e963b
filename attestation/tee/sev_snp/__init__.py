"""AMD SEV-SNP: attestation report parser, AMD certificate chain, KDS collateral, and the verifier.

Modules: :mod:`.report` (the ATTESTATION_REPORT), :mod:`.tcb` (products and TCB_VERSION layouts), :mod:`.certs`
(VCEK/VLEK extensions), :mod:`.chain` (ARK -> ASK/ASVK -> VCEK/VLEK), :mod:`.binding` (certificate belongs to the
report), :mod:`.revocation` (ARK CRLs), :mod:`.kds` (AMD Key Distribution Service), :mod:`.verifier`.
"""

from attestation.tee.sev_snp.report import AttestationReport, SigningKey, parse_report
from attestation.tee.sev_snp.tcb import Product, TcbLayout, TcbVersion
from attestation.tee.sev_snp.verifier import SevSnpVerifier

__all__ = [
    "AttestationReport",
    "Product",
    "SevSnpVerifier",
    "SigningKey",
    "TcbLayout",
    "TcbVersion",
    "parse_report",
]
