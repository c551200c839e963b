"""Plaintext digests of a model, computed exactly as OpenSSF ``model_signing`` computes them.

``model_signing`` (file serialization) hashes every regular file of a model directory, names it by its
relative POSIX path, orders the files by ``PurePosixPath`` comparison (component by component, so
``a/b`` sorts before ``a-c``), ignores the top-level git paths ``.git/``, ``.gitattributes``,
``.github/`` and ``.gitignore``, refuses symlinks, and takes the model's *root digest* as SHA-256 over
the concatenated raw file digests in that order (SHA-256 whatever the per-file algorithm). ccdeploy
uses the same rules, so the manifest digest in a sealed header equals model_signing's subject digest.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import blake3

from ccdeploy.errors import ModelInputError
from ccdeploy.seal._header import MAX_FILE_SIZE, HashAlgorithm, check_member_path, manifest_sort_key

__all__ = [
    "HashAlgorithm",
    "Hasher",
    "ModelFile",
    "collect_model_files",
    "compute_manifest",
    "hash_file",
    "manifest_digest",
    "new_hasher",
]

IGNORED_TOP_LEVEL = (".git", ".gitattributes", ".github", ".gitignore")
_READ_CHUNK = 8 << 20


class Hasher(Protocol):
    """A streaming hash (hashlib and blake3 objects both fit)."""

    def update(self, data: bytes | bytearray | memoryview, /) -> object: ...

    def hexdigest(self) -> str: ...


def new_hasher(algorithm: HashAlgorithm) -> Hasher:
    """A fresh streaming hasher; BLAKE3 on one thread (the other core is busy encrypting)."""
    if algorithm == "sha256":
        return hashlib.sha256()
    return blake3.blake3(max_threads=1)


@dataclass(frozen=True)
class ModelFile:
    """One regular file of a model: its name inside the model, where it is, and its size."""

    path: str
    source: Path
    size: int


def _regular_file(path: Path, name: str) -> ModelFile:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        raise ModelInputError(f"{path} is a symlink; ccdeploy (like model_signing) does not follow symlinks")
    if not stat.S_ISREG(info.st_mode):
        raise ModelInputError(f"{path} is not a regular file")
    if info.st_size > MAX_FILE_SIZE:
        raise ModelInputError(f"{path} is larger than one sealed stream can carry ({MAX_FILE_SIZE} bytes)")
    try:
        check_member_path(name)
    except ValueError as exc:
        raise ModelInputError(f"{path}: unusable file name ({exc})") from None
    return ModelFile(name, path, info.st_size)


def _walk(root: Path) -> Iterable[ModelFile]:
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(directory)
        relative = base.relative_to(root)
        for dirname in list(dirnames):
            if (base / dirname).is_symlink():
                raise ModelInputError(f"{base / dirname} is a symlink; symlinks are not followed")
            if relative == Path(".") and dirname in IGNORED_TOP_LEVEL:
                dirnames.remove(dirname)
        for filename in filenames:
            if relative == Path(".") and filename in IGNORED_TOP_LEVEL:
                continue
            yield _regular_file(base / filename, (relative / filename).as_posix())


def collect_model_files(model: Path) -> list[ModelFile]:
    """The files of a model (one file, or a directory walked recursively) in manifest order."""
    try:
        info = model.lstat()
    except OSError as exc:
        raise ModelInputError(f"cannot read model {model}: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        files = sorted(_walk(model), key=lambda f: manifest_sort_key(f.path))
        if not files:
            raise ModelInputError(f"model directory {model} has no files")
        return files
    return [_regular_file(model, model.name)]


def manifest_digest(file_digests: Iterable[bytes]) -> str:
    """model_signing's root digest: SHA-256 of the raw per-file digests, concatenated in manifest order."""
    root = hashlib.sha256()
    for digest in file_digests:
        root.update(digest)
    return root.hexdigest()


def hash_file(path: Path, hasher: Hasher) -> str:
    """Feed the file at ``path`` to ``hasher`` (any hashlib or blake3 object); return its hex digest."""
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def compute_manifest(model: Path, algorithm: HashAlgorithm = "sha256") -> tuple[dict[str, str], str]:
    """Hash a model on disk: ``({path: hex digest}, manifest digest)`` (no encryption)."""
    digests = {entry.path: hash_file(entry.source, new_hasher(algorithm)) for entry in collect_model_files(model)}
    return digests, manifest_digest(bytes.fromhex(d) for d in digests.values())
