"""Real vectors: OpenSSF model_signing (MANIFEST §7), SLSA bcr and npm (§8c, §8d), sigstore-python (§6b)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.provenance.verify.conftest import RunCli

IBM_ID = "stefanb@us.ibm.com"
IBM_ISSUER = "https://sigstore.verify.ibm.com/oauth2"
GHA = "https://token.actions.githubusercontent.com"
RFC8785_ID = "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"


@pytest.fixture
def ms(vectors: Path) -> Path:
    return vectors / "model-signing"


def _copy(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / source.name
    shutil.copytree(source, target)
    target.chmod(0o755)
    for child in target.iterdir():
        child.chmod(0o644)
    return target


def _keyless(run_cli: RunCli, model: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    return run_cli(model, "--signature", model / "model.sig", "--offline", "--ignore-path", "ignore-me", *extra)


# --- model_signing ------------------------------------------------------------------------------------------


def test_model_signing_sigstore_verifies_offline_with_pinned_root(run_cli: RunCli, ms: Path) -> None:
    rc, doc = _keyless(run_cli, ms / "v1.1.0-sigstore", "--identity", IBM_ID, "--issuer", IBM_ISSUER)
    assert rc == 0, doc
    assert doc["signer"]["kind"] == "fulcio"
    assert doc["signer"]["identity"] == IBM_ID
    assert doc["subjects"] == [
        {
            "name": "v1.1.0-sigstore",
            "digest": {"sha256": "61d4849d9d90076d6215f4d525f13d6574af8e3f67aef3e6f36fc40a14fdd226"},
            "matched": True,
        }
    ]


def test_model_signing_elliptic_key(run_cli: RunCli, ms: Path) -> None:
    model = ms / "v1.1.0-elliptic-key"
    rc, doc = run_cli(model, "--signature", model / "model.sig", "--key", ms / "keys" / "signing-key-pub.pem")
    assert rc == 0, doc
    signer = doc["signer"]
    assert signer["kind"] == "key"
    assert signer["key_hint"] == signer["model_signing_hint"]


def test_model_signing_certificate(run_cli: RunCli, ms: Path) -> None:
    model = ms / "v1.1.0-certificate"
    rc, doc = run_cli(model, "--signature", model / "model.sig", "--cert-root", ms / "keys" / "ca-cert.pem")
    assert rc == 0, doc
    assert doc["signer"]["kind"] == "certificate"


def test_model_signing_certificate_needs_the_right_root(run_cli: RunCli, ms: Path) -> None:
    model = ms / "v1.1.0-certificate"
    rc, doc = run_cli(model, "--signature", model / "model.sig", "--cert-root", ms / "v1.1.0-elliptic-key" / "x")
    assert rc == 2  # a --cert-root that cannot be read is a usage error
    rc, doc = run_cli(model, "--signature", model / "model.sig")
    assert rc == 1
    assert doc["error"]["type"] == "UntrustedSigner"


def test_model_signing_key_wrong_key_fails(run_cli: RunCli, ms: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.provenance.verify.conftest import pem_public

    other = tmp_path / "other.pem"
    other.write_bytes(pem_public(ec.generate_private_key(ec.SECP384R1())))
    model = ms / "v1.1.0-elliptic-key"
    rc, doc = run_cli(model, "--signature", model / "model.sig", "--key", other)
    assert rc == 1
    assert doc["error"]["type"] == "SignatureInvalid"


@pytest.mark.parametrize("change", ["changed", "added", "removed"])
def test_model_directory_tampering_fails(run_cli: RunCli, ms: Path, tmp_path: Path, change: str) -> None:
    model = _copy(ms / "v1.1.0-sigstore", tmp_path)
    if change == "changed":
        (model / "signme-1").write_bytes(b"tampered")
    elif change == "added":
        (model / "extra.bin").write_bytes(b"new file")
    else:
        (model / "signme-2").unlink()
    rc, doc = _keyless(run_cli, model, "--identity", IBM_ID, "--issuer", IBM_ISSUER)
    assert rc == 1
    assert doc["error"]["type"] == "SubjectMismatch"
    assert doc["error"]["check"] == "model.resources"


def test_model_directory_ignored_file_may_change(run_cli: RunCli, ms: Path, tmp_path: Path) -> None:
    model = _copy(ms / "v1.1.0-sigstore", tmp_path)
    (model / "ignore-me").write_bytes(b"anything")
    rc, doc = _keyless(run_cli, model, "--identity", IBM_ID, "--issuer", IBM_ISSUER)
    assert rc == 0, doc


def test_model_signing_wrong_identity_fails(run_cli: RunCli, ms: Path) -> None:
    rc, doc = _keyless(run_cli, ms / "v1.1.0-sigstore", "--identity", "someone@example.com", "--issuer", IBM_ISSUER)
    assert rc == 1
    assert doc["error"]["type"] == "UntrustedSigner"
    assert doc["error"]["check"] == "signer.identity"


def test_keyless_without_a_signer_to_check_is_refused(run_cli: RunCli, ms: Path) -> None:
    rc, doc = _keyless(run_cli, ms / "v1.1.0-sigstore")
    assert rc == 2
    assert doc["verdict"] == "unverifiable"


# --- SLSA ---------------------------------------------------------------------------------------------------

BCR_RELEASE = "https://github.com/bazel-contrib/.github/.github/workflows/release_ruleset.yaml"
BCR_PUBLISH = "https://github.com/bazel-contrib/publish-to-bcr/.github/workflows/publish.yaml"


def test_bcr_rules_lint_with_release_builder(run_cli: RunCli, vectors: Path) -> None:
    bcr = vectors / "in-toto-slsa" / "slsa-bcr"
    archive = bcr / "rules_lint-v1.3.1.tar.gz"
    rc, doc = run_cli(
        archive,
        "--signature",
        bcr / "rules_lint-v1.3.1.tar.gz.intoto.jsonl",
        "--source",
        "github.com/aspect-build/rules_lint",
        "--builder-id",
        BCR_RELEASE,
    )
    assert rc == 0, doc
    assert doc["signer"]["certificate"]["extensions"]["source_repository_uri"] == (
        "https://github.com/aspect-build/rules_lint"
    )


def test_bcr_rules_lint_with_wrong_source_fails(run_cli: RunCli, vectors: Path) -> None:
    bcr = vectors / "in-toto-slsa" / "slsa-bcr"
    rc, doc = run_cli(
        bcr / "rules_lint-v1.3.1.tar.gz",
        "--signature",
        bcr / "rules_lint-v1.3.1.tar.gz.intoto.jsonl",
        "--source",
        "github.com/bazel-contrib/rules_lint",
        "--builder-id",
        BCR_RELEASE,
    )
    assert rc == 1
    assert doc["error"]["check"] == "signer.source_repository"


def test_bcr_module_with_publish_builder(run_cli: RunCli, vectors: Path) -> None:
    bcr = vectors / "in-toto-slsa" / "slsa-bcr"
    rc, doc = run_cli(
        bcr / "MODULE.bazel", "--signature", bcr / "MODULE.bazel.intoto.jsonl", "--builder-id", BCR_PUBLISH
    )
    assert rc == 0, doc


def test_bcr_wrong_signer_fails_on_certificate_not_predicate(run_cli: RunCli, vectors: Path) -> None:
    bcr = vectors / "in-toto-slsa" / "slsa-bcr"
    rc, doc = run_cli(
        bcr / "MODULE-wrong-signer.bazel",
        "--signature",
        bcr / "MODULE-wrong-signer.bazel.intoto.jsonl",
        "--builder-id",
        BCR_PUBLISH,
    )
    assert rc == 1
    assert doc["error"]["type"] == "UntrustedSigner"
    assert doc["error"]["check"] == "signer.builder_id"
    # Everything cryptographic held; only the signer is wrong.
    assert all(c["ok"] for c in doc["checks"] if c["name"] == "sigstore")


NPM_SOURCE = "github.com/ramonpetgrave64/gundam-visor"
NPM_BUILDER = "https://github.com/actions/runner/github-hosted"


def _npm(run_cli: RunCli, vectors: Path, stem: str, builder: str) -> tuple[int, dict[str, Any]]:
    npm = vectors / "in-toto-slsa" / "slsa-npm"
    return run_cli(
        npm / f"{stem}.tgz", "--signature", npm / f"{stem}.tgz.json", "--source", NPM_SOURCE, "--builder-id", builder
    )


def test_npm_provenance_verifies_and_reports_publish_attestation_unverified(run_cli: RunCli, vectors: Path) -> None:
    rc, doc = _npm(run_cli, vectors, "gundam-visor-cli-v1-tag", NPM_BUILDER)
    assert rc == 0, doc
    signer = doc["signer"]
    assert signer["tlog"][0]["kind"] == "intoto/0.0.2"
    assert signer["not_verified"][0]["predicate_type"] == (
        "https://github.com/npm/attestation/tree/main/specs/publish/v0.1"
    )
    assert doc["subjects"][0]["name"] == "pkg:npm/gundam-visor@1.0.1"
    assert doc["subjects"][0]["matched"] is True


def test_npm_provenance_wrong_builder_fails(run_cli: RunCli, vectors: Path) -> None:
    rc, doc = _npm(run_cli, vectors, "gundam-visor-cli-v1-tag", "https://github.com/actions/runner")
    assert rc == 1
    assert doc["error"]["check"] == "signer.builder_id"


def test_npm_invalid_signature_twin_fails(run_cli: RunCli, vectors: Path) -> None:
    rc, doc = _npm(run_cli, vectors, "gundam-visor-cli-v1-tag-invalidsigprov", NPM_BUILDER)
    assert rc == 1
    assert doc["error"]["type"] == "SignatureInvalid"


def test_runner_builder_id_without_source_is_refused(run_cli: RunCli, vectors: Path) -> None:
    npm = vectors / "in-toto-slsa" / "slsa-npm"
    stem = "gundam-visor-cli-v1-tag"
    rc, _ = run_cli(npm / f"{stem}.tgz", "--signature", npm / f"{stem}.tgz.json", "--builder-id", NPM_BUILDER)
    assert rc == 2


# --- sigstore-python ----------------------------------------------------------------------------------------


def _wheel(run_cli: RunCli, vectors: Path, *extra: str | Path) -> tuple[int, dict[str, Any]]:
    sp = vectors / "sigstore" / "sigstore-python"
    return run_cli(
        sp / "bundle_v3_github.whl", "--signature", sp / "bundle_v3_github.whl.sigstore", "--issuer", GHA, *extra
    )


def test_wheel_passes_with_its_identity(run_cli: RunCli, vectors: Path) -> None:
    rc, doc = _wheel(run_cli, vectors, "--identity", RFC8785_ID)
    assert rc == 0, doc
    assert doc["signer"]["tlog"][0]["log_index"] == 79605083
    assert doc["signer"]["certificate"]["extensions"]["source_repository_ref"] == "refs/tags/v0.1.2"


def test_wheel_fails_with_other_tag_identity(run_cli: RunCli, vectors: Path) -> None:
    rc, doc = _wheel(run_cli, vectors, "--identity", RFC8785_ID.replace("v0.1.2", "v0.1.3"))
    assert rc == 1
    assert doc["error"]["type"] == "UntrustedSigner"


def test_wheel_fails_with_staging_root(run_cli: RunCli, vectors: Path) -> None:
    staging = vectors / "sigstore" / "trusted_root.staging.json"
    rc, doc = _wheel(run_cli, vectors, "--identity", RFC8785_ID, "--trust-root", staging)
    assert rc == 1
    assert doc["error"]["type"] == "SignatureInvalid"


@pytest.mark.parametrize(("root", "expected"), [("trusted_root.staging.json", 0), (None, 1)])
def test_bundle_v3_txt_is_staging(run_cli: RunCli, vectors: Path, root: str | None, expected: int) -> None:
    sp = vectors / "sigstore" / "sigstore-python"
    args: list[str | Path] = [sp / "bundle_v3.txt", "--signature", sp / "bundle_v3.txt.sigstore"]
    args += ["--identity", "william@yossarian.net", "--issuer", "https://github.com/login/oauth"]
    if root:
        args += ["--trust-root", vectors / "sigstore" / root]
    rc, doc = run_cli(*args)
    assert rc == expected, doc


def test_json_document_has_exactly_the_contract_keys(run_cli: RunCli, vectors: Path) -> None:
    for identity in (RFC8785_ID, "nobody"):
        _, doc = _wheel(run_cli, vectors, "--identity", identity)
        assert set(doc) == {"verdict", "signer", "subjects", "checks", "error"}
        for check in doc["checks"]:
            assert set(check) == {"name", "ok", "detail"}
