"""JWT/JWS helpers shared by the token verifiers (Azure Attestation, NVIDIA NRAS).

Compact JWS splitting with typed errors, JWKS parsing, key selection by ``kid``, the check of a JWK's ``x5c``
certificate (same public key as the JWK, valid at the time of the check, self-signature or chain to an anchor),
signature verification with PyJWT under a pinned algorithm list, and the exp/nbf/iat checks at an injected time.

Nothing here reads a payload claim before the signature has verified: :func:`verify_signature` returns the payload
only from PyJWT's verified decode; :func:`split_compact` decodes the header alone (it selects the key).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from attestation._x509 import (
    check_anchor_allowed,
    check_validity,
    fingerprint,
    is_simulator_certificate,
    load_certificate_der,
    subject,
)
from attestation.claims import SignerChain
from attestation.errors import (
    BadChain,
    BadSignature,
    CertificateMismatch,
    EvidenceInvalid,
    Expired,
    MalformedEvidence,
    NotYetValid,
)

#: Tokens and key sets larger than this are refused before any parsing.
MAX_TOKEN_BYTES = 1 << 20

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class AlgorithmNotAllowed(BadSignature):
    """The token names a signature algorithm outside the pinned list (``none``, HS256, ...)."""


class UnknownSigningKey(BadChain):
    """The token's ``kid`` names no key of the trusted key set."""


class IssuerMismatch(EvidenceInvalid):
    """The token was issued by another service than the one expected (``iss``)."""

    check = "issuer"


class KeySetUrlMismatch(IssuerMismatch):
    """The token's ``jku`` header is not the expected issuer's key-set URL."""


@dataclass(frozen=True, slots=True)
class CompactJws:
    """A compact JWS split into its parts; the payload is kept encoded (it is unverified)."""

    token: str
    header: Mapping[str, Any]
    encoded_payload: str
    signature: bytes

    @property
    def alg(self) -> str:
        """The header's ``alg`` (checked to be a string by :func:`split_compact`)."""
        return str(self.header["alg"])

    @property
    def kid(self) -> str | None:
        """The header's ``kid``, if any."""
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None


@dataclass(frozen=True, slots=True)
class Jwk:
    """One key of a JWKS: its id, its raw members, its key (from ``n``/``e`` or ``x``/``y``) and its ``x5c``."""

    kid: str | None
    members: Mapping[str, Any]
    key: PublicKey | None
    certificates: tuple[x509.Certificate, ...]


def b64url_decode(text: str, what: str) -> bytes:
    """Decode unpadded base64url (RFC 7515 §2), or raise :class:`MalformedEvidence`."""
    if not isinstance(text, str) or not text.isascii() or "=" in text:
        raise MalformedEvidence(f"{what} is not unpadded base64url text")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MalformedEvidence(f"{what} is not unpadded base64url text") from None


def json_object(data: bytes, what: str) -> dict[str, Any]:
    """Parse ``data`` as a UTF-8 JSON object, or raise :class:`MalformedEvidence`."""
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedEvidence(f"{what} is not UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise MalformedEvidence(f"{what} is not a JSON object")
    return value


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def split_compact(token: bytes | str, what: str = "the token") -> CompactJws:
    """Split a compact JWS (``header.payload.signature``) and decode its header; the payload stays encoded."""
    if isinstance(token, bytes):
        if len(token) > MAX_TOKEN_BYTES:
            raise MalformedEvidence(f"{what} is larger than {MAX_TOKEN_BYTES} bytes")
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedEvidence(f"{what} is not ASCII text") from None
    token = token.strip()
    if len(token) > MAX_TOKEN_BYTES:
        raise MalformedEvidence(f"{what} is larger than {MAX_TOKEN_BYTES} bytes")
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedEvidence(f"{what} is not a compact JWS (header.payload.signature)")
    header = json_object(b64url_decode(parts[0], f"{what}'s header"), f"{what}'s header")
    if not isinstance(header.get("alg"), str):
        raise MalformedEvidence(f"{what}'s header has no string 'alg'")
    if "crit" in header or "b64" in header:
        raise MalformedEvidence(f"{what}'s header has extensions ('crit', 'b64'), which are not supported")
    signature = b64url_decode(parts[2], f"{what}'s signature")
    b64url_decode(parts[1], f"{what}'s payload")  # well-formed only; its content is read after verification
    return CompactJws(token, header, parts[1], signature)


def unverified_payload(jws: CompactJws) -> dict[str, Any]:
    """The payload **without any verification**: for inspection (``attest inspect``) only, never for decisions."""
    return json_object(b64url_decode(jws.encoded_payload, "the token's payload"), "the token's payload")


def parse_jwks(data: bytes, what: str = "the JWKS") -> tuple[Jwk, ...]:
    """Parse a JSON Web Key Set: every key's id, key material and ``x5c`` certificates (not yet checked)."""
    if len(data) > MAX_TOKEN_BYTES:
        raise MalformedEvidence(f"{what} is larger than {MAX_TOKEN_BYTES} bytes")
    document = json_object(data, what)
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise MalformedEvidence(f"{what} has no 'keys' array")
    return tuple(_parse_jwk(entry, f"{what} key {i}") for i, entry in enumerate(keys))


def _parse_jwk(entry: object, what: str) -> Jwk:
    if not isinstance(entry, dict):
        raise MalformedEvidence(f"{what} is not a JSON object")
    kid = entry.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise MalformedEvidence(f"{what} has a non-string 'kid'")
    chain = entry.get("x5c", [])
    if not isinstance(chain, list) or not all(isinstance(item, str) for item in chain):
        raise MalformedEvidence(f"{what} has an 'x5c' that is not an array of strings")
    certificates = tuple(_x5c_certificate(item, f"{what} x5c[{i}]") for i, item in enumerate(chain))
    return Jwk(kid, entry, _jwk_key(entry, what), certificates)


def _x5c_certificate(text: str, what: str) -> x509.Certificate:
    try:
        der = base64.b64decode(text, validate=True)  # x5c is standard base64 (RFC 7517 §4.7), not base64url
    except (binascii.Error, ValueError):
        raise MalformedEvidence(f"{what} is not base64") from None
    return load_certificate_der(der, what)


def _jwk_key(entry: Mapping[str, Any], what: str) -> PublicKey | None:
    kty = entry.get("kty")
    key: object
    try:
        if kty == "RSA" and "n" in entry:
            key = RSAAlgorithm.from_jwk(dict(entry))
        elif kty == "EC" and "x" in entry:
            key = ECAlgorithm.from_jwk(dict(entry))
        else:
            return None
    except (jwt.exceptions.PyJWTError, ValueError, TypeError, KeyError):
        raise MalformedEvidence(f"{what} has key members that do not form a {kty} public key") from None
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return key
    raise MalformedEvidence(f"{what} holds a private key; a key set must hold public keys only")


def select_key(keys: Sequence[Jwk], kid: str | None, what: str = "the JWKS") -> Jwk:
    """The key whose ``kid`` equals the token's, or :class:`UnknownSigningKey`."""
    if kid is None:
        raise MalformedEvidence("the token's header has no 'kid' to select its signing key with")
    matches = [key for key in keys if key.kid == kid]
    if not matches:
        raise UnknownSigningKey(f"no key with kid {kid!r} in {what}")
    if len(matches) > 1:
        raise MalformedEvidence(f"{what} has {len(matches)} keys with kid {kid!r}")
    return matches[0]


def _same_key(a: PublicKey, b: PublicKey) -> bool:
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return a.public_bytes(*spki) == b.public_bytes(*spki)


def certified_key(jwk: Jwk) -> PublicKey:
    """The JWK's public key, which its first ``x5c`` certificate must hold (when the JWK states its own too)."""
    if not jwk.certificates:
        raise BadChain(f"key {jwk.kid!r} has no x5c certificate; an uncertified key is not accepted")
    cert_key = jwk.certificates[0].public_key()
    if not isinstance(cert_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise CertificateMismatch(f"the x5c certificate of key {jwk.kid!r} holds neither an RSA nor an EC key")
    if jwk.key is not None and not _same_key(jwk.key, cert_key):
        raise CertificateMismatch(
            f"the x5c certificate of key {jwk.kid!r} ({subject(jwk.certificates[0])}) certifies another public key "
            "than the JWK's"
        )
    return cert_key


def check_certificates(
    jwk: Jwk, at: datetime, anchors: Sequence[x509.Certificate], *, allow_simulator: bool
) -> SignerChain:
    """Check the JWK's ``x5c`` path at ``at``: validity, each link's signature, and its anchor.

    A single self-signed certificate (Azure Attestation's signing certificates) has its self-signature checked and is
    its own anchor: trust in it comes from the key set the caller pinned or fetched from the expected issuer. A longer
    path is checked link by link and must end in one of ``anchors`` (or, when none are given, in a self-signed
    certificate of the path).
    """
    path = jwk.certificates
    check_validity(path, at)
    for child, parent in itertools.pairwise(path):
        _check_issued_by(child, parent)
    last = path[-1]
    if anchors:
        anchor = next((root for root in anchors if root == last), None)
        if anchor is None:
            anchor = next((root for root in anchors if _issued_by(last, root)), None)
            if anchor is None:
                raise BadChain(f"the x5c path of key {jwk.kid!r} does not lead to a trusted root")
            check_validity((anchor,), at)
            path = (*path, anchor)
    else:
        if last.subject != last.issuer:
            raise BadChain(f"the x5c path of key {jwk.kid!r} ends in {subject(last)}, which is not self-signed")
        _check_issued_by(last, last)
        anchor = last
    check_anchor_allowed(anchor, allow_simulator=allow_simulator)
    return SignerChain(
        subjects=tuple(subject(cert) for cert in path),
        root_sha256=fingerprint(anchor),
        simulated=is_simulator_certificate(anchor),
        revocation="not checked (JWKS signing certificates carry no revocation information)",
    )


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _check_issued_by(child: x509.Certificate, parent: x509.Certificate) -> None:
    if not _issued_by(child, parent):
        raise BadChain(f"{subject(child)} is not signed by {subject(parent)}")


def check_algorithm(jws: CompactJws, algorithms: Sequence[str]) -> None:
    """Refuse a token whose ``alg`` is not pinned (``none`` and HMAC are never accepted)."""
    if jws.alg not in algorithms:
        raise AlgorithmNotAllowed(f"the token is signed with {jws.alg!r}; only {', '.join(algorithms)} is accepted")


def verify_signature(jws: CompactJws, key: PublicKey, algorithms: Sequence[str]) -> dict[str, Any]:
    """Verify the JWS signature with PyJWT under the pinned ``algorithms``; return the (now verified) payload.

    PyJWT's JWS layer checks only the signature, so no claim (and no clock) is consulted here.
    """
    check_algorithm(jws, algorithms)
    try:
        decoded = jwt.api_jws.PyJWS().decode_complete(jws.token, key=key, algorithms=list(algorithms))
    except jwt.exceptions.InvalidAlgorithmError as exc:
        raise AlgorithmNotAllowed(f"the token's algorithm is refused: {exc}") from None
    except jwt.exceptions.InvalidSignatureError:
        raise BadSignature(f"the token's {jws.alg} signature does not verify with key {jws.kid!r}") from None
    except (jwt.exceptions.PyJWTError, ValueError, TypeError) as exc:
        raise BadSignature(f"the token's signature cannot be checked with key {jws.kid!r}: {exc}") from None
    payload = decoded["payload"]
    return json_object(payload if isinstance(payload, bytes) else b"", "the token's payload")


def numeric_date(payload: Mapping[str, Any], name: str) -> datetime | None:
    """A NumericDate claim (RFC 7519 §2) as an aware datetime, ``None`` when absent."""
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedEvidence(f"the token's {name!r} is not a number")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedEvidence(f"the token's {name!r} is not a representable time") from None


def check_times(payload: Mapping[str, Any], at: datetime, skew: timedelta, *, require_exp: bool = True) -> None:
    """Check exp, nbf and iat at ``at`` (never the wall clock), each with ``skew`` of tolerance."""
    exp, nbf, iat = (numeric_date(payload, name) for name in ("exp", "nbf", "iat"))
    tolerance = f"checked at {at.isoformat()} with {int(skew.total_seconds())} s clock skew"
    if exp is None:
        if require_exp:
            raise MalformedEvidence("the token has no 'exp'; a token without expiry is not accepted")
    # The skew moves ``at``, never the token's times: those may sit at the ends of datetime's range.
    elif at - skew >= exp:
        raise Expired(f"the token expired at {exp.isoformat()} ({tolerance})")
    if nbf is not None and at + skew < nbf:
        raise NotYetValid(f"the token is not valid before {nbf.isoformat()} ({tolerance})")
    if iat is not None and at + skew < iat:
        raise NotYetValid(f"the token was issued at {iat.isoformat()}, after the time of the check ({tolerance})")
