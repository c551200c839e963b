"""Collateral: what a verifier needs besides the evidence and the trust roots."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509


@dataclass(frozen=True, slots=True)
class Collateral:
    """Certificates and revocation lists supplied with (or fetched for) a piece of evidence.

    Attributes:
        certificates: CA certificates that may serve as intermediates, in any order (for SNP: ASK, ASVK; an ARK
            here is only used if it equals a trusted root).
        signing_cert: The certificate of the key that signed the evidence, where the evidence does not carry it
            (SNP: the VCEK or VLEK).
        crls: Certificate revocation lists to check the chain against.
    """

    certificates: tuple[x509.Certificate, ...] = ()
    signing_cert: x509.Certificate | None = None
    crls: tuple[x509.CertificateRevocationList, ...] = ()

    def with_certificates(self, extra: tuple[x509.Certificate, ...]) -> Collateral:
        """A copy with ``extra`` appended to the candidate intermediates (duplicates dropped)."""
        known = set(self.certificates)  # certificates compare (and hash) by their DER encoding
        added = tuple(cert for cert in extra if cert not in known)
        return Collateral(self.certificates + added, self.signing_cert, self.crls)
