"""Both broker store backends behind one fixture: every store test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ccdeploy.broker.store import BrokerStore, open_store
from tests.pg import PostgresServer

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL naming an empty database: a fresh SQLite file, or a fresh database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'broker.db'}"
    server: PostgresServer = request.getfixturevalue("postgresql")
    return server.new_database("store")


@pytest.fixture
def store(store_url: str) -> Iterator[BrokerStore]:
    """An open store on :func:`store_url`, closed after the test."""
    opened = open_store(store_url)
    yield opened
    opened.close()
