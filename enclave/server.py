"""The inference server inside the enclave: KServe Open Inference Protocol v2 over REST, plus an attestation endpoint.

Endpoints::

    GET  /v2                                   server metadata (extensions: binary_tensor_data)
    GET  /v2/health/live | /v2/health/ready    liveness / readiness
    GET  /v2/models/{name}[/versions/{v}]      model metadata: inputs and outputs, -1 for dynamic dimensions
    GET  /v2/models/{name}[/versions/{v}]/ready
    POST /v2/models/{name}[/versions/{v}]/infer  JSON tensors and the binary tensor data extension
    GET  /v1/attestation?nonce=<hex | base64url, 16..64 bytes>  fresh evidence binding the nonce and the TLS key
    GET  /v1/receipt                           the broker's release receipt for this enclave (when given)

Errors are the OIP error object ``{"error": "..."}``: 400 for a request that does not fit the model, 404 for
an unknown model or version, 413 for a body over the size limit, 429 (with ``Retry-After``) for a client asking
for attestations faster than the rate limit. Messages never contain tensor data.

Bodies above ``inline_bytes`` are decoded, and responses whose outputs exceed it encoded, in the thread pool, so
one large request does not stall health checks and other clients; small ones stay on the event loop (a thread
hop costs more than decoding them).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import math
import string
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import uvicorn
from cryptography import x509
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ccdeploy.release.binding import report_data, spki_der
from ccdeploy.release.protocol import b64
from enclave.runtime import ModelSession
from enclave.tensors import (
    HEADER_LENGTH,
    DecodedRequest,
    InputLimits,
    TensorError,
    TensorSpec,
    check_inputs,
    decode_request,
    encode_response,
)

__all__ = [
    "MAX_NONCE_BYTES",
    "MIN_NONCE_BYTES",
    "AttestationDocument",
    "Attester",
    "InputLimits",
    "attestation_source",
    "create_app",
    "parse_nonce",
    "serve",
    "server_config",
]

RECEIPT_PATH = "/v1/receipt"
INLINE_BYTES = 64 * 1024
"""Bodies (and responses) up to this size are decoded (encoded) on the event loop; larger ones in the thread pool."""
ATTESTATION_RATE = (5.0, 10)
"""Per-client token bucket for ``/v1/attestation``: tokens per second and burst. Each call costs the attester
(a device ioctl, a signature) and cannot be cached: it answers a fresh nonce."""
MAX_TRACKED_CLIENTS = 10_000
MIN_NONCE_BYTES = 16
MAX_NONCE_BYTES = 64
PLATFORM = "onnxruntime_onnx"
SERVER_NAME = "ccdeploy-enclave"

_log = logging.getLogger(__name__)
_JSON = "application/json"
_HEX = frozenset(string.hexdigits)


@dataclass(frozen=True, slots=True)
class AttestationDocument:
    """What ``GET /v1/attestation`` returns: evidence binding the caller's nonce, the HPKE key and the TLS key.

    Attributes:
        evidence: Raw evidence bytes whose report data is ``report_data(nonce, hpke_public_key, SPKI(TLS cert))``.
        evidence_type: The attestation TEE type to verify it as (``"nitro"``, ``"sev-snp"``, ...).
        hpke_suite: The HPKE suite name of ``hpke_public_key``.
        hpke_public_key: The enclave's HPKE public key as sent on the wire.
        tls_certificate_pem: The enclave's TLS certificate, PEM text.
        nonce: The caller's nonce, echoed.
    """

    evidence: bytes
    evidence_type: str
    hpke_suite: str
    hpke_public_key: bytes
    tls_certificate_pem: str
    nonce: bytes

    def to_json(self) -> dict[str, str]:
        """The JSON object of the endpoint (bytes as standard base64)."""
        return {
            "evidence": b64(self.evidence),
            "evidence_type": self.evidence_type,
            "hpke_suite": self.hpke_suite,
            "hpke_public_key": b64(self.hpke_public_key),
            "tls_certificate": self.tls_certificate_pem,
            "nonce": b64(self.nonce),
        }


class Attester(Protocol):
    """What :func:`attestation_source` needs of an attester (``enclave.attesters``)."""

    evidence_type: str

    def attest(self, report_data: bytes, nonce: bytes) -> bytes:
        """Raw evidence binding the 64-byte ``report_data`` (and ``nonce`` where the format carries one)."""
        ...


def attestation_source(
    attester: Attester, *, hpke_suite: str, hpke_public_key: bytes, tls_certificate_pem: str | bytes
) -> Callable[[bytes], AttestationDocument]:
    """The ``attestation`` callable for :func:`create_app`: fresh evidence per nonce, bound to these keys.

    Args:
        attester: Produces the evidence.
        hpke_suite: The suite name of the HPKE key.
        hpke_public_key: The enclave's HPKE public key.
        tls_certificate_pem: The certificate the server presents over TLS.
    """
    pem = tls_certificate_pem.decode("ascii") if isinstance(tls_certificate_pem, bytes) else tls_certificate_pem
    spki = spki_der(x509.load_pem_x509_certificate(pem.encode("ascii")).public_key())

    def attest(nonce: bytes) -> AttestationDocument:
        evidence = attester.attest(report_data(nonce, hpke_public_key, spki), nonce)
        return AttestationDocument(evidence, attester.evidence_type, hpke_suite, hpke_public_key, pem, nonce)

    return attest


def parse_nonce(text: str | None) -> bytes:
    """Decode a caller's nonce: hex when the text is even-length hex digits, otherwise base64url (padding optional).

    Raises:
        ValueError: Missing, undecodable, or not 16 to 64 bytes long.
    """
    if not text:
        raise ValueError("the nonce query parameter is required")
    try:
        if len(text) % 2 == 0 and _HEX.issuperset(text):
            nonce = bytes.fromhex(text)
        else:
            nonce = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error):
        raise ValueError("the nonce is neither hex nor base64url") from None
    if not MIN_NONCE_BYTES <= len(nonce) <= MAX_NONCE_BYTES:
        raise ValueError(f"the nonce must be {MIN_NONCE_BYTES} to {MAX_NONCE_BYTES} bytes")
    return nonce


class _BodyTooLarge(Exception):
    pass


class _TokenBuckets:
    """Per-client token buckets (``rate`` tokens a second, up to ``burst``); memory bounded by pruning full ones."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("the attestation rate limit needs a positive rate and a burst of at least 1")
        self._rate, self._burst, self._clock = rate, float(burst), clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)

    def take(self, client: str) -> float:
        """Take a token for ``client``: 0.0 if granted, else the seconds until one is available."""
        now = self._clock()
        tokens, at = self._buckets.get(client, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self._rate
        if client not in self._buckets and len(self._buckets) >= MAX_TRACKED_CLIENTS:
            self._prune(now)
        self._buckets[client] = (tokens - 1.0, now)
        return 0.0

    def _prune(self, now: float) -> None:
        refilled = [c for c, (t, at) in self._buckets.items() if t + (now - at) * self._rate >= self._burst]
        for client in refilled:
            del self._buckets[client]
        if len(self._buckets) >= MAX_TRACKED_CLIENTS:  # all busy: forget the oldest (they start again full)
            for client, _ in sorted(self._buckets.items(), key=lambda item: item[1][1])[: MAX_TRACKED_CLIENTS // 10]:
                del self._buckets[client]


def create_app(
    session: ModelSession,
    *,
    model_name: str,
    model_version: str = "1",
    attestation: Callable[[bytes], AttestationDocument] | None,
    limits: InputLimits,
    inline_below: float = 0.002,
    receipt: bytes | None = None,
    inline_bytes: int = INLINE_BYTES,
    attestation_rate: tuple[float, int] | None = ATTESTATION_RATE,
    clock: Callable[[], float] = time.monotonic,
) -> Starlette:
    """The ASGI application serving one model.

    A model whose last run took less than ``inline_below`` seconds runs on the event loop: a thread hop costs
    more than such a run (hundreds of microseconds on a small VM). Slower models run in the thread pool, so
    health checks and attestation stay responsive while they compute.

    Args:
        session: The model's ONNX Runtime session.
        model_name: The name clients address the model by.
        model_version: Its version (the only one served).
        attestation: Makes a fresh :class:`AttestationDocument` for a nonce; ``None`` disables ``/v1/attestation``.
        limits: Request size limits.
        inline_below: Seconds below which a model's last run time lets the next run stay on the event loop.
        receipt: The broker's signed release receipt (Sigstore bundle JSON bytes), served at ``/v1/receipt``.
        inline_bytes: Bodies and responses up to this many bytes are decoded and encoded on the event loop.
        attestation_rate: ``(per second, burst)`` of ``/v1/attestation`` calls per client address; ``None``: no limit.
        clock: Monotonic seconds, for the rate limit.

    Raises:
        ModelRejected: The model has inputs or outputs the protocol cannot carry.
    """
    inputs, outputs = session.inputs, session.outputs
    output_names = tuple(spec.name for spec in outputs)
    metadata = _json_bytes(
        {
            "name": model_name,
            "versions": [model_version],
            "platform": PLATFORM,
            "inputs": [spec.metadata() for spec in inputs],
            "outputs": [spec.metadata() for spec in outputs],
        }
    )
    last_run = [0.0]  # seconds the model's last run took
    server_metadata = _json_bytes({"name": SERVER_NAME, "version": "1", "extensions": ["binary_tensor_data"]})

    def model_error(request: Request) -> Response | None:
        params = request.path_params
        if params["name"] != model_name:
            return _error(404, f"unknown model {params['name']!r}")
        if params.get("version", model_version) != model_version:
            return _error(404, f"model {model_name!r} has no version {params['version']!r}")
        return None

    async def live(request: Request) -> Response:
        return Response(b'{"live":true}', media_type=_JSON)

    async def ready(request: Request) -> Response:
        return Response(b'{"ready":true}', media_type=_JSON)

    async def server_info(request: Request) -> Response:
        return Response(server_metadata, media_type=_JSON)

    async def model_metadata(request: Request) -> Response:
        return model_error(request) or Response(metadata, media_type=_JSON)

    async def model_ready(request: Request) -> Response:
        return model_error(request) or Response(b'{"ready":true}', media_type=_JSON)

    async def infer(request: Request) -> Response:
        failed = model_error(request)
        if failed is not None:
            return failed
        try:
            body = await _read_body(request, limits.max_request_bytes)
        except _BodyTooLarge:
            return _error(413, f"the request body is larger than {limits.max_request_bytes} bytes")
        decode = functools.partial(_decode, body, request.headers.get(HEADER_LENGTH), limits, inputs, output_names)
        try:
            decoded, wanted = decode() if len(body) <= inline_bytes else await run_in_threadpool(decode)
        except TensorError as error:
            return _error(400, str(error))
        started = time.perf_counter()
        try:
            if last_run[0] < inline_below:
                results = session.run(decoded.inputs, wanted)
            else:
                results = await run_in_threadpool(session.run, decoded.inputs, wanted)
        except Exception as error:  # onnxruntime raises untyped errors whose text may quote inputs
            _log.warning("inference failed: %s", type(error).__name__)
            return _error(500, "inference failed")
        finally:
            last_run[0] = time.perf_counter() - started
        encode = functools.partial(
            encode_response,
            model_name=model_name,
            model_version=model_version,
            request_id=decoded.id,
            outputs=results,
            binary={name: decoded.binary(name) for name in wanted},
        )
        if sum(array.nbytes for array in results.values()) <= inline_bytes:
            content, header_length = encode()
        else:
            content, header_length = await run_in_threadpool(encode)
        if header_length is None:
            return Response(content, media_type=_JSON)
        return Response(content, media_type="application/octet-stream", headers={HEADER_LENGTH: str(header_length)})

    routes = [
        Route("/v2", server_info, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route(
            "/v1/attestation",
            _attestation_endpoint(
                attestation, None if attestation_rate is None else _TokenBuckets(*attestation_rate, clock)
            ),
            methods=["GET"],
        ),
    ]
    if receipt is not None:
        receipt_bytes = bytes(receipt)

        async def release_receipt(request: Request) -> Response:
            return Response(receipt_bytes, media_type=_JSON)

        routes.append(Route(RECEIPT_PATH, release_receipt, methods=["GET"]))
    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        routes += [
            Route(prefix, model_metadata, methods=["GET"]),
            Route(prefix + "/ready", model_ready, methods=["GET"]),
            Route(prefix + "/infer", infer, methods=["POST"]),
        ]
    return Starlette(routes=routes)


def _attestation_endpoint(
    attestation: Callable[[bytes], AttestationDocument] | None, buckets: _TokenBuckets | None
) -> Callable[[Request], Awaitable[Response]]:
    async def attest(request: Request) -> Response:
        if attestation is None:
            return _error(404, "this server offers no attestation")
        if buckets is not None:
            wait = buckets.take(request.client.host if request.client is not None else "")
            if wait > 0:
                response = _error(429, "too many attestation requests; retry later")
                response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
                return response
        try:
            nonce = parse_nonce(request.query_params.get("nonce"))
        except ValueError as error:
            return _error(400, str(error))
        try:
            document = await run_in_threadpool(attestation, nonce)
        except Exception as error:  # an attester failing is the server's problem, not the caller's
            _log.warning("attestation failed: %s", type(error).__name__)
            return _error(503, "attestation failed")
        return Response(_json_bytes(document.to_json()), media_type=_JSON, headers={"Cache-Control": "no-store"})

    return attest


def _decode(
    body: bytes,
    header_length: str | None,
    limits: InputLimits,
    inputs: tuple[TensorSpec, ...],
    output_names: tuple[str, ...],
) -> tuple[DecodedRequest, tuple[str, ...]]:
    """Decode a request against the model's inputs; the outputs it wants (raises TensorError)."""
    decoded = decode_request(body, header_length, limits, inputs)
    check_inputs(decoded.inputs, inputs)
    wanted = output_names if decoded.outputs is None else tuple(decoded.outputs)
    unknown = [name for name in wanted if name not in output_names]
    if unknown:
        raise TensorError(f"the model has no output(s) {', '.join(map(repr, unknown))}")
    return decoded, wanted


def server_config(
    app: Starlette,
    *,
    host: str,
    port: int,
    certfile: str | Path,
    keyfile: str | Path,
    **options: Any,
) -> uvicorn.Config:
    """A uvicorn configuration serving ``app`` over TLS with the enclave's certificate and key.

    Args:
        app: The application from :func:`create_app`.
        host: Address to bind.
        port: Port to bind (0: any free port).
        certfile: PEM certificate file (RAM-backed in the enclave).
        keyfile: PEM private key file (RAM-backed in the enclave).
        **options: Further :class:`uvicorn.Config` options (defaults: ``log_level="warning"``, no access log).
    """
    options.setdefault("log_level", "warning")
    options.setdefault("access_log", False)
    options.setdefault("lifespan", "off")
    return uvicorn.Config(app, host=host, port=port, ssl_certfile=str(certfile), ssl_keyfile=str(keyfile), **options)


def serve(app: Starlette, *, host: str, port: int, certfile: str | Path, keyfile: str | Path, **options: Any) -> None:
    """Serve ``app`` over TLS until the process is told to stop (see :func:`server_config`)."""
    uvicorn.Server(server_config(app, host=host, port=port, certfile=certfile, keyfile=keyfile, **options)).run()


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _json_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _error(status: int, message: str) -> Response:
    return Response(_json_bytes({"error": message}), status_code=status, media_type=_JSON)
