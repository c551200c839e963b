"""Load a sealed model straight into ONNX Runtime: decrypt into memory, never to disk.

Two routes for a model with external-data files (the graph itself always goes over as ``bytes``):

* ``"tmpfs"`` (default, fast): each external-data file is decrypted straight into a new 0600 file in a
  private 0700 directory on a RAM-backed tmpfs; the session is pointed at that directory
  (``session.model_external_initializers_file_folder_path``) and memory-maps the files, as it does
  for a plain model on disk; then the files are unlinked (the session keeps its mapping). Staging runs
  on every core (``SealedModel.write_authenticated``: each batch written only once its segment tags
  verified); the plaintext digests are then checked from read-only mappings of the staged files on a
  second thread WHILE ONNX Runtime builds the session, and the session is returned only if they all
  match (otherwise it is dropped unused and the files zero-filled). What remains over
  ``InferenceSession(path)`` is mostly writing the weights into new tmpfs pages (bench_coldstart's
  "staging floor").
* ``"memory"``: the files are decrypted into private memory and handed over as in-memory initializers,
  which ONNX Runtime copies (2-3x slower to load); no file is created at all. The buffers are zeroed
  once the session holds its copy.
"""

from __future__ import annotations

import logging
import mmap
import os
import posixpath
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ccdeploy.seal import SealedModel
from enclave.config import ExternalDataRoute
from enclave.errors import ModelRejected
from enclave.memory import DEFAULT_RAM_ROOT, ram_staging_dir, zero
from enclave.runtime import DEFAULT_PROVIDERS, ModelSession, load_session

__all__ = ["EXTERNAL_FOLDER_CONFIG", "graph_path", "session_from_sealed"]

_log = logging.getLogger(__name__)

EXTERNAL_FOLDER_CONFIG = "session.model_external_initializers_file_folder_path"
"""The ONNX Runtime session config entry naming where a graph loaded from bytes finds its external data."""


def graph_path(artifact: SealedModel) -> str:
    """The model's ONNX graph: its only ``.onnx`` file."""
    graphs = [entry.path for entry in artifact.files if entry.path.endswith(".onnx")]
    if len(graphs) != 1:
        raise ModelRejected(f"expected exactly one .onnx graph in the artifact, found {len(graphs)}; name it")
    return graphs[0]


def session_from_sealed(
    artifact: SealedModel,
    *,
    graph: str | None = None,
    providers: Sequence[str] = DEFAULT_PROVIDERS,
    external_data: ExternalDataRoute = "tmpfs",
    staging_root: Path = DEFAULT_RAM_ROOT,
) -> ModelSession:
    """Decrypt ``artifact`` and build a session from it, without writing plaintext to disk.

    Args:
        artifact: An opened (header-authenticated) sealed artifact.
        graph: The graph file (default: the only ``.onnx`` file).
        providers: Execution providers the session must use, in order.
        external_data: ``"tmpfs"`` or ``"memory"`` (see the module docstring).
        staging_root: The RAM-backed tmpfs to stage under (route ``"tmpfs"``).

    Raises:
        ModelRejected: no or several graphs, a malformed file name, or ONNX Runtime refuses the model.
        RuntimeUnavailable: a provider is not in use, or ``staging_root`` is not a RAM-backed tmpfs.
        ArtifactTampered: a segment or file digest fails to verify.
    """
    graph = graph or graph_path(artifact)
    names = {entry.path for entry in artifact.files}
    if graph not in names:
        raise ModelRejected(f"no file {graph!r} in the artifact")
    if external_data == "memory":
        return _from_memory(artifact, graph, providers)
    return _from_tmpfs(artifact, graph, providers, staging_root)


def _external_name(graph: str, path: str) -> str:
    """``path`` named as the graph refers to it: relative to the graph's directory."""
    return posixpath.relpath(path, posixpath.dirname(graph) or ".")


def _from_memory(artifact: SealedModel, graph: str, providers: Sequence[str]) -> ModelSession:
    files = artifact.read_all()
    try:
        external = {_external_name(graph, path): view for path, view in files.items() if path != graph}
        return load_session(bytes(files[graph]), providers, external_data=external)
    finally:
        for view in files.values():
            zero(view)  # ONNX Runtime holds its own copy by now


def _from_tmpfs(artifact: SealedModel, graph: str, providers: Sequence[str], staging_root: Path) -> ModelSession:
    graph_view = artifact.read_file(graph)
    try:
        model = bytes(graph_view)
    finally:
        zero(graph_view)
    staged = [(entry.path, _external_name(graph, entry.path)) for entry in artifact.files if entry.path != graph]
    # Files outside the graph's directory cannot be named by its external-data locations: leave them sealed.
    staged = [(path, name) for path, name in staged if not name.startswith("../")]
    if not staged:
        return load_session(model, providers)
    with ram_staging_dir(staging_root) as staging:
        regions: list[tuple[str, mmap.mmap | None]] = []
        try:
            for path, name in staged:
                regions.append((path, _stage(artifact, staging.create_file(name), path)))
            _log.debug("staged %d external-data file(s) on tmpfs", len(staged))
            session = _session_while_checking(artifact, regions, model, providers, staging.path)
        finally:
            for _path, region in regions:
                if region is not None:
                    region.close()
        staging.in_use = True  # the session maps these pages now: unlink only, never overwrite
    return session


def _stage(artifact: SealedModel, fd: int, path: str) -> mmap.mmap | None:
    """Decrypt ``path`` into the staged file ``fd`` (tags verified, digest not yet); map it read-only."""
    try:
        artifact.write_authenticated(fd, path)
        size = os.fstat(fd).st_size
        return mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ) if size else None
    finally:
        os.close(fd)


def _session_while_checking(
    artifact: SealedModel,
    regions: Sequence[tuple[str, mmap.mmap | None]],
    model: bytes,
    providers: Sequence[str],
    folder: Path,
) -> ModelSession:
    """Create the session while another thread checks the staged files' plaintext digests.

    Hashing (SHA-256 at about 1.6 GiB/s) would otherwise add a third of a second per 400 MiB to the
    cold start; ONNX Runtime releases the GIL while it builds a session, so the two overlap. What
    ONNX Runtime reads meanwhile has passed every segment tag (authenticated under the released key);
    the session is returned only after every digest matched. If a digest fails, the session is
    dropped unused before the staged files are scrubbed (zero-filled, then unlinked) on the way out.
    """
    stop = threading.Event()
    with ThreadPoolExecutor(1, thread_name_prefix="enclave-digest") as pool:
        check = pool.submit(_check_digests, artifact, regions, stop)
        try:
            session = load_session(model, providers, session_config={EXTERNAL_FOLDER_CONFIG: str(folder)})
        except BaseException:
            stop.set()  # the pool's exit waits for the hashing thread to let go of the mappings
            raise
        try:
            check.result()
        except BaseException:
            del session  # never served: gone before its files are zero-filled
            raise
    return session


def _check_digests(
    artifact: SealedModel, regions: Sequence[tuple[str, mmap.mmap | None]], stop: threading.Event
) -> None:
    for path, region in regions:
        if region is None:
            artifact.check_digest(path, memoryview(b""), stop=stop)
            continue
        with memoryview(region) as view:
            artifact.check_digest(path, view, stop=stop)
