"""Verifier of Microsoft Azure Attestation (MAA) tokens.

A token is accepted only when, in this order: its ``alg`` is pinned; its ``jku`` header is the expected provider's
``/certs`` URL; the key named by its ``kid`` is in the provider's JWKS and its ``x5c`` certificate holds that key; the
signature verifies (PyJWT); ``iss`` is the expected provider; exp/nbf/iat hold at the time of the check; the ``x5c``
certificates are valid then. One regional signing key serves several providers, so a valid signature alone proves
nothing about who issued the token: ``iss`` and ``jku`` are pinned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

from cryptography import x509

from attestation import _jwt
from attestation.claims import Claims, Tee, VendorValue
from attestation.collateral import Collateral
from attestation.errors import CollateralMissing, MalformedEvidence
from attestation.fetch import Fetcher
from attestation.tee.maa.mapping import to_claims

_SUPPORTED_ALGORITHMS = frozenset({"RS256", "PS256"})


def normalize_provider_url(url: str) -> str:
    """``https://<host>[:port][/path]`` without a trailing slash; a bare host name gets ``https://``.

    Raises:
        ValueError: Not an https URL of a host (a programming or configuration error, not a verdict).
    """
    text = url.strip()
    if "://" not in text:
        text = f"https://{text}"
    if "\\" in text or "@" in text:  # userinfo and backslashes let two parsers see two different hosts
        raise ValueError(f"the attestation provider must be an https URL of a host, not {url!r}")
    parts = urlsplit(text)
    if parts.scheme.lower() != "https" or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"the attestation provider must be an https URL of a host, not {url!r}")
    port = parts.port
    netloc = parts.hostname.lower() + (f":{port}" if port not in (None, 443) else "")
    return f"https://{netloc}{parts.path.rstrip('/')}"


class MaaVerifier:
    """Verifier of Azure Attestation tokens (the :class:`attestation.verify.Verifier` protocol).

    Args:
        issuer: The attestation provider the token must come from (e.g. ``https://myprovider.wus.attest.azure.net``).
            ``None`` makes :meth:`verify` raise :class:`CollateralMissing`: without it nothing binds the token to a
            provider.
        clock_skew: Tolerance for exp, nbf and iat.
        algorithms: The accepted signature algorithms (RS256 by default; PS256 may be added).
    """

    tee: ClassVar[Tee] = Tee.MAA

    def __init__(
        self,
        issuer: str | None = None,
        *,
        clock_skew: timedelta = timedelta(seconds=60),
        algorithms: Sequence[str] = ("RS256",),
    ) -> None:
        unsupported = set(algorithms) - _SUPPORTED_ALGORITHMS
        if not algorithms or unsupported:
            raise ValueError(f"algorithms must be a non-empty subset of {sorted(_SUPPORTED_ALGORITHMS)}")
        if clock_skew < timedelta(0):
            raise ValueError("clock_skew must not be negative")
        self.issuer = None if issuer is None else normalize_provider_url(issuer)
        self.clock_skew = clock_skew
        self.algorithms = tuple(algorithms)

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
        """Verify an Azure Attestation token and return its claims.

        Args:
            evidence: The JWT text.
            at: The instant for exp/nbf/iat and the certificates; ``None`` for the token's own ``iat``.
            roots: Anchors for ``x5c`` paths longer than one certificate (a lone self-signed certificate, as MAA
                uses, is its own anchor).
            collateral: ``jwks``: the provider's ``/certs`` document.
            fetcher: Fetches ``<issuer>/certs`` when ``collateral.jwks`` is not given.
            allow_simulator: Accept a signing certificate made by :mod:`attestation.simulator`.

        Raises:
            attestation.errors.CollateralMissing: No expected issuer, no JWKS (and no fetcher), or ``at=None`` for a
                token without ``iat``.
            attestation._jwt.AlgorithmNotAllowed: The token's ``alg`` is not pinned.
            attestation._jwt.KeySetUrlMismatch: ``jku`` is not the expected provider's ``/certs``.
            attestation._jwt.UnknownSigningKey: ``kid`` names no key of the JWKS.
            attestation.errors.CertificateMismatch: The key's ``x5c`` certificate holds another key.
            attestation.errors.BadSignature: The signature does not verify.
            attestation._jwt.IssuerMismatch: ``iss`` is not the expected provider.
            attestation.errors.Expired: The token (or its signing certificate) expired before ``at``.
            attestation.errors.NotYetValid: The token (or its signing certificate) is not yet valid at ``at``.
            attestation.errors.MalformedEvidence: The token or the JWKS does not parse.
        """
        if self.issuer is None:
            raise CollateralMissing("no expected issuer: pass the attestation provider URL (--issuer)")
        jws = _jwt.split_compact(evidence)
        _jwt.check_algorithm(jws, self.algorithms)
        self._check_jku(jws.header)
        jwk = _jwt.select_key(_jwt.parse_jwks(self._jwks(collateral, fetcher)), jws.kid)
        payload = _jwt.verify_signature(jws, _jwt.certified_key(jwk), self.algorithms)
        self._check_issuer(payload)
        when = at if at is not None else _jwt.numeric_date(payload, "iat")
        if when is None:
            raise CollateralMissing("the token has no 'iat'; give the time to check it at")
        _jwt.check_times(payload, when, self.clock_skew)
        signer = _jwt.check_certificates(jwk, when, roots, allow_simulator=allow_simulator)
        return to_claims(payload, signer)

    def _check_jku(self, header: Mapping[str, Any]) -> None:
        expected = f"{self.issuer}/certs"
        jku = header.get("jku")
        if not isinstance(jku, str):
            raise _jwt.KeySetUrlMismatch(f"the token names no key-set URL (jku); {expected} is required")
        try:
            normalized = normalize_provider_url(jku)
        except ValueError:
            normalized = jku
        if normalized != expected:
            raise _jwt.KeySetUrlMismatch(
                f"the token's keys are at {jku}, not at the expected provider's {expected}: it was issued by another "
                "provider (one signing key may serve several providers)"
            )

    def _check_issuer(self, payload: Mapping[str, Any]) -> None:
        iss = payload.get("iss")
        try:
            normalized = normalize_provider_url(iss) if isinstance(iss, str) else None
        except ValueError:
            normalized = None
        if normalized != self.issuer:
            raise _jwt.IssuerMismatch(f"the token was issued by {iss!r}, not by the expected provider {self.issuer}")

    def _jwks(self, collateral: Collateral, fetcher: Fetcher | None) -> bytes:
        if collateral.jwks is not None:
            return collateral.jwks
        url = f"{self.issuer}/certs"
        if fetcher is None:
            raise CollateralMissing(f"no JWKS: pass the provider's signing keys (--jwks, the answer of {url})")
        return fetcher.fetch(url)

    def decode(self, evidence: bytes) -> Mapping[str, VendorValue]:
        """The token's header and its **unverified** payload, for inspection only (nothing here is trusted).

        Raises:
            attestation.errors.MalformedEvidence: Not a compact JWS with JSON header and payload.
        """
        jws = _jwt.split_compact(evidence)
        return {
            "header": dict(jws.header),
            "unverified_payload": _jwt.unverified_payload(jws),
            "signature": jws.signature,
        }

    def looks_like(self, evidence: bytes) -> bool:
        """Whether ``evidence`` is a compact JWS whose header points to a ``/certs`` key set or names x-ms claims."""
        try:
            jws = _jwt.split_compact(evidence)
            payload = _jwt.unverified_payload(jws)
        except MalformedEvidence:
            return False
        jku = jws.header.get("jku")
        return (isinstance(jku, str) and jku.endswith("/certs")) or "x-ms-attestation-type" in payload
