"""Signer policy files, the pinned trust root, usage errors and the layout mode of ``ccdeploy verify``."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from ccdeploy._cli import main
from ccdeploy.errors import UsageError
from ccdeploy.provenance.verify import SignerPolicy, load_policy
from ccdeploy.provenance.verify.trust import PINNED_TRUSTED_ROOT_SHA256
from tests.provenance.verify.conftest import RunCli

PACKAGE_TRUST = Path(__file__).resolve().parents[3] / "ccdeploy" / "provenance" / "trust"
BCR_RELEASE = "https://github.com/bazel-contrib/.github/.github/workflows/release_ruleset.yaml"


def test_pinned_root_is_byte_identical_to_the_vector_and_readme(vectors: Path) -> None:
    pinned = (PACKAGE_TRUST / "trusted_root.production.json").read_bytes()
    assert pinned == (vectors / "sigstore" / "trusted_root.production.json").read_bytes()
    assert hashlib.sha256(pinned).hexdigest() == PINNED_TRUSTED_ROOT_SHA256
    assert PINNED_TRUSTED_ROOT_SHA256 in (PACKAGE_TRUST / "README.md").read_text()


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_policy_file_checks_certificate(run_cli: RunCli, vectors: Path, tmp_path: Path) -> None:
    bcr = vectors / "in-toto-slsa" / "slsa-bcr"
    args = [bcr / "rules_lint-v1.3.1.tar.gz", "--signature", bcr / "rules_lint-v1.3.1.tar.gz.intoto.jsonl"]
    good = _policy(
        tmp_path,
        f"source_repository: github.com/aspect-build/rules_lint\nbuilder_id: {BCR_RELEASE}\n"
        "source_ref: refs/heads/publish-to-bcr\npredicate_type: https://slsa.dev/provenance/v1\n",
    )
    rc, doc = run_cli(*args, "--policy", good)
    assert rc == 0, doc
    names = {c["name"] for c in doc["checks"]}
    assert {"signer.issuer", "signer.source_repository", "signer.builder_id", "signer.source_ref"} <= names

    wrong_ref = _policy(tmp_path, f"builder_id: {BCR_RELEASE}\nsource_ref: refs/heads/main\n")
    rc, doc = run_cli(*args, "--policy", wrong_ref)
    assert rc == 1
    assert doc["error"]["check"] == "signer.source_ref"

    wrong_type = _policy(tmp_path, f"builder_id: {BCR_RELEASE}\npredicate_type: https://example.com/other\n")
    rc, doc = run_cli(*args, "--policy", wrong_type)
    assert rc == 1
    assert doc["error"]["type"] == "UntrustedSigner"


def test_flags_override_policy_file(run_cli: RunCli, vectors: Path, tmp_path: Path) -> None:
    bcr = vectors / "in-toto-slsa" / "slsa-bcr"
    policy = _policy(tmp_path, "builder_id: https://github.com/someone/else/.github/workflows/x.yml\n")
    rc, doc = run_cli(
        bcr / "rules_lint-v1.3.1.tar.gz",
        "--signature",
        bcr / "rules_lint-v1.3.1.tar.gz.intoto.jsonl",
        "--policy",
        policy,
        "--builder-id",
        BCR_RELEASE,
    )
    assert rc == 0, doc


@pytest.mark.parametrize(
    "text",
    ["identity: a\nunknown_key: b\n", "- a list\n", "identity: ''\n", "issuer: [1, 2]\n", "{unclosed"],
)
def test_bad_policy_files_are_usage_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(UsageError):
        load_policy(_policy(tmp_path, text))


def test_source_shorthand_becomes_a_url() -> None:
    assert SignerPolicy(source_repository="github.com/o/r").source_repository == "https://github.com/o/r"


def test_usage_errors_exit_2(
    run_cli: RunCli, vectors: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(tmp_path)]) == 2
    case = vectors / "sigstore" / "conformance" / "happy-path-v0.3"
    broken = tmp_path / "root.json"
    broken.write_text("{}")
    rc, doc = run_cli(
        case / "bundle.sigstore.json", "--signature", case / "bundle.sigstore.json", "--trust-root", broken
    )
    assert rc == 2
    assert doc["verdict"] == "unverifiable"
    rc, doc = run_cli(
        tmp_path / "missing", "--signature", case / "bundle.sigstore.json", "--identity", "x", "--issuer", "y"
    )
    assert rc == 2


def test_human_output(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ms = vectors / "model-signing"
    model = ms / "v1.1.0-elliptic-key"
    rc = main(
        [
            "verify",
            str(model),
            "--signature",
            str(model / "model.sig"),
            "--key",
            str(ms / "keys" / "signing-key-pub.pem"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert out.startswith("verified: signed by key ")
    assert "subject v1.1.0-elliptic-key" in out


def test_layout_mode_calls_the_layout_verifier(run_cli: RunCli, vectors: Path, tmp_path: Path) -> None:
    demo = Path(shutil.copytree(vectors / "in-toto-slsa" / "intoto-golang-demo", tmp_path / "demo"))
    rc, doc = run_cli(
        demo,
        "--layout",
        demo / "demo.dsse.layout",
        "--layout-key",
        demo / "alice.pub",
        "--links",
        demo,
        "--at",
        "2026-01-01T00:00:00Z",
    )
    assert rc == 0, doc
    assert doc["verdict"] == "verified"
    assert set(doc) == {"verdict", "signer", "subjects", "checks", "error"}
    assert doc["error"] is None and doc["signer"]["kind"] == "in-toto-layout"
    assert doc["signer"]["steps"] == ["write-code", "package"]


def _rs_demo(vectors: Path, tmp_path: Path) -> tuple[Path, Path]:
    source = vectors / "in-toto-slsa" / "intoto-rs-demo"
    work = tmp_path / "work"
    work.mkdir()
    for name in ("root.layout", "alice.pub", "demo-project.tar.gz"):
        shutil.copy(source / name, work / name)
    return work, source / "links"


def test_layout_mode_expired_now_and_valid_before_its_expiry(run_cli: RunCli, vectors: Path, tmp_path: Path) -> None:
    work, links = _rs_demo(vectors, tmp_path)
    args = (work, "--layout", work / "root.layout", "--layout-key", work / "alice.pub", "--links", links)
    rc, doc = run_cli(*args)
    assert rc == 1
    assert set(doc) == {"verdict", "signer", "subjects", "checks", "error"}
    assert doc["verdict"] == "invalid"
    assert doc["error"]["type"] == "LayoutInvalid"
    assert "expired" in doc["error"]["message"]
    rc, doc = run_cli(*args, "--at", "2022-12-02T18:41:06Z")
    assert rc == 0, doc
    assert doc["verdict"] == "verified"
    assert doc["signer"]["steps"] == ["clone", "update-version", "package"]


def test_layout_mode_needs_keys_and_links(run_cli: RunCli, vectors: Path, tmp_path: Path) -> None:
    work, _ = _rs_demo(vectors, tmp_path)
    rc, doc = run_cli(work, "--layout", work / "root.layout")
    assert rc == 2
    assert doc["verdict"] == "unverifiable"
    assert doc["error"]["type"] == "UsageError"
