"""Generate the forged Intel SGX negatives in tests/assets/forged/sgx/ and their ``cases.json``.

Run from the repository root: ``python -m tests.tools.make_forgeries_sgx``. The forgeries mutate the real SGX quote
and collateral of ../shared/vectors/intel-tdx (dcap-qvl's samples), which are referenced in place as
``{vectors}/...`` and never copied: only the mutated quotes, tampered collateral JSON, reference values and a
simulator root (from the TDX fixture keys) are written. The output is byte-identical on every run;
``tests/attestation/dcap/test_forged.py`` regenerates it into a temporary directory and compares.

Each case in ``cases.json`` names the evidence, the extra arguments of
``ccdeploy attest verify EVIDENCE --type sgx --json``, and the expected error class and exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from attestation.simulator.tdx import HEADER_SIZE, SGX_REPORT_SIZE
from tests.tools.make_forgeries_tdx import KEYS, case, simulators

REPO = Path(__file__).resolve().parents[2]
FORGED = REPO / "tests" / "assets" / "forged" / "sgx"
REL = "tests/assets/forged/sgx"
QUOTE = "intel-tdx/dcapqvl-sgx-v3-quote.bin"
COLLATERAL = "intel-tdx/dcapqvl-sgx-v3-collateral.json"
#: The real quote is valid (ConfigurationAndSWHardeningNeeded) at this instant, one second before its QE Identity
#: expires; an hour later its collateral is stale.
AT = "2025-07-19T10:01:17Z"
STALE_AT = "2025-07-19T11:01:17Z"
ADVISORIES = ("INTEL-SA-00289", "INTEL-SA-00615")
#: Offsets in a v3 SGX quote: MRENCLAVE in the ISV enclave report; signature data (after its u32 length): quote
#: signature (64), attestation key (64), QE report (384), its signature (64), auth data size (2).
MRENCLAVE = HEADER_SIZE + 64
SIGNATURE_DATA = HEADER_SIZE + SGX_REPORT_SIZE + 4
QE_REPORT = SIGNATURE_DATA + 64 + 64
QE_AUTH_DATA = QE_REPORT + SGX_REPORT_SIZE + 64 + 2


def generate(vectors: Path, out_dir: Path = FORGED, keys_dir: Path = KEYS) -> list[dict[str, Any]]:
    """Write every forged file and ``cases.json`` into ``out_dir`` from the real vectors; return the cases."""
    quote = (vectors / QUOTE).read_bytes()
    collateral = json.loads((vectors / COLLATERAL).read_bytes())
    sim, _ = simulators(keys_dir)
    status = "ConfigurationAndSWHardeningNeeded"
    files = {
        "sim-root.pem": sim.root_pem(),
        "flipped-signature.bin": _flip(quote, SIGNATURE_DATA + 5),
        "altered-mrenclave.bin": _flip(quote, MRENCLAVE),
        "qe-report-altered.bin": _flip(quote, QE_REPORT + 64),
        "qe-auth-altered.bin": _flip(quote, QE_AUTH_DATA),
        "truncated.bin": quote[: QE_REPORT + 100],
        "tcb-info-tampered.collateral.json": _tampered(collateral, "tcb_info", '"tcbEvaluationDataNumber":17'),
        "qe-identity-tampered.collateral.json": _tampered(collateral, "qe_identity", '"isvprodid":1'),
        "accept-tcb.reference.yaml": _reference(status, ADVISORIES),
        "one-advisory.reference.yaml": _reference(status, ADVISORIES[:1]),
    }
    cases = [
        _real("flipped-signature", "BadSignature"),
        _real("altered-mrenclave", "BadSignature"),
        _real("qe-report-altered", "BadSignature"),
        _real("qe-auth-altered", "QeReportBindingMismatch"),
        _real("untrusted-root", "BadChain", "--root", f"{REL}/sim-root.pem", "--unsafe-trust-simulator-root"),
        _real("tcb-info-tampered", "BadSignature", collateral=f"{REL}/tcb-info-tampered.collateral.json"),
        _real("qe-identity-tampered", "BadSignature", collateral=f"{REL}/qe-identity-tampered.collateral.json"),
        _real("stale-collateral", "Expired", at=STALE_AT),
        _real("tcb-status-not-accepted", "ReferenceValueViolation"),
        _real("advisory-not-named", "ReferenceValueViolation", "--reference", f"{REL}/one-advisory.reference.yaml"),
        _real(
            "nonce-mismatch",
            "NonceMismatch",
            "--reference",
            f"{REL}/accept-tcb.reference.yaml",
            "--nonce",
            b"Hello, world?".hex(),
        ),
        _real("collateral-missing", "CollateralMissing", collateral=None, exit_code=3),
        _real("truncated", "MalformedEvidence"),
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (out_dir / name).write_bytes(content)
    (out_dir / "cases.json").write_text(json.dumps(cases, indent=2) + "\n")
    return cases


def _real(
    name: str,
    error: str,
    *extra: str,
    collateral: str | None = f"{{vectors}}/{COLLATERAL}",
    at: str = AT,
    exit_code: int = 1,
) -> dict[str, Any]:
    names = {"flipped-signature", "altered-mrenclave", "qe-report-altered", "qe-auth-altered", "truncated"}
    evidence = f"{REL}/{name}.bin" if name in names else f"{{vectors}}/{QUOTE}"
    args = ["--collateral", collateral] if collateral else []
    args += ["--at", at, "--offline", *extra]
    return case(name, evidence, args, error, exit_code)


def _tampered(collateral: dict[str, str], field: str, needle: str) -> bytes:
    # Change the last digit of `needle` in the signed JSON and keep Intel's signature, which must no longer verify.
    if needle not in collateral[field]:
        raise RuntimeError(f"{needle} not in the vector's {field}")
    document = dict(collateral, **{field: collateral[field].replace(needle, needle[:-1] + "2", 1)})
    return (json.dumps(document, indent=2) + "\n").encode()


def _reference(status: str, advisories: tuple[str, ...]) -> bytes:
    return f"sgx:\n  tcb:\n    statuses: [{status}]\n    advisories: [{', '.join(advisories)}]\n".encode()


def _flip(data: bytes, offset: int) -> bytes:
    altered = bytearray(data)
    altered[offset] ^= 0x01
    return bytes(altered)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--vectors", type=Path, default=REPO.parent / "shared" / "vectors", help="the vectors dir")
    args = parser.parse_args(argv)
    cases = generate(args.vectors)
    print(f"wrote {len(cases)} cases to {FORGED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
