"""The committed forged negatives (tests/assets/forged/sev-snp): each fails with its error through the library, and
the files are exactly what tests/tools/make_forgeries_snp.py writes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from attestation._x509 import load_certificates
from attestation.appraise import appraise
from attestation.claims import Claims
from attestation.collateral import Collateral
from attestation.errors import AttestationError
from attestation.verify import verify
from tests.tools import make_forgeries_snp

CASES: list[dict[str, Any]] = json.loads((make_forgeries_snp.FORGED / "cases.json").read_text())


@dataclass
class Options:
    """The ``ccdeploy attest verify`` options a case uses, loaded as the CLI loads them."""

    at: datetime | None = None
    roots: list[x509.Certificate] = field(default_factory=list)
    chain: tuple[x509.Certificate, ...] = ()
    signing_cert: x509.Certificate | None = None
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)
    trust_simulator: bool = False


def resolve(path: str, vectors: Path) -> Path:
    return Path(path.replace("{vectors}", str(vectors))) if "{vectors}" in path else make_forgeries_snp.REPO / path


def parse(args: list[str], vectors: Path) -> Options:
    options, rest = Options(), iter(args)
    for arg in rest:
        if arg in ("--offline", "--unsafe-trust-simulator-root"):
            options.trust_simulator |= arg == "--unsafe-trust-simulator-root"
            continue
        value = next(rest)
        if arg == "--at":
            options.at = datetime.fromisoformat(value)
            continue
        data = resolve(value, vectors).read_bytes()
        if arg == "--crl":
            options.crls.append(x509.load_der_x509_crl(data))
        elif arg == "--root":
            options.roots += load_certificates(data, arg)
        elif arg == "--chain":
            options.chain = load_certificates(data, arg)
        elif arg == "--signing-cert":
            (options.signing_cert,) = load_certificates(data, arg)
        else:
            raise AssertionError(f"unknown option {arg}")
    return options


def run(case: dict[str, Any], vectors: Path) -> Claims:
    options = parse(case["args"], vectors)
    claims = verify(
        resolve(case["evidence"], vectors).read_bytes(),
        tee="sev-snp",
        at=options.at,
        roots=options.roots or None,
        collateral=Collateral(options.chain, options.signing_cert, tuple(options.crls)),
        unsafe_allow_simulator_roots=options.trust_simulator,
    )
    appraise(claims).raise_for_failure()  # as `attest verify` does without --allow-debug
    return claims


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_forged_case_fails_with_its_error(case: dict[str, Any], vectors: Path) -> None:
    with pytest.raises(AttestationError) as caught:
        run(case, vectors)
    assert type(caught.value).__name__ == case["error"], caught.value.message
    assert caught.value.exit_code == case["exit"]


def test_the_cases_cover_the_acceptance_list() -> None:
    names = {case["name"] for case in CASES}
    assert {
        "wrong-ark",
        "other-product-ask",
        "vcek-tcb-mismatch",
        "vlek-report-vcek-cert",
        "chip-id-mismatch",
        "debug-policy",
        "collateral-missing",
        "altered-byte-42",
        "expired",
    } <= names


def test_the_valid_control_verifies(vectors: Path) -> None:
    case = next(case for case in CASES if case["name"] == "revoked-ask")
    valid = dict(case, args=[arg for arg in case["args"] if not arg.endswith(".crl") and arg != "--crl"])
    claims = run(valid, vectors)
    assert claims.signer.simulated and claims.report_data == b"ccdeploy".ljust(64, b"\0")


def test_the_debug_case_verifies_and_says_debug(vectors: Path) -> None:
    case = next(case for case in CASES if case["name"] == "debug-policy")
    options = parse(case["args"], vectors)
    claims = verify(
        resolve(case["evidence"], vectors).read_bytes(),
        tee="sev-snp",
        at=options.at,
        roots=options.roots,
        collateral=Collateral(options.chain, options.signing_cert),
        unsafe_allow_simulator_roots=True,
    )
    assert claims.debug is True
    assert appraise(claims, allow_debug=True).ok


def test_committed_files_are_the_generators_output(tmp_path: Path) -> None:
    make_forgeries_snp.generate(tmp_path)
    committed = {p.name for p in make_forgeries_snp.FORGED.iterdir() if p.is_file()}
    generated = {p.name for p in tmp_path.iterdir()}
    assert generated == committed
    for name in sorted(generated):
        assert (tmp_path / name).read_bytes() == (make_forgeries_snp.FORGED / name).read_bytes(), name
