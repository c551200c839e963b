"""The broker's small parts: rate limiter, admin auth, configuration, state directory, problems, head parsing, client."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccdeploy.broker.auth import AdminAuth, read_token_file
from ccdeploy.broker.config import BrokerConfig, parse_rate
from ccdeploy.broker.keys import ADMIN_TOKEN_FILE, CHECKPOINT_KEY_FILE, RECEIPT_KEY_FILE, init_state, load_state
from ccdeploy.broker.problems import Denied, problem_document
from ccdeploy.broker.ratelimit import RateLimiter
from ccdeploy.broker.service import parse_head
from ccdeploy.errors import ArtifactCorrupt, BrokerConfigError, BrokerUnavailable, ReleaseDenied, UnsupportedFormat
from ccdeploy.release.client import ReleaseClient
from ccdeploy.release.protocol import DenialReason, Problem
from tests.broker.helpers import SealedModel


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_and_isolates_clients() -> None:
    ticks = Ticks()
    limiter = RateLimiter(2.0, 3, clock=ticks)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)
    assert limiter.acquire("b") == 0.0
    ticks.now += 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0
    ticks.now += 100
    assert limiter.wait_time("a") == 0.0
    assert [limiter.acquire("a") for _ in range(4)].count(0.0) == 3  # never more than the burst


def test_token_bucket_is_thread_safe_and_bounded() -> None:
    limiter = RateLimiter(1e-9, 100, clock=Ticks(), max_keys=10)
    granted: list[float] = []

    def hammer() -> None:
        granted.extend(limiter.acquire("x") for _ in range(50))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted.count(0.0) == 100
    for index in range(50):
        limiter.acquire(f"client-{index}")
    assert len(limiter._buckets) <= 10


def test_admin_auth_compares_digests_and_throttles_failures() -> None:
    ticks = Ticks()
    auth = AdminAuth("s3cret-token", RateLimiter(0.1, 2, clock=ticks))
    auth.check("Bearer s3cret-token", "a")
    auth.check("bearer s3cret-token", "a")
    for header in (None, "", "Bearer ", "Bearer s3cret-tokeN", "Basic s3cret-token"):
        with pytest.raises(Denied) as caught:
            auth.check(header, f"c{header}")
        assert (caught.value.denial, caught.value.status) == (DenialReason.UNAUTHORIZED, 401)
    assert auth.failure_count == 5
    for _ in range(2):
        with pytest.raises(Denied):
            auth.check("Bearer wrong", "b")
    with pytest.raises(Denied) as caught:
        auth.check("Bearer s3cret-token", "b")  # throttled before the token is even looked at
    assert (caught.value.denial, caught.value.status) == (DenialReason.RATE_LIMITED, 429)
    assert caught.value.retry_after is not None and caught.value.retry_after > 0
    ticks.now += 10
    auth.check("Bearer s3cret-token", "b")


def test_token_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("  abc \n")
    assert read_token_file(path) == "abc"
    for text in ("", "a b", "\n\n"):
        path.write_text(text)
        with pytest.raises(BrokerConfigError):
            read_token_file(path)
    with pytest.raises(BrokerConfigError):
        read_token_file(tmp_path / "missing")


def test_rates_and_config(tmp_path: Path) -> None:
    assert parse_rate("10/s") == 10
    assert parse_rate("120/min") == 2
    assert parse_rate("2.5") == 2.5
    for bad in ("", "0/s", "-1/s", "ten", "5/h"):
        with pytest.raises(BrokerConfigError):
            parse_rate(bad)
    config = BrokerConfig(tmp_path, "sqlite:///x.db", ("file:/k",), nonce_ttl=timedelta(seconds=5), workers=2)
    assert BrokerConfig.from_json(config.to_json()) == config
    with pytest.raises(BrokerConfigError):
        BrokerConfig(tmp_path, "x.db", ())
    with pytest.raises(BrokerConfigError):
        BrokerConfig(tmp_path, "x.db", ("file:/k",), nonce_ttl=timedelta(hours=2))
    with pytest.raises(BrokerConfigError):
        BrokerConfig.from_json("{}")


def test_state_directory(tmp_path: Path) -> None:
    state = tmp_path / "state"
    broker_id = init_state(state)
    loaded = load_state(state)
    assert loaded.broker_id == broker_id and loaded.log_origin == f"ccdeploy-broker/{broker_id}"
    assert "PRIVATE" not in repr(loaded) and "BEGIN PUBLIC KEY" in loaded.receipt_public_pem()
    with pytest.raises(BrokerConfigError, match="refusing to overwrite"):
        init_state(state)
    (state / ADMIN_TOKEN_FILE).chmod(0o644)
    with pytest.raises(BrokerConfigError, match="chmod 600"):
        load_state(state)
    (state / ADMIN_TOKEN_FILE).chmod(0o600)
    (state / CHECKPOINT_KEY_FILE).write_bytes((state / RECEIPT_KEY_FILE).read_bytes())
    with pytest.raises(BrokerConfigError, match="Ed25519"):
        load_state(state)


def test_problem_documents_are_rfc9457() -> None:
    for reason in DenialReason:
        document = problem_document(reason, 403, "why")
        parsed = Problem.model_validate(document)
        assert parsed.type == f"https://ccdeploy.dev/problems/{reason.value}" and parsed.title
    assert Denied(DenialReason.NONCE_EXPIRED, "x").status == 403
    assert Denied(DenialReason.KEY_UNAVAILABLE, "x").status == 503
    assert isinstance(Denied(DenialReason.RATE_LIMITED, "x"), ReleaseDenied)


def test_parse_head(sealed_model: SealedModel) -> None:
    parsed = parse_head(sealed_model.head)
    assert parsed.authenticated + parsed.mac == sealed_model.head
    for bad in (sealed_model.head[:-1], sealed_model.head + b"\x00", b""):
        with pytest.raises(ArtifactCorrupt):
            parse_head(bad)


@given(st.binary(max_size=200))
def test_parse_head_refuses_garbage_with_typed_errors(data: bytes) -> None:
    with pytest.raises((ArtifactCorrupt, UnsupportedFormat)):
        parse_head(data)


def test_client_errors() -> None:
    def answer(status: int, document: dict[str, object] | None) -> ReleaseClient:
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(status, json=document)

        return ReleaseClient("http://broker", transport=httpx.MockTransport(handler))

    problem = problem_document(DenialReason.KEY_UNAVAILABLE, 503, "kek down")
    with pytest.raises(ReleaseDenied) as caught:
        answer(503, problem).challenge()
    assert (caught.value.reason, caught.value.status) == ("key-unavailable", 503)
    with pytest.raises(BrokerUnavailable):
        answer(503, problem_document(DenialReason.INTERNAL, 503, "db down")).challenge()
    with pytest.raises(BrokerUnavailable):
        answer(502, None).challenge()
    with pytest.raises(BrokerUnavailable):
        answer(200, {"nonce": 5}).challenge()
    with pytest.raises(BrokerUnavailable):
        ReleaseClient("http://127.0.0.1:9", timeout=2).challenge()
