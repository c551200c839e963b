"""Every committed forged negative, through ``ccdeploy attest verify --json``: typed error and exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ccdeploy._cli import main
from tests.conftest import ASSETS

FORGED = ASSETS / "forged"
TEES = {name: name for name in ("nitro", "sev-snp", "tdx", "sgx", "maa", "nvidia-gpu", "composite")}


def load_cases() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for tee in TEES:
        for case in json.loads((FORGED / tee / "cases.json").read_text()):
            cases.append((tee, case))
    return cases


CASES = load_cases()


def expand(text: str, vectors: Path, repo: Path) -> str:
    if text.startswith("{vectors}"):
        return str(vectors) + text.removeprefix("{vectors}")
    if text.startswith("tests/"):
        return str(repo / text)
    return text


@pytest.mark.parametrize(("tee", "case"), CASES, ids=[f"{tee}-{case['name']}" for tee, case in CASES])
def test_forged_case(tee: str, case: dict[str, Any], vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = ASSETS.parents[1]
    evidence = expand(case["evidence"], vectors, repo)
    args = [expand(arg, vectors, repo) for arg in case["args"]]
    code = main(["attest", "verify", evidence, "--type", TEES[tee], *args, "--json"])
    out, _err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["error"] is not None, f"{case['name']} verified"
    assert (code, doc["error"]["type"]) == (case["exit"], case["error"]), doc["error"]["message"]
    assert doc["verdict"] == ("unverifiable" if case["exit"] == 3 else "invalid")
