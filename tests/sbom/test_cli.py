"""``ccdeploy bom``: create, validate, diff and link, called in-process."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ccdeploy._cli import main
from ccdeploy.kek import KeyWrapper
from ccdeploy.seal import seal_model
from sbom import validate_bom
from tests.sbom.conftest import EXAMPLE_CARD, REPO

FIXED = ["--serial", "6f1c1a52-8e0b-4a43-9a7d-0d3c2a9e4b11", "--created", "2026-03-04T05:06:07Z"]


def _create(model: Path, out: Path, *extra: str) -> int:
    return main(["bom", "create", str(model), "--card", str(EXAMPLE_CARD), "--no-lock", "-o", str(out), *FIXED, *extra])


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    (model / "weights").mkdir(parents=True)
    (model / "model.onnx").write_bytes(b"graph v1")
    (model / "weights" / "w.bin").write_bytes(b"\x00" * 100)
    return model


def test_create_validate_and_determinism(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert _create(model_dir, a) == 0
    assert _create(model_dir, b) == 0
    assert a.read_bytes() == b.read_bytes()
    capsys.readouterr()
    assert main(["bom", "validate", str(a), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["verdict"], result["format"], result["components"]) == ("verified", "cyclonedx", 5)


def test_refuses_to_overwrite_without_force(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.json"
    assert _create(model_dir, out) == 0
    assert _create(model_dir, out) == 2
    assert _create(model_dir, out, "--force") == 0


def test_bad_card_is_a_usage_error_and_leaves_no_file(model_dir: Path, tmp_path: Path) -> None:
    card = tmp_path / "card.yaml"
    card.write_text("name: x\nversion: 1.0\n")
    out = tmp_path / "a.json"
    rc = main(["bom", "create", str(model_dir), "--card", str(card), "--no-lock", "-o", str(out)])
    assert rc == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.yaml", "model"]


def test_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"name": "x"}]}')
    assert main(["bom", "validate", str(bad)]) == 1
    assert "/components/0" in capsys.readouterr().out
    assert main(["bom", "validate", str(bad), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["verdict"] == "invalid"
    assert main(["bom", "validate", str(tmp_path / "missing.json")]) == 2


def test_diff_shows_changed_model_file(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert _create(model_dir, a) == 0
    (model_dir / "model.onnx").write_bytes(b"graph v2")
    assert _create(model_dir, b) == 0
    old = json.loads(a.read_bytes())["metadata"]["component"]["components"]
    new = json.loads(b.read_bytes())["metadata"]["component"]["components"]
    old_hash = next(c for c in old if c["name"] == "model.onnx")["hashes"][0]["content"]
    new_hash = next(c for c in new if c["name"] == "model.onnx")["hashes"][0]["content"]
    capsys.readouterr()
    assert main(["bom", "diff", str(a), str(b)]) == 0
    text = capsys.readouterr().out
    assert f"model.onnx: sha256 {old_hash[:12]}… -> {new_hash[:12]}…" in text
    assert "w.bin" not in text
    assert main(["bom", "diff", str(a), str(b), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["changed"] is True
    assert {"where": "model.onnx", "field": "sha256", "old": old_hash, "new": new_hash} in result["component_changes"]
    assert main(["bom", "diff", str(a), str(a), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False


def test_diff_shows_card_and_dependency_changes(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = tmp_path / "card.yaml"
    card.write_text(EXAMPLE_CARD.read_text().replace("value: 0.912", "value: 0.93"))
    lock_a, lock_b = tmp_path / "a.lock", tmp_path / "b.lock"
    lock_a.write_text("onnxruntime==1.20.1\nnumpy==2.1.0\n")
    lock_b.write_text("onnxruntime==1.21.0\nnumpy==2.1.0\n")
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    common = ["bom", "create", str(model_dir), *FIXED]
    assert main([*common, "--card", str(EXAMPLE_CARD), "--lock", str(lock_a), "-o", str(a)]) == 0
    assert main([*common, "--card", str(card), "--lock", str(lock_b), "-o", str(b)]) == 0
    capsys.readouterr()
    assert main(["bom", "diff", str(a), str(b)]) == 0
    text = capsys.readouterr().out
    assert "onnxruntime: version 1.20.1 -> 1.21.0" in text
    assert "model card: quantitativeAnalysis.performanceMetrics[0].value 0.912 -> 0.93" in text
    assert "numpy" not in text


def test_link_adds_reference_with_sha256(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bom, linked = tmp_path / "a.json", tmp_path / "linked.json"
    bundle = tmp_path / "model.sigstore.json"
    bundle.write_bytes(b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}')
    assert _create(model_dir, bom) == 0
    capsys.readouterr()
    assert main(["bom", "link", str(bom), "--signature", str(bundle), "-o", str(linked), "--json"]) == 0
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert json.loads(capsys.readouterr().out)["sha256"] == digest
    references = json.loads(linked.read_bytes())["metadata"]["component"]["externalReferences"]
    assert references[0]["hashes"] == [{"alg": "SHA-256", "content": digest}]
    assert references[0]["url"] == "model.sigstore.json"
    assert main(["bom", "link", str(bom), "-o", str(linked), "--force"]) == 2
    assert main(["bom", "diff", str(bom), str(linked)]) == 0
    assert "signature-bundle model.sigstore.json" in capsys.readouterr().out


def test_sealed_model_and_spdx(tmp_path: Path, kek: KeyWrapper, capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "model.onnx"
    plain.write_bytes(b"graph v1")
    artifact = tmp_path / "model.ccseal"
    seal_model(plain, artifact, [kek], created=datetime(2026, 1, 1, tzinfo=UTC))
    from_plain, from_sealed = tmp_path / "p.json", tmp_path / "s.json"
    assert _create(plain, from_plain, "--sealed", str(artifact)) == 0
    assert _create(artifact, from_sealed) == 0
    assert from_plain.read_bytes() == from_sealed.read_bytes()
    spdx = tmp_path / "spdx.json"
    assert _create(artifact, spdx, "--format", "spdx") == 0
    assert validate_bom(spdx.read_bytes()).format == "spdx"
    assert main(["bom", "diff", str(from_plain), str(spdx)]) == 2


def test_dataset_options(model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "extra.csv"
    data.write_text("a,b\n1,2\n")
    described = tmp_path / "eval.yaml"
    described.write_text("name: flowers-eval\nversion: '1'\nrole: testing\n")
    out = tmp_path / "a.json"
    assert _create(model_dir, out, "--dataset", str(data), "--dataset", str(described)) == 0
    refs = {c["bom-ref"] for c in json.loads(out.read_bytes())["components"]}
    assert {"dataset:extra.csv", "dataset:flowers-eval@1"} <= refs


def test_default_lock_is_the_project_lock(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    out = tmp_path / "a.json"
    assert main(["bom", "create", str(model_dir), "--card", str(EXAMPLE_CARD), "-o", str(out), *FIXED]) == 0
    purls = {c.get("purl") for c in json.loads(out.read_bytes())["components"]}
    assert "pkg:pypi/cyclonedx-python-lib@11.12.0" in purls
