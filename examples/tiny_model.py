"""Build a small, real ONNX model in memory with ``onnx.helper`` (used by the demo and the tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 10
"""ONNX IR version written: onnx 1.23 defaults to 14, which ONNX Runtime 1.32 refuses (max 13)."""
OPSET = 21


def build_tiny_model(seed: int = 7, hidden: int = 16) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A two-layer MLP ``y = relu(x W1 + b1) W2``. Returns (model bytes, W1, W2) for checking outputs."""
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((4, hidden)).astype(np.float32)
    b1 = rng.standard_normal((hidden,)).astype(np.float32)
    w2 = rng.standard_normal((hidden, 3)).astype(np.float32)
    graph = helper.make_graph(
        nodes=[
            helper.make_node("MatMul", ["x", "W1"], ["h0"]),
            helper.make_node("Add", ["h0", "b1"], ["h1"]),
            helper.make_node("Relu", ["h1"], ["h"]),
            helper.make_node("MatMul", ["h", "W2"], ["y"]),
        ],
        name="tiny-mlp",
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[
            numpy_helper.from_array(w1, "W1"),
            numpy_helper.from_array(b1, "b1"),
            numpy_helper.from_array(w2, "W2"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ccdeploy-demo")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model.SerializeToString(), np.concatenate([w1, b1[None, :]]), w2


def reference_output(x: np.ndarray, w1b1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """What the model must compute, in numpy."""
    w1, b1 = w1b1[:-1], w1b1[-1]
    result: np.ndarray = np.maximum(x @ w1 + b1, 0.0) @ w2
    return result


def save_with_external_data(model_bytes: bytes, directory: Path) -> None:
    """Write ``model.onnx`` with its weights in a separate ``weights.bin`` (ONNX external data)."""
    onnx.save_model(
        onnx.load_from_string(model_bytes),
        str(directory / "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
