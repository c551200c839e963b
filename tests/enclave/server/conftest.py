"""Fixtures: one TLS server over the tiny model with simulated Nitro attestation, shared by the module's tests."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from attestation.simulator.nitro import NitroSimulator
from ccdeploy.release.hpke import HpkeKeyPair, HpkeSuite
from enclave.runtime import ModelSession
from enclave.server import create_app
from enclave.tensors import InputLimits
from tests.enclave.server.harness import AT, Tls, make_tls, nitro_attestation, running, tiny_session

LIMITS = InputLimits(max_request_bytes=64 * 1024, max_elements=4096)


@dataclass(frozen=True)
class Served:
    url: str
    tls: Tls
    session: ModelSession
    hpke: HpkeKeyPair
    simulator: NitroSimulator

    def client(self) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.tls.certfile))
        context.check_hostname = False
        return httpx.Client(base_url=self.url, verify=context)


@pytest.fixture(scope="session")
def simulator() -> NitroSimulator:
    return NitroSimulator.create(at=AT)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, simulator: NitroSimulator) -> Iterator[Served]:
    tls = make_tls(Path(tmp_path_factory.mktemp("tls")))
    session = tiny_session()
    hpke = HpkeKeyPair.generate(HpkeSuite.X25519)
    attestation = nitro_attestation(simulator, hpke_public_key=hpke.public, tls_pem=tls.pem)
    app = create_app(session, model_name="tiny", attestation=attestation, limits=LIMITS)
    with running(app, tls) as url:
        yield Served(url, tls, session, hpke, simulator)
