"""A client that checks what it talks to before sending data: attest, appraise, pin the TLS key, then infer.

Steps (:meth:`AttestedClient.attest`, run before the first request):

1. Make a fresh 32-byte nonce and ``GET /v1/attestation?nonce=<hex>`` over TLS *without* certificate
   verification (the enclave's certificate is not known yet), keeping the certificate the server presented.
2. Verify the evidence and appraise it against the model's release policy.
3. Check the evidence's report data is ``report_data(our nonce, HPKE key, SPKI(document's TLS certificate))``,
   and that the certificate the connection presented is the document's certificate.
4. From then on, talk to the server only through a TLS context that trusts exactly that certificate (and
   check each response's peer certificate again).
5. With the broker's and the log's public keys (``broker_key``, ``log_key``): fetch ``GET /v1/receipt`` over the
   pinned connection, verify it offline (:func:`~ccdeploy.release.receipt.verify_receipt`), and require that it was
   issued to *this* enclave (its TLS and HPKE key digests are the attested ones) for the model the caller uses
   (``expected_model``, and the model named in every request). Evidence says which code runs; the receipt says
   which model key the broker released to it.

Any failure of 1-5 raises :class:`~ccdeploy.errors.EnclaveRejected` (exit 1); an unreachable server
:class:`~ccdeploy.errors.CouldNotCheck` (exit 3); a request the server refuses (4xx)
:class:`~ccdeploy.errors.InferenceRejected` (exit 2).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from attestation.claims import Claims
from ccdeploy.client._oip import HEADER_LENGTH, decode_response, encode_request
from ccdeploy.errors import CcdError, CouldNotCheck, DecisionError, EnclaveRejected, InferenceRejected, UsageError
from ccdeploy.release.binding import report_data_matches, spki_der
from ccdeploy.release.policy import ReleasePolicy, load_policy, load_policy_file

if TYPE_CHECKING:
    from ccdeploy.release.receipt import Receipt

__all__ = ["NONCE_BYTES", "Appraiser", "AttestedClient", "EvidenceDecisionLike", "Verified", "policy_appraiser"]

NONCE_BYTES = 32
MAX_ATTESTATION_BYTES = 1 << 20
"""An attestation document is a few kilobytes; a larger answer is refused unread."""
MAX_RECEIPT_BYTES = 1 << 20
"""A receipt is a few kilobytes (its inclusion proof grows with log2 of the log size)."""
RECEIPT_PATH = "/v1/receipt"


class EvidenceDecisionLike(Protocol):
    """What an appraiser returns (``ccdeploy.release.decide.EvidenceDecision`` has this shape)."""

    @property
    def claims(self) -> Claims | None: ...

    @property
    def checks(self) -> Sequence[Any]: ...

    @property
    def denial(self) -> Any: ...

    @property
    def detail(self) -> str: ...


Appraiser = Callable[[bytes, str, datetime], EvidenceDecisionLike]
"""Verifies and appraises ``(evidence, evidence_type, now)``; a decision with ``denial`` set refuses it."""


def policy_appraiser(policy: ReleasePolicy) -> Appraiser:
    """The appraiser that applies a release policy exactly as the key broker does."""

    def appraise(evidence: bytes, evidence_type: str, now: datetime) -> EvidenceDecisionLike:
        from ccdeploy.release.decide import appraise_evidence  # noqa: PLC0415 - the policy engine is heavy to import

        decision: EvidenceDecisionLike = appraise_evidence(policy, evidence, evidence_type, now=now)
        return decision

    return appraise


@dataclass(frozen=True)
class Verified:
    """What the client established about the server before sending it anything.

    Attributes:
        url: The server's base URL.
        evidence_type: The evidence format (``"nitro"``, ``"sev-snp"``, ...).
        platform: The platform the claims name.
        measurements: Measurement name -> hex value, from the verified claims.
        debug: Whether the TEE reported a debug mode (a policy refuses it unless it allows debug).
        hpke_suite: The enclave's HPKE suite.
        hpke_public_key_sha256: SHA-256 (hex) of the enclave's HPKE public key.
        tls_public_key_sha256: SHA-256 (hex) of the pinned TLS key's SubjectPublicKeyInfo.
        tls_certificate_pem: The pinned certificate.
        checks: ``(name, ok, detail)`` of each policy check.
        receipt: The broker's release receipt for this enclave, verified, when the client was given the broker's
            and the log's keys.
    """

    url: str
    evidence_type: str
    platform: str
    measurements: Mapping[str, str]
    debug: bool
    hpke_suite: str
    hpke_public_key_sha256: str
    tls_public_key_sha256: str
    tls_certificate_pem: str = field(repr=False)
    checks: tuple[tuple[str, bool, str], ...]
    receipt: Receipt | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        receipt = self.receipt
        return {
            "url": self.url,
            "evidence_type": self.evidence_type,
            "platform": self.platform,
            "measurements": dict(self.measurements),
            "debug": self.debug,
            "hpke_suite": self.hpke_suite,
            "hpke_public_key_sha256": self.hpke_public_key_sha256,
            "tls_public_key_sha256": self.tls_public_key_sha256,
            "tls_certificate_pem": self.tls_certificate_pem,
            "checks": [{"name": n, "ok": ok, "detail": d} for n, ok, d in self.checks],
            "receipt": None
            if receipt is None
            else {
                "model": receipt.model,
                "artifact_digest": receipt.artifact_digest,
                "log_index": receipt.log_index,
                "audit_seq": receipt.audit_seq,
                "released_at": receipt.released_at,
            },
        }


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AttestedClient:
    """An Open Inference Protocol client for a server whose enclave it has attested and whose TLS key it pins.

    Args:
        base_url: ``https://host:port`` of the inference server.
        policy: The model's release policy (object, path, or YAML bytes) to appraise the evidence with.
        appraiser: Used instead of ``policy`` (tests, or a caller with its own appraisal).
        now: Clock for evidence freshness.
        transport: An httpx transport for both phases (it must expose the TLS peer certificate through the
            ``network_stream`` response extension, as httpx's default transport does).
        timeout: Seconds per request.
        broker_key: The key broker's receipt public key (PEM bytes or text, or a path to it). With ``log_key``,
            the enclave's release receipt is fetched and verified (step 5).
        log_key: The transparency log's note verifier key (or several).
        expected_model: The model the receipt must name; every request's model must be it too. Default: the
            model of the first request (:meth:`infer` / :meth:`model_metadata`).

    Raises:
        UsageError: Neither or both of ``policy`` and ``appraiser``, a URL that is not https, or only one of
            ``broker_key`` and ``log_key``.
        PolicyInvalid: The policy does not load.
        TrustRootInvalid: The broker key or the log key is malformed.
    """

    def __init__(
        self,
        base_url: str,
        *,
        policy: ReleasePolicy | str | Path | bytes | None = None,
        appraiser: Appraiser | None = None,
        now: Callable[[], datetime] = _utc_now,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        broker_key: bytes | str | Path | None = None,
        log_key: str | Sequence[str] | None = None,
        expected_model: str | None = None,
    ) -> None:
        if (policy is None) == (appraiser is None):
            raise UsageError("give exactly one of a release policy and an appraiser")
        if (broker_key is None) != (log_key is None):
            raise UsageError("give both the broker key and the log key to check the release receipt, or neither")
        if not base_url.startswith("https://"):
            raise UsageError(f"an attested server must be reached over https, not {base_url!r}")
        self._url = base_url.rstrip("/")
        self._appraise = appraiser if appraiser is not None else policy_appraiser(_load(policy))
        self._now = now
        self._transport = transport
        self._timeout = timeout
        self._verified: Verified | None = None
        self._pinned_der = b""
        self._client: httpx.Client | None = None
        self._broker_pem = None if broker_key is None else _pem_bytes(broker_key)
        self._log_keys = [log_key] if isinstance(log_key, str) else list(log_key or ())
        if self._broker_pem is not None:
            _check_receipt_keys(self._broker_pem, self._log_keys)
        self._model = expected_model

    def __enter__(self) -> AttestedClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pinned connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def verified(self) -> Verified | None:
        """What :meth:`attest` established, once it has run."""
        return self._verified

    def attest(self) -> Verified:
        """Attest the server and pin its TLS certificate (steps 1-4 of the module docstring).

        Raises:
            EnclaveRejected: The evidence, its binding or the TLS certificate did not check out.
            CouldNotCheck: The server could not be reached.
        """
        nonce = os.urandom(NONCE_BYTES)
        unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE  # the certificate is checked against the evidence instead
        with self._http(unverified) as client:
            try:
                with client.stream("GET", "/v1/attestation", params={"nonce": nonce.hex()}) as response:
                    peer = _peer_certificate(response)
                    body = _read_capped(response, MAX_ATTESTATION_BYTES)
            except httpx.HTTPError as error:
                raise CouldNotCheck(f"cannot fetch the attestation of {self._url}: {_why(error)}") from None
        if response.status_code != 200:
            raise EnclaveRejected(f"{self._url} gave no attestation (HTTP {response.status_code}): {_message(body)}")
        document = _parse_document(body)
        if document.nonce != nonce:
            raise EnclaveRejected("the attestation document answers another nonce")
        decision = self._appraise(document.evidence, document.evidence_type, self._now())
        claims = decision.claims
        if decision.denial is not None or claims is None:
            reason = getattr(decision.denial, "value", decision.denial) or "no claims"
            raise EnclaveRejected(f"the enclave's evidence does not satisfy the policy ({reason}): {decision.detail}")
        if claims.nonce is not None and claims.nonce != nonce:
            raise EnclaveRejected("the evidence carries another nonce than ours")
        spki = spki_der(document.certificate.public_key())
        if not report_data_matches(claims.report_data, nonce, document.hpke_public_key, spki):
            raise EnclaveRejected("the evidence does not bind our nonce, the HPKE key and the TLS key it was sent with")
        der = document.certificate.public_bytes(serialization.Encoding.DER)
        if peer != der:
            raise EnclaveRejected("the TLS connection presented another certificate than the attested one")
        self._pinned_der = der
        pinned = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        pinned.load_verify_locations(cadata=document.certificate_pem)
        pinned.check_hostname = False  # the enclave's certificate names no host; the key itself is pinned
        pinned.verify_mode = ssl.CERT_REQUIRED
        self.close()
        self._client = self._http(pinned)
        hpke_sha256 = hashlib.sha256(document.hpke_public_key).hexdigest()
        tls_sha256 = hashlib.sha256(spki).hexdigest()
        receipt = None if self._broker_pem is None else self._check_receipt(hpke_sha256, tls_sha256)
        self._verified = Verified(
            url=self._url,
            evidence_type=document.evidence_type,
            platform=claims.platform,
            measurements={name: value.hex() for name, value in claims.measurements.items()},
            debug=claims.debug,
            hpke_suite=document.hpke_suite,
            hpke_public_key_sha256=hpke_sha256,
            tls_public_key_sha256=tls_sha256,
            tls_certificate_pem=document.certificate_pem,
            checks=tuple((c.name, bool(c.ok), str(c.detail)) for c in decision.checks),
            receipt=receipt,
        )
        return self._verified

    def _check_receipt(self, hpke_sha256: str, tls_sha256: str) -> Receipt:
        """Step 5: the broker's receipt names this enclave's keys (and the expected model, if known yet)."""
        from ccdeploy.release.receipt import verify_receipt  # noqa: PLC0415 - only clients that check receipts

        if self._broker_pem is None:  # pragma: no cover - guarded by the caller
            raise UsageError("no broker key")
        try:
            body = self._raw_request("GET", RECEIPT_PATH).content
        except InferenceRejected as error:  # 404: an enclave that cannot show its receipt is not trusted with data
            raise EnclaveRejected(f"the enclave shows no release receipt: {error.message}") from None
        if len(body) > MAX_RECEIPT_BYTES:
            raise EnclaveRejected(f"the enclave's receipt is larger than {MAX_RECEIPT_BYTES} bytes")
        try:
            receipt = verify_receipt(body, self._broker_pem, self._log_keys)
        except DecisionError as error:
            raise EnclaveRejected(f"the enclave's release receipt does not verify: {error.message}") from None
        except CcdError as error:  # a key that loaded at construction cannot fail here; report, do not mask
            raise EnclaveRejected(f"the enclave's release receipt cannot be checked: {error.message}") from None
        enclave = receipt.predicate.get("enclave")
        if not isinstance(enclave, dict) or enclave.get("tlsPublicKeySha256") != tls_sha256:
            raise EnclaveRejected("the release receipt was issued to another enclave (its TLS key differs)")
        if enclave.get("hpkePublicKeySha256") != hpke_sha256:
            raise EnclaveRejected("the release receipt was issued to another enclave (its HPKE key differs)")
        if self._model is not None and receipt.model != self._model:
            raise EnclaveRejected(f"the enclave was released the key of model {receipt.model!r}, not {self._model!r}")
        return receipt

    def _check_model(self, model: str) -> None:
        """With a verified receipt, every request must address the model the receipt names."""
        verified = self._verified
        if verified is None or verified.receipt is None:
            return
        if verified.receipt.model != model:
            raise EnclaveRejected(
                f"the enclave was released the key of model {verified.receipt.model!r}, not {model!r}"
            )

    def model_metadata(self, model: str) -> dict[str, Any]:
        """The model's OIP metadata (name, versions, platform, inputs, outputs), over the pinned connection.

        Raises:
            EnclaveRejected, CouldNotCheck, InferenceRejected: As :meth:`attest` and :meth:`infer`.
        """
        response = self._request("GET", f"/v2/models/{model}", model=model)
        try:
            metadata: dict[str, Any] = json.loads(response.content)
        except ValueError:
            raise InferenceRejected("the server's model metadata is not JSON") from None
        return metadata

    def infer(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray[Any, Any]],
        outputs: Sequence[str] | None = None,
        binary: bool = True,
    ) -> dict[str, np.ndarray[Any, Any]]:
        """Run the model on ``inputs`` over the pinned connection (attesting first if not yet done).

        Args:
            model: The model's name.
            inputs: Input name -> array.
            outputs: Outputs to return (default: all).
            binary: Use the binary tensor data extension (else JSON tensors).

        Raises:
            InferenceRejected: The server refused the request (4xx) or answered something undecodable.
            EnclaveRejected: The server no longer presents the attested certificate, or (with receipt checking)
                its receipt names another model.
            CouldNotCheck: The server could not be reached or failed (5xx).
        """
        body, header_length = encode_request(inputs, outputs, binary=binary)
        headers = {"Content-Type": "application/octet-stream" if header_length is not None else "application/json"}
        if header_length is not None:
            headers[HEADER_LENGTH] = str(header_length)
        response = self._request("POST", f"/v2/models/{model}/infer", model=model, content=body, headers=headers)
        return decode_response(response.content, response.headers.get(HEADER_LENGTH))

    def _request(self, method: str, path: str, *, model: str, **kwargs: Any) -> httpx.Response:
        if self._model is None:
            self._model = model  # the receipt (checked in attest) must name the first model asked for
        if self._client is None:
            self.attest()
        self._check_model(model)
        return self._raw_request(method, path, **kwargs)

    def _raw_request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        client = self._client
        if client is None:
            raise EnclaveRejected("the server has not been attested")
        try:
            response = client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            if _is_certificate_failure(error):
                raise EnclaveRejected("the server no longer presents the attested TLS certificate") from None
            raise CouldNotCheck(f"cannot reach {self._url}: {_why(error)}") from None
        if _peer_certificate(response) != self._pinned_der:
            raise EnclaveRejected("the TLS connection presented another certificate than the attested one")
        if 400 <= response.status_code < 500:
            raise InferenceRejected(
                f"the server refused the request (HTTP {response.status_code}): {_message(response.content)}"
            )
        if response.status_code != 200:
            raise CouldNotCheck(f"the server failed (HTTP {response.status_code}): {_message(response.content)}")
        return response

    def _http(self, context: ssl.SSLContext) -> httpx.Client:
        return httpx.Client(base_url=self._url, verify=context, transport=self._transport, timeout=self._timeout)


@dataclass(frozen=True)
class _Document:
    evidence: bytes
    evidence_type: str
    hpke_suite: str
    hpke_public_key: bytes
    certificate_pem: str
    certificate: x509.Certificate
    nonce: bytes


def _parse_document(body: bytes) -> _Document:
    try:
        raw = json.loads(body)
        pem = raw["tls_certificate"]
        fields = (raw["evidence_type"], raw["hpke_suite"], pem)
        if not all(isinstance(value, str) for value in fields):
            raise TypeError
        certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
        return _Document(
            _b64(raw["evidence"]), raw["evidence_type"], raw["hpke_suite"], _b64(raw["hpke_public_key"]),
            pem, certificate, _b64(raw["nonce"]),
        )  # fmt: skip
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise EnclaveRejected("the attestation document is malformed") from None


def _b64(value: object) -> bytes:
    if not isinstance(value, str):
        raise TypeError
    return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)


def _pem_bytes(key: bytes | str | Path) -> bytes:
    if isinstance(key, bytes):
        return key
    if isinstance(key, str) and key.lstrip().startswith("-----BEGIN"):
        return key.encode("ascii", "replace")
    try:
        return Path(key).read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read the broker key {key}: {error.strerror}") from None


def _check_receipt_keys(broker_pem: bytes, log_keys: Sequence[str]) -> None:
    """Refuse malformed keys before anything is sent (TrustRootInvalid), rather than at the first receipt."""
    from ccdeploy.release.receipt import load_broker_key  # noqa: PLC0415
    from ccdeploy.transparency.checkpoint import NoteVerifier  # noqa: PLC0415

    load_broker_key(broker_pem)
    if not log_keys:
        raise UsageError("no log verifier key given")
    for vkey in log_keys:
        NoteVerifier.from_key(vkey)


def _load(policy: ReleasePolicy | str | Path | bytes | None) -> ReleasePolicy:
    if isinstance(policy, ReleasePolicy):
        return policy
    if isinstance(policy, bytes):
        return load_policy(policy)
    if policy is None:
        raise UsageError("no release policy given")
    return load_policy_file(policy)


def _peer_certificate(response: httpx.Response) -> bytes:
    stream = response.extensions.get("network_stream")
    ssl_object = None if stream is None else stream.get_extra_info("ssl_object")
    der = None if ssl_object is None else ssl_object.getpeercert(True)
    if not der:
        raise EnclaveRejected("cannot read the certificate the server presented over TLS")
    return bytes(der)


def _read_capped(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise EnclaveRejected(f"the attestation answer is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _message(body: bytes) -> str:
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return "no error message"
    return str(error)[:300]


def _why(error: Exception) -> str:
    return f"{type(error).__name__}: {str(error)[:200]}" if str(error) else type(error).__name__


def _is_certificate_failure(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
