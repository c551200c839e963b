"""Shared test configuration.

Components the tests need from the system (SoftHSM2, ...) are installed by
``scripts/install-system-deps.sh``. On a laptop without them a test skips with a message naming what
to install; with ``CI=true`` a missing component is a failure, never a skip.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from ccdeploy.kek import KeyWrapper, kek_from_uri
from ccdeploy.kek.file import create_kek_file
from ccdeploy.seal import KekKeyProvider

MakeKek = Callable[[str], KeyWrapper]

ASSETS = Path(__file__).parent / "assets"
SHARED = Path(__file__).resolve().parents[2] / "shared"


def in_ci() -> bool:
    """Whether the suite runs in CI, where nothing may be skipped for a missing component."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_component(what: str, install: str) -> NoReturn:
    """Skip (laptop) or fail (CI) a test that needs a component this machine lacks."""
    message = f"{what} is not available; install it with: {install}"
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Under CI, any skip (a marker, ``pytest.skip``, ``importorskip``) is turned into a failure."""
    outcome: Any = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which allows no skips: {report.longrepr}"


@pytest.fixture(scope="session")
def vectors() -> Path:
    """``../shared/vectors``: real evidence from other projects, with the verdicts in its MANIFEST.md."""
    path = SHARED / "vectors"
    if not (path / "MANIFEST.md").is_file():
        missing_component("the shared test vectors (../shared/vectors)", "a checkout with ../shared beside it")
    return path


@pytest.fixture
def make_kek(tmp_path: Path) -> MakeKek:
    """Create a fresh file KEK named ``name`` in the test's directory."""

    def make(name: str) -> KeyWrapper:
        return kek_from_uri(create_kek_file(tmp_path / f"{name}.kek"))

    return make


@pytest.fixture
def kek(make_kek: MakeKek) -> KeyWrapper:
    return make_kek("main")


@pytest.fixture
def provider(kek: KeyWrapper) -> KekKeyProvider:
    return KekKeyProvider([kek])


# Session-wide fixtures shared across test areas: the SoftHSM2 token (KEK and signing tests) and a PostgreSQL
# server (broker store and replica tests, a database per test).
from tests.pg import postgresql, postgresql_url  # noqa: E402, F401
from tests.softhsm import pkcs11_kek_uri, softhsm  # noqa: E402, F401
