"""Fixtures for the enclave runtime tests: a sealed model with external data, a simulated TEE, real servers."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
import yaml

from attestation import verify
from attestation.simulator.nitro import NitroSimulator, default_pcrs
from ccdeploy.broker.app import build_app
from ccdeploy.broker.config import BrokerConfig
from ccdeploy.broker.keys import ADMIN_TOKEN_FILE, init_state
from ccdeploy.errors import ReleaseDenied
from ccdeploy.kek import KeyWrapper
from ccdeploy.kek.file import FileKek
from ccdeploy.release.binding import report_data_matches
from ccdeploy.release.hpke import HpkeSuite, release_info, seal_to
from ccdeploy.release.protocol import Challenge, DenialReason, ReleaseGrant, ReleaseRequest, b64
from ccdeploy.seal import KekKeyProvider, read_header, seal_model
from ccdeploy.seal.digest import sealed_head_and_parts
from enclave.attesters.simulator import SimulatorNitroAttester

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from tiny_model import build_tiny_model, reference_output, save_with_external_data

MODEL = "tiny-mlp"


def now() -> datetime:
    """The wall clock, as tests inject it."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class SealedMlp:
    """A sealed two-file model (graph + external weights) and everything a test checks it against."""

    path: Path
    dek: bytes
    kek: bytes
    plaintexts: dict[str, bytes]
    w1b1: np.ndarray
    w2: np.ndarray

    def expected(self, x: np.ndarray) -> np.ndarray:
        return reference_output(x, self.w1b1, self.w2)


def seal_mlp(directory: Path, kek: KeyWrapper, hidden: int = 96) -> SealedMlp:
    """Seal an MLP saved with external data under ``kek``; the plaintext directory is deleted again."""
    model_bytes, w1b1, w2 = build_tiny_model(hidden=hidden)
    plain = directory / "mlp"
    plain.mkdir()
    save_with_external_data(model_bytes, plain)
    plaintexts = {p.name: p.read_bytes() for p in plain.iterdir()}
    sealed = directory / "mlp.ccseal"
    seal_model(plain, sealed, [kek])
    for file in plain.iterdir():
        file.unlink()
    plain.rmdir()
    dek = KekKeyProvider([kek]).data_key(read_header(sealed))
    assert isinstance(kek, FileKek)
    return SealedMlp(sealed, dek, kek._key, plaintexts, w1b1, w2)


@pytest.fixture
def sealed_mlp(tmp_path: Path, kek: KeyWrapper) -> SealedMlp:
    return seal_mlp(tmp_path, kek)


@pytest.fixture(scope="session")
def simulator() -> NitroSimulator:
    return NitroSimulator.create(at=now())


@pytest.fixture
def attester(simulator: NitroSimulator) -> SimulatorNitroAttester:
    return SimulatorNitroAttester(simulator, now)


class InTestBroker:
    """A minimal release service with real checks, standing in where the broker app is not needed.

    Single-use nonces, real evidence verification under the simulator root, the report-data binding, and
    HPKE sealing of the DEK. ``sealed_key_override`` lets a test make it release something else.
    """

    def __init__(self, simulator: NitroSimulator, dek: bytes, model: str = MODEL) -> None:
        self._root = simulator.root
        self._dek = dek
        self._model = model
        self._nonces: set[bytes] = set()
        self.sealed_key_override: bytes | None = None
        self.released = 0

    def challenge(self) -> Challenge:
        nonce = os.urandom(32)
        self._nonces.add(nonce)
        return Challenge(nonce=nonce, expires_at=now() + timedelta(minutes=1))

    def release(self, request: ReleaseRequest) -> ReleaseGrant:
        if request.nonce not in self._nonces:
            raise ReleaseDenied("nonce unknown or used", DenialReason.NONCE_REPLAYED.value, 403)
        self._nonces.discard(request.nonce)
        if request.model != self._model:
            raise ReleaseDenied("unknown model", DenialReason.MODEL_UNKNOWN.value, 404)
        claims = verify(
            request.evidence, tee=request.evidence_type, at=None, roots=[self._root], unsafe_allow_simulator_roots=True
        )
        if claims.nonce is not None and claims.nonce != request.nonce:
            raise ReleaseDenied("nonce mismatch", DenialReason.NONCE_MISMATCH.value, 403)
        if not report_data_matches(claims.report_data, request.nonce, request.hpke_public_key, request.tls_public_key):
            raise ReleaseDenied("binding mismatch", DenialReason.BINDING_MISMATCH.value, 403)
        sealed = self.sealed_key_override or seal_to(
            request.hpke_suite, request.hpke_public_key, self._dek, release_info(request.model, request.nonce)
        )
        self.released += 1
        return ReleaseGrant(
            model=request.model,
            suite=request.hpke_suite,
            suite_name=HpkeSuite(request.hpke_suite).rfc9180,
            sealed_key=sealed,
            receipt={"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "test": True},
            log_entry={"index": self.released - 1},
        )


@contextmanager
def running_uvicorn(
    app: Any, config_hook: Callable[[uvicorn.Config], None] | None = None, **kwargs: Any
) -> Iterator[int]:
    """Serve ``app`` with a real uvicorn on 127.0.0.1 (a free port) in a thread; yield the port.

    ``config_hook`` runs on the config before the server starts (e.g. to load SSL from memfds).
    """
    kwargs.setdefault("lifespan", "auto")
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", **kwargs)
    if config_hook is not None:
        config_hook(config)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port: int = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def simulator_policy(simulator: NitroSimulator) -> bytes:
    """A release policy accepting the simulator's default PCR0-2 under its root (simulator roots allowed, loudly)."""
    pcrs = default_pcrs()
    document = {
        "version": 1,
        "platforms": {"nitro": {"pcrs": {i: pcrs[i].hex() for i in (0, 1, 2)}}},
        "trust_roots": {"nitro": [simulator.root_pem().decode()]},
        "unsafe_accept_simulator_roots": True,
    }
    return yaml.safe_dump(document, sort_keys=False).encode()


@contextmanager
def real_broker(state_dir: Path, db_path: Path, kek_uri: str) -> Iterator[tuple[str, str]]:
    """The real key broker app (``ccdeploy.broker``) on SQLite under a real uvicorn; yields (base URL, admin token)."""
    init_state(state_dir)
    token = (state_dir / ADMIN_TOKEN_FILE).read_text().strip()
    app = build_app(BrokerConfig(state_dir=state_dir, db_url=str(db_path), kek_uris=(kek_uri,)))
    with running_uvicorn(app, lifespan="on") as port:
        yield f"http://127.0.0.1:{port}", token


def register_model(url: str, token: str, sealed: Path, policy: bytes, name: str = MODEL) -> None:
    """Register ``sealed`` under ``name`` with ``policy`` through the broker's admin API."""
    head, parts = sealed_head_and_parts(sealed)
    body = {"name": name, "head": b64(head), "part_digests": list(parts), "policy": b64(policy)}
    response = httpx.post(f"{url}/v1/models", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 201, response.text
