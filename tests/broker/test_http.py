"""Acceptance 2 and the HTTP surface, through a real uvicorn server on loopback."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ccdeploy.broker.store import verify_audit_chain
from ccdeploy.errors import ReleaseDenied
from ccdeploy.release.client import ReleaseClient
from ccdeploy.release.hpke import HpkeSuite, release_info
from ccdeploy.release.protocol import PROBLEM_MEDIA_TYPE, ReleaseRequest
from ccdeploy.release.receipt import verify_receipt
from ccdeploy.seal import DekKeyProvider, open_sealed
from ccdeploy.transparency import open_checkpoint
from tests.broker.helpers import Broker, Enclave, ServeFactory, dump, policy_document, public_pem

MODEL = "tiny"


@pytest.fixture
def url(broker: Broker, serve: ServeFactory) -> str:
    signer = public_pem(broker.model.signer)
    broker.register(MODEL, policy_document(broker.simulator, provenance={"key": signer}))
    broker.register("unsigned", policy_document(broker.simulator, provenance={"key": signer}), provenance=None)
    stranger = public_pem(ec.generate_private_key(ec.SECP256R1()))
    broker.register("other-signer", policy_document(broker.simulator, provenance={"key": stranger}))
    return serve().url


Case = Callable[[Broker, ReleaseClient, Enclave], ReleaseRequest]


def _replayed(broker: Broker, client: ReleaseClient, enclave: Enclave) -> ReleaseRequest:
    request = enclave.request(MODEL, client.challenge().nonce)
    client.release(request)
    return request


def _expired(broker: Broker, client: ReleaseClient, enclave: Enclave) -> ReleaseRequest:
    nonce = client.challenge().nonce
    broker.clock.advance(61)
    return enclave.request(MODEL, nonce)


def _other_nonce(broker: Broker, client: ReleaseClient, enclave: Enclave) -> ReleaseRequest:
    nonce, other = client.challenge().nonce, client.challenge().nonce
    return enclave.request(MODEL, nonce, evidence_nonce=other)


def _other_hpke_key(broker: Broker, client: ReleaseClient, enclave: Enclave) -> ReleaseRequest:
    return enclave.request(MODEL, client.challenge().nonce, bound_hpke=broker.enclave().hpke.public)


CASES: dict[str, tuple[Case, str]] = {
    "replayed nonce": (_replayed, "nonce-replayed"),
    "expired nonce": (_expired, "nonce-expired"),
    "evidence for another nonce": (_other_nonce, "nonce-mismatch"),
    "another HPKE key in report_data": (_other_hpke_key, "binding-mismatch"),
    "debug enclave": (lambda b, c, e: e.request(MODEL, c.challenge().nonce, debug=True), "debug-not-allowed"),
    "wrong measurement": (
        lambda b, c, e: e.request(MODEL, c.challenge().nonce, pcrs={1: b"\x22" * 48}),
        "measurement-mismatch",
    ),
    "missing provenance": (lambda b, c, e: e.request("unsigned", c.challenge().nonce), "provenance-missing"),
    "wrong signer": (lambda b, c, e: e.request("other-signer", c.challenge().nonce), "signer-mismatch"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_denied_with_typed_reason_nothing_released_and_audited(broker: Broker, url: str, case: str) -> None:
    make, reason = CASES[case]
    enclave = broker.enclave()
    with ReleaseClient(url) as client:
        request = make(broker, client, enclave)
        releases_before = broker.kinds().count("release")
        entries_before = len(broker.kinds())
        raw = httpx.post(f"{url}/v1/release", content=request.model_dump_json())
        assert raw.status_code == 403
        assert raw.headers["content-type"] == PROBLEM_MEDIA_TYPE
        problem = raw.json()
        assert problem["reason"] == reason and problem["type"] == f"https://ccdeploy.dev/problems/{reason}"
        assert "sealed_key" not in problem
        with pytest.raises(ReleaseDenied) as caught:  # the typed client sees the same
            client.release(request)
    assert (caught.value.reason, caught.value.status) in {(reason, 403), ("nonce-replayed", 403)}
    kinds = broker.kinds()
    assert kinds.count("release") == releases_before
    assert kinds[entries_before:] == ["denial", "denial"]
    entries = list(broker.store.audit_entries())
    assert entries[entries_before].body["reason"] == reason
    assert entries[entries_before].body["client"] == "127.0.0.1"
    verify_audit_chain(entries)


@pytest.mark.parametrize("suite", [HpkeSuite.XWING, HpkeSuite.X25519])
def test_release_over_http(broker: Broker, url: str, suite: HpkeSuite) -> None:
    enclave = broker.enclave(suite)
    with ReleaseClient(url) as client:
        challenge = client.challenge()
        grant = client.release(enclave.request(MODEL, challenge.nonce))
    assert grant.suite is suite and grant.suite_name == suite.rfc9180
    dek = enclave.hpke.open(grant.sealed_key, release_info(MODEL, challenge.nonce))
    with open_sealed(broker.model.sealed, DekKeyProvider(dek)) as opened:
        assert bytes(opened.read_file()) == broker.model.plaintext
    info = httpx.get(f"{url}/v1/broker").json()
    entry = httpx.get(f"{url}/v1/log/entries/{grant.log_entry['index']}").json()
    leaf = base64.b64decode(entry["leaf_data"])
    receipt = verify_receipt(
        json.dumps(grant.receipt).encode(),
        info["receipt_public_key"].encode(),
        info["log_verifier_key"],
        leaf_data=leaf,
    )
    assert receipt.log_index == grant.log_entry["index"]
    checkpoint = httpx.get(f"{url}/v1/log/checkpoint")
    assert checkpoint.headers["content-type"].startswith("text/plain")
    assert open_checkpoint(checkpoint.text, [info["log_verifier_key"]]).size == len(broker.store.log_leaves())
    assert httpx.get(f"{url}/v1/log/entries/999").status_code == 404
    verify_audit_chain(broker.store.audit_entries())


def test_malformed_and_unknown(broker: Broker, url: str) -> None:
    before = len(broker.kinds())
    response = httpx.post(f"{url}/v1/release", content=b"{not json")
    assert (response.status_code, response.json()["reason"]) == (400, "malformed-request")
    response = httpx.post(f"{url}/v1/release", json={"model": "tiny", "surprise": 1})
    assert (response.status_code, response.json()["reason"]) == (400, "malformed-request")
    response = httpx.post(f"{url}/v1/release", content=b"x" * (2 << 20))
    assert response.status_code == 413
    assert broker.kinds()[before:] == ["denial"] * 3
    enclave = broker.enclave()
    with ReleaseClient(url) as client, pytest.raises(ReleaseDenied) as caught:
        client.release(enclave.request("nope", client.challenge().nonce))
    assert (caught.value.reason, caught.value.status) == ("model-unknown", 404)


def test_rate_limit(broker: Broker, serve: ServeFactory) -> None:
    url = serve(rate=0.01, burst=2).url
    assert httpx.post(f"{url}/v1/challenge").status_code == 200
    assert httpx.post(f"{url}/v1/challenge").status_code == 200
    limited = httpx.post(f"{url}/v1/challenge")
    assert (limited.status_code, limited.json()["reason"]) == (429, "rate-limited")
    assert int(limited.headers["retry-after"]) >= 1
    assert httpx.post(f"{url}/v1/release", content=b"{}").status_code == 429


def test_admin_auth(broker: Broker, serve: ServeFactory) -> None:
    url = serve().url
    token = broker.state.admin_token_path.read_text().strip()
    model = broker.model
    body = {
        "name": "via-http",
        "head": base64.b64encode(model.head).decode(),
        "part_digests": list(model.parts),
        "policy": base64.b64encode(dump(policy_document(broker.simulator))).decode(),
        "provenance": None,
    }
    assert httpx.post(f"{url}/v1/models", json=body).status_code == 401
    wrong = httpx.post(f"{url}/v1/models", json=body, headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()["reason"]) == (401, "unauthorized")
    assert httpx.get(f"{url}/v1/models", headers={"Authorization": f"Basic {token}"}).status_code == 401
    assert httpx.get(f"{url}/v1/audit", headers={"Authorization": f"Bearer {token}x"}).status_code == 401
    good = {"Authorization": f"Bearer {token}"}
    created = httpx.post(f"{url}/v1/models", json=body, headers=good)
    assert created.status_code == 201, created.text
    assert created.json()["policy_digest"].startswith("sha256:")
    assert [m["name"] for m in httpx.get(f"{url}/v1/models", headers=good).json()["models"]] == ["via-http"]
    entries = httpx.get(f"{url}/v1/audit?after=0", headers=good).json()["entries"]
    assert [e["kind"] for e in entries] == ["model-registered"]
    bad_policy = httpx.post(f"{url}/v1/models", json=body | {"policy": "AAAA"}, headers=good)
    assert (bad_policy.status_code, bad_policy.json()["reason"]) == (400, "malformed-request")
    assert httpx.post(f"{url}/v1/models", content=b"[", headers=good).status_code == 400
    # One more failure exhausts the bucket of five: the next call is throttled even with the right token.
    assert httpx.get(f"{url}/v1/models").status_code == 401
    throttled = httpx.get(f"{url}/v1/models", headers=good)
    assert (throttled.status_code, throttled.json()["reason"]) == (429, "rate-limited")


def test_register_unwrappable_is_422(broker: Broker, serve: ServeFactory) -> None:
    url = serve().url
    token = broker.state.admin_token_path.read_text().strip()
    head = bytearray(broker.model.head)
    head[-1] ^= 1
    body = {
        "name": "x",
        "head": base64.b64encode(bytes(head)).decode(),
        "part_digests": list(broker.model.parts),
        "policy": base64.b64encode(dump(policy_document(broker.simulator))).decode(),
    }
    response = httpx.post(f"{url}/v1/models", json=body, headers={"Authorization": f"Bearer {token}"})
    assert (response.status_code, response.json()["reason"]) == (422, "key-unavailable")
