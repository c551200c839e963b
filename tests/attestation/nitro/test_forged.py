"""The committed forged negatives: each fails with its exact error class, and the script reproduces every byte."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from attestation import errors
from attestation._x509 import load_certificates
from attestation.appraise import appraise
from attestation.claims import Claims
from attestation.verify import verify
from tests.tools import make_forgeries_nitro

REPO = Path(__file__).resolve().parents[3]
FORGED = REPO / make_forgeries_nitro.OUT_RELATIVE
CASES: list[dict[str, Any]] = json.loads((FORGED / "cases.json").read_text())


def _evidence(case: dict[str, Any], vectors: Path) -> bytes:
    path: str = case["evidence"]
    if path.startswith("{vectors}/"):
        return (vectors / path.removeprefix("{vectors}/")).read_bytes()
    return (REPO / path).read_bytes()


def _verify_like_the_cli(evidence: bytes, args: list[str]) -> Claims:
    """What ``ccdeploy attest verify --type nitro`` does with these arguments, through the library."""
    at: datetime | None = None
    roots = None
    unsafe = False
    remaining = list(args)
    while remaining:
        option = remaining.pop(0)
        if option == "--at":
            at = datetime.fromisoformat(remaining.pop(0))
        elif option == "--root":
            roots = load_certificates((REPO / remaining.pop(0)).read_bytes(), "--root")
        elif option == "--unsafe-trust-simulator-root":
            unsafe = True
        else:
            raise AssertionError(f"cases.json uses an option this test does not know: {option}")
    return verify(evidence, tee="nitro", at=at, roots=roots, unsafe_allow_simulator_roots=unsafe)


def test_case_list_covers_the_acceptance_list() -> None:
    names = {case["name"] for case in CASES}
    assert {
        "flipped-signature-byte",
        "flipped-payload-byte-pcr0",
        "truncated-by-one-byte",
        "leaf-of-another-document",
        "wrong-root",
        "leaf-expired-by-one-second",
        "leaf-not-yet-valid-by-one-second",
        "reordered-cabundle-resigned",
        "alg-only-in-unprotected-header",
        "debug-enclave-without-allow-debug",
    } <= names
    assert len(names) == len(CASES)
    assert all(case["exit"] == 1 and hasattr(errors, case["error"]) for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_forged_case_fails_with_its_error(case: dict[str, Any], vectors: Path) -> None:
    evidence = _evidence(case, vectors)
    expected = getattr(errors, case["error"])
    with pytest.raises(errors.AttestationError) as caught:
        # Debug enclaves verify (signature and chain are fine); refusing them is the appraisal's job, as in the CLI.
        appraise(_verify_like_the_cli(evidence, case["args"])).raise_for_failure()
    assert type(caught.value) is expected, caught.value


def test_debug_enclave_is_accepted_only_when_allowed(debug_doc: bytes, real_doc: bytes) -> None:
    claims = verify(debug_doc, tee="nitro", at=None)
    assert claims.debug is True
    assert appraise(claims, allow_debug=True).error() is None
    assert appraise(verify(real_doc, tee="nitro", at=None)).error() is None


def test_committed_forgeries_are_what_the_script_makes(vectors: Path, tmp_path: Path) -> None:
    expected = make_forgeries_nitro.build(vectors, make_forgeries_nitro.load_keys())
    assert make_forgeries_nitro.differences(expected, FORGED) == []
    for name, data in expected.items():
        (tmp_path / name).write_bytes(data)
    assert make_forgeries_nitro.differences(expected, tmp_path) == []
    (tmp_path / "stray.cbor").write_bytes(b"")
    (tmp_path / "cases.json").write_bytes(b"[]")
    assert make_forgeries_nitro.differences(expected, tmp_path) == ["cases.json", "stray.cbor (not generated)"]


def test_reencoding_without_changes_is_the_real_document(real_doc: bytes) -> None:
    # The forgeries that re-encode the real document change only what they name.
    assert make_forgeries_nitro._reencode(real_doc) == real_doc


def test_wrong_root_impersonates_the_aws_root_by_name(aws_root: Any) -> None:
    (impostor,) = load_certificates((FORGED / "wrong-root.pem").read_bytes(), "wrong root")
    assert impostor.subject == aws_root.subject
    assert impostor != aws_root
