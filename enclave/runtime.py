"""ONNX Runtime sessions built from in-memory model bytes: plaintext weights never touch the disk.

Two traps this module closes (measured; see the project notes): ``InferenceSession`` silently falls
back to the CPU when the CUDA provider cannot load, so the providers actually in use are checked
against the ones requested; and ``SessionOptions.optimized_model_filepath`` would write the optimised
plaintext model to disk, so it is never set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

from enclave.errors import ModelRejected, RuntimeUnavailable
from enclave.tensors import TensorSpec

__all__ = ["DEFAULT_PROVIDERS", "ORT_DATATYPES", "ModelSession", "TensorSpec", "load_session"]

DEFAULT_PROVIDERS = ("CPUExecutionProvider",)

ORT_DATATYPES: dict[str, str] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}
"""ONNX Runtime type string -> Open Inference Protocol datatype name (the tensor types numpy can hold)."""


class ModelSession:
    """An ONNX Runtime session over a model held only in memory."""

    def __init__(self, session: Any) -> None:
        self._session = session

    @property
    def providers(self) -> list[str]:
        """The execution providers the session really uses, in priority order."""
        return list(self._session.get_providers())

    @property
    def input_names(self) -> list[str]:
        """Names of the model's inputs."""
        return [node.name for node in self._session.get_inputs()]

    @property
    def output_names(self) -> list[str]:
        """Names of the model's outputs."""
        return list(self._output_names)

    @cached_property
    def inputs(self) -> tuple[TensorSpec, ...]:
        """The model's inputs: name, OIP datatype (and numpy dtype), shape with ``None`` for dynamic dimensions.

        Raises:
            ModelRejected: An input is not a tensor of a type numpy can hold (sequence, map, bfloat16, ...).
        """
        return tuple(_spec(node) for node in self._session.get_inputs())

    @cached_property
    def outputs(self) -> tuple[TensorSpec, ...]:
        """The model's outputs, described as :attr:`inputs` are.

        Raises:
            ModelRejected: An output is not a tensor of a type numpy can hold.
        """
        return tuple(_spec(node) for node in self._session.get_outputs())

    @cached_property
    def _output_names(self) -> tuple[str, ...]:
        return tuple(node.name for node in self._session.get_outputs())

    def run(self, inputs: Mapping[str, Any], output_names: Sequence[str] | None = None) -> dict[str, Any]:
        """Run the model on named numpy inputs; return its outputs by name.

        Args:
            inputs: Input name -> numpy array.
            output_names: The outputs to compute, in this order (default: all, in the model's order).
        """
        names = self._output_names if output_names is None else output_names
        results = self._session.run(list(names) if output_names is not None else None, dict(inputs))
        return dict(zip(names, results, strict=True))


def _spec(node: Any) -> TensorSpec:
    datatype = ORT_DATATYPES.get(node.type)
    if datatype is None:
        raise ModelRejected(f"tensor {node.name!r} has type {node.type}, which this server cannot carry")
    shape = tuple(dim if isinstance(dim, int) and dim >= 0 else None for dim in (node.shape or ()))
    return TensorSpec(node.name, datatype, shape)


def load_session(
    model: bytes,
    providers: Sequence[str] = DEFAULT_PROVIDERS,
    external_data: Mapping[str, memoryview] | None = None,
    session_config: Mapping[str, str] | None = None,
) -> ModelSession:
    """Build a session from serialized model bytes with exactly the providers asked for.

    ``external_data`` maps the external-data file names the graph refers to (relative to the graph's
    directory, as written in the model) to their contents in memory; nothing is read from disk.
    ``session_config`` entries are applied with ``SessionOptions.add_session_config_entry`` (for example
    ``session.model_external_initializers_file_folder_path``).

    Raises:
        RuntimeUnavailable: onnxruntime is not installed, or a requested provider is not in use.
        ModelRejected: ONNX Runtime cannot load the bytes.
    """
    try:
        import onnxruntime as ort  # noqa: PLC0415 - optional dependency (extra `cpu` or `gpu`)
    except ImportError:
        raise RuntimeUnavailable("onnxruntime is not installed: install ccdeploy[cpu] or ccdeploy[gpu]") from None
    available = set(ort.get_available_providers())
    missing = [p for p in providers if p not in available]
    if missing:
        raise RuntimeUnavailable(f"execution provider(s) {missing} not available here (have {sorted(available)})")
    options = ort.SessionOptions()
    for key, value in (session_config or {}).items():
        options.add_session_config_entry(key, value)
    if external_data:
        names = list(external_data)
        buffers = [external_data[name] for name in names]
        options.add_external_initializers_from_files_in_memory(names, buffers, [len(b) for b in buffers])
    try:
        session = ort.InferenceSession(bytes(model), sess_options=options, providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own untyped exceptions
        raise ModelRejected(f"ONNX Runtime rejected the model: {str(exc).splitlines()[0][:300]}") from None
    in_use = list(session.get_providers())
    if in_use[: len(providers)] != list(providers):
        raise RuntimeUnavailable(f"asked for providers {list(providers)} but ONNX Runtime uses {in_use}")
    return ModelSession(session)
