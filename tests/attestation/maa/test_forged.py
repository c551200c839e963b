"""The committed forged MAA negatives (tests/assets/forged/maa): each fails with its error through the library, and
the files are exactly what tests/tools/make_forgeries_maa.py writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from attestation.appraise import appraise
from attestation.claims import Claims
from attestation.collateral import Collateral
from attestation.errors import AttestationError, NonceMismatch
from attestation.tee.maa import MaaVerifier
from attestation.verify import verify
from tests.tools import make_forgeries_maa

CASES: list[dict[str, Any]] = json.loads((make_forgeries_maa.FORGED / "cases.json").read_text())


@dataclass
class Options:
    """The ``ccdeploy attest verify --type maa`` options a case uses, loaded as the CLI loads them."""

    at: datetime | None = None
    jwks: bytes | None = None
    issuer: str | None = None
    nonce: bytes | None = None
    allow_debug: bool = False


def resolve(path: str, vectors: Path) -> Path:
    return Path(path.replace("{vectors}", str(vectors))) if "{vectors}" in path else make_forgeries_maa.REPO / path


def parse(args: list[str], vectors: Path) -> Options:
    options, rest = Options(), iter(args)
    for arg in rest:
        if arg in ("--offline", "--allow-debug"):
            options.allow_debug |= arg == "--allow-debug"
            continue
        value = next(rest)
        if arg == "--at":
            options.at = datetime.fromisoformat(value)
        elif arg == "--jwks":
            options.jwks = resolve(value, vectors).read_bytes()
        elif arg == "--issuer":
            options.issuer = value
        elif arg == "--nonce":
            options.nonce = bytes.fromhex(value)
        else:
            raise AssertionError(f"unknown option {arg}")
    return options


def run(case: dict[str, Any], vectors: Path, *extra: str) -> Claims:
    options = parse([*case["args"], *extra], vectors)
    claims = verify(
        resolve(case["evidence"], vectors).read_bytes(),
        tee="maa",
        at=options.at,
        collateral=Collateral(jwks=options.jwks),
        verifier=MaaVerifier(options.issuer),
    )
    appraise(claims, nonce=options.nonce, allow_debug=options.allow_debug).raise_for_failure()
    return claims


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_forged_case_fails_with_its_error(case: dict[str, Any], vectors: Path) -> None:
    with pytest.raises(AttestationError) as caught:
        run(case, vectors)
    assert type(caught.value).__name__ == case["error"], caught.value.message
    assert caught.value.exit_code == case["exit"]


def test_the_cases_cover_the_acceptance_list() -> None:
    assert {
        "alg-none",
        "hs256-public-key",
        "unknown-kid",
        "x5c-other-key",
        "tampered-payload",
        "expired",
        "not-yet-valid",
        "wrong-iss",
        "jku-other-provider",
        "tdx-debug",
        "real-other-provider",
        "real-expired",
        "real-jwks-missing",
    } <= {case["name"] for case in CASES}


def test_the_valid_control_verifies_with_its_nonce(vectors: Path) -> None:
    case = next(case for case in CASES if case["name"] == "nonce-mismatch")
    valid = dict(case, args=case["args"][:-2])
    # The token's report data is what the enclave bound; its `nonce` claim only echoes the requester.
    claims = run(valid, vectors, "--nonce", b"ccdeploy".hex())
    assert claims.nonce == bytes.fromhex(make_forgeries_maa.NONCE)
    with pytest.raises(NonceMismatch):
        run(valid, vectors, "--nonce", make_forgeries_maa.NONCE)
    assert claims.measurements["mrenclave"] == bytes(range(32)) and not claims.debug


def test_the_tdx_debug_token_verifies_and_maps_its_claims(vectors: Path) -> None:
    case = next(case for case in CASES if case["name"] == "tdx-debug")
    claims = run(case, vectors, "--allow-debug")
    assert claims.platform == "azure-attestation/tdxvm" and claims.debug
    assert claims.measurements["mrtd"] == bytes(range(48)) and claims.measurements["rtmr0"] == bytes(48)
    assert claims.report_data == b"ccdeploy".ljust(64, b"\0")
    assert claims.vendor["x-ms-compliance-status"] == "azure-compliant-cvm"


def test_committed_files_are_the_generators_output(tmp_path: Path) -> None:
    make_forgeries_maa.generate(tmp_path)
    committed = {p.name for p in make_forgeries_maa.FORGED.iterdir() if p.is_file()}
    generated = {p.name for p in tmp_path.iterdir()}
    assert generated == committed
    for name in sorted(generated):
        assert (tmp_path / name).read_bytes() == (make_forgeries_maa.FORGED / name).read_bytes(), name
