"""Real broker processes for the end-to-end release tests: start, wait, register, fire releases, kill -9.

Every broker here is ``python -m ccdeploy broker serve`` in its own process (the venv's interpreter), its output
captured in a file that :class:`Brokers` prints at teardown (pytest shows it when the test fails). Release
attempts go over plain httpx so each answer is seen as it came: status, problem reason, or a transport error.

The sealed model, the policy document and the simulated enclave are those of the broker's own tests
(``tests.broker.conftest``), so both suites exercise the same artifact and evidence.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from attestation.simulator.nitro import NitroSimulator
from ccdeploy.broker.admin import AdminClient, sealed_registration
from ccdeploy.broker.auth import read_token_file
from ccdeploy.broker.keys import ADMIN_TOKEN_FILE, init_state
from ccdeploy.broker.store import AuditEntry, BrokerStore, open_store
from ccdeploy.release.hpke import HpkeKeyPair, release_info
from ccdeploy.release.protocol import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE, ReleaseGrant, ReleaseRequest
from ccdeploy.release.receipt import Receipt, verify_receipt
from ccdeploy.seal import DekKeyProvider, open_sealed
from ccdeploy.transparency import consistency_proof, leaf_hash, verify_consistency
from ccdeploy.transparency.log import LogEntry
from tests.broker.helpers import Clock, Enclave, SealedModel, dump, policy_document, public_pem

__all__ = [
    "REPLAYED",
    "BrokerProcess",
    "Brokers",
    "Outcome",
    "Prepared",
    "audit_entries",
    "audit_verify",
    "check_dek_opens",
    "evidence_digest",
    "free_port",
    "log_leaf_hashes",
    "new_state",
    "open_dek",
    "prepare",
    "register",
    "release_digests",
    "send",
    "verify_receipt_after",
]

READY_TIMEOUT = 30.0
"""Seconds a broker process may take to answer ``GET /v1/broker``."""
NONCE_TTL = 300
"""Long enough that no nonce expires during a test (an expiry would blur replay counts)."""
RATE = "100000/s"
"""Far above what a test sends: every attempt comes from 127.0.0.1, one client to the rate limiter."""
REPLAYED = "nonce-replayed"


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class BrokerProcess:
    """One ``ccdeploy broker serve`` subprocess on a loopback port."""

    state_dir: Path
    db_url: str
    kek_uri: str
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The broker's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BrokerProcess:
        """Start the process and wait until it answers ``GET /v1/broker``.

        Raises:
            RuntimeError: it exited or did not answer in time (its output is in the message).
        """
        command = [
            sys.executable, "-m", "ccdeploy", "broker", "serve",
            "--state", str(self.state_dir), "--db", self.db_url, "--kek", self.kek_uri,
            "--port", str(self.port), "--nonce-ttl", str(NONCE_TTL), "--rate-limit", RATE,
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                response = httpx.get(f"{self.url}/v1/broker", timeout=2)
                if response.status_code == 200:
                    self.info = response.json()
                    return self
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"the broker exited with {self.process.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the broker did not answer within {READY_TIMEOUT:g} s:\n{self.output()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """``kill -9`` the process and reap it."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Terminate the process (SIGKILL after 10 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def output(self) -> str:
        """Everything the process wrote (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


class Brokers:
    """The broker processes of one test: started on demand, always stopped, their output printed at teardown."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._started: list[BrokerProcess] = []

    def start(self, state_dir: Path, db_url: str, kek_uri: str) -> BrokerProcess:
        """Start a broker process (a fresh port and output file)."""
        log = self._directory / f"broker-{len(self._started)}.log"
        broker = BrokerProcess(state_dir, db_url, kek_uri, log)
        self._started.append(broker)
        return broker.start()

    def close(self) -> None:
        """Stop every process and print each one's output (pytest shows it for a failed test)."""
        for broker in self._started:
            broker.stop()
        for broker in self._started:
            print(f"----- broker on port {broker.port} ({broker.db_url.split('://')[0]}) -----\n{broker.output()}")


def new_state(directory: Path) -> Path:
    """A fresh broker state directory (keys, token, id) under ``directory``."""
    state = directory / "state"
    init_state(state)
    return state


def register(
    url: str, state_dir: Path, model: SealedModel, simulator: NitroSimulator, name: str = "tiny"
) -> dict[str, Any]:
    """Register ``model`` under a policy that trusts ``simulator``'s root and requires the model's signer."""
    policy = dump(policy_document(simulator, provenance={"key": public_pem(model.signer)}))
    registration = sealed_registration(model.sealed, policy, provenance=model.provenance, name=name)
    with AdminClient(url, read_token_file(state_dir / ADMIN_TOKEN_FILE)) as admin:
        return admin.register(registration)


@dataclass(frozen=True)
class Prepared:
    """One nonce with an enclave whose evidence binds it, and the release request as bytes on the wire."""

    nonce: bytes
    enclave: Enclave
    request: ReleaseRequest
    body: bytes


def prepare(urls: Sequence[str], count: int, simulator: NitroSimulator, model: str = "tiny") -> list[Prepared]:
    """Take ``count`` challenges (round-robin over ``urls``) and build each one's enclave and evidence.

    Each enclave has its own X-Wing and TLS keys; its Nitro document (the simulator's, timestamped now)
    carries the nonce and report_data(nonce, HPKE key, TLS key).
    """
    clients = [httpx.Client(base_url=url, timeout=10) for url in urls]
    try:
        prepared = []
        clock = Clock(datetime.now(UTC))
        for i in range(count):
            answer = clients[i % len(clients)].post("/v1/challenge")
            answer.raise_for_status()
            nonce = base64.b64decode(answer.json()["nonce"])
            enclave = Enclave(simulator, clock, HpkeKeyPair.generate())
            request = enclave.request(model, nonce)
            prepared.append(Prepared(nonce, enclave, request, request.model_dump_json().encode()))
        return prepared
    finally:
        for client in clients:
            client.close()


@dataclass(frozen=True, repr=False)
class Outcome:
    """What one release attempt got: a grant, a problem's reason, or a transport error."""

    status: int | None
    reason: str | None = None
    grant: ReleaseGrant | None = None
    error: str | None = None

    @property
    def granted(self) -> bool:
        """An HTTP 200 with a well-formed grant."""
        return self.grant is not None

    def __repr__(self) -> str:
        if self.grant is not None:
            return f"Outcome(200, granted at log index {self.grant.log_entry.get('index')})"
        return f"Outcome({self.status}, reason={self.reason!r}, error={self.error!r})"


def send(client: httpx.Client, prepared: Prepared) -> Outcome:
    """POST one release request; never raises for a transport error (a killed broker is expected)."""
    try:
        response = client.post("/v1/release", content=prepared.body, headers={"Content-Type": "application/json"})
    except httpx.HTTPError as exc:
        return Outcome(None, error=type(exc).__name__)
    if response.status_code == 200:
        return Outcome(200, grant=ReleaseGrant.model_validate_json(response.content))
    if response.headers.get("content-type", "").split(";")[0] != PROBLEM_MEDIA_TYPE:
        return Outcome(response.status_code, error=f"not a problem document: {response.text[:200]}")
    problem = response.json()
    reason = problem.get("reason")
    if problem.get("type") != PROBLEM_TYPE_BASE + str(reason) or problem.get("status") != response.status_code:
        return Outcome(response.status_code, reason, error=f"inconsistent problem document: {problem}")
    return Outcome(response.status_code, reason)


def open_dek(prepared: Prepared, grant: ReleaseGrant) -> bytes:
    """The DEK the grant sealed to ``prepared``'s enclave (HPKE open with its private key)."""
    return prepared.enclave.hpke.open(grant.sealed_key, release_info(grant.model, prepared.nonce))


def check_dek_opens(model: SealedModel, dek: bytes) -> None:
    """Open the sealed artifact with ``dek`` (header MAC, segment tags, plaintext digest) and compare the plaintext."""
    with open_sealed(model.sealed, DekKeyProvider(dek)) as opened:
        plaintext = opened.read_file()
        assert bytes(plaintext) == model.plaintext


def evidence_digest(prepared: Prepared) -> str:
    """The ``evidenceDigest`` a release of ``prepared`` records (its nonce is never logged; its evidence is unique)."""
    return "sha256:" + hashlib.sha256(prepared.request.evidence).hexdigest()


def audit_verify(db_url: str, state_dir: Path) -> dict[str, Any]:
    """Run ``ccdeploy broker audit verify --json`` as a process; its report (the exit status must be 0).

    Raises:
        AssertionError: it exited non-zero (its output is in the message).
    """
    command = [sys.executable, "-m", "ccdeploy", "broker", "audit", "verify"]
    command += ["--db", db_url, "--state", str(state_dir), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"audit verify exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def audit_entries(db_url: str) -> list[AuditEntry]:
    """Every audit entry in the database, read through the store API."""
    store: BrokerStore = open_store(db_url)
    try:
        return list(store.audit_entries())
    finally:
        store.close()


def release_digests(entries: Sequence[AuditEntry]) -> Counter[str]:
    """How many release events name each evidence digest."""
    return Counter(str(entry.body["evidenceDigest"]) for entry in entries if entry.kind == "release")


def log_leaf_hashes(db_url: str) -> list[bytes]:
    """The transparency log's leaf hashes, read from the database."""
    store: BrokerStore = open_store(db_url)
    try:
        return [leaf_hash(data) for data in store.log_leaves()]
    finally:
        store.close()


def verify_receipt_after(grant: ReleaseGrant, broker: BrokerProcess, leaf_hashes: Sequence[bytes]) -> Receipt:
    """Verify a receipt against ``broker``'s log as it is now.

    The receipt's own signature, checkpoint and inclusion proof; its leaf as the broker serves it now (the
    audit entry, matching the predicate); the leaf's inclusion in the broker's current checkpoint; and the
    consistency of the receipt's tree with that checkpoint's tree (recomputed from ``leaf_hashes``).
    """
    index = grant.log_entry["index"]
    with httpx.Client(base_url=broker.url, timeout=10) as client:
        answer = client.get(f"/v1/log/entries/{index}")
        answer.raise_for_status()
    current = answer.json()
    leaf_data = base64.b64decode(current["leaf_data"])
    vkey = broker.info["log_verifier_key"]
    receipt = verify_receipt(
        json.dumps(grant.receipt).encode(), broker.info["receipt_public_key"].encode(), vkey, leaf_data=leaf_data
    )
    entry = LogEntry.from_dict(current)
    checkpoint = entry.verify([vkey], leaf_data=leaf_data, origin=broker.info["log_origin"])
    assert (entry.index, entry.leaf_hash) == (receipt.log_index, receipt.leaf_hash)
    assert receipt.tree_size <= entry.tree_size <= len(leaf_hashes)
    proof = consistency_proof(receipt.tree_size, list(leaf_hashes[: entry.tree_size]))
    verify_consistency(receipt.tree_size, entry.tree_size, proof, receipt.checkpoint.root_hash, checkpoint.root_hash)
    return receipt
