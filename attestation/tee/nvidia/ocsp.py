"""OCSP responses (RFC 6960) for the certificates of NVIDIA chains, verified offline at a given instant.

Each DER response is matched to certificates of the validated chains by CertID (issuer name hash, issuer key hash,
serial). A matched answer counts only if the response is signed by that certificate's issuer, or by a responder
certificate included in the response that the issuer issued for OCSP signing (id-kp-OCSPSigning), and only if
``thisUpdate <= at <= nextUpdate``. A revoked certificate is a decision (:class:`~attestation.errors.Revoked`,
certificateHold included unless ``allow_hold``); an "unknown" answer is no decision (:class:`OcspUnknown`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from attestation._x509 import check_validity, subject
from attestation.claims import rfc3339
from attestation.errors import BadChain, BadSignature, CouldNotVerify, Expired, MalformedEvidence, NotYetValid, Revoked
from attestation.tee.nvidia.chain import ValidatedChain

#: Every certificate of every chain had a good, fresh, verified answer.
GOOD = "good"
#: Some certificates had one, others none.
PARTIAL = "partial"
#: No certificate had one.
UNCHECKED = "unchecked"
MAX_RESPONSES = 32
MAX_RESPONSE_BYTES = 64 << 10


class OcspMalformed(MalformedEvidence):
    """An OCSP response does not decode."""


class OcspUnknown(CouldNotVerify):
    """The responder does not know the certificate, or did not answer successfully: no decision."""

    check = "revocation"


@dataclass(frozen=True, slots=True)
class OcspResult:
    """What the OCSP responses established.

    Attributes:
        status: :data:`GOOD`, :data:`PARTIAL` or :data:`UNCHECKED`.
        revocation: The same in words, for :attr:`attestation.claims.SignerChain.revocation`.
        good: Subjects of the certificates with a good answer.
        missing: Subjects of the certificates without one.
    """

    status: str
    revocation: str
    good: tuple[str, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Subject:
    cert: x509.Certificate
    issuer: x509.Certificate


def _subjects(chains: Sequence[ValidatedChain]) -> list[_Subject]:
    """Every non-root certificate of every chain with its issuer, without duplicates."""
    seen: set[x509.Certificate] = set()
    out: list[_Subject] = []
    for chain in chains:
        for cert, issuer in zip(chain.path, chain.path[1:], strict=False):
            if cert not in seen:
                seen.add(cert)
                out.append(_Subject(cert, issuer))
    return out


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    hasher = hashes.Hash(algorithm)
    hasher.update(data)
    return hasher.finalize()


def _key_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING content (what an OCSP key hash covers)."""
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)


def _matches(single: ocsp.OCSPSingleResponse, target: _Subject) -> bool:
    if single.serial_number != target.cert.serial_number:
        return False
    try:
        algorithm = single.hash_algorithm
    except (UnsupportedAlgorithm, ValueError):
        raise OcspMalformed("an OCSP response names a CertID hash algorithm this verifier does not know") from None
    return single.issuer_name_hash == _digest(algorithm, target.issuer.subject.public_bytes()) and (
        single.issuer_key_hash == _digest(algorithm, _key_bits(target.issuer))
    )


def _verify_signature(signer: x509.Certificate, response: ocsp.OCSPResponse) -> bool:
    key = signer.public_key()
    data, signature = response.tbs_response_bytes, response.signature
    try:
        algorithm = response.signature_hash_algorithm
    except (UnsupportedAlgorithm, ValueError):
        raise OcspMalformed("an OCSP response is signed with an algorithm this verifier does not know") from None
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _names_responder(cert: x509.Certificate, response: ocsp.OCSPResponse) -> bool:
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    return response.responder_key_hash == _digest(hashes.SHA1(), _key_bits(cert))  # noqa: S303 - RFC 6960 KeyHash


def _is_delegate(cert: x509.Certificate, issuer: x509.Certificate, at: datetime) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    if ExtendedKeyUsageOID.OCSP_SIGNING not in usages:
        return False
    check_validity((cert,), at)
    return True


def _check_signed_by_issuer_or_delegate(response: ocsp.OCSPResponse, issuer: x509.Certificate, at: datetime) -> None:
    if _names_responder(issuer, response):
        if _verify_signature(issuer, response):
            return
        raise BadSignature(f"OCSP response signed in the name of {subject(issuer)} does not verify")
    for candidate in response.certificates:
        if _names_responder(candidate, response):
            if not _is_delegate(candidate, issuer, at):
                raise BadChain(
                    f"OCSP responder {subject(candidate)} is not an OCSP signer delegated by {subject(issuer)}"
                )
            if _verify_signature(candidate, response):
                return
            raise BadSignature(f"OCSP response by {subject(candidate)} does not verify")
    raise BadChain(f"OCSP response is signed neither by {subject(issuer)} nor by a responder it delegated")


def _check_fresh(single: ocsp.OCSPSingleResponse, who: str, at: datetime) -> None:
    if at < single.this_update_utc:
        raise NotYetValid(f"OCSP answer for {who} is from {rfc3339(single.this_update_utc)}, after {rfc3339(at)}")
    if single.next_update_utc is None:
        raise Expired(f"OCSP answer for {who} has no nextUpdate, so its freshness at {rfc3339(at)} is unknown")
    if at > single.next_update_utc:
        raise Expired(f"OCSP answer for {who} expired at {rfc3339(single.next_update_utc)} (checked {rfc3339(at)})")


def _load(der: bytes, position: int) -> ocsp.OCSPResponse:
    if len(der) > MAX_RESPONSE_BYTES:
        raise OcspMalformed(f"OCSP response {position} is over {MAX_RESPONSE_BYTES} bytes")
    try:
        response = ocsp.load_der_ocsp_response(der)
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise OcspUnknown(f"OCSP response {position} is not successful: {response.response_status.name}")
        for cert in response.certificates:
            cert.subject  # noqa: B018 - force lazy parsing inside the guard
        return response
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise OcspMalformed(f"OCSP response {position} does not decode: {exc}") from None


def _apply(single: ocsp.OCSPSingleResponse, target: _Subject, allow_hold: bool) -> None:
    who = subject(target.cert)
    status = single.certificate_status
    if status is ocsp.OCSPCertStatus.UNKNOWN:
        raise OcspUnknown(f"the OCSP responder does not know {who}")
    if status is ocsp.OCSPCertStatus.REVOKED:
        reason = single.revocation_reason
        if reason is x509.ReasonFlags.certificate_hold and allow_hold:
            return
        when = single.revocation_time_utc
        raise Revoked(
            f"{who} is revoked (OCSP, {reason.name if reason else 'no reason given'}"
            f"{', since ' + rfc3339(when) if when else ''})"
        )


def check_ocsp(
    responses: Sequence[bytes],
    chains: Sequence[ValidatedChain],
    *,
    at: datetime,
    allow_hold: bool = False,
) -> OcspResult:
    """Verify ``responses`` against the certificates of ``chains`` at ``at`` (see the module docstring).

    Raises:
        OcspMalformed: A response does not decode.
        BadSignature, BadChain: A matching answer is not signed by the issuer or its delegated responder.
        Expired, NotYetValid: A matching answer is not fresh at ``at``.
        Revoked: A certificate is revoked.
        OcspUnknown: A response is not successful, or the responder does not know a certificate.
    """
    if len(responses) > MAX_RESPONSES:
        raise OcspMalformed(f"{len(responses)} OCSP responses (at most {MAX_RESPONSES})")
    targets = _subjects(chains)
    good: set[x509.Certificate] = set()
    for position, der in enumerate(responses):
        response = _load(bytes(der), position)
        for single in response.responses:
            for target in targets:
                if not _matches(single, target):
                    continue
                _check_signed_by_issuer_or_delegate(response, target.issuer, at)
                _check_fresh(single, subject(target.cert), at)
                _apply(single, target, allow_hold)
                good.add(target.cert)
    good_names = tuple(subject(t.cert) for t in targets if t.cert in good)
    missing = tuple(subject(t.cert) for t in targets if t.cert not in good)
    if not targets or not good_names:
        words = "not checked (no OCSP response)" if not responses else "not checked (no OCSP response matched)"
        return OcspResult(UNCHECKED, words, good_names, missing)
    if missing:
        words = f"OCSP: {len(good_names)} of {len(targets)} certificates good at {rfc3339(at)}; no answer for " + (
            "; ".join(missing)
        )
        return OcspResult(PARTIAL, words, good_names, missing)
    return OcspResult(GOOD, f"OCSP: all {len(targets)} certificates good at {rfc3339(at)}", good_names, missing)
