"""AttestedClient step 5: the enclave's release receipt must verify and name this enclave's keys and the model.

Real TLS servers on loopback serve simulated Nitro evidence and a receipt signed by a real broker key over a real
transparency log whose leaves are a real hash-chained audit log.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from attestation.simulator.nitro import NitroSimulator, default_pcrs
from ccdeploy._cli import main
from ccdeploy.broker.store import AuditEntry
from ccdeploy.broker.store.audit import GENESIS_HASH, audit_entry_hash, audit_leaf_data
from ccdeploy.client import AttestedClient
from ccdeploy.errors import EnclaveRejected, TrustRootInvalid, UsageError
from ccdeploy.provenance.signers import SignerOptions
from ccdeploy.provenance.signers.file import FileSigner
from ccdeploy.release.hpke import HpkeKeyPair
from ccdeploy.release.receipt import receipt_statement, release_body, sign_receipt
from ccdeploy.transparency import NoteSigner, TransparencyLog
from enclave.runtime import ModelSession
from enclave.server import create_app
from enclave.tensors import InputLimits
from tests.enclave.server.harness import AT, Tls, nitro_attestation, running

X = np.arange(8, dtype=np.float32).reshape(2, 4)
ORIGIN = "broker.test/log"


@dataclass(frozen=True)
class Broker:
    """A broker's receipt signer and transparency log, without the HTTP service."""

    signer: FileSigner
    pem: bytes
    log_signer: NoteSigner

    @property
    def vkey(self) -> str:
        return self.log_signer.verifier_key()

    def receipt(self, *, model: str, hpke_public_key: bytes, tls_spki: bytes, with_entry: bool = True) -> bytes:
        body = release_body(
            model=model,
            artifact_id="0f" * 16,
            header_sha256="12" * 32,
            policy_digest="sha256:" + "34" * 32,
            evidence=b"evidence",
            evidence_type="nitro",
            checks=[],
            hpke_suite="X25519",
            hpke_public_key=hpke_public_key,
            tls_public_key=tls_spki,
            released_at=AT,
            broker_id="broker-1",
        )
        registered = {"name": model}
        first = audit_entry_hash(GENESIS_HASH, 1, AT, "model-registered", registered)
        entries = [
            AuditEntry(1, AT, "model-registered", registered, GENESIS_HASH, first),
            AuditEntry(2, AT, "release", body, first, audit_entry_hash(first, 2, AT, "release", body)),
        ]
        leaves = [audit_leaf_data(e) for e in entries]
        log = TransparencyLog(lambda start: leaves[start:], self.log_signer, ORIGIN)
        statement = receipt_statement(body, "ab" * 32, log.entry(1), entries[1] if with_entry else None)
        return json.dumps(sign_receipt(statement, self.signer)).encode()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Broker:
    directory = tmp_path_factory.mktemp("broker")
    key = ec.generate_private_key(ec.SECP256R1())
    (directory / "receipt-key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (directory / "receipt-key.pem").chmod(0o600)
    signer = FileSigner.from_uri(f"file:{directory / 'receipt-key.pem'}", SignerOptions())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return Broker(signer, pem, NoteSigner(ORIGIN, Ed25519PrivateKey.generate()))


@pytest.fixture(scope="module")
def policy(simulator: NitroSimulator) -> bytes:
    document = {
        "version": 1,
        "platforms": {"nitro": {"pcrs": {i: default_pcrs()[i].hex() for i in (0, 1, 2)}}},
        "trust_roots": {"nitro": [simulator.root_pem().decode()]},
        "unsafe_accept_simulator_roots": True,
    }
    return yaml.safe_dump(document).encode()


Serve = Callable[[bytes | None], str]


@pytest.fixture
def serve(session: ModelSession, tls: Tls, simulator: NitroSimulator, hpke: HpkeKeyPair) -> Iterator[Serve]:
    """``serve(receipt)`` -> URL of an honest enclave (evidence bound to ``hpke`` and ``tls``) serving ``receipt``."""
    stack: list[Any] = []
    attestation = nitro_attestation(simulator, hpke_public_key=hpke.public, tls_pem=tls.pem)

    def start(receipt: bytes | None) -> str:
        app = create_app(session, model_name="tiny", attestation=attestation, limits=InputLimits(), receipt=receipt)
        context = running(app, tls)
        stack.append(context)
        url: str = context.__enter__()
        return url

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


def _client(url: str, policy: bytes, broker: Broker, **options: Any) -> AttestedClient:
    return AttestedClient(url, policy=policy, now=lambda: AT, broker_key=broker.pem, log_key=broker.vkey, **options)


def test_receipt_for_this_enclave_and_model(
    serve: Serve, policy: bytes, broker: Broker, hpke: HpkeKeyPair, tls: Tls
) -> None:
    url = serve(broker.receipt(model="tiny", hpke_public_key=hpke.public, tls_spki=tls.spki))
    with _client(url, policy, broker, expected_model="tiny") as client:
        verified = client.attest()
        assert verified.receipt is not None and verified.receipt.model == "tiny"
        assert verified.to_dict()["receipt"]["log_index"] == 1
        assert client.infer("tiny", {"x": X})["y"].shape == (2, 3)
        with pytest.raises(EnclaveRejected, match="model 'tiny', not 'other'"):
            client.infer("other", {"x": X})
    with _client(url, policy, broker) as client:  # the expected model defaults to the first one asked for
        assert client.infer("tiny", {"x": X})["y"].shape == (2, 3)
    with _client(url, policy, broker) as client, pytest.raises(EnclaveRejected, match="not 'other'"):
        client.infer("other", {"x": X})


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"model": "other"}, "model 'other', not 'tiny'"),
        ({"hpke_public_key": b"another enclave"}, "HPKE key differs"),
        ({"tls_spki": b"another enclave"}, "TLS key differs"),
        ({"with_entry": False}, "does not verify"),
    ],
)
def test_receipt_not_for_this_enclave_or_model(
    serve: Serve, policy: bytes, broker: Broker, hpke: HpkeKeyPair, tls: Tls, change: dict[str, Any], says: str
) -> None:
    arguments: dict[str, Any] = {"model": "tiny", "hpke_public_key": hpke.public, "tls_spki": tls.spki} | change
    url = serve(broker.receipt(**arguments))
    with _client(url, policy, broker, expected_model="tiny") as client, pytest.raises(EnclaveRejected, match=says):
        client.attest()


def test_receipt_signed_by_another_broker_or_missing(
    serve: Serve, policy: bytes, broker: Broker, hpke: HpkeKeyPair, tls: Tls, tmp_path: Path
) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    other_pem = other.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    url = serve(broker.receipt(model="tiny", hpke_public_key=hpke.public, tls_spki=tls.spki))
    with (
        AttestedClient(url, policy=policy, now=lambda: AT, broker_key=other_pem, log_key=broker.vkey) as client,
        pytest.raises(EnclaveRejected, match="signature"),
    ):
        client.attest()
    with _client(serve(None), policy, broker) as client, pytest.raises(EnclaveRejected, match="no release receipt"):
        client.attest()  # no /v1/receipt: 404, refused
    garbage = serve(b'{"not": "a receipt"}')
    with _client(garbage, policy, broker) as client, pytest.raises(EnclaveRejected, match="does not verify"):
        client.attest()


def test_receipt_key_usage(policy: bytes, broker: Broker) -> None:
    with pytest.raises(UsageError, match="both"):
        AttestedClient("https://127.0.0.1:1", policy=policy, broker_key=broker.pem)
    with pytest.raises(UsageError, match="both"):
        AttestedClient("https://127.0.0.1:1", policy=policy, log_key=broker.vkey)
    with pytest.raises(TrustRootInvalid):
        AttestedClient("https://127.0.0.1:1", policy=policy, broker_key=b"not pem", log_key=broker.vkey)
    with pytest.raises(TrustRootInvalid):
        AttestedClient("https://127.0.0.1:1", policy=policy, broker_key=broker.pem, log_key="garbage")


def test_cli_infer_checks_the_receipt(
    serve: Serve,
    policy: bytes,
    broker: Broker,
    hpke: HpkeKeyPair,
    tls: Tls,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = serve(broker.receipt(model="tiny", hpke_public_key=hpke.public, tls_spki=tls.spki))
    (tmp_path / "policy.yaml").write_bytes(policy)
    (tmp_path / "broker.pem").write_bytes(broker.pem)
    (tmp_path / "log.vkey").write_text(broker.vkey + "\n")
    at = AT.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    base = ["infer", url, "--policy", str(tmp_path / "policy.yaml"), "--input", "x=@[[1, 2, 3, 4]]", "--at", at]
    keys = ["--broker-key", str(tmp_path / "broker.pem"), "--log-key", f"@{tmp_path / 'log.vkey'}"]
    assert main([*base, "--model", "tiny", *keys]) == 0
    text = capsys.readouterr().out
    assert "release receipt verified: model tiny, artifact ccseal.v1.blake3:" + "ab" * 32 in text
    assert "log index 1" in text
    assert main([*base, "--model", "tiny", *keys, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (
        document["receipt"]
        == document["verified"]["receipt"]
        == {
            "model": "tiny",
            "artifact_digest": "ab" * 32,
            "log_index": 1,
            "audit_seq": 2,
            "released_at": "2026-03-01T12:00:00.000000Z",
        }
    )
    assert main([*base, "--model", "other", *keys]) == 1
    assert "not 'other'" in capsys.readouterr().err
    assert main([*base, "--model", "tiny", *keys[:2]]) == 2
    assert "both or neither" in capsys.readouterr().err
    assert main([*base, "--model", "tiny"]) == 0
    assert "release receipt: not checked" in capsys.readouterr().out
    assert datetime.fromisoformat(at.replace("Z", "+00:00")) == AT
