"""The event loop stays free: large bodies decode (and large responses encode) in the thread pool, and
``/v1/attestation`` is rate limited per client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

import enclave.server as server_module
import enclave.tensors as tensors
from ccdeploy.client import _oip
from enclave.server import _TokenBuckets, create_app
from enclave.tensors import HEADER_LENGTH, InputLimits
from tests.enclave.server.conftest import Served
from tests.enclave.server.harness import running


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[bool]]]:
    """Where decode_request and encode_response ran: True = on the event loop thread."""
    seen: dict[str, list[bool]] = {"decode": [], "encode": []}
    decode, encode = tensors.decode_request, tensors.encode_response

    def decode_spy(*args: Any, **kwargs: Any) -> Any:
        seen["decode"].append(_on_event_loop())
        return decode(*args, **kwargs)

    def encode_spy(*args: Any, **kwargs: Any) -> Any:
        seen["encode"].append(_on_event_loop())
        return encode(*args, **kwargs)

    monkeypatch.setattr("enclave.server.decode_request", decode_spy)
    monkeypatch.setattr("enclave.server.encode_response", encode_spy)
    yield seen


def _infer(url: str, rows: int) -> httpx.Response:
    x = np.ones((rows, 4), dtype=np.float32)
    body, header_length = _oip.encode_request({"x": x}, binary=True)
    headers = {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(header_length)}
    return httpx.post(f"{url}/v2/models/tiny/infer", content=body, headers=headers)


def test_small_requests_stay_on_the_loop_large_ones_go_to_the_pool(
    served: Served, recorded: dict[str, list[bool]]
) -> None:
    app = create_app(served.session, model_name="tiny", attestation=None, limits=InputLimits(), inline_bytes=1024)
    with running(app) as url:
        assert _infer(url, 2).status_code == 200  # 32 bytes of input, 24 of output
        assert _infer(url, 1000).status_code == 200  # 16 kB in, 12 kB out
    assert recorded["decode"] == [True, False]
    assert recorded["encode"] == [True, False]


def test_bad_large_request_is_still_a_400_from_the_pool(served: Served) -> None:
    app = create_app(served.session, model_name="tiny", attestation=None, limits=InputLimits(), inline_bytes=16)
    with running(app) as url:
        response = httpx.post(
            f"{url}/v2/models/tiny/infer",
            json={"inputs": [{"name": "x", "datatype": "FP32", "shape": [0, 10**30], "data": []}]},
        )
    assert response.status_code == 400 and "dimension is larger" in response.json()["error"]


def test_attestation_is_rate_limited_per_client(served: Served) -> None:
    now = [1000.0]
    attest = server_module.attestation_source(
        _Attester(), hpke_suite="X25519", hpke_public_key=served.hpke.public, tls_certificate_pem=served.tls.pem
    )
    app = create_app(
        served.session,
        model_name="tiny",
        attestation=attest,
        limits=InputLimits(),
        attestation_rate=(5.0, 10),
        clock=lambda: now[0],
    )
    with running(app) as url:
        codes = [httpx.get(f"{url}/v1/attestation", params={"nonce": "00" * 32}).status_code for _ in range(11)]
        assert codes == [200] * 10 + [429]
        limited = httpx.get(f"{url}/v1/attestation", params={"nonce": "00" * 32})
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
        assert "too many" in limited.json()["error"]
        now[0] += 0.2  # one token back at 5/s
        assert httpx.get(f"{url}/v1/attestation", params={"nonce": "00" * 32}).status_code == 200
        assert httpx.get(f"{url}/v1/attestation", params={"nonce": "00" * 32}).status_code == 429
        assert httpx.get(f"{url}/v2/health/ready").status_code == 200  # only attestation is limited


class _Attester:
    evidence_type = "test"

    def attest(self, report_data: bytes, nonce: bytes) -> bytes:
        return report_data


def test_token_buckets() -> None:
    now = [0.0]
    buckets = _TokenBuckets(2.0, 3, lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0.0  # another client has its own bucket
    now[0] = 10.0
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]  # refilled only up to the burst
    assert buckets.take("a") > 0
    with pytest.raises(ValueError, match="positive rate"):
        _TokenBuckets(0.0, 1, lambda: 0.0)


def test_token_buckets_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "MAX_TRACKED_CLIENTS", 100)
    now = [0.0]
    buckets = _TokenBuckets(1.0, 2, lambda: now[0])
    for i in range(1000):
        buckets.take(f"client-{i}")
    assert len(buckets._buckets) <= 100
    now[0] = 100.0  # every bucket refilled: pruning drops them all
    buckets.take("new")
    assert len(buckets._buckets) <= 100
