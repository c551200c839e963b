"""Fixtures of the end-to-end release tests: broker processes, the broker tests' sealed model, PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from attestation.simulator.nitro import NitroSimulator
from tests.broker.helpers import SealedModel, build_sealed_model
from tests.release_e2e.harness import Brokers


@pytest.fixture(scope="session")
def sealed_model(tmp_path_factory: pytest.TempPathFactory) -> SealedModel:
    """The broker tests' sealed and signed model (sealed and signed through the CLI)."""
    return build_sealed_model(tmp_path_factory.mktemp("model"))


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[Brokers]:
    """Start broker processes for one test; all are stopped (and their output printed) at teardown."""
    started = Brokers(tmp_path)
    try:
        yield started
    finally:
        started.close()


@pytest.fixture(scope="module")
def live_simulator() -> NitroSimulator:
    """A Nitro simulator whose certificates are valid now (the broker processes run on the real clock)."""
    return NitroSimulator.create(at=datetime.now(UTC))
