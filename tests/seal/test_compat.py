"""Format compatibility forever: the version-1 golden artifacts must keep opening, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccdeploy.kek import kek_from_uri
from ccdeploy.seal import KekKeyProvider, open_sealed, read_header
from tests.tools.make_golden import golden_files

GOLDEN = Path(__file__).resolve().parents[1] / "assets" / "compat" / "v1"
EXPECTED = json.loads((GOLDEN / "expected-headers.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_v1_artifact_opens(name: str) -> None:
    plaintext = golden_files()
    sealed = GOLDEN / name
    header = read_header(sealed)
    assert header.model.model_dump(mode="json") == EXPECTED[name]["model"]
    assert header.artifact_id == EXPECTED[name]["artifact_id"]
    assert header.created == "2026-11-22T12:00:00Z"
    keks = [kek_from_uri(f"file:{GOLDEN / 'test-kek.json'}")]
    if len(header.recipients) > 1:
        keks = [kek_from_uri(f"file:{GOLDEN / 'test-kek-2.json'}")]
    with open_sealed(sealed, KekKeyProvider(keks)) as artifact:
        assert {f.path: bytes(artifact.read_file(f.path)) for f in artifact.files} == plaintext
        with artifact.open("weights/layer0.bin") as reader:
            reader.seek(1_048_510)
            assert reader.read(30) == plaintext["weights/layer0.bin"][1_048_510:1_048_540]
