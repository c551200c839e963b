"""ONNX Runtime from in-memory bytes of a sealed model, and provider checks that fail closed."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from ccdeploy.kek import KeyWrapper
from ccdeploy.seal import KekKeyProvider, open_sealed, seal_model
from enclave.errors import ModelRejected, RuntimeUnavailable
from enclave.loader import session_from_sealed
from enclave.runtime import load_session

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from tiny_model import build_tiny_model, reference_output, save_with_external_data


def test_sealed_model_runs_from_memory(kek: KeyWrapper, tmp_path: Path) -> None:
    model_bytes, w1b1, w2 = build_tiny_model()
    (tmp_path / "m.onnx").write_bytes(model_bytes)
    seal_model(tmp_path / "m.onnx", tmp_path / "m.ccseal", [kek])
    (tmp_path / "m.onnx").unlink()
    with open_sealed(tmp_path / "m.ccseal", KekKeyProvider([kek])) as artifact:
        session = load_session(bytes(artifact.read_file()))
    assert session.providers == ["CPUExecutionProvider"]
    assert session.input_names == ["x"] and session.output_names == ["y"]
    x = np.ones((2, 4), dtype=np.float32)
    assert np.allclose(session.run({"x": x})["y"], reference_output(x, w1b1, w2), atol=1e-5)
    # no plaintext left on disk: only the artifact, its digest record and the KEK
    assert {p.name for p in tmp_path.iterdir()} == {"m.ccseal", "m.ccseal.digest.json", "main.kek"}


def test_missing_provider_fails_closed() -> None:
    model_bytes, _, _ = build_tiny_model()
    with pytest.raises(RuntimeUnavailable, match="TensorrtExecutionProvider"):
        load_session(model_bytes, providers=("TensorrtExecutionProvider", "CPUExecutionProvider"))


def test_garbage_model_is_rejected() -> None:
    with pytest.raises(ModelRejected):
        load_session(b"not an onnx model")


def test_model_directory_with_external_data_runs_from_memory(kek: KeyWrapper, tmp_path: Path) -> None:
    model_bytes, w1b1, w2 = build_tiny_model(hidden=64)
    model_dir = tmp_path / "mlp"
    model_dir.mkdir()
    save_with_external_data(model_bytes, model_dir)
    assert (model_dir / "weights.bin").stat().st_size > 1000
    seal_model(model_dir, tmp_path / "mlp.ccseal", [kek])
    with open_sealed(tmp_path / "mlp.ccseal", KekKeyProvider([kek])) as artifact:
        session = session_from_sealed(artifact)
    x = np.ones((3, 4), dtype=np.float32)
    assert np.allclose(session.run({"x": x})["y"], reference_output(x, w1b1, w2), atol=1e-4)


def test_graph_must_be_unambiguous(kek: KeyWrapper, tmp_path: Path) -> None:
    model = tmp_path / "two"
    model.mkdir()
    (model / "a.onnx").write_bytes(b"x")
    (model / "b.onnx").write_bytes(b"y")
    seal_model(model, tmp_path / "two.ccseal", [kek])
    with (
        open_sealed(tmp_path / "two.ccseal", KekKeyProvider([kek])) as artifact,
        pytest.raises(ModelRejected, match="exactly one"),
    ):
        session_from_sealed(artifact)
