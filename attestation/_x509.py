"""Small X.509 helpers shared by the verifiers: lenient loading, fingerprints, validity at a given time."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.utils import CryptographyDeprecationWarning

from attestation.errors import CertificateMismatch, Expired, MalformedEvidence, NotYetValid, UntrustedSimulatorRoot

#: Organization name that every evidence-simulator certificate carries; such roots are refused unless
#: the caller explicitly asks to trust simulator roots.
SIMULATOR_ORGANIZATION = "ccdeploy evidence simulator - NOT A TEE"

_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"


#: What cryptography raises on a malformed certificate. Some fields are parsed lazily, so a bad one surfaces only on
#: first access, as one of these (found by fuzzing; several are not ValueErrors) or only as a warning (a
#: three-letter country code), which the loaders turn into an error.
X509_PARSE_ERRORS = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)
_CERTIFICATE_PARSE_ERRORS = (*X509_PARSE_ERRORS, Warning)


@contextlib.contextmanager
def _parsing(what: str) -> Iterator[None]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            # Every real AMD VCEK/VLEK has serial number 0, which cryptography deprecates (RFC 5280 wants a positive
            # serial) and warns about on access. It is tolerated here, in one place, and covered by a regression test.
            warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning, message=".*serial")
            yield
    except _CERTIFICATE_PARSE_ERRORS as exc:
        raise MalformedEvidence(f"{what} is not a DER X.509 certificate that parses: {exc}") from None


def _touch(cert: x509.Certificate) -> x509.Certificate:
    """Parse the lazily decoded fields now, so a malformed certificate fails here with a typed error."""
    cert.serial_number  # noqa: B018
    for name in (cert.subject, cert.issuer):
        for attribute in name:
            attribute.value  # noqa: B018
    cert.extensions  # noqa: B018
    cert.public_key()
    return cert


def load_certificate_der(der: bytes, what: str) -> x509.Certificate:
    """Parse one DER certificate completely, or raise :class:`MalformedEvidence`.

    Tolerates the serial number 0 of AMD's VCEKs (see :func:`_parsing`).
    """
    with _parsing(what):
        return _touch(x509.load_der_x509_certificate(der))


def load_certificates(data: bytes, what: str) -> tuple[x509.Certificate, ...]:
    """Parse a PEM bundle (any number of certificates, any order) or a single DER certificate."""
    if _PEM_BEGIN not in data:
        return (load_certificate_der(data, what),)
    with _parsing(what):
        return tuple(_touch(cert) for cert in x509.load_pem_x509_certificates(data))


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


def p384_key(cert: x509.Certificate, why: str) -> ec.EllipticCurvePublicKey:
    """The certificate's ECDSA P-384 public key, or :class:`CertificateMismatch` (``why`` says who requires P-384)."""
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise CertificateMismatch(f"{subject(cert)} does not certify an ECDSA P-384 key; {why}")
    return key


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
