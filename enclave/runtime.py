"""ONNX Runtime sessions built from in-memory model bytes: plaintext weights never touch the disk.

Two traps this module closes (measured; see the project notes): ``InferenceSession`` silently falls
back to the CPU when the CUDA provider cannot load, so the providers actually in use are checked
against the ones requested; and ``SessionOptions.optimized_model_filepath`` would write the optimised
plaintext model to disk, so it is never set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from enclave.errors import ModelRejected, RuntimeUnavailable

__all__ = ["DEFAULT_PROVIDERS", "ModelSession", "load_session"]

DEFAULT_PROVIDERS = ("CPUExecutionProvider",)


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
        return [node.name for node in self._session.get_outputs()]

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Run the model on named numpy inputs; return its outputs by name."""
        results = self._session.run(None, dict(inputs))
        return dict(zip(self.output_names, results, strict=True))


def load_session(
    model: bytes,
    providers: Sequence[str] = DEFAULT_PROVIDERS,
    external_data: Mapping[str, memoryview] | None = None,
) -> ModelSession:
    """Build a session from serialized model bytes with exactly the providers asked for.

    ``external_data`` maps the external-data file names the graph refers to (relative to the graph's
    directory, as written in the model) to their contents in memory; nothing is read from disk.

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
