"""Collateral: what a verifier needs besides the evidence and the trust roots."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from cryptography import x509

if TYPE_CHECKING:
    from attestation.tee.dcap.collateral import DcapCollateral


@dataclass(frozen=True, slots=True)
class Collateral:
    """Certificates and revocation lists supplied with (or fetched for) a piece of evidence.

    Attributes:
        certificates: CA certificates that may serve as intermediates, in any order (for SNP: ASK, ASVK; an ARK
            here is only used if it equals a trusted root).
        signing_cert: The certificate of the key that signed the evidence, where the evidence does not carry it
            (SNP: the VCEK or VLEK).
        crls: Certificate revocation lists to check the chain against.
        dcap: Intel DCAP collateral for TDX and SGX quotes (TCB Info, QE Identity, their issuer chain, PCK and
            root CA CRLs), from dcap-qvl JSON or raw Intel PCS responses.
        jwks: A JSON Web Key Set document (Azure Attestation's ``/certs`` answer) to verify tokens with.
        rims: NVIDIA Reference Integrity Manifests (SWID XML with an enveloped signature), driver and VBIOS.
        ocsp: DER OCSP responses for certificates of an NVIDIA chain (device or RIM signer).
    """

    certificates: tuple[x509.Certificate, ...] = ()
    signing_cert: x509.Certificate | None = None
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    dcap: DcapCollateral | None = None
    jwks: bytes | None = None
    rims: tuple[bytes, ...] = ()
    ocsp: tuple[bytes, ...] = ()

    def with_certificates(self, extra: tuple[x509.Certificate, ...]) -> Collateral:
        """A copy with ``extra`` appended to the candidate intermediates (duplicates dropped)."""
        known = set(self.certificates)  # certificates compare (and hash) by their DER encoding
        added = tuple(cert for cert in extra if cert not in known)
        return replace(self, certificates=self.certificates + added)
