"""``ccdeploy broker``: init, register, audit verify in process; serve as a real subprocess."""

from __future__ import annotations

import base64
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from attestation.simulator.nitro import NitroSimulator
from ccdeploy._cli import main
from ccdeploy.broker.keys import ADMIN_TOKEN_FILE, CHECKPOINT_KEY_FILE, RECEIPT_KEY_FILE
from ccdeploy.release.client import ReleaseClient
from ccdeploy.release.hpke import HpkeKeyPair, release_info
from tests.broker.helpers import (
    Broker,
    Clock,
    Enclave,
    SealedModel,
    ServeFactory,
    dump,
    policy_document,
    public_pem,
)


def test_init_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    assert main(["broker", "init", str(state), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["broker_id"].startswith("broker-")
    for name in (RECEIPT_KEY_FILE, CHECKPOINT_KEY_FILE, ADMIN_TOKEN_FILE):
        assert (state / name).stat().st_mode & 0o777 == 0o600
    token = (state / ADMIN_TOKEN_FILE).read_text().strip()
    assert token not in json.dumps(document)
    before = {path.name: path.read_bytes() for path in state.iterdir()}
    assert main(["broker", "init", str(state)]) == 2
    assert {path.name: path.read_bytes() for path in state.iterdir()} == before


def test_register_and_audit_verify(
    broker: Broker, serve: ServeFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = serve().url
    policy = tmp_path / "policy.yaml"
    policy.write_bytes(dump(policy_document(broker.simulator, provenance={"key": public_pem(broker.model.signer)})))
    token = broker.state.admin_token_path
    args = ["broker", "register", str(broker.model.sealed), "--policy", str(policy), "--url", url]
    assert main([*args, "--token-file", str(tmp_path / "missing")]) == 2
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-token\n")
    capsys.readouterr()
    assert main([*args, "--token-file", str(wrong)]) == 1
    assert "unauthorized" in capsys.readouterr().err
    assert main([*args, "--token-file", str(token), "--json"]) == 0
    registered = json.loads(capsys.readouterr().out)
    assert registered["model"]["name"] == "tiny"
    assert registered["provenance"].endswith("tiny.provenance.sigstore.json")  # found beside the artifact
    enclave = broker.enclave()
    with ReleaseClient(url) as client:
        nonce = client.challenge().nonce
        grant = client.release(enclave.request("tiny", nonce))
    assert len(enclave.hpke.open(grant.sealed_key, release_info("tiny", nonce))) == 32

    verify = ["broker", "audit", "verify", "--db", broker.db_url, "--state", str(broker.state.directory), "--json"]
    assert main(verify) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kinds"] == {"model-registered": 1, "release": 1}
    assert report["log_size"] == 2
    assert report["root_hash"] == broker.log.root_hash(2).hex()
    assert report["checkpoint"].startswith(broker.state.log_origin + "\n2\n")

    path = broker.db_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE audit_log SET body = replace(body, 'tiny', 'tinz') WHERE kind = 'release'")
    assert main(verify) == 1
    assert "audit" in capsys.readouterr().err


_SERVE = [sys.executable, "-m", "ccdeploy", "broker", "serve", "--nonce-ttl", "30"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_subprocess(tmp_path: Path, sealed_model: SealedModel, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    assert main(["broker", "init", str(state)]) == 0
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    db = f"sqlite:///{tmp_path / 'broker.db'}"
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [*_SERVE, "--state", str(state), "--db", db, "--kek", sealed_model.kek.uri, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                info = httpx.get(f"{url}/v1/broker").json()
                break
            except httpx.HTTPError:
                assert process.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "the broker did not start"
                time.sleep(0.1)
        simulator = NitroSimulator.create(at=datetime.now(UTC))
        policy = tmp_path / "policy.yaml"
        policy.write_bytes(dump(policy_document(simulator)))
        token = state / ADMIN_TOKEN_FILE
        args = ["broker", "register", str(sealed_model.sealed), "--policy", str(policy), "--url", url]
        assert main([*args, "--token-file", str(token), "--name", "served"]) == 0
        assert "policy digest:   sha256:" in capsys.readouterr().out
        enclave = Enclave(simulator, Clock(datetime.now(UTC)), HpkeKeyPair.generate())
        with ReleaseClient(url) as client:
            nonce = client.challenge().nonce
            grant = client.release(enclave.request("served", nonce))
        assert grant.log_entry["index"] == 1
        assert info["hpke_suites"] == ["X-Wing", "X25519"]
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert "/v1/release" in output  # uvicorn's access log ran
    for secret in (token.read_text().strip(), base64.b64encode(nonce).decode(), nonce.hex()):
        assert secret not in output
