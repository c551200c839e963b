"""ccdeploy's own pipeline as an in-toto layout: a real `ccdeploy seal` run, re-checked on disk."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from in_toto.runlib import in_toto_run

from ccdeploy.errors import LayoutInvalid
from ccdeploy.provenance.layout import verify_layout
from tests.provenance.layout._build import AT, inspection, party, step, write_layout

pytestmark = pytest.mark.filterwarnings("ignore:GitWildMatchPattern:DeprecationWarning")  # in-toto's in_toto_run

CCDEPLOY = [sys.executable, "-m", "ccdeploy"]


@pytest.fixture(scope="module")
def sealed_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    """Seal a model once under a `seal` functionary's link; return (layout, owner.pub, links, workdir)."""
    tmp_path = tmp_path_factory.mktemp("sealed")
    keys, work, links = tmp_path / "keys", tmp_path / "work", tmp_path / "links"
    for folder in (keys, work, links):
        folder.mkdir()
    kek = keys / "model.kek"  # outside the workdir: inspections record every file there
    subprocess.run([*CCDEPLOY, "kek", "create", str(kek)], check=True, capture_output=True)
    (work / "model.onnx").write_bytes(random.Random(7).randbytes(70_000))

    owner, sealer = party(keys, "owner", "ecdsa"), party(keys, "sealer", "ecdsa")
    seal_cmd = [*CCDEPLOY, "seal", "--kek", f"file:{kek}", "-o", "model.ccseal", "model.onnx"]
    saved = Path.cwd()
    os.chdir(work)  # in_toto_run runs the step in the process cwd (module scope: no monkeypatch)
    try:
        in_toto_run(
            "seal",
            ["model.onnx"],
            ["model.onnx", "model.ccseal", "model.ccseal.digest.json"],
            seal_cmd,
            signer=sealer.signer,
            use_dsse=True,
            metadata_directory=str(links),
        )
    finally:
        os.chdir(saved)

    seal = step(
        "seal",
        [sealer],
        expected_command=seal_cmd,
        expected_materials=[["ALLOW", "model.onnx"], ["DISALLOW", "*"]],
        expected_products=[
            ["MATCH", "model.onnx", "WITH", "MATERIALS", "FROM", "seal"],
            ["CREATE", "model.ccseal"],
            ["CREATE", "model.ccseal.digest.json"],
            ["DISALLOW", "*"],
        ],
    )
    # The inspection authenticates the sealed header with the KEK, and its rules tie every file on
    # disk to what the seal link recorded.
    recheck = inspection(
        "recheck-sealed",
        [*CCDEPLOY, "inspect", "--kek", f"file:{kek}", "model.ccseal"],
        expected_materials=[
            ["MATCH", "model.ccseal", "WITH", "PRODUCTS", "FROM", "seal"],
            ["MATCH", "model.ccseal.digest.json", "WITH", "PRODUCTS", "FROM", "seal"],
            ["MATCH", "model.onnx", "WITH", "MATERIALS", "FROM", "seal"],
            ["DISALLOW", "*"],
        ],
        expected_products=[["MATCH", "*", "WITH", "MATERIALS", "FROM", "recheck-sealed"], ["DISALLOW", "*"]],
    )
    layout = write_layout(tmp_path / "ccdeploy.layout", [owner], [seal], [recheck], [sealer])
    return layout, owner.pem, links, work


@pytest.fixture
def sealed_chain(sealed_template: tuple[Path, Path, Path, Path], tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """A private copy of the sealed workdir (tests tamper with it); layout, key and links are shared."""
    layout, owner, links, work = sealed_template
    return layout, owner, links, Path(shutil.copytree(work, tmp_path / "work"))


def test_sealed_pipeline_verifies(sealed_chain: tuple[Path, Path, Path, Path]) -> None:
    layout, owner, links, work = sealed_chain
    result = verify_layout(layout, [owner], links, at=AT, workdir=work)
    assert result.steps == ("seal",)
    assert result.inspections == ("recheck-sealed",)
    alignment = next(c for c in result.checks if c.name == "command-alignment")
    assert alignment.detail == "commands as expected"


def test_sealed_file_tampered_after_link(sealed_chain: tuple[Path, Path, Path, Path]) -> None:
    layout, owner, links, work = sealed_chain
    sealed = work / "model.ccseal"
    data = bytearray(sealed.read_bytes())
    data[-100] ^= 0x01  # in the payload: the header still authenticates, so only the MATCH rule can tell
    sealed.write_bytes(bytes(data))
    with pytest.raises(LayoutInvalid, match=r"artifact rule \(inspections\): RuleVerificationError"):
        verify_layout(layout, [owner], links, at=AT, workdir=work)


def test_sealed_header_tampered_fails_the_inspection(sealed_chain: tuple[Path, Path, Path, Path]) -> None:
    layout, owner, links, work = sealed_chain
    sealed = work / "model.ccseal"
    data = bytearray(sealed.read_bytes())
    data[40] ^= 0x01  # in the header: `ccdeploy inspect --kek` refuses it
    sealed.write_bytes(bytes(data))
    with pytest.raises(LayoutInvalid, match=r"inspection .recheck-sealed.: command .* exited with status 1"):
        verify_layout(layout, [owner], links, at=AT, workdir=work)


def test_model_replaced_after_seal(sealed_chain: tuple[Path, Path, Path, Path]) -> None:
    layout, owner, links, work = sealed_chain
    (work / "model.onnx").write_bytes(b"another model")
    with pytest.raises(LayoutInvalid, match=r"artifact rule \(inspections\)"):
        verify_layout(layout, [owner], links, at=AT, workdir=work)
