"""The release pipeline at the service level: every step's denial, and a release that opens end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.simulator.nitro import NitroSimulator
from ccdeploy.broker import service as service_module
from ccdeploy.broker.problems import Denied
from ccdeploy.broker.service import Registration
from ccdeploy.broker.store import audit_leaf_data, verify_audit_chain
from ccdeploy.errors import BrokerUnavailable
from ccdeploy.kek import kek_from_uri
from ccdeploy.kek.file import create_kek_file
from ccdeploy.release.hpke import HpkeSuite, release_info
from ccdeploy.release.protocol import DenialReason
from ccdeploy.release.receipt import verify_receipt
from ccdeploy.seal import DekKeyProvider, open_sealed
from tests.broker.helpers import Broker, SealedModel, dump, make_broker, policy_document, public_pem

MODEL = "tiny"


@pytest.fixture
def registered(broker: Broker) -> Broker:
    broker.register(MODEL, policy_document(broker.simulator, provenance={"key": public_pem(broker.model.signer)}))
    return broker


@pytest.mark.parametrize("suite", [HpkeSuite.XWING, HpkeSuite.X25519])
def test_release_opens_and_is_receipted(registered: Broker, suite: HpkeSuite) -> None:
    broker = registered
    enclave = broker.enclave(suite)
    nonce = broker.service.challenge().nonce
    grant = broker.service.release(enclave.request(MODEL, nonce), "10.0.0.1")
    assert grant.suite is suite
    dek = enclave.hpke.open(grant.sealed_key, release_info(MODEL, nonce))
    with open_sealed(broker.model.sealed, DekKeyProvider(dek)) as opened:
        assert bytes(opened.read_file()) == broker.model.plaintext
    leaf = broker.store.log_leaves(grant.log_entry["index"])[0]
    receipt = verify_receipt(
        json.dumps(grant.receipt).encode(),
        broker.state.receipt_public_pem().encode(),
        broker.log.verifier_key(),
        leaf_data=leaf,
    )
    assert receipt.model == MODEL and receipt.leaf_checked
    entries = list(broker.store.audit_entries())
    assert verify_audit_chain(entries) == 2
    release = entries[-1]
    assert release.kind == "release" and audit_leaf_data(release) == leaf
    assert release.body["client"] == "10.0.0.1"
    assert release.body["enclave"]["hpkeSuite"] == suite.value
    assert dek.hex() not in json.dumps(release.body) and dek.hex() not in json.dumps(grant.receipt)


def denied(broker: Broker, request: object, reason: DenialReason, status: int = 403) -> None:
    before = broker.kinds()
    with pytest.raises(Denied) as caught:
        broker.service.release(request, "10.0.0.2")  # type: ignore[arg-type]
    assert (caught.value.denial, caught.value.status) == (reason, status), caught.value.detail
    entries = list(broker.store.audit_entries())
    assert [e.kind for e in entries] == [*before, "denial"]
    assert entries[-1].body["reason"] == reason.value
    assert entries[-1].body["client"] == "10.0.0.2"
    verify_audit_chain(entries)


def test_replayed_nonce(registered: Broker) -> None:
    enclave = registered.enclave()
    nonce = registered.service.challenge().nonce
    registered.service.release(enclave.request(MODEL, nonce), "c")
    denied(registered, enclave.request(MODEL, nonce), DenialReason.NONCE_REPLAYED)


def test_nonce_consumed_even_when_denied(registered: Broker) -> None:
    enclave = registered.enclave()
    nonce = registered.service.challenge().nonce
    denied(registered, enclave.request(MODEL, nonce, debug=True), DenialReason.DEBUG_NOT_ALLOWED)
    denied(registered, enclave.request(MODEL, nonce), DenialReason.NONCE_REPLAYED)


def test_expired_and_unknown_nonce(registered: Broker) -> None:
    enclave = registered.enclave()
    nonce = registered.service.challenge().nonce
    registered.clock.advance(61)
    denied(registered, enclave.request(MODEL, nonce), DenialReason.NONCE_EXPIRED)
    denied(registered, enclave.request(MODEL, b"\x01" * 32), DenialReason.NONCE_UNKNOWN)


def test_binding(registered: Broker) -> None:
    enclave = registered.enclave()
    service = registered.service
    nonce, other = service.challenge().nonce, service.challenge().nonce
    denied(registered, enclave.request(MODEL, nonce, evidence_nonce=other), DenialReason.NONCE_MISMATCH)
    stranger = registered.enclave().hpke.public
    nonce = service.challenge().nonce
    denied(registered, enclave.request(MODEL, nonce, bound_hpke=stranger), DenialReason.BINDING_MISMATCH)


def test_measurement_and_staleness(registered: Broker) -> None:
    enclave = registered.enclave()
    nonce = registered.service.challenge().nonce
    denied(registered, enclave.request(MODEL, nonce, pcrs={0: b"\x11" * 48}), DenialReason.MEASUREMENT_MISMATCH)
    nonce = registered.service.challenge().nonce
    registered.clock.advance(-301)  # evidence made 301 s before the broker's now (the policy allows 300)
    stale = enclave.request(MODEL, nonce)
    registered.clock.advance(301)
    denied(registered, stale, DenialReason.EVIDENCE_STALE)


def test_model_unknown_and_suite(registered: Broker) -> None:
    enclave = registered.enclave()
    nonce = registered.service.challenge().nonce
    denied(registered, enclave.request("other", nonce), DenialReason.MODEL_UNKNOWN, 404)
    bad = enclave.request(MODEL, nonce).model_copy(update={"hpke_public_key": b"\x00" * 31})
    denied(registered, bad, DenialReason.SUITE_UNSUPPORTED, 400)
    # Neither consumed the nonce: it still releases.
    registered.service.release(enclave.request(MODEL, nonce), "c")


def test_provenance_missing_and_wrong_signer(broker: Broker) -> None:
    requires = policy_document(broker.simulator, provenance={"key": public_pem(broker.model.signer)})
    broker.register("unsigned", requires, provenance=None)
    other = ec.generate_private_key(ec.SECP256R1())
    broker.register("other-signer", policy_document(broker.simulator, provenance={"key": public_pem(other)}))
    enclave = broker.enclave()
    nonce = broker.service.challenge().nonce
    denied(broker, enclave.request("unsigned", nonce), DenialReason.PROVENANCE_MISSING)
    nonce = broker.service.challenge().nonce
    denied(broker, enclave.request("other-signer", nonce), DenialReason.SIGNER_MISMATCH)


def test_key_unavailable(tmp_path: Path, simulator: NitroSimulator, sealed_model: SealedModel) -> None:
    broker = make_broker(tmp_path, simulator, sealed_model)
    try:
        policy = dump(policy_document(simulator))
        broker.service.register(Registration(MODEL, sealed_model.head, sealed_model.parts, policy, None), "t")
        broker.service._keys._keks = (kek_from_uri(create_kek_file(tmp_path / "other.kek")),)  # the KEK goes away
        enclave = broker.enclave()
        nonce = broker.service.challenge().nonce
        denied(broker, enclave.request(MODEL, nonce), DenialReason.KEY_UNAVAILABLE, 503)
    finally:
        broker.store.close()


def test_registration_validates(broker: Broker) -> None:
    model = broker.model
    good = dump(policy_document(broker.simulator))
    with pytest.raises(Denied) as caught:
        broker.service.register(Registration("m", model.head, model.parts, b"version: 2\n", None), "t")
    assert caught.value.status == 400 and "policy" in caught.value.detail
    with pytest.raises(Denied) as caught:
        broker.service.register(Registration("m", model.head[:-1], model.parts, good, None), "t")
    assert caught.value.status == 400
    with pytest.raises(Denied) as caught:
        broker.service.register(Registration("m", model.head, ("00" * 32, "11" * 32), good, None), "t")
    assert caught.value.status == 400
    tampered = bytearray(model.head)
    tampered[-1] ^= 1  # the header MAC no longer verifies under the DEK
    with pytest.raises(Denied) as caught:
        broker.service.register(Registration("m", bytes(tampered), model.parts, good, None), "t")
    assert (caught.value.denial, caught.value.status) == (DenialReason.KEY_UNAVAILABLE, 422)
    assert broker.store.model_names() == []
    assert broker.kinds() == []
    broker.service.register(Registration("m", model.head, model.parts, good, None), "t")
    entry = list(broker.store.audit_entries())[-1]
    assert entry.kind == "model-registered" and entry.body["policy_digest"].startswith("sha256:")
    assert broker.store.log_leaves() == [audit_leaf_data(entry)]


def test_dek_is_wiped_after_sealing(registered: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[service_module._Dek] = []
    original = service_module._Dek

    class Recording(original):  # type: ignore[misc, valid-type]
        def __init__(self, value: bytes) -> None:
            super().__init__(value)
            made.append(self)

    monkeypatch.setattr(service_module, "_Dek", Recording)
    enclave = registered.enclave()
    nonce = registered.service.challenge().nonce
    registered.service.release(enclave.request(MODEL, nonce), "c")
    assert len(made) == 1 and made[0].value == bytearray(32)


def test_no_release_without_its_audit_entry(registered: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*args: object, **kwargs: object) -> None:
        raise BrokerUnavailable("database down")

    enclave = registered.enclave()
    nonce = registered.service.challenge().nonce
    monkeypatch.setattr(registered.store, "append_event", down)
    with pytest.raises(BrokerUnavailable):
        registered.service.release(enclave.request(MODEL, nonce), "c")  # the release cannot be logged: none
    other = registered.service.challenge().nonce
    with pytest.raises(BrokerUnavailable):
        registered.service.release(enclave.request(MODEL, other, debug=True), "c")  # nor an unaudited denial
