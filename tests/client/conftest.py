"""Fixtures of the attested-client tests: a simulator, the tiny model's session, the enclave's HPKE and TLS keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from attestation.simulator.nitro import NitroSimulator
from ccdeploy.release.hpke import HpkeKeyPair, HpkeSuite
from enclave.runtime import ModelSession
from tests.enclave.server.harness import AT, Tls, make_tls, tiny_session


@pytest.fixture(scope="module")
def simulator() -> NitroSimulator:
    return NitroSimulator.create(at=AT)


@pytest.fixture(scope="module")
def session() -> ModelSession:
    return tiny_session()


@pytest.fixture(scope="module")
def hpke() -> HpkeKeyPair:
    return HpkeKeyPair.generate(HpkeSuite.X25519)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(Path(tmp_path_factory.mktemp("tls")))
