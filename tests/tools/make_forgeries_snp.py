"""Generate the forged SEV-SNP negatives in tests/assets/forged/sev-snp/ and their ``cases.json``.

Run from the repository root: ``python -m tests.tools.make_forgeries_snp`` (``--new-keys`` first creates the fixed
test-fixture keys in ``keys/``, which are committed). The output is byte-identical on every run: fixed keys, fixed
times, deterministic ECDSA for reports and a seeded PSS salt for certificates. ``tests/attestation/snp`` regenerates
it into a temporary directory and compares.

Each case in ``cases.json`` names the evidence (a path relative to the repository root, or ``{vectors}/...`` for the
real files in ../shared/vectors, which are used in place and never copied), the extra arguments of
``ccdeploy attest verify EVIDENCE --type sev-snp --json``, and the expected error class and exit code.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from attestation.simulator.snp import SnpKeys, SnpSimulator
from attestation.tee.sev_snp import TcbVersion
from tests.tools import forgery_cli

REPO = Path(__file__).resolve().parents[2]
FORGED = REPO / "tests" / "assets" / "forged" / "sev-snp"
KEYS = FORGED / "keys"
REL = "tests/assets/forged/sev-snp"
NOT_BEFORE = datetime(2024, 1, 1, tzinfo=UTC)
SEED = b"ccdeploy forged SEV-SNP fixtures v1"
SIM_AT = "2025-01-01T00:00:00Z"
REAL_AT = "2024-01-01T00:00:00Z"
#: After the gosevguest VCEK's notAfter (2029-09-24T00:55:28Z).
REAL_EXPIRED_AT = "2030-01-01T00:00:00Z"
_ROLES = ("ark", "ask", "asvk", "vcek", "vlek")
_PRODUCTS = ("milan", "genoa")
GOSEVGUEST = "{vectors}/amd-sev-snp/gosevguest-milan-report.bin"
GOSEVGUEST_VCEK = "{vectors}/amd-sev-snp/gosevguest-milan-vcek.der"


def create_keys(keys_dir: Path = KEYS) -> None:
    """Write fresh fixture keys (RSA-2048 CAs to keep the files small, P-384 signing keys); never overwrite."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    for product in _PRODUCTS:
        for role in _ROLES:
            path = keys_dir / f"test-fixture-{product}-{role}.key.pem"
            if path.exists():
                continue
            key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
            key = (
                ec.generate_private_key(ec.SECP384R1())
                if role in ("vcek", "vlek")
                else rsa.generate_private_key(65537, 2048)
            )
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            path.write_bytes(pem)


def load_keys(product: str, keys_dir: Path = KEYS) -> SnpKeys:
    """The fixture keys of ``product`` ("milan" or "genoa")."""
    loaded: dict[str, Any] = {}
    for role in _ROLES:
        pem = (keys_dir / f"test-fixture-{product}-{role}.key.pem").read_bytes()
        loaded[role] = serialization.load_pem_private_key(pem, password=None)
    return SnpKeys(**loaded)


def simulators(keys_dir: Path = KEYS) -> dict[str, SnpSimulator]:
    """The Milan and Genoa simulators the forgeries come from."""
    return {
        product: SnpSimulator(load_keys(product, keys_dir), product=product.title(), not_before=NOT_BEFORE, seed=SEED)
        for product in _PRODUCTS
    }


def generate(out_dir: Path = FORGED, keys_dir: Path = KEYS) -> list[dict[str, Any]]:
    """Write every forged file and ``cases.json`` into ``out_dir``; return the cases."""
    sims = simulators(keys_dir)
    milan, genoa = sims["milan"], sims["genoa"]
    tcb, chip = milan.default_tcb(), milan.default_chip_id()
    valid = milan.report(measurement=bytes(range(48)), report_data=b"ccdeploy".ljust(64, b"\0"))
    other = genoa.report()
    vlek = milan.report(signing_key="vlek")
    stale_tcb = TcbVersion(bootloader=tcb.bootloader, tee=tcb.tee, snp=tcb.snp - 1, microcode=tcb.microcode)
    forged_tcb = milan.report(vcek_tcb=stale_tcb)
    forged_chip = milan.report(vcek_hwid=bytes(reversed(chip)))
    debug = milan.report(debug=True)
    altered = bytearray(valid.report)
    altered[42] ^= 0x01
    files = {
        "sim-milan-ark.pem": _pem(milan.ark),
        "sim-milan-vcek-chain.pem": milan.chain_pem("vcek"),
        "sim-milan-valid.bin": valid.report,
        "sim-milan-valid.vcek.pem": _pem(valid.signing_cert),
        "other-product-ask.bin": other.report,
        "other-product-ask.vcek.pem": _pem(other.signing_cert),
        "other-product-ask.chain.pem": _pem(genoa.ask) + _pem(milan.ark),
        "vcek-tcb-mismatch.bin": forged_tcb.report,
        "vcek-tcb-mismatch.vcek.pem": _pem(forged_tcb.signing_cert),
        "vlek-report-vcek-cert.bin": vlek.report,
        "vlek-report-vcek-cert.vcek.pem": _pem(milan.endorsement_cert("vcek", tcb=tcb, hwid=chip)),
        "chip-id-mismatch.bin": forged_chip.report,
        "chip-id-mismatch.vcek.pem": _pem(forged_chip.signing_cert),
        "debug-policy.bin": debug.report,
        "debug-policy.vcek.pem": _pem(debug.signing_cert),
        "altered-byte-42.bin": bytes(altered),
        "revoked-ask.crl": _der_crl(milan, (milan.ask.serial_number,), "2024-12-01", "2025-02-01"),
        "stale.crl": _der_crl(milan, (), "2024-06-01", "2024-07-01"),
    }
    valid_args = ("sim-milan-valid", "sim-milan-valid")
    cases = [
        _real("wrong-ark", ["--root", "{vectors}/amd-sev-snp/trustee-genoa-ask-ark-asvk.pem"], "BadChain"),
        _real("expired", [], "Expired", at=REAL_EXPIRED_AT),
        _case("collateral-missing", GOSEVGUEST, ["--at", REAL_AT, "--offline"], "CollateralMissing", 3),
        _sim("other-product-ask", "BadChain", chain="other-product-ask.chain.pem"),
        _sim("vcek-tcb-mismatch", "CertificateMismatch"),
        _sim("vlek-report-vcek-cert", "CertificateMismatch"),
        _sim("chip-id-mismatch", "CertificateMismatch"),
        _sim("debug-policy", "DebugNotAllowed"),
        _sim("altered-byte-42", "BadSignature", files=("altered-byte-42", "sim-milan-valid")),
        _sim("revoked-ask", "Revoked", "--crl", f"{REL}/revoked-ask.crl", files=valid_args),
        _sim("stale-crl", "CollateralMissing", "--crl", f"{REL}/stale.crl", files=valid_args, exit_code=3),
        _sim("untrusted-simulator-root", "UntrustedSimulatorRoot", files=valid_args, trust_simulator=False),
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
    files: tuple[str, str] | None = None,
    chain: str = "sim-milan-vcek-chain.pem",
    trust_simulator: bool = True,
    exit_code: int = 1,
) -> dict[str, Any]:
    report, cert = files or (name, name)
    args = [
        "--signing-cert",
        f"{REL}/{cert}.vcek.pem",
        "--chain",
        f"{REL}/{chain}",
        "--root",
        f"{REL}/sim-milan-ark.pem",
    ]
    args += ["--unsafe-trust-simulator-root"] if trust_simulator else []
    args += ["--at", SIM_AT, "--offline", *extra]
    return _case(name, f"{REL}/{report}.bin", args, error, exit_code)


def _real(name: str, extra: list[str], error: str, *, at: str = REAL_AT) -> dict[str, Any]:
    args = ["--signing-cert", GOSEVGUEST_VCEK, *extra, "--at", at, "--offline"]
    return _case(name, GOSEVGUEST, args, error, 1)


def _case(name: str, evidence: str, args: list[str], error: str, exit_code: int) -> dict[str, Any]:
    return {"name": name, "evidence": evidence, "args": args, "error": error, "exit": exit_code}


def _pem(cert: Any) -> bytes:
    data: bytes = cert.public_bytes(serialization.Encoding.PEM)
    return data


def _der_crl(sim: SnpSimulator, serials: tuple[int, ...], last: str, following: str) -> bytes:
    crl = sim.crl(
        serials,
        last_update=datetime.fromisoformat(last).replace(tzinfo=UTC),
        next_update=datetime.fromisoformat(following).replace(tzinfo=UTC),
    )
    return crl.public_bytes(serialization.Encoding.DER)


def main(argv: list[str] | None = None) -> int:
    return forgery_cli.run(__doc__, argv, generate, FORGED, create_keys)


if __name__ == "__main__":
    sys.exit(main())
