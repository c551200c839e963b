"""Fixtures of the key-broker tests: a sealed and signed model, a Nitro simulator, a broker on SQLite, a server.

The helpers they use (and tests import) are in :mod:`tests.broker.helpers`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from attestation.simulator.nitro import NitroSimulator
from tests.broker.helpers import (
    SIM_AT,
    Broker,
    SealedModel,
    Served,
    ServeFactory,
    broker_app,
    build_sealed_model,
    make_broker,
)


@pytest.fixture(scope="session")
def sealed_model(tmp_path_factory: pytest.TempPathFactory) -> SealedModel:
    """Seal a one-file model under a ``file:`` KEK and sign it with a ``file:`` key, as a user would."""
    return build_sealed_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="session")
def simulator() -> NitroSimulator:
    return NitroSimulator.create(at=SIM_AT)


@pytest.fixture
def broker(tmp_path: Path, simulator: NitroSimulator, sealed_model: SealedModel) -> Iterator[Broker]:
    made = make_broker(tmp_path, simulator, sealed_model)
    yield made
    made.store.close()


@pytest.fixture
def serve(broker: Broker) -> Iterator[ServeFactory]:
    """Start the broker's HTTP app under uvicorn on loopback; stopped at teardown."""
    started: list[Served] = []

    def start(**limits: float) -> Served:
        served = Served(broker_app(broker, **limits)).__enter__()
        started.append(served)
        return served

    yield start
    for served in started:
        served.__exit__()
