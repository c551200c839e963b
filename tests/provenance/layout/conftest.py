"""Scratch copies of the in-toto vectors: inspections write files, so they never run in ../shared."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

GOLANG = "in-toto-slsa/intoto-golang-demo"
RS = "in-toto-slsa/intoto-rs-demo"


@pytest.fixture
def golang_demo(vectors: Path, tmp_path: Path) -> Path:
    """A copy of in-toto-golang's demo: layouts, alice.pub, both links and foo.tar.gz."""
    return Path(shutil.copytree(vectors / GOLANG, tmp_path / "golang"))


@pytest.fixture
def rs_workdir(vectors: Path, tmp_path: Path) -> Path:
    """The in-toto-rs demo workdir: only root.layout, alice.pub and demo-project.tar.gz (MANIFEST §8b)."""
    workdir = tmp_path / "rs"
    workdir.mkdir()
    for name in ("root.layout", "alice.pub", "demo-project.tar.gz"):
        shutil.copy2(vectors / RS / name, workdir / name)
    return workdir


@pytest.fixture
def rs_links(vectors: Path) -> Path:
    """The in-toto-rs demo links, read in place (verification never writes to the links dir)."""
    return vectors / RS / "links"
