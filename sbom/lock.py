"""Reading a pip requirements lock (``pip-compile --generate-hashes`` / ``uv pip compile``) into dependencies.

Written by hand rather than with ``pip-requirements-parser`` or ``packaging``: the lock format we accept is
the narrow, fully pinned subset those tools emit, and anything outside it is refused rather than guessed.
"""

from __future__ import annotations

import re

from pydantic import ValidationError

from sbom.errors import InputInvalid
from sbom.model import Dependency

__all__ = ["lock_dependencies"]

_REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[A-Za-z0-9._,\s-]*\])?\s*===?\s*(?P<version>[^\s;\\]+)\s*(?:;\s*(?P<marker>[^\\]*?))?\s*$"
)
_HASH = re.compile(r"^--hash[=\s]\s*(?P<alg>[a-z0-9]+):(?P<value>[0-9a-fA-F]+)$")
_IGNORED_OPTIONS = ("--index-url", "--extra-index-url", "--find-links", "--trusted-host", "-i ", "--no-binary")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        if pending.strip():
            lines.append((start, pending.strip()))
        pending = ""
    if pending.strip():
        lines.append((start, pending.strip()))
    return lines


def lock_dependencies(lock_text: str) -> list[Dependency]:
    """Parse a hash-pinned requirements lock into dependencies (name, exact version, SHA-256 hashes).

    Args:
        lock_text: The lock file's text, e.g. requirements/dev.lock.

    Returns:
        The dependencies, sorted by normalised name.

    Raises:
        InputInvalid: a requirement is not pinned with ``==``, a hash is not SHA-256, an option is not
            understood (``-e``, ``-r``, URLs), or a package version is listed twice.
    """
    # A universal lock (uv) pins one package several times under exclusive environment markers; all are kept.
    dependencies: dict[str, Dependency] = {}
    for number, line in _logical_lines(lock_text):
        if line.startswith(_IGNORED_OPTIONS):
            continue
        head, *options = re.split(r"\s+(?=--hash)", line)
        match = _REQUIREMENT.match(head)
        if match is None:
            raise InputInvalid(f"lock line {number}: not a pinned requirement (name==version): {head[:80]!r}")
        hashes = []
        for option in options:
            hash_match = _HASH.match(option.strip())
            if hash_match is None or hash_match["alg"] != "sha256" or len(hash_match["value"]) != 64:
                raise InputInvalid(f"lock line {number}: only --hash=sha256:<64 hex> is accepted")
            hashes.append(hash_match["value"].lower())
        try:
            dependency = Dependency(
                name=match["name"], version=match["version"], hashes=tuple(hashes), marker=match["marker"] or None
            )
        except ValidationError:
            raise InputInvalid(f"lock line {number}: malformed name or version") from None
        if dependency.purl in dependencies:
            raise InputInvalid(f"lock line {number}: {dependency.name} {dependency.version} is listed twice")
        dependencies[dependency.purl] = dependency
    return sorted(dependencies.values(), key=lambda d: (d.name, d.version))
