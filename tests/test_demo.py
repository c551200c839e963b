"""``make demo`` runs end to end (the same script, executed as a user would)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "CCDEPLOY_DEMO_OUTPUT": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "demo complete" in done.stdout
    assert done.stdout.count("✓") >= 8
    assert "denied: measurement-mismatch (HTTP 403)" in done.stdout
    # The confidential-GPU enclave is released to, and the one with a tampered GPU is denied, the GPU named.
    assert "model 'mlp-gpu' registered" in done.stdout
    assert "the key was released and the model is served at https://" in done.stdout
    assert "the broker names the GPU: GPU-1: " in done.stdout
    assert done.stdout.count("denied: measurement-mismatch (HTTP 403)") == 2
    assert "release receipt: valid" in done.stdout
    assert (tmp_path / "mlp.release-receipt.json").is_file()
    assert (tmp_path / "broker.db").is_file()
