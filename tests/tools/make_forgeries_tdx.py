"""Generate the forged Intel TDX negatives in tests/assets/forged/tdx/ and their ``cases.json``.

Run from the repository root: ``python -m tests.tools.make_forgeries_tdx`` (``--new-keys`` first creates the fixed
test-fixture keys in ``keys/``, which are committed). The output is byte-identical on every run: fixed keys, a fixed
time and deterministic ECDSA everywhere. ``tests/attestation/dcap/test_forged.py`` regenerates it into a temporary
directory and compares.

Each case in ``cases.json`` names the evidence (a path relative to the repository root), the extra arguments of
``ccdeploy attest verify EVIDENCE --type tdx --json``, and the expected error class and exit code.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from attestation.simulator.tdx import (
    DEFAULT_TEE_TCB_SVN,
    HEADER_SIZE,
    SGX_REPORT_SIZE,
    TD10_BODY_SIZE,
    TdxSimulator,
    TdxSimulatorKeys,
)
from tests.tools import forgery_cli

REPO = Path(__file__).resolve().parents[2]
FORGED = REPO / "tests" / "assets" / "forged" / "tdx"
KEYS = FORGED / "keys"
REL = "tests/assets/forged/tdx"
AT = datetime(2025, 1, 1, tzinfo=UTC)
SIM_AT = "2025-01-01T00:00:00Z"
REPORT_DATA = b"ccdeploy forged tdx".ljust(64, b"\0")
#: Offsets in a v4 TD 1.0 quote: MRTD in the body; signature data (after its u32 length): quote signature (64),
#: attestation key (64), certification data type 6 header (6), QE report (384), its signature (64), auth size (2).
MRTD = HEADER_SIZE + 136
SIGNATURE_DATA = HEADER_SIZE + TD10_BODY_SIZE + 4
QE_REPORT = SIGNATURE_DATA + 64 + 64 + 6
QE_AUTH_DATA = QE_REPORT + SGX_REPORT_SIZE + 64 + 2
OUT_OF_DATE_ADVISORIES = ("INTEL-SA-00837", "INTEL-SA-00960")
_SETS = ("main", "other")


def create_keys(keys_dir: Path = KEYS) -> None:
    """Write fresh P-256 fixture keys for the main and the "other" (untrusted) PKI; never overwrite."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    for key_set in _SETS:
        for role, pem in TdxSimulatorKeys.generate().to_pem().items():
            path = keys_dir / f"test-fixture-{key_set}-{role}.key.pem"
            if not path.exists():
                path.write_bytes(pem)


def load_keys(key_set: str, keys_dir: Path = KEYS) -> TdxSimulatorKeys:
    """The fixture keys of ``key_set`` ("main" or "other")."""
    roles = ("root", "pck_ca", "pck", "tcb_signing", "attestation")
    return TdxSimulatorKeys.from_pem(
        {r: (keys_dir / f"test-fixture-{key_set}-{r}.key.pem").read_bytes() for r in roles}
    )


def simulators(keys_dir: Path = KEYS) -> tuple[TdxSimulator, TdxSimulator]:
    """The main simulator and one under another (never trusted) root."""
    return (
        TdxSimulator.from_keys(load_keys("main", keys_dir), at=AT),
        TdxSimulator.from_keys(load_keys("other", keys_dir), at=AT),
    )


def generate(out_dir: Path = FORGED, keys_dir: Path = KEYS) -> list[dict[str, Any]]:
    """Write every forged file and ``cases.json`` into ``out_dir``; return the cases."""
    sim, other = simulators(keys_dir)
    valid = sim.quote(REPORT_DATA)
    stale_tee_tcb_svn = DEFAULT_TEE_TCB_SVN[:2] + bytes((DEFAULT_TEE_TCB_SVN[2] - 1,)) + DEFAULT_TEE_TCB_SVN[3:]
    tampered = json.loads(sim.collateral_json())
    tampered["tcb_info"] = tampered["tcb_info"].replace('"tcbEvaluationDataNumber":17', '"tcbEvaluationDataNumber":18')
    pcs = sim.pcs_responses()
    files = {
        "sim-root.pem": sim.root_pem(),
        # The same collateral as Intel PCS serves it (issuer chains as plain PEM files, CRLs as DER).
        "pcs-tcb-info.json": pcs.tcb_info.body,
        "pcs-tcb-info-tampered.json": pcs.tcb_info.body.replace(
            b'"tcbEvaluationDataNumber":17', b'"tcbEvaluationDataNumber":18'
        ),
        "pcs-qe-identity.json": pcs.qe_identity.body,
        "pcs-tcb-issuer-chain.pem": _pem(sim.tcb_signing_certificate) + sim.root_pem(),
        "pcs-pck-crl.der": pcs.pck_crl.body,
        "pcs-pck-crl-issuer-chain.pem": _pem(sim.pck_ca) + sim.root_pem(),
        "pcs-root-ca-crl.der": pcs.root_ca_crl.body,
        "valid.bin": valid,
        "valid.collateral.json": sim.collateral_json(),
        "flipped-signature.bin": _flip(valid, SIGNATURE_DATA + 5),
        "altered-mrtd.bin": _flip(valid, MRTD),
        "qe-report-altered.bin": _flip(valid, QE_REPORT + 64),
        "qe-auth-altered.bin": _flip(valid, QE_AUTH_DATA),
        "other-root.bin": other.quote(REPORT_DATA),
        "debug-td.bin": sim.quote(REPORT_DATA, debug=True),
        "no-tcb-level.bin": sim.quote(REPORT_DATA, tee_tcb_svn=stale_tee_tcb_svn),
        "truncated.bin": valid[: QE_REPORT + 100],
        "tcb-info-tampered.collateral.json": (json.dumps(tampered, indent=2) + "\n").encode(),
        "other-fmspc.collateral.json": sim.collateral_json(fmspc=bytes.fromhex("e0c06f000000")),
        "stale-crl.collateral.json": sim.collateral_json(crl_issued=AT - timedelta(days=60)),
        "revoked-pck.collateral.json": sim.collateral_json(revoked_pck_serials=[sim.pck_certificate.serial_number]),
        "out-of-date.collateral.json": sim.collateral_json(tcb_status="OutOfDate", advisory_ids=OUT_OF_DATE_ADVISORIES),
        "out-of-date-one-advisory.reference.yaml": (
            f"tdx:\n  tcb:\n    statuses: [OutOfDate]\n    advisories: [{OUT_OF_DATE_ADVISORIES[0]}]\n"
        ).encode(),
    }
    cases = [
        _sim("flipped-signature", "BadSignature"),
        _sim("altered-mrtd", "BadSignature"),
        _sim("qe-report-altered", "BadSignature"),
        _sim("qe-auth-altered", "QeReportBindingMismatch"),
        _sim("other-root", "BadChain"),
        _sim("untrusted-simulator-root", "UntrustedSimulatorRoot", quote="valid", trust_simulator=False),
        _sim("debug-td", "DebugNotAllowed"),
        _sim("tcb-info-tampered", "BadSignature", quote="valid", collateral="tcb-info-tampered"),
        _sim(
            "pcs-tcb-info-tampered", "BadSignature", *pcs_args("pcs-tcb-info-tampered"), quote="valid", collateral=None
        ),
        _sim("other-fmspc", "CollateralMismatch", quote="valid", collateral="other-fmspc"),
        _sim("stale-crl", "Expired", quote="valid", collateral="stale-crl"),
        _sim("revoked-pck", "Revoked", quote="valid", collateral="revoked-pck"),
        _sim("no-tcb-level", "NoMatchingTcbLevel"),
        _sim("out-of-date", "ReferenceValueViolation", quote="valid", collateral="out-of-date"),
        _sim(
            "out-of-date-advisory-not-named",
            "ReferenceValueViolation",
            "--reference",
            f"{REL}/out-of-date-one-advisory.reference.yaml",
            quote="valid",
            collateral="out-of-date",
        ),
        _sim("nonce-mismatch", "NonceMismatch", "--nonce", b"another nonce".hex(), quote="valid"),
        _sim("collateral-missing", "CollateralMissing", quote="valid", collateral=None, exit_code=3),
        _sim("truncated", "MalformedEvidence"),
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (out_dir / name).write_bytes(content)
    (out_dir / "cases.json").write_text(json.dumps(cases, indent=2) + "\n")
    return cases


def _sim(
    name: str,
    error: str,
    *extra: str,
    quote: str | None = None,
    collateral: str | None = "valid",
    trust_simulator: bool = True,
    exit_code: int = 1,
) -> dict[str, Any]:
    args = ["--root", f"{REL}/sim-root.pem"]
    args += ["--unsafe-trust-simulator-root"] if trust_simulator else []
    args += ["--collateral", f"{REL}/{collateral}.collateral.json"] if collateral else []
    args += ["--at", SIM_AT, "--offline", *extra]
    return case(name, f"{REL}/{quote or name}.bin", args, error, exit_code)


def pcs_args(tcb_info: str = "pcs-tcb-info") -> list[str]:
    """The ``--tcb-info ... --root-ca-crl`` options naming the PCS-form collateral files (``tcb_info`` varies)."""
    return [
        *("--tcb-info", f"{REL}/{tcb_info}.json", "--qe-identity", f"{REL}/pcs-qe-identity.json"),
        *("--tcb-issuer-chain", f"{REL}/pcs-tcb-issuer-chain.pem", "--pck-crl", f"{REL}/pcs-pck-crl.der"),
        *("--pck-crl-issuer-chain", f"{REL}/pcs-pck-crl-issuer-chain.pem"),
        *("--root-ca-crl", f"{REL}/pcs-root-ca-crl.der"),
    ]


def case(name: str, evidence: str, args: list[str], error: str, exit_code: int) -> dict[str, Any]:
    """One entry of ``cases.json``."""
    return {"name": name, "evidence": evidence, "args": args, "error": error, "exit": exit_code}


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _flip(data: bytes, offset: int) -> bytes:
    altered = bytearray(data)
    altered[offset] ^= 0x01
    return bytes(altered)


def main(argv: list[str] | None = None) -> int:
    return forgery_cli.run(__doc__, argv, generate, FORGED, create_keys)


if __name__ == "__main__":
    sys.exit(main())
