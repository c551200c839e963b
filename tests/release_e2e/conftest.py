"""Fixtures of the end-to-end release tests: broker processes, the broker tests' sealed model, PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import tests.conftest as _root
from attestation.simulator.nitro import NitroSimulator
from tests.broker.conftest import sealed_model  # noqa: F401 - the session fixture, shared with tests/broker
from tests.release_e2e.harness import Brokers

if not hasattr(_root, "postgresql"):  # until tests/conftest.py registers the PostgreSQL fixtures suite-wide
    from tests.pg import postgresql  # noqa: F401


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
