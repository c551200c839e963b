"""Load a sealed model straight into ONNX Runtime: decrypt in memory, never to disk."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from ccdeploy.seal import SealedModel
from enclave.errors import ModelRejected
from enclave.runtime import DEFAULT_PROVIDERS, ModelSession, load_session

__all__ = ["graph_path", "session_from_sealed"]


def graph_path(artifact: SealedModel) -> str:
    """The model's ONNX graph: its only ``.onnx`` file."""
    graphs = [entry.path for entry in artifact.files if entry.path.endswith(".onnx")]
    if len(graphs) != 1:
        raise ModelRejected(f"expected exactly one .onnx graph in the artifact, found {len(graphs)}; name it")
    return graphs[0]


def session_from_sealed(
    artifact: SealedModel, *, graph: str | None = None, providers: Sequence[str] = DEFAULT_PROVIDERS
) -> ModelSession:
    """Decrypt every file of ``artifact`` into memory and build a session from them.

    The graph is ``graph`` (default: the only ``.onnx`` file); every other file is handed to ONNX
    Runtime as in-memory external data, named relative to the graph's directory as the graph refers to it.
    """
    graph = graph or graph_path(artifact)
    files = artifact.read_all()
    if graph not in files:
        raise ModelRejected(f"no file {graph!r} in the artifact")
    base = posixpath.dirname(graph)
    external = {posixpath.relpath(path, base or "."): view for path, view in files.items() if path != graph}
    return load_session(bytes(files[graph]), providers, external_data=external)
