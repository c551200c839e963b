"""A model sealed to a SoftHSM2 KEK and a file KEK through the CLI; the header never holds the PIN."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccdeploy._cli import main
from ccdeploy.seal import read_header
from tests.softhsm import SoftHsm


def test_seal_to_hsm_and_file_then_unseal_with_each(
    softhsm: SoftHsm, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = softhsm.uri(object="cli-kek", id="%42%43")
    assert main(["kek", "create", "--pkcs11", uri, "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert softhsm.pin not in created["kek"] and created["key_id"].endswith(":id=4243")
    assert main(["kek", "create", str(tmp_path / "f.kek")]) == 0
    model = tmp_path / "model.onnx"
    model.write_bytes(b"\x08\x07" * 100_000)
    sealed = tmp_path / "m.ccseal"
    assert main(["seal", str(model), "--kek", uri, "--kek", f"file:{tmp_path / 'f.kek'}", "-o", str(sealed)]) == 0
    header = read_header(sealed).canonical_json()
    assert b"pin-value" not in header and b"pin-source" not in header
    capsys.readouterr()
    assert main(["inspect", str(sealed), "--json"]) == 0
    recipients = json.loads(capsys.readouterr().out)["header"]["recipients"]
    assert [r["wrap"] for r in recipients] == ["AES-KWP", "AES-KWP"]
    assert "pin-value" not in recipients[0]["kek"] and "pin-source" not in recipients[0]["kek"]
    for index, kek in enumerate([uri, f"file:{tmp_path / 'f.kek'}"]):
        out = tmp_path / f"out{index}"
        assert main(["unseal", str(sealed), "--kek", kek, "-o", str(out)]) == 0
        assert (out / "model.onnx").read_bytes() == model.read_bytes()
    assert main(["kek", "create", "--pkcs11", uri]) == 2  # never a second key under the same label/id
    assert main(["kek", "create"]) == 2
