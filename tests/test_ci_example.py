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

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / "examples" / "ci"
sys.path.insert(0, str(ROOT / "examples"))

from provenance_steps import write_signing_key  # noqa: E402
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
    private, public = write_signing_key(tmp_path, "ci-key")
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
    private, _ = write_signing_key(tmp_path, "ci-key")
    other = tmp_path / "other"
    other.mkdir()
    _, wrong_public = write_signing_key(other, "ci-key")
    done = _run(tmp_path, model_dir, f"file:{private}", f"--key {wrong_public}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "sealed, signed and verified" not in done.stdout
