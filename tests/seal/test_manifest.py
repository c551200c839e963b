"""The manifest digest equals OpenSSF model_signing's, for SHA-256 and BLAKE3, file and directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_signing import hashing
from model_signing._signing.signing import Payload  # the in-toto payload model_signing signs

from ccdeploy.errors import ModelInputError
from ccdeploy.kek import KeyWrapper
from ccdeploy.seal import HashAlgorithm, compute_manifest, read_header, seal_model
from tests.seal.conftest import random_bytes, write_model_dir


def _model_signing_root(model: Path, algorithm: HashAlgorithm) -> tuple[dict[str, str], str]:
    manifest = hashing.Config().use_file_serialization(hashing_algorithm=algorithm).hash(model)  # type: ignore[no-untyped-call]
    statement = Payload(manifest).statement.pb
    subject = statement.subject[0].digest["sha256"]
    resources = {r.identifier: r.digest.digest_hex for r in manifest.resource_descriptors()}
    return resources, subject


@pytest.fixture
def tricky_model(tmp_path: Path) -> Path:
    """Names whose component order differs from plain string order, nested dirs, and git files to skip."""
    return write_model_dir(
        tmp_path / "tricky",
        {
            "a/b": b"nested",
            "a-c": b"dash sorts before slash as a string",
            "model.onnx": random_bytes(1_500_000, seed=3),
            "sub/dir/x.bin": random_bytes(70_000, seed=4),
            "sub/.gitignore": b"not top-level: kept",
            ".gitignore": b"ignored",
            ".gitattributes": b"ignored",
            ".git/HEAD": b"ignored",
            ".github/workflows/ci.yml": b"ignored",
            "empty.bin": b"",
        },
    )


@pytest.mark.parametrize("algorithm", ["sha256", "blake3"])
def test_directory_manifest_matches_model_signing(
    tricky_model: Path, algorithm: HashAlgorithm, kek: KeyWrapper
) -> None:
    resources, subject = _model_signing_root(tricky_model, algorithm)
    ours, root = compute_manifest(tricky_model, algorithm)
    assert ours == resources
    assert list(ours) == list(resources)  # same order
    assert root == subject
    sealed = tricky_model.parent / "tricky.ccseal"
    header = seal_model(tricky_model, sealed, [kek], hash_algorithm=algorithm)
    assert header.model.manifest_digest == subject
    assert {f.path: f.digest for f in read_header(sealed).model.files} == resources


@pytest.mark.parametrize("algorithm", ["sha256", "blake3"])
def test_single_file_manifest_matches_model_signing(tmp_path: Path, algorithm: HashAlgorithm, kek: KeyWrapper) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(random_bytes(2_000_000, seed=9))
    _, subject = _model_signing_root(model, algorithm)
    header = seal_model(model, tmp_path / "m.ccseal", [kek], hash_algorithm=algorithm)
    assert header.model.manifest_digest == subject
    assert header.model.files[0].path == "m.onnx"


def test_symlinks_are_refused(tmp_path: Path, kek: KeyWrapper) -> None:
    model = write_model_dir(tmp_path / "m", {"a.bin": b"x"})
    (model / "link.bin").symlink_to(model / "a.bin")
    with pytest.raises(ModelInputError, match="symlink"):
        seal_model(model, tmp_path / "out.ccseal", [kek])
    assert not (tmp_path / "out.ccseal").exists()


def test_empty_directory_is_refused(tmp_path: Path, kek: KeyWrapper) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelInputError, match="no files"):
        seal_model(tmp_path / "empty", tmp_path / "out.ccseal", [kek])
