"""Small X.509 helpers shared by the verifiers: lenient loading, fingerprints, validity at a given time."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.utils import CryptographyDeprecationWarning

from attestation.errors import Expired, MalformedEvidence, NotYetValid, UntrustedSimulatorRoot

#: Organization name that every evidence-simulator certificate carries; such roots are refused unless
#: the caller explicitly asks to trust simulator roots.
SIMULATOR_ORGANIZATION = "ccdeploy evidence simulator - NOT A TEE"

_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"


def load_certificate_der(der: bytes, what: str) -> x509.Certificate:
    """Parse one DER certificate, tolerating the non-positive serial numbers AMD's VCEKs carry.

    cryptography warns (and plans to refuse) on serial number 0; every real VCEK/VLEK has it, so the warning
    is silenced here, in one place, and covered by a regression test.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            cert = x509.load_der_x509_certificate(der)
            cert.serial_number  # noqa: B018  (the warning is raised lazily, on first access)
    except ValueError as exc:
        raise MalformedEvidence(f"{what} is not a DER X.509 certificate: {exc}") from None
    return cert


def load_certificates(data: bytes, what: str) -> tuple[x509.Certificate, ...]:
    """Parse a PEM bundle (any number of certificates, any order) or a single DER certificate."""
    if _PEM_BEGIN in data:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                certs = tuple(x509.load_pem_x509_certificates(data))
                for cert in certs:
                    cert.serial_number  # noqa: B018
        except ValueError as exc:
            raise MalformedEvidence(f"{what} holds a PEM block that is not a certificate: {exc}") from None
        return certs
    return (load_certificate_der(data, what),)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER encoding, lower-case hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def subject(cert: x509.Certificate) -> str:
    """The certificate's subject as an RFC 4514 string."""
    return cert.subject.rfc4514_string()


def is_self_signed(cert: x509.Certificate) -> bool:
    """Whether subject equals issuer and the certificate's own key verifies its signature."""
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def is_simulator_certificate(cert: x509.Certificate) -> bool:
    """Whether the certificate was made by :mod:`attestation.simulator`."""
    names = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    return any(name.value == SIMULATOR_ORGANIZATION for name in names)


def check_anchor_allowed(anchor: x509.Certificate, *, allow_simulator: bool) -> None:
    """Refuse a simulator root unless simulator roots are explicitly trusted."""
    if is_simulator_certificate(anchor) and not allow_simulator:
        raise UntrustedSimulatorRoot(
            f"the chain ends in an evidence-simulator root ({subject(anchor)}); simulator evidence proves nothing "
            "about real hardware and is trusted only with unsafe_allow_simulator_roots"
        )


def check_validity(certs: Iterable[x509.Certificate], at: datetime) -> None:
    """Raise :class:`Expired` or :class:`NotYetValid` unless every certificate is valid at ``at`` (inclusive)."""
    for cert in certs:
        if at < cert.not_valid_before_utc:
            raise NotYetValid(
                f"certificate {subject(cert)} is not valid before {cert.not_valid_before_utc.isoformat()} "
                f"(checked at {at.isoformat()})"
            )
        if at > cert.not_valid_after_utc:
            raise Expired(
                f"certificate {subject(cert)} expired at {cert.not_valid_after_utc.isoformat()} "
                f"(checked at {at.isoformat()})"
            )
