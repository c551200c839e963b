"""The key broker over HTTP: Starlette routes around :class:`~ccdeploy.broker.service.ReleaseService`.

Routes::

    POST /v1/challenge              a single-use nonce                       (rate limited per client)
    POST /v1/release                ReleaseRequest -> ReleaseGrant | problem (rate limited per client)
    GET  /v1/log/checkpoint         the signed checkpoint (text/plain C2SP note)      (rate limited)
    GET  /v1/log/entries/{index}    leaf data (base64), inclusion proof, checkpoint   (rate limited)
    GET  /v1/broker                 public information: id, receipt key, log verifier key, HPKE suites
    POST /v1/models                 register a model                          (admin bearer token)
    GET  /v1/models                 the registered models                     (admin)
    GET  /v1/audit?after=N          audit entries after sequence number N     (admin)

The client of a call is its peer address, or with ``trust_proxy`` the last ``X-Forwarded-For`` entry (the one
the nearest proxy appended). Challenge, release and public log calls over a client's rate (one bucket per client
for all of them) are answered 429 before their body is read, and are not audited (a flood must not become a
flood of database writes); every other refusal of a release is audited before its answer. Challenges are
stateless and answered on the event loop; releases and the rest are synchronous (the store is), so they run in
worker threads. A 503 tells the caller only that the broker cannot serve now: the KEK's or database's own error
text goes to the audit entry and the server log (logger ``ccdeploy.broker``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from attestation import CachingFetcher, HttpFetcher
from attestation.fetch import COLLATERAL_MAX_AGE_S
from attestation.tee.sev_snp.kds import KDS_URL, kds_cache_max_age
from ccdeploy.broker.auth import AdminAuth, read_token_file
from ccdeploy.broker.config import BrokerConfig
from ccdeploy.broker.keys import load_state
from ccdeploy.broker.problems import Denied, problem_document, problem_response
from ccdeploy.broker.ratelimit import RateLimiter
from ccdeploy.broker.service import Registration, ReleaseService
from ccdeploy.broker.store import BrokerStore, open_store
from ccdeploy.errors import BrokerConfigError, BrokerUnavailable, CcdError
from ccdeploy.kek import kek_from_uri
from ccdeploy.release.protocol import B64, PROBLEM_MEDIA_TYPE, DenialReason, ReleaseRequest, b64
from ccdeploy.transparency import NoteSigner, TransparencyLog

__all__ = ["CONFIG_ENVIRONMENT_VARIABLE", "BrokerApp", "app_from_environment", "build_app", "create_app"]

CONFIG_ENVIRONMENT_VARIABLE = "CCDEPLOY_BROKER_CONFIG"
"""Where ``ccdeploy broker serve --workers N`` hands the configuration to uvicorn's worker processes."""
MAX_AUDIT_PAGE = 1000
_LOG = logging.getLogger("ccdeploy.broker")


class _RegistrationBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    head: B64
    part_digests: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=100_000)]
    policy: B64
    provenance: B64 | None = None


@dataclass(frozen=True)
class BrokerApp:
    """What :func:`create_app` serves."""

    service: ReleaseService
    store: BrokerStore
    log: TransparencyLog
    auth: AdminAuth
    limiter: RateLimiter
    info: dict[str, Any]
    """``GET /v1/broker``'s document."""
    trust_proxy: bool = False
    max_body_bytes: int = 1 << 20
    max_admin_body_bytes: int = 64 << 20


def _client(request: Request, trust_proxy: bool) -> str:
    if trust_proxy:
        forwarded = request.headers.get("x-forwarded-for", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1][:100]
    return request.client.host if request.client is not None else "unknown"


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Denied(DenialReason.MALFORMED_REQUEST, f"the request body is larger than {limit} bytes", status=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Denied(DenialReason.MALFORMED_REQUEST, f"the request body is larger than {limit} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Denied(DenialReason.MALFORMED_REQUEST, "the request body is not JSON") from None


def _invalid(exc: ValidationError) -> Denied:
    # Only the location and message of each error: pydantic's "input" would echo the caller's bytes.
    errors = exc.errors(include_input=False, include_url=False)
    first = errors[0] if errors else {"loc": (), "msg": "invalid"}
    where = ".".join(str(part) for part in first["loc"]) or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return Denied(DenialReason.MALFORMED_REQUEST, f"{where}: {first['msg']}{more}")


def _unavailable(exc: CcdError, path: str) -> JSONResponse:
    # The database's error text is for the operator (server log), not for an unauthenticated caller.
    _LOG.error("broker unavailable on %s: %s", path, exc.message)
    return JSONResponse(
        problem_document(DenialReason.INTERNAL, 503, "the broker cannot serve this now; try again later"),
        status_code=503,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def _guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Turn denials and store outages into problem documents."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except Denied as denied:
            if denied.public_detail is not None:
                _LOG.warning("%s denied (%s): %s", request.url.path, denied.denial.value, denied.detail)
            return problem_response(denied, instance=request.url.path)
        except BrokerUnavailable as exc:
            return _unavailable(exc, request.url.path)

    return run


class _Handlers:
    """The route handlers over one :class:`BrokerApp`."""

    def __init__(self, broker: BrokerApp) -> None:
        self.broker = broker
        self.service = broker.service

    def client_of(self, request: Request) -> str:
        return _client(request, self.broker.trust_proxy)

    def throttle(self, client: str) -> None:
        wait = self.broker.limiter.acquire(client)
        if wait > 0:
            raise Denied(DenialReason.RATE_LIMITED, "too many requests from this client", retry_after=wait)

    def admin(self, request: Request) -> str:
        client = self.client_of(request)
        self.broker.auth.check(request.headers.get("authorization"), client)
        return client

    async def challenge(self, request: Request) -> Response:
        self.throttle(self.client_of(request))
        issued = self.service.challenge()  # stateless and microseconds: no thread hop
        return JSONResponse(issued.model_dump(mode="json"), headers={"Cache-Control": "no-store"})

    async def release(self, request: Request) -> Response:
        client = self.client_of(request)
        self.throttle(client)
        try:
            document = _json(await _read_body(request, self.broker.max_body_bytes))
            try:
                parsed = ReleaseRequest.model_validate(document)
            except ValidationError as exc:
                raise _invalid(exc) from None
        except Denied as denied:
            await run_in_threadpool(self.service.audit_denial, denied, {"client": client})
            raise
        grant = await run_in_threadpool(self.service.release, parsed, client)
        return JSONResponse(grant.model_dump(mode="json"), headers={"Cache-Control": "no-store"})

    async def checkpoint(self, request: Request) -> Response:
        self.throttle(self.client_of(request))
        text = await run_in_threadpool(self.broker.log.checkpoint)
        return PlainTextResponse(text, headers={"Cache-Control": "no-store"})

    def _log_entry(self, index: int) -> dict[str, Any] | None:
        try:
            entry = self.broker.log.entry(index)
        except ValueError:
            return None
        leaf = self.broker.store.log_leaf(index)
        if leaf is None:  # pragma: no cover - the log holds the entry, so the store holds its leaf
            return None
        return {**entry.to_dict(), "leaf_data": b64(leaf)}

    async def log_entry(self, request: Request) -> Response:
        self.throttle(self.client_of(request))
        index = request.path_params["index"]
        found = await run_in_threadpool(self._log_entry, index)
        if found is None:
            raise Denied(DenialReason.MALFORMED_REQUEST, f"the log has no entry {index}", status=404)
        return JSONResponse(found)

    async def info(self, request: Request) -> Response:
        return JSONResponse(self.broker.info)

    async def register(self, request: Request) -> Response:
        client = self.admin(request)
        document = _json(await _read_body(request, self.broker.max_admin_body_bytes))
        try:
            parsed = _RegistrationBody.model_validate(document)
        except ValidationError as exc:
            raise _invalid(exc) from None
        registration = Registration(
            name=parsed.name,
            head=parsed.head,
            part_digests=tuple(parsed.part_digests),
            policy=parsed.policy,
            provenance=parsed.provenance,
        )
        registered = await run_in_threadpool(self.service.register, registration, f"admin@{client}")
        return JSONResponse(registered.to_dict(), status_code=201)

    async def models(self, request: Request) -> Response:
        self.admin(request)
        found = await run_in_threadpool(self.service.models)
        return JSONResponse({"models": [model.to_dict() for model in found]})

    def _audit_page(self, after: int, limit: int) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        for entry in self.broker.store.audit_entries(after):
            entries.append(
                {
                    "seq": entry.seq,
                    "time": entry.time.isoformat(),
                    "kind": entry.kind,
                    "body": entry.body,
                    "prev_hash": entry.prev_hash,
                    "entry_hash": entry.entry_hash,
                }
            )
            if len(entries) >= limit:
                break
        return entries

    async def audit(self, request: Request) -> Response:
        self.admin(request)
        try:
            after = max(int(request.query_params.get("after", "0")), 0)
            limit = min(max(int(request.query_params.get("limit", str(MAX_AUDIT_PAGE))), 1), MAX_AUDIT_PAGE)
        except ValueError:
            raise Denied(DenialReason.MALFORMED_REQUEST, "after and limit are integers") from None
        entries = await run_in_threadpool(self._audit_page, after, limit)
        return JSONResponse({"entries": entries})


def collateral_fetcher(state_dir: Path) -> CachingFetcher:
    """HTTPS fetching of attestation collateral, cached in ``STATE/collateral``.

    AMD KDS answers are kept as long as KDS allows (VCEKs forever); Intel PCS collateral and attestation providers'
    key sets change within a day and are kept for an hour.
    """

    def max_age(url: str) -> float | None:
        return kds_cache_max_age(url) if url.startswith(KDS_URL) else COLLATERAL_MAX_AGE_S

    return CachingFetcher(HttpFetcher(), state_dir / "collateral", max_age=max_age)


def create_app(broker: BrokerApp) -> Starlette:
    """The broker's ASGI application.

    Args:
        broker: the service and everything around it.

    Returns:
        The Starlette application (closing the store at shutdown is the caller's business).
    """
    handlers = _Handlers(broker)
    routes = [
        Route("/v1/challenge", _guarded(handlers.challenge), methods=["POST"]),
        Route("/v1/release", _guarded(handlers.release), methods=["POST"]),
        Route("/v1/log/checkpoint", _guarded(handlers.checkpoint), methods=["GET"]),
        Route("/v1/log/entries/{index:int}", _guarded(handlers.log_entry), methods=["GET"]),
        Route("/v1/broker", _guarded(handlers.info), methods=["GET"]),
        Route("/v1/models", _guarded(handlers.register), methods=["POST"]),
        Route("/v1/models", _guarded(handlers.models), methods=["GET"]),
        Route("/v1/audit", _guarded(handlers.audit), methods=["GET"]),
    ]
    return Starlette(routes=routes)


def build_app(config: BrokerConfig, clock: Callable[[], datetime] | None = None) -> Starlette:
    """Wire a broker from its configuration: state directory, store, KEKs, signers, logs, limits.

    The store is opened now and closed when the application shuts down.

    Raises:
        BrokerConfigError: unusable state directory, token or database URL.
        KekError, KekUnavailable: a KEK URI is malformed or its backend unreachable.
        BrokerUnavailable: the database cannot be reached.
    """
    state = load_state(config.state_dir)
    token = read_token_file(state.admin_token_path)
    keks = [kek_from_uri(uri) for uri in config.kek_uris]
    store = open_store(config.db_url)
    try:
        note_signer = NoteSigner(state.log_origin, state.checkpoint_key)
        log = TransparencyLog(store.log_leaves, note_signer, state.log_origin)
        service = ReleaseService(
            store,
            keks,
            state.receipt_signer,
            log,
            clock or (lambda: datetime.now(UTC)),
            config.nonce_ttl,
            broker_id=state.broker_id,
            nonce_key=state.nonce_key,
            fetcher=collateral_fetcher(config.state_dir) if config.fetch_collateral else None,
        )
        broker = BrokerApp(
            service=service,
            store=store,
            log=log,
            auth=AdminAuth(token, RateLimiter(config.admin_failure_rate, 5)),
            limiter=RateLimiter(config.rate_limit, config.rate_burst),
            info={
                "broker_id": state.broker_id,
                "receipt_public_key": state.receipt_public_pem(),
                "log_origin": state.log_origin,
                "log_verifier_key": log.verifier_key(),
                "hpke_suites": [suite.value for suite in service.suites],
                "nonce_ttl": config.nonce_ttl.total_seconds(),
            },
            trust_proxy=config.trust_proxy,
            max_body_bytes=config.max_body_bytes,
            max_admin_body_bytes=config.max_admin_body_bytes,
        )
    except BaseException:
        store.close()
        raise
    app = create_app(broker)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            store.close()

    app.router.lifespan_context = lifespan
    return app


def app_from_environment() -> Starlette:
    """The application of a uvicorn worker process: the configuration comes in ``CCDEPLOY_BROKER_CONFIG``.

    Raises:
        BrokerConfigError: the variable is missing or malformed.
    """
    text = os.environ.get(CONFIG_ENVIRONMENT_VARIABLE)
    if not text:
        raise BrokerConfigError(f"{CONFIG_ENVIRONMENT_VARIABLE} is not set")
    return build_app(BrokerConfig.from_json(text))
