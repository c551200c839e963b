"""Fixtures for the Sigstore keyless signer: a loopback Sigstore double and its trust material."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.provenance.keyless.sigstore_double import SigstoreDouble, serve

# Every variable sigstore's ambient detection (the `id` package) looks at.
AMBIENT_ENV = (
    "GITHUB_ACTIONS",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "GOOGLE_SERVICE_ACCOUNT_NAME",
    "BUILDKITE",
    "GITLAB_CI",
    "SIGSTORE_ID_TOKEN",
    "CIRCLECI",
)


@pytest.fixture
def no_ambient_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """A shell outside CI: ambient detection finds nothing (also when the suite itself runs in CI)."""
    for name in AMBIENT_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def double(no_ambient_credentials: None) -> Iterator[SigstoreDouble]:
    """Fulcio, Rekor and an OIDC issuer on one loopback port."""
    with serve() as running:
        yield running


@pytest.fixture
def trust_config(double: SigstoreDouble, tmp_path: Path) -> Path:
    """The double's ClientTrustConfig JSON (what ``sigstore:?trust-config=`` names)."""
    path = tmp_path / "client_trust_config.json"
    path.write_text(json.dumps(double.client_trust_config()), encoding="utf-8")
    return path


@pytest.fixture
def trusted_root(double: SigstoreDouble, tmp_path: Path) -> Path:
    """The double's trusted root alone, as a verifier pins it."""
    path = tmp_path / "trusted_root.json"
    path.write_text(json.dumps(double.trusted_root()), encoding="utf-8")
    return path


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
