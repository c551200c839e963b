"""Security review fixes: atomic registration, the provenance cache key, single-leaf log reads and log rate
limits, generic 503 details, and the cap on a nonce's expiry."""

from __future__ import annotations

import base64
import logging
import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from ccdeploy.broker.problems import Denied
from ccdeploy.broker.service import NONCE_EXPIRY_SKEW, ReleaseService
from ccdeploy.broker.store import verify_audit_chain
from ccdeploy.errors import BrokerUnavailable, ReleaseDenied
from ccdeploy.kek import kek_from_uri
from ccdeploy.kek.file import create_kek_file
from ccdeploy.release.client import ReleaseClient
from ccdeploy.release.protocol import DenialReason
from ccdeploy.transparency import leaf_hash
from tests.broker.helpers import Broker, Served, ServeFactory, broker_app, policy_document, public_pem

MODEL = "tiny"


@pytest.fixture
def registered(broker: Broker) -> Broker:
    broker.register(MODEL, policy_document(broker.simulator, provenance={"key": public_pem(broker.model.signer)}))
    return broker


def _released(broker: Broker, model: str = MODEL, nonce: bytes | None = None) -> None:
    request = broker.enclave().request(model, nonce if nonce is not None else broker.service.challenge().nonce)
    broker.service.release(request, "10.0.0.9")


# -- 2. registration and its audit entry: one transaction -------------------------------------------------------


def test_a_registration_whose_audit_append_fails_registers_nothing(broker: Broker) -> None:
    with sqlite3.connect(broker.db_url.removeprefix("sqlite:///")) as db:
        db.execute(
            "CREATE TRIGGER fail_audit BEFORE INSERT ON audit_log WHEN NEW.kind = 'model-registered'"
            " BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    policy = policy_document(broker.simulator, provenance={"key": public_pem(broker.model.signer)})
    with pytest.raises(BrokerUnavailable):
        broker.register(MODEL, policy)
    assert broker.service.models() == [] and broker.store.get_model(MODEL) is None
    assert broker.kinds() == [] and broker.store.log_leaves() == []


# -- 3. the provenance decision cache covers the stream digests ------------------------------------------------


def test_same_head_and_bundle_with_other_stream_digests_is_checked_afresh(registered: Broker) -> None:
    broker = registered
    _released(broker)  # the provenance decision for (policy, header, bundle) is now cached
    forged = tuple(format(int(part, 16) ^ 1, "064x") for part in broker.model.parts)
    policy = policy_document(broker.simulator, provenance={"key": public_pem(broker.model.signer)})
    broker.register("forged", policy)
    record = broker.store.get_model("forged")
    assert record is not None
    broker.store.put_model(replace(record, part_digests=forged))  # same head, bundle, policy; other streams
    with pytest.raises(Denied) as caught:
        _released(broker, "forged")
    assert caught.value.denial is DenialReason.PROVENANCE_INVALID, caught.value.detail
    assert broker.kinds()[-1] == "denial"


# -- 4. single-leaf reads and rate limits on the public log routes ---------------------------------------------


def test_a_log_entry_reads_only_its_leaf(registered: Broker, serve: ServeFactory) -> None:
    broker = registered
    for _ in range(3):
        _released(broker)
    url = serve().url
    scans: list[int] = []
    original = broker.store.log_leaves

    def spy(start: int = 0) -> list[bytes]:
        scans.append(start)
        return original(start)

    broker.store.log_leaves = spy  # type: ignore[method-assign]
    broker.log.refresh()
    scans.clear()
    document = httpx.get(f"{url}/v1/log/entries/1").json()
    assert scans == []  # no scan of the leaves from 1 to the end
    leaf = base64.b64decode(document["leaf_data"])
    assert leaf == original(1)[0] and bytes.fromhex(document["leaf_hash"]) == leaf_hash(leaf)
    assert httpx.get(f"{url}/v1/log/entries/9").status_code == 404


@pytest.mark.parametrize("path", ["/v1/log/checkpoint", "/v1/log/entries/0"])
def test_public_log_routes_are_rate_limited(registered: Broker, serve: ServeFactory, path: str) -> None:
    url = serve(rate=0.01, burst=2).url
    statuses = [httpx.get(url + path).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


# -- 5. no infrastructure error text to unauthenticated callers ------------------------------------------------


def test_key_unavailable_detail_goes_to_the_audit_and_server_log_only(
    registered: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker = registered
    other = kek_from_uri(create_kek_file(tmp_path / "other.kek"))
    service = ReleaseService(
        broker.store,
        [other],
        broker.state.receipt_signer,
        broker.log,
        broker.clock,
        broker_id=broker.state.broker_id,
        nonce_key=broker.state.nonce_key,
    )
    keyless = replace(broker, service=service)
    with Served(broker_app(keyless)) as served, ReleaseClient(served.url) as client:
        request = broker.enclave().request(MODEL, client.challenge().nonce)
        with caplog.at_level(logging.WARNING, logger="ccdeploy.broker"):
            response = httpx.post(f"{served.url}/v1/release", json=request.model_dump(mode="json"))
    assert response.status_code == 503
    problem = response.json()
    assert problem["reason"] == DenialReason.KEY_UNAVAILABLE.value
    assert problem["detail"] == "the model's data key is not available to the broker now"
    audited = list(broker.store.audit_entries())[-1].body["detail"]
    assert audited.startswith("the data key could not be unwrapped: ") and audited != problem["detail"]
    assert audited in caplog.text


def test_database_errors_are_not_shown_to_callers(
    registered: Broker, serve: ServeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    url = serve().url
    with ReleaseClient(url) as client:
        request = registered.enclave().request(MODEL, client.challenge().nonce)
        registered.store.close()  # the database goes away
        with caplog.at_level(logging.ERROR, logger="ccdeploy.broker"):
            response = httpx.post(f"{url}/v1/release", json=request.model_dump(mode="json"))
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert "closed" not in detail and "database" not in detail and "store" not in detail
    assert "the broker store is closed" in caplog.text


# -- 6. a nonce's expiry is capped by the TTL ------------------------------------------------------------------


def test_a_nonce_expiring_beyond_the_ttl_is_unknown(registered: Broker) -> None:
    broker = registered
    ttl = timedelta(seconds=60)  # the conftest broker's
    far, _ = broker.state.nonce_key.mint(broker.clock.now + ttl + NONCE_EXPIRY_SKEW + timedelta(seconds=1))
    with pytest.raises(Denied) as caught:
        _released(broker, nonce=far)
    assert caught.value.denial is DenialReason.NONCE_UNKNOWN
    within, _ = broker.state.nonce_key.mint(broker.clock.now + ttl + NONCE_EXPIRY_SKEW)
    _released(broker, nonce=within)  # a replica whose clock runs a little ahead
    verify_audit_chain(broker.store.audit_entries())


def test_release_client_sees_the_generic_detail(registered: Broker, serve: ServeFactory) -> None:
    url = serve().url
    registered.store.close()
    with ReleaseClient(url) as client:
        nonce = client.challenge().nonce
        with pytest.raises((BrokerUnavailable, ReleaseDenied)) as caught:
            client.release(registered.enclave().request(MODEL, nonce))
    assert "closed" not in str(caught.value)
