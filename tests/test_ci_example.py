"""examples/ci: the GitHub Actions workflow's steps, run here with a local key instead of Sigstore keyless."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / "examples" / "ci"
sys.path.insert(0, str(ROOT / "examples"))

from tiny_model import build_tiny_model, save_with_external_data  # noqa: E402


def test_the_workflow_signs_keyless_and_runs_the_script() -> None:
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    job = workflow["jobs"]["seal"]
    assert job["permissions"]["id-token"] == "write"
    assert job["env"]["SIGNER"] == "sigstore:"
    assert "--identity" in job["env"]["VERIFY_ARGS"]
    assert "--issuer https://token.actions.githubusercontent.com" in job["env"]["VERIFY_ARGS"]
    runs = [step.get("run", "") for step in job["steps"]]
    assert "bash examples/ci/seal-sign-verify.sh" in runs
    for step in job["steps"]:
        if "uses" in step:
            assert len(step["uses"].split("@", 1)[1]) == 40, "actions are pinned by commit SHA"


def _key_pair(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP384R1())
    private = directory / "ci-key.pem"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    private.chmod(0o600)
    public = directory / "ci-key.pub.pem"
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


def _run(tmp_path: Path, model: Path, signer: str, verify_args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("bash") is None:  # pragma: no cover - every supported platform has bash
        pytest.skip("bash is needed to run examples/ci/seal-sign-verify.sh")
    env = {
        **os.environ,
        "MODEL": str(model),
        "CARD": str(ROOT / "examples" / "card.yaml"),
        "OUT": str(tmp_path / "dist"),
        "SIGNER": signer,
        "VERIFY_ARGS": verify_args,
        "CCDEPLOY": f"{sys.executable} -m ccdeploy",
    }
    return subprocess.run(
        ["bash", str(CI / "seal-sign-verify.sh")], env=env, capture_output=True, text=True, check=False, cwd=tmp_path
    )


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    model_bytes, _, _ = build_tiny_model()
    directory = tmp_path / "classifier"
    directory.mkdir()
    save_with_external_data(model_bytes, directory)
    return directory


def test_the_same_steps_with_a_local_key(tmp_path: Path, model_dir: Path) -> None:
    private, public = _key_pair(tmp_path)
    done = _run(tmp_path, model_dir, f"file:{private}", f"--key {public}")
    assert done.returncode == 0, done.stdout + done.stderr
    dist = tmp_path / "dist"
    for name in ("verify-sealed.json", "verify-model.json"):
        result = json.loads((dist / name).read_text())
        assert result["verdict"] == "verified"
        assert result["error"] is None
    assert (dist / "classifier.ccseal").is_file()
    assert (dist / "classifier.linked.cdx.json").is_file()
    assert "sealed, signed and verified" in done.stdout


def test_the_gate_stops_the_pipeline_on_the_wrong_key(tmp_path: Path, model_dir: Path) -> None:
    private, _ = _key_pair(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, wrong_public = _key_pair(other)
    done = _run(tmp_path, model_dir, f"file:{private}", f"--key {wrong_public}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "sealed, signed and verified" not in done.stdout
