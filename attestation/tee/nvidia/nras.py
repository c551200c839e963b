"""NVIDIA Remote Attestation Service (NRAS) client: an optional remote verifier for NVIDIA GPU evidence.

``attest_gpu`` POSTs the evidence to ``{base}/v3/attest/gpu`` and verifies the answer, a detached EAT: a JSON array
``[["JWT", overall_token], {"GPU-0": gpu_token, ...}]``. Every token must verify (ES384) with a key of NVIDIA's JWKS
(``{base}/.well-known/jwks.json``, given as bytes or fetched through a :class:`~attestation.fetch.Fetcher`) whose
``x5c`` certificate holds it; ``iss`` must be the base URL, ``eat_nonce`` the request nonce, the overall token's
``submods`` digests the SHA-256 of each detached GPU token, and ``x-nvidia-overall-att-result`` true; exp/nbf/iat are
checked at an injected time. NRAS's verdict is NVIDIA's appraisal: the per-GPU claims are returned for reporting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from cryptography import x509

from attestation import _jwt
from attestation.claims import SignerChain
from attestation.errors import CollateralMissing, EvidenceInvalid, FetchFailed, MalformedEvidence, NonceMismatch
from attestation.fetch import MAX_COLLATERAL_BYTES, Fetcher

DEFAULT_BASE_URL = "https://nras.attestation.nvidia.com"
#: NRAS signs its EATs with ECDSA P-384.
ALGORITHMS = ("ES384",)


class NrasRejected(EvidenceInvalid):
    """NRAS verified the evidence and did not accept it (``x-nvidia-overall-att-result`` is not true)."""

    check = "nras"


class SubmoduleDigestMismatch(EvidenceInvalid):
    """A detached GPU token does not match the digest the signed overall token gives for it."""

    check = "nras"


@dataclass(frozen=True, slots=True)
class GpuEvidence:
    """One GPU's evidence as NRAS takes it: the SPDM request||response bytes and the device chain as PEM text."""

    evidence: bytes
    certificate_chain: bytes


@dataclass(frozen=True, slots=True)
class NrasResult:
    """A verified NRAS answer.

    Attributes:
        overall: The verified claims of the overall token (``x-nvidia-overall-att-result``, ``submods``, ...).
        gpus: The verified claims of each GPU token by submodule name ("GPU-0", ...): ``measres``,
            ``x-nvidia-gpu-driver-version``, ``x-nvidia-gpu-vbios-version``, ``dbgstat``, ``secboot``, ...
        signer: The NRAS signing certificate path of the overall token.
        eat: The detached EAT text as received.
    """

    overall: Mapping[str, Any]
    gpus: Mapping[str, Mapping[str, Any]]
    signer: SignerChain
    eat: str


class NrasClient:
    """Ask NRAS to appraise GPU evidence and verify its answer.

    Args:
        base_url: The NRAS service; also the ``iss`` every token must carry.
        transport: An httpx transport (tests against a local double).
        timeout: Seconds for connecting and for each read.
        jwks: NVIDIA's JWKS document; when ``None`` it is fetched from ``{base}/.well-known/jwks.json`` through
            ``fetcher``.
        fetcher: Fetches the JWKS when ``jwks`` is not given.
        roots: Anchors for JWKS ``x5c`` paths (``()``: the path must end in a self-signed certificate of its own).
        clock_skew: Tolerance for exp, nbf and iat.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        jwks: bytes | None = None,
        fetcher: Fetcher | None = None,
        roots: Sequence[x509.Certificate] = (),
        clock_skew: timedelta = timedelta(seconds=60),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, transport=transport)
        self._jwks = jwks
        self._fetcher = fetcher
        self._roots = tuple(roots)
        self._skew = clock_skew

    def attest_gpu(
        self, evidence_list: Sequence[GpuEvidence], nonce: bytes, arch: str = "HOPPER", *, at: datetime
    ) -> NrasResult:
        """POST the evidence to NRAS and verify its answer at ``at``.

        Raises:
            attestation.errors.FetchFailed: NRAS could not be reached or answered with an error status.
            attestation.errors.CollateralMissing: No JWKS was given and there is no fetcher.
            attestation.errors.EvidenceInvalid: The answer is not acceptable (see :meth:`verify_eat`).
        """
        if not nonce:
            raise ValueError("an empty nonce binds nothing")
        body = {
            "nonce": nonce.hex(),
            "arch": arch,
            "evidence_list": [
                {
                    "evidence": base64.b64encode(item.evidence).decode(),
                    "certificate": base64.b64encode(item.certificate_chain).decode(),
                }
                for item in evidence_list
            ],
        }
        url = f"{self.base_url}/v3/attest/gpu"
        try:
            response = self._client.post(url, json=body)
        except httpx.HTTPError as exc:
            raise FetchFailed(f"{url}: {type(exc).__name__}: {exc}") from None
        if response.status_code != httpx.codes.OK:
            raise FetchFailed(f"{url}: HTTP {response.status_code}")
        if len(response.content) > MAX_COLLATERAL_BYTES:
            raise FetchFailed(f"{url}: answer larger than {MAX_COLLATERAL_BYTES} bytes")
        return self.verify_eat(response.content, nonce, at=at)

    def verify_eat(self, eat: bytes, nonce: bytes, *, at: datetime) -> NrasResult:
        """Verify a detached EAT from NRAS (pure apart from the JWKS fetch).

        Raises:
            attestation.errors.MalformedEvidence: Not a detached EAT array of tokens.
            attestation.errors.BadSignature: A token's signature (or algorithm) is not acceptable.
            attestation._jwt.IssuerMismatch: A token was not issued by ``base_url``.
            attestation.errors.NonceMismatch: A token's ``eat_nonce`` is not ``nonce``.
            SubmoduleDigestMismatch: A detached GPU token is not the one the overall token names.
            NrasRejected: NRAS did not accept the evidence.
            attestation.errors.Expired / NotYetValid: A token is outside its validity at ``at``.
        """
        overall_token, detached = _split_detached(eat)
        keys = _jwt.parse_jwks(self._key_set(), "NVIDIA's JWKS")
        overall, signer = self._verify_token(overall_token, keys, nonce, at, "the overall token")
        submods = overall.get("submods")
        if not isinstance(submods, Mapping) or set(submods) != set(detached):
            raise SubmoduleDigestMismatch(
                f"the overall token names submodules {sorted(submods) if isinstance(submods, Mapping) else None}, "
                f"the answer carries {sorted(detached)}"
            )
        gpus: dict[str, Mapping[str, Any]] = {}
        for name, token in detached.items():
            _check_digest(name, submods[name], token)
            gpus[name], _ = self._verify_token(token, keys, nonce, at, f"the {name} token")
        if overall.get("x-nvidia-overall-att-result") is not True:
            failed = sorted(name for name, claims in gpus.items() if claims.get("measres") != "success")
            raise NrasRejected(f"NRAS did not accept the evidence (GPUs without measres=success: {failed or 'none'})")
        return NrasResult(overall, gpus, signer, eat.decode("ascii"))

    def _verify_token(
        self, token: str, keys: Sequence[_jwt.Jwk], nonce: bytes, at: datetime, what: str
    ) -> tuple[dict[str, Any], SignerChain]:
        jws = _jwt.split_compact(token, what)
        _jwt.check_algorithm(jws, ALGORITHMS)
        jwk = _jwt.select_key(keys, jws.kid, "NVIDIA's JWKS")
        payload = _jwt.verify_signature(jws, _jwt.certified_key(jwk), ALGORITHMS)
        if payload.get("iss") != self.base_url:
            raise _jwt.IssuerMismatch(f"{what} was issued by {payload.get('iss')!r}, not by {self.base_url}")
        eat_nonce = payload.get("eat_nonce")
        if not isinstance(eat_nonce, str) or not hmac.compare_digest(eat_nonce.lower(), nonce.hex()):
            raise NonceMismatch(f"{what} answers nonce {eat_nonce!r}, expected {nonce.hex()}")
        _jwt.check_times(payload, at, self._skew)
        signer = _jwt.check_certificates(jwk, at, self._roots, allow_simulator=False)
        return payload, signer

    def _key_set(self) -> bytes:
        if self._jwks is not None:
            return self._jwks
        url = f"{self.base_url}/.well-known/jwks.json"
        if self._fetcher is None:
            raise CollateralMissing(f"no NVIDIA JWKS: give it, or a fetcher for {url}")
        return self._fetcher.fetch(url)

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._client.close()


def _split_detached(eat: bytes) -> tuple[str, dict[str, str]]:
    try:
        document = json.loads(eat.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedEvidence("the NRAS answer is not UTF-8 JSON") from None
    if (
        not isinstance(document, list)
        or len(document) != 2
        or not isinstance(document[0], list)
        or len(document[0]) != 2
        or document[0][0] != "JWT"
        or not isinstance(document[0][1], str)
        or not isinstance(document[1], dict)
        or not all(isinstance(token, str) for token in document[1].values())
    ):
        raise MalformedEvidence('the NRAS answer is not a detached EAT [["JWT", token], {"GPU-0": token, ...}]')
    return document[0][1], dict(document[1])


def _check_digest(name: str, entry: object, token: str) -> None:
    # submods entry: ["DIGEST", ["SHA256", "<hex of SHA-256 over the detached token text>"]]
    if (
        not isinstance(entry, list)
        or len(entry) != 2
        or entry[0] != "DIGEST"
        or not isinstance(entry[1], list)
        or len(entry[1]) != 2
        or entry[1][0] != "SHA256"
        or not isinstance(entry[1][1], str)
    ):
        raise MalformedEvidence(f'the overall token\'s submods[{name!r}] is not ["DIGEST", ["SHA256", hex]]')
    actual = hashlib.sha256(token.encode("utf-8")).hexdigest()
    if not hmac.compare_digest(entry[1][1].lower(), actual):
        raise SubmoduleDigestMismatch(
            f"the detached {name} token's SHA-256 is {actual}, the overall token says {entry[1][1]}"
        )
