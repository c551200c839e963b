"""Helpers of the key-broker tests (shared with tests/release_e2e): a sealed and signed model, a broker on SQLite,
an enclave, a uvicorn server; the fixtures over them are in conftest.py.

Everything is real: the model is sealed under a ``file:`` KEK and signed with a ``file:`` key through the CLI,
evidence comes from the Nitro simulator (verified under its root, which the policy names), the broker's store
is SQLite, and HTTP tests talk to a uvicorn server on a loopback port.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette

from attestation.simulator.nitro import NitroSimulator, default_pcrs
from ccdeploy._cli import main
from ccdeploy.broker.app import BrokerApp, create_app
from ccdeploy.broker.auth import AdminAuth, read_token_file
from ccdeploy.broker.keys import BrokerState, init_state, load_state
from ccdeploy.broker.listen import listening_socket
from ccdeploy.broker.ratelimit import RateLimiter
from ccdeploy.broker.service import Registration, ReleaseService
from ccdeploy.broker.store import BrokerStore, open_store
from ccdeploy.kek import KeyWrapper, kek_from_uri
from ccdeploy.kek.file import create_kek_file
from ccdeploy.release.binding import report_data, spki_der
from ccdeploy.release.hpke import HpkeKeyPair, HpkeSuite
from ccdeploy.release.protocol import ReleaseRequest
from ccdeploy.seal.digest import sealed_head_and_parts
from ccdeploy.transparency import NoteSigner, TransparencyLog

SIM_AT = datetime(2030, 1, 1, tzinfo=UTC)
START = datetime(2030, 1, 1, 0, 10, tzinfo=UTC)
MODEL_BYTES = b"\x08\x07" + bytes(range(256)) * 40


class Clock:
    """A settable clock: the broker's ``now`` and the simulator's document time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def write_signing_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)
    return key


@dataclass(frozen=True)
class SealedModel:
    """A sealed, signed model: the artifact, its head and stream digests, its bundle, its KEK and signer."""

    sealed: Path
    head: bytes
    parts: tuple[str, ...]
    provenance: bytes
    kek: KeyWrapper
    signer: ec.EllipticCurvePrivateKey
    plaintext: bytes


def policy_document(simulator: NitroSimulator, **overrides: Any) -> dict[str, Any]:
    pcrs = default_pcrs()
    document: dict[str, Any] = {
        "version": 1,
        "platforms": {"nitro": {"pcrs": {i: pcrs[i].hex() for i in (0, 1, 2)}}},
        "trust_roots": {"nitro": [simulator.root_pem().decode()]},
        "unsafe_accept_simulator_roots": True,
    }
    document.update(overrides)
    return document


def dump(document: Mapping[str, Any]) -> bytes:
    return yaml.safe_dump(dict(document), sort_keys=False).encode()


@dataclass
class Broker:
    """A broker service over SQLite with its state directory, clock and KEKs."""

    service: ReleaseService
    store: BrokerStore
    log: TransparencyLog
    state: BrokerState
    clock: Clock
    db_url: str
    simulator: NitroSimulator
    model: SealedModel
    policies: dict[str, bytes] = field(default_factory=dict)

    def register(self, name: str, policy: Mapping[str, Any], *, provenance: bytes | str | None = "signed") -> None:
        data = dump(policy)
        bundle = self.model.provenance if provenance == "signed" else provenance
        assert not isinstance(bundle, str)
        self.service.register(Registration(name, self.model.head, self.model.parts, data, bundle), "test")
        self.policies[name] = data

    def enclave(self, suite: HpkeSuite = HpkeSuite.XWING) -> Enclave:
        return Enclave(self.simulator, self.clock, HpkeKeyPair.generate(suite))

    def kinds(self) -> list[str]:
        return [entry.kind for entry in self.store.audit_entries()]


@dataclass
class Enclave:
    """An enclave's ephemeral keys and its evidence (simulated Nitro documents)."""

    simulator: NitroSimulator
    clock: Clock
    hpke: HpkeKeyPair
    tls: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    @property
    def tls_spki(self) -> bytes:
        return spki_der(self.tls.public_key())

    def request(
        self,
        model: str,
        nonce: bytes,
        *,
        evidence_nonce: bytes | None = None,
        bound_hpke: bytes | None = None,
        debug: bool = False,
        pcrs: Mapping[int, bytes] | None = None,
    ) -> ReleaseRequest:
        """A release request whose evidence binds ``nonce`` and this enclave's keys (unless told otherwise)."""
        binding = report_data(nonce, bound_hpke if bound_hpke is not None else self.hpke.public, self.tls_spki)
        document = self.simulator.document(
            timestamp=self.clock.now,
            nonce=evidence_nonce if evidence_nonce is not None else nonce,
            user_data=binding,
            debug=debug,
            pcrs=pcrs,
        )
        return ReleaseRequest(
            model=model,
            nonce=nonce,
            evidence=document,
            evidence_type="nitro",
            hpke_suite=self.hpke.suite,
            hpke_public_key=self.hpke.public,
            tls_public_key=self.tls_spki,
        )


def make_broker(directory: Path, simulator: NitroSimulator, model: SealedModel, *, nonce_ttl: float = 60) -> Broker:
    state_dir = directory / "state"
    init_state(state_dir)
    state = load_state(state_dir)
    db_url = f"sqlite:///{directory / 'broker.db'}"
    store = open_store(db_url)
    log = TransparencyLog(store.log_leaves, NoteSigner(state.log_origin, state.checkpoint_key), state.log_origin)
    clock = Clock(START)
    service = ReleaseService(
        store,
        [model.kek],
        state.receipt_signer,
        log,
        clock,
        timedelta(seconds=nonce_ttl),
        broker_id=state.broker_id,
        nonce_key=state.nonce_key,
    )
    return Broker(service, store, log, state, clock, db_url, simulator, model)


def broker_app(broker: Broker, *, rate: float = 1000, burst: float = 1000, failures: float = 0.01) -> Starlette:
    """The HTTP application over a test broker (tight limits where a test asks for them)."""
    app = BrokerApp(
        service=broker.service,
        store=broker.store,
        log=broker.log,
        auth=AdminAuth(read_token_file(broker.state.admin_token_path), RateLimiter(failures, 5)),
        limiter=RateLimiter(rate, burst),
        info={
            "broker_id": broker.state.broker_id,
            "receipt_public_key": broker.state.receipt_public_pem(),
            "log_verifier_key": broker.log.verifier_key(),
        },
    )
    return create_app(app)


class Served:
    """A uvicorn server on a loopback port, running in a thread (HTTPS when given a certificate and key)."""

    def __init__(self, app: Starlette, *, tls: tuple[Path, Path] | None = None) -> None:
        self._socket = listening_socket("127.0.0.1", 0)  # TCP_NODELAY: no 44 ms delayed-ACK stall per request
        self.port = self._socket.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        certfile, keyfile = (None, None) if tls is None else (str(tls[0]), str(tls[1]))
        config = uvicorn.Config(app, log_level="warning", lifespan="off", ssl_certfile=certfile, ssl_keyfile=keyfile)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> Served:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


ServeFactory = Callable[..., Served]


def build_sealed_model(directory: Path) -> SealedModel:
    """Seal a one-file model under a ``file:`` KEK and sign it with a ``file:`` key, as a user would."""
    model = directory / "tiny"
    model.mkdir()
    (model / "model.onnx").write_bytes(MODEL_BYTES)
    kek_uri = create_kek_file(directory / "main.kek")
    sealed = directory / "tiny.ccseal"
    assert main(["seal", str(model), "--kek", kek_uri, "-o", str(sealed)]) == 0
    signer = write_signing_key(directory / "signer.pem")
    assert main(["sign", str(sealed), "--signer", f"file:{directory / 'signer.pem'}"]) == 0
    head, parts = sealed_head_and_parts(sealed)
    provenance = (directory / "tiny.provenance.sigstore.json").read_bytes()
    return SealedModel(sealed, head, parts, provenance, kek_from_uri(kek_uri), signer, MODEL_BYTES)
