"""The command line end to end: commands, exit codes, JSON shapes, and stdout streaming."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ccdeploy._cli import main
from tests.seal.conftest import random_bytes, write_model_dir


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def setup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str, Path]:
    model = write_model_dir(
        tmp_path / "model", {"model.onnx": random_bytes(1_500_000, seed=1), "data/w.bin": b"w" * 10}
    )
    kek = tmp_path / "a.kek"
    code, out, _ = run(capsys, "kek", "create", str(kek), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["ok"] is True and doc["kek"] == f"file:{kek}" and len(doc["key_id"]) == 32
    assert kek.stat().st_mode & 0o777 == 0o600
    return model, f"file:{kek}", tmp_path


def test_seal_inspect_unseal(setup: tuple[Path, str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    model, kek, tmp = setup
    sealed = tmp / "m.ccseal"
    code, out, _ = run(capsys, "seal", str(model), "--kek", kek, "-o", str(sealed), "--hash", "blake3", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["header"]["model"]["hash"] == "blake3"
    assert '"wrapped_dek"' not in json.dumps(doc)
    code, out, _ = run(capsys, "inspect", str(sealed), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["authenticated"] is False and doc["version"] == 1
    assert [f["path"] for f in doc["header"]["model"]["files"]] == ["data/w.bin", "model.onnx"]
    assert doc["header"]["recipients"][0]["wrapped_dek_bytes"] == 40
    code, out, _ = run(capsys, "inspect", str(sealed), "--kek", kek)
    assert code == 0 and "authenticated (MAC verified" in out
    code, out, _ = run(capsys, "unseal", str(sealed), "--kek", kek, "-o", str(tmp / "out"), "--json")
    assert code == 0 and json.loads(out)["verified"] is True
    assert (tmp / "out" / "model.onnx").read_bytes() == (model / "model.onnx").read_bytes()
    code, _, err = run(capsys, "unseal", str(sealed), "--kek", kek, "-o", str(tmp / "out"))
    assert code == 2 and "not an empty directory" in err


def test_unseal_to_stdout(setup: tuple[Path, str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    model, kek, tmp = setup
    sealed = tmp / "m.ccseal"
    assert run(capsys, "seal", str(model / "model.onnx"), "--kek", kek, "-o", str(sealed))[0] == 0
    env = dict(os.environ)
    done = subprocess.run(
        [sys.executable, "-m", "ccdeploy", "unseal", str(sealed), "--kek", kek, "-o", "-"],
        capture_output=True,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (model / "model.onnx").read_bytes()


def test_exit_codes_and_json_errors(setup: tuple[Path, str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    model, kek, tmp = setup
    sealed = tmp / "m.ccseal"
    assert run(capsys, "seal", str(model), "--kek", kek, "-o", str(sealed))[0] == 0
    other = tmp / "b.kek"
    assert run(capsys, "kek", "create", str(other))[0] == 0
    code, out, err = run(capsys, "unseal", str(sealed), "--kek", f"file:{other}", "-o", str(tmp / "x"), "--json")
    assert code == 1
    assert json.loads(out) == {
        "ok": False,
        "error": {"type": "WrongKek", "message": json.loads(out)["error"]["message"]},
    }
    assert "no recipient" in err and not (tmp / "x").exists()
    data = bytearray(sealed.read_bytes())
    data[-5] ^= 1
    sealed.write_bytes(data)
    code, _, err = run(capsys, "unseal", str(sealed), "--kek", kek, "-o", str(tmp / "y"))
    assert code == 1 and "failed authentication" in err and not (tmp / "y").exists()
    assert run(capsys, "seal", str(model), "--kek", "nope:x", "-o", str(tmp / "z"))[0] == 2
    assert run(capsys, "seal", str(model), "-o", str(tmp / "z"))[0] == 2  # --kek missing: click usage error
    assert run(capsys, "kek", "create", str(other))[0] == 2  # never overwrites a key
    assert run(capsys, "rekey", str(sealed), "--kek", kek)[0] == 2


def test_rekey_rotates(setup: tuple[Path, str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    model, kek, tmp = setup
    sealed = tmp / "m.ccseal"
    assert run(capsys, "seal", str(model), "--kek", kek, "-o", str(sealed))[0] == 0
    new = tmp / "new.kek"
    assert run(capsys, "kek", "create", str(new))[0] == 0
    code, out, _ = run(capsys, "rekey", str(sealed), "--kek", kek, "--add", f"file:{new}", "--remove", kek, "--json")
    assert code == 0
    assert [r["kek"] for r in json.loads(out)["header"]["recipients"]] == [f"file:{new}"]
    assert run(capsys, "unseal", str(sealed), "--kek", f"file:{new}", "-o", str(tmp / "o"))[0] == 0
    assert run(capsys, "unseal", str(sealed), "--kek", kek, "-o", str(tmp / "p"))[0] == 1


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and "ccdeploy" in out
    code, out, _ = run(capsys, "seal", "--help")
    assert code == 0 and "--kek" in out
