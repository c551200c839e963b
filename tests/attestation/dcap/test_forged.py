"""The committed forged TDX and SGX negatives (tests/assets/forged/{tdx,sgx}): each fails with its error through the
library, the valid controls pass, and the files are exactly what tests/tools/make_forgeries_{tdx,sgx}.py write."""

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
from attestation.reference import ReferenceValues
from attestation.tee.dcap.collateral import DcapCollateral
from attestation.verify import verify
from tests.tools import make_forgeries_sgx, make_forgeries_tdx

REPO = make_forgeries_tdx.REPO
CASES: list[tuple[str, dict[str, Any]]] = [
    (tee, case)
    for tee, folder in (("tdx", make_forgeries_tdx.FORGED), ("sgx", make_forgeries_sgx.FORGED))
    for case in json.loads((folder / "cases.json").read_text())
]


@dataclass
class Options:
    """The ``ccdeploy attest verify`` options a case uses, loaded as the CLI loads them."""

    at: datetime | None = None
    roots: list[x509.Certificate] = field(default_factory=list)
    dcap: DcapCollateral | None = None
    nonce: bytes | None = None
    reference: ReferenceValues | None = None
    trust_simulator: bool = False
    allow_debug: bool = False
    pcs: dict[str, bytes] = field(default_factory=dict)

    def collateral(self) -> DcapCollateral | None:
        """``--collateral``, else the PCS-form options (``--tcb-info`` ... ``--root-ca-crl``), else none."""
        if self.dcap is not None or not self.pcs:
            return self.dcap
        return DcapCollateral.from_pcs(**self.pcs)


_PCS_OPTIONS = (
    "tcb_info",
    "qe_identity",
    "tcb_issuer_chain",
    "pck_crl",
    "pck_crl_issuer_chain",
    "root_ca_crl",
    "qe_identity_issuer_chain",
)


def resolve(path: str, vectors: Path) -> Path:
    return Path(path.replace("{vectors}", str(vectors))) if "{vectors}" in path else REPO / path


def parse(args: list[str], vectors: Path) -> Options:
    options, rest = Options(), iter(args)
    for arg in rest:
        if arg in ("--offline", "--unsafe-trust-simulator-root", "--allow-debug"):
            options.trust_simulator |= arg == "--unsafe-trust-simulator-root"
            options.allow_debug |= arg == "--allow-debug"
            continue
        value = next(rest)
        if arg == "--at":
            options.at = datetime.fromisoformat(value)
        elif arg == "--nonce":
            options.nonce = bytes.fromhex(value)
        elif arg == "--root":
            options.roots += load_certificates(resolve(value, vectors).read_bytes(), arg)
        elif arg == "--collateral":
            options.dcap = DcapCollateral.from_dcap_qvl_json(resolve(value, vectors).read_bytes())
        elif arg.removeprefix("--").replace("-", "_") in _PCS_OPTIONS:
            options.pcs[arg.removeprefix("--").replace("-", "_")] = resolve(value, vectors).read_bytes()
        elif arg == "--reference":
            options.reference = ReferenceValues.load(resolve(value, vectors))
        else:
            raise AssertionError(f"unknown option {arg}")
    return options


def run(tee: str, evidence: str, args: list[str], vectors: Path) -> Claims:
    """Verify and appraise as ``ccdeploy attest verify`` does."""
    options = parse(args, vectors)
    claims = verify(
        resolve(evidence, vectors).read_bytes(),
        tee=tee,
        at=options.at,
        roots=options.roots or None,
        collateral=Collateral(dcap=options.collateral()),
        unsafe_allow_simulator_roots=options.trust_simulator,
    )
    appraise(claims, options.reference, nonce=options.nonce, allow_debug=options.allow_debug).raise_for_failure()
    return claims


@pytest.mark.parametrize(("tee", "case"), CASES, ids=[f"{tee}-{case['name']}" for tee, case in CASES])
def test_forged_case_fails_with_its_error(tee: str, case: dict[str, Any], vectors: Path) -> None:
    with pytest.raises(AttestationError) as caught:
        run(tee, case["evidence"], case["args"], vectors)
    assert type(caught.value).__name__ == case["error"], caught.value.message
    assert caught.value.exit_code == case["exit"]


def test_the_cases_cover_the_acceptance_list() -> None:
    names = {case["name"] for tee, case in CASES if tee == "tdx"}
    assert {
        "flipped-signature",
        "altered-mrtd",
        "qe-report-altered",
        "qe-auth-altered",
        "other-root",
        "untrusted-simulator-root",
        "debug-td",
        "tcb-info-tampered",
        "other-fmspc",
        "stale-crl",
        "revoked-pck",
        "no-tcb-level",
        "out-of-date",
        "nonce-mismatch",
        "collateral-missing",
        "truncated",
    } <= names
    assert len({case["name"] for tee, case in CASES if tee == "sgx"}) >= 12


def _tdx_args(collateral: str = "valid") -> list[str]:
    rel = make_forgeries_tdx.REL
    return [
        "--root",
        f"{rel}/sim-root.pem",
        "--unsafe-trust-simulator-root",
        "--collateral",
        f"{rel}/{collateral}.collateral.json",
        "--at",
        make_forgeries_tdx.SIM_AT,
    ]


def test_the_tdx_valid_control_verifies(vectors: Path) -> None:
    claims = run("tdx", f"{make_forgeries_tdx.REL}/valid.bin", _tdx_args(), vectors)
    assert claims.signer.simulated and claims.report_data == make_forgeries_tdx.REPORT_DATA
    assert claims.vendor["tcb_status"] == "UpToDate" and claims.vendor["advisory_ids"] == ()


def test_the_pcs_form_collateral_verifies(vectors: Path) -> None:
    rel = make_forgeries_tdx.REL
    args = ["--root", f"{rel}/sim-root.pem", "--unsafe-trust-simulator-root", "--at", make_forgeries_tdx.SIM_AT]
    claims = run("tdx", f"{rel}/valid.bin", [*args, *make_forgeries_tdx.pcs_args()], vectors)
    assert claims.vendor["tcb_status"] == "UpToDate"


def test_the_debug_td_verifies_with_allow_debug(vectors: Path) -> None:
    claims = run("tdx", f"{make_forgeries_tdx.REL}/debug-td.bin", [*_tdx_args(), "--allow-debug"], vectors)
    assert claims.debug is True


def test_out_of_date_is_accepted_when_the_reference_names_it_and_its_advisories(vectors: Path, tmp_path: Path) -> None:
    advisories = ", ".join(make_forgeries_tdx.OUT_OF_DATE_ADVISORIES)
    reference = tmp_path / "refs.yaml"
    reference.write_text(f"tdx:\n  tcb:\n    statuses: [OutOfDate]\n    advisories: [{advisories}]\n")
    args = [*_tdx_args("out-of-date"), "--reference", str(reference)]
    claims = run("tdx", f"{make_forgeries_tdx.REL}/valid.bin", args, vectors)
    assert claims.vendor["tcb_status"] == "OutOfDate"
    assert claims.vendor["advisory_ids"] == make_forgeries_tdx.OUT_OF_DATE_ADVISORIES


def test_the_real_sgx_quote_passes_with_the_accepting_reference(vectors: Path) -> None:
    args = [
        "--collateral",
        f"{{vectors}}/{make_forgeries_sgx.COLLATERAL}",
        "--at",
        make_forgeries_sgx.AT,
        "--reference",
        f"{make_forgeries_sgx.REL}/accept-tcb.reference.yaml",
        "--nonce",
        b"Hello, world!".hex(),
    ]
    claims = run("sgx", f"{{vectors}}/{make_forgeries_sgx.QUOTE}", args, vectors)
    assert claims.vendor["advisory_ids"] == make_forgeries_sgx.ADVISORIES


@pytest.mark.parametrize("generator", [make_forgeries_tdx, make_forgeries_sgx], ids=["tdx", "sgx"])
def test_committed_files_are_the_generators_output(generator: Any, vectors: Path, tmp_path: Path) -> None:
    if generator is make_forgeries_sgx:
        generator.generate(vectors, tmp_path)
    else:
        generator.generate(tmp_path)
    committed = {p.name for p in generator.FORGED.iterdir() if p.is_file()}
    generated = {p.name for p in tmp_path.iterdir()}
    assert generated == committed
    for name in sorted(generated):
        assert (tmp_path / name).read_bytes() == (generator.FORGED / name).read_bytes(), name
