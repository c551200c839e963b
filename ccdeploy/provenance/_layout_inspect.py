"""Run a layout's inspections in a given directory and record what they saw.

in-toto's own runner (``verifylib.run_all_inspections`` -> ``runlib.in_toto_run``) runs the command in
the process's current directory and records artifacts relative to it. Here the command runs as a
subprocess with ``cwd=workdir`` (the process cwd is never changed for it), and the materials and
products are recorded with in-toto's ``record_artifacts_as_dict(["."], base_path=workdir)`` so they are
named and hashed exactly as in-toto names them. That recorder does change the process cwd while it
hashes (its FileResolver chdirs to ``base_path``) and keeps its resolvers in a module-global table, so
callers hold :data:`IN_TOTO_LOCK` and the cwd is restored here even when hashing fails.
"""

from __future__ import annotations

import os
import subprocess
import threading
import warnings
from pathlib import Path
from typing import Any

from in_toto.models.link import Link
from in_toto.runlib import record_artifacts_as_dict

from ccdeploy.errors import CouldNotCheck, LayoutInvalid

__all__ = ["IN_TOTO_LOCK", "run_inspection"]

IN_TOTO_LOCK = threading.RLock()
"""Serializes use of in-toto, whose artifact recorder and rule tracer keep process-global state."""


def run_inspection(inspection: Any, workdir: Path, timeout_s: float) -> Any:
    """Run one inspection's command in ``workdir`` and return its (unsigned) in-toto ``Link``.

    Args:
        inspection: An in-toto ``Inspection`` from a layout whose signature was verified.
        workdir: An absolute directory: the command's cwd and the root of the recorded artifacts.
        timeout_s: How long the command may run.

    Raises:
        LayoutInvalid: The command exited non-zero.
        CouldNotCheck: The command could not be started or did not finish in time.
    """
    name = inspection.name
    argv = list(inspection.run)
    if not argv or not all(isinstance(arg, str) for arg in argv):
        raise LayoutInvalid(f"inspection '{name}': its 'run' command is empty or not a list of strings")
    materials = _record(workdir)
    try:
        completed = subprocess.run(
            argv,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CouldNotCheck(f"inspection '{name}': command did not finish within {timeout_s:g} s") from exc
    except OSError as exc:
        raise CouldNotCheck(
            f"inspection '{name}': cannot run {argv[0]!r}: {exc.strerror or type(exc).__name__}"
        ) from exc
    if completed.returncode != 0:
        raise LayoutInvalid(f"inspection '{name}': command {argv[0]!r} exited with status {completed.returncode}")
    products = _record(workdir)
    return Link(
        name=name,
        materials=materials,
        products=products,
        command=argv,
        byproducts={"return-value": completed.returncode},
        environment={},
    )


def _record(workdir: Path) -> dict[str, Any]:
    saved = os.getcwd()
    try:
        with warnings.catch_warnings():
            # in-toto 3.1 builds its exclude filter with pathspec's deprecated 'gitwildmatch' pattern;
            # the warning is in-toto's to fix and must not fail callers that treat warnings as errors.
            warnings.filterwarnings("ignore", message=r"GitWildMatchPattern", category=DeprecationWarning)
            return dict(record_artifacts_as_dict(["."], base_path=str(workdir), follow_symlink_dirs=True))
    finally:
        os.chdir(saved)
