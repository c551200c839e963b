"""The sigstore-conformance ``bundle-verify`` suite (70 cases), run through ``ccdeploy verify``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED
from tests.provenance.verify.conftest import RunCli

_CONFORMANCE = SHARED / "vectors" / "sigstore" / "conformance"
CASES = sorted(p.name for p in _CONFORMANCE.iterdir() if p.is_dir()) if _CONFORMANCE.is_dir() else []
DEFAULT_IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
DEFAULT_ISSUER = "https://token.actions.githubusercontent.com"


def _arguments(conformance: Path, case: Path) -> list[str | Path]:
    artifact = case / "artifact" if (case / "artifact").exists() else conformance / "a.txt"
    args: list[str | Path] = [artifact, "--signature", case / "bundle.sigstore.json", "--offline"]
    if (case / "trusted_root.json").exists():
        args += ["--trust-root", case / "trusted_root.json"]
    if (case / "key.pub").exists():
        # As the conformance suite runs a client: a key instead of an identity (a key carries none).
        return [*args, "--key", case / "key.pub"]
    identity = (case / "identity").read_text().strip() if (case / "identity").exists() else DEFAULT_IDENTITY
    issuer = (case / "issuer").read_text().strip() if (case / "issuer").exists() else DEFAULT_ISSUER
    return [*args, "--identity", identity, "--issuer", issuer]


def _run(run_cli: RunCli, vectors: Path, name: str) -> tuple[int, dict[str, Any]]:
    conformance = vectors / "sigstore" / "conformance"
    return run_cli(*_arguments(conformance, conformance / name))


@pytest.mark.parametrize("name", CASES, ids=CASES)
def test_conformance_case(run_cli: RunCli, vectors: Path, name: str) -> None:
    rc, document = _run(run_cli, vectors, name)
    if name.endswith("_fail"):
        assert rc in (1, 2), document
        assert document["verdict"] in ("invalid", "unverifiable")
        assert document["error"] is not None
    else:
        assert rc == 0, document
        assert document["verdict"] == "verified"
        assert document["error"] is None
        assert any(s["matched"] for s in document["subjects"])


def test_conformance_total_is_70_of_70(run_cli: RunCli, vectors: Path) -> None:
    names = sorted(p.name for p in (vectors / "sigstore" / "conformance").iterdir() if p.is_dir())
    assert len(names) == 70
    wrong = []
    for name in names:
        rc, _ = _run(run_cli, vectors, name)
        if (rc == 0) == name.endswith("_fail"):
            wrong.append(name)
    assert wrong == [], f"{70 - len(wrong)}/70 agree; differ: {wrong}"


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("managed-key-no-key_fail", "UntrustedSigner"),
        ("intoto-log-entry-mismatch_fail", "SignatureInvalid"),
        ("bundle-unknown-version_fail", "BundleMalformed"),
        ("trust-root-tlog-missing-validity-start_fail", "TrustRootInvalid"),
        ("signature-mismatch_fail", "SignatureInvalid"),
    ],
)
def test_conformance_failures_fail_for_the_right_reason(run_cli: RunCli, vectors: Path, name: str, error: str) -> None:
    _, document = _run(run_cli, vectors, name)
    assert document["error"]["type"] == error


def test_managed_key_bundle_with_another_key_fails(run_cli: RunCli, vectors: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.provenance.verify.conftest import pem_public

    other = tmp_path / "other.pub"
    other.write_bytes(pem_public(ec.generate_private_key(ec.SECP256R1())))
    case = vectors / "sigstore" / "conformance" / "managed-key-happy-path"
    rc, document = run_cli(
        vectors / "sigstore" / "conformance" / "a.txt", "--signature", case / "bundle.sigstore.json", "--key", other
    )
    assert rc == 1
    assert document["error"]["type"] == "SignatureInvalid"
