"""Generate the forged NVIDIA GPU negatives in tests/assets/forged/nvidia-gpu/ and their ``cases.json``.

Run from the repository root: ``python -m tests.tools.make_forgeries_nvidia`` (``--new-keys`` first creates the fixed
test-fixture keys in ``keys/``, which are committed). The output is byte-identical on every run: reports and
certificates use deterministic ECDSA, and :mod:`attestation.simulator.nvidia` makes the XMLDSig signatures of the
RIMs and the OCSP responses deterministic too (RFC 6979 nonces, a fixed producedAt), so
``tests/attestation/nvidia/test_forged.py`` regenerates everything into a temporary directory and compares bytes.

The forgeries of real evidence derive from ``../shared/vectors/nvidia-gpu`` (the nvtrust 2023 H100 report, its chain
and RIMs), altered as each case says; the real files themselves are used in place (``{vectors}/...``), never copied.
Each case names the evidence, the extra arguments of ``ccdeploy attest verify EVIDENCE --type nvidia-gpu --json``,
and the expected error class and exit code.
"""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.simulator.nvidia import NvidiaGpuSimulator, NvidiaGpuSimulatorKeys, default_measurements
from tests.tools import forgery_cli

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO.parent / "shared" / "vectors"
FORGED = REPO / "tests" / "assets" / "forged" / "nvidia-gpu"
KEYS = FORGED / "keys"
REL = "tests/assets/forged/nvidia-gpu"
SIM_AT = "2025-01-01T00:00:00Z"
SIM_NONCE = bytes(range(32))
#: The real 2023 RIM signer chains are valid here (MANIFEST.md §4).
REAL_AT = "2024-06-01T00:00:00Z"
#: After the real L4 RIM signers expired (2025-06-22 and 2025-06-26): "today" for the acceptance, fixed.
REAL_EXPIRED_AT = "2025-12-01T00:00:00Z"
#: The SPDM block the "bad GPU" reports wrongly: block 8, i.e. driver RIM index 7.
BAD_BLOCK = 8

_ROLES = tuple(field.name for field in fields(NvidiaGpuSimulatorKeys))
_GPU = "{vectors}/nvidia-gpu/"
REAL_2023 = _GPU + "nvtrust-2023-h100-report.hex"
REAL_2025 = _GPU + "nvtrust-2025-h100-report.hex"
CHAIN_2023 = _GPU + "nvtrust-2023-h100-ak-cert-chain.pem"
CHAIN_2025 = _GPU + "nvtrust-2025-h100-cert-chain.pem"
DRIVER_RIM_2023 = _GPU + "nvtrust-driver-rim-545.00-test-no-gpu.swidtag"
VBIOS_RIM_2023 = _GPU + "nvtrust-vbios-rim-96.00.5E.00.01-test-no-gpu.swidtag"
#: The OCSP responses, in the order :meth:`NvidiaGpuSimulator.ocsp_responses` returns them.
OCSP_ROLES = ("device-leaf", "device-brom", "device-provisioner", "device-identity", "rim-signer", "rim-l3", "rim-ca")


def create_keys(keys_dir: Path = KEYS) -> None:
    """Write fresh P-384 fixture keys; never overwrite."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    for role in _ROLES:
        path = keys_dir / f"test-fixture-{role}.key.pem"
        if not path.exists():
            key = ec.generate_private_key(ec.SECP384R1())
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            path.write_bytes(pem)


def simulator(keys_dir: Path = KEYS) -> NvidiaGpuSimulator:
    """The simulator the forgeries come from (fixture keys, certificates valid around :data:`SIM_AT`)."""
    pems = {role: (keys_dir / f"test-fixture-{role}.key.pem").read_bytes() for role in _ROLES}
    return NvidiaGpuSimulator.from_keys(NvidiaGpuSimulatorKeys.from_pem(pems), at=_time(SIM_AT))


def generate(out_dir: Path = FORGED, keys_dir: Path = KEYS, vectors: Path = VECTORS) -> list[dict[str, Any]]:
    """Write every forged file and ``cases.json`` into ``out_dir``; return the cases."""
    files = {**_real_forgeries(vectors), **_simulated(simulator(keys_dir))}
    cases = _real_cases() + _simulator_cases()
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (out_dir / name).write_bytes(content)
    (out_dir / "cases.json").write_text(json.dumps(cases, indent=2) + "\n")
    return cases


def _real_forgeries(vectors: Path) -> dict[str, bytes]:
    report = bytes.fromhex(_resolve(REAL_2023, vectors).read_text())
    # The 2023 report has no bytes after its signature, so the last byte is the signature's.
    flipped_signature = _flip(report, len(report) - 1)
    # Request, response header, 7 blocks of 55 bytes, then block 8's 7-byte header: its value starts there.
    block_8_value = 37 + 8 + 7 * 55 + 7
    altered_measurement = _flip(report, block_8_value + 10)
    rim = _resolve(DRIVER_RIM_2023, vectors).read_bytes()
    golden = b'index="7" active="True" alternatives="1" ns2:Hash0="0e0ee161b59bf124'
    if rim.count(golden) != 1:
        raise AssertionError("the 2023 driver RIM no longer has the expected index 7")
    altered_rim = rim.replace(golden, golden[:-1] + b"5")
    return {
        "real-2023-flipped-signature.hex": flipped_signature.hex().encode(),
        "real-2023-altered-measurement.hex": altered_measurement.hex().encode(),
        "real-2023-driver-rim-altered.swidtag": altered_rim,
    }


def _simulated(sim: NvidiaGpuSimulator) -> dict[str, bytes]:
    at = _time(SIM_AT)
    bad_block = {BAD_BLOCK: bytes(reversed(default_measurements()[BAD_BLOCK]))}
    files = {
        "sim-device-root.pem": sim.device_root_pem(),
        "sim-rim-root.pem": sim.rim_root_pem(),
        "sim-chain.pem": sim.certificate_chain_pem(),
        "sim-valid.hex": sim.report(SIM_NONCE).hex().encode(),
        "sim-driver.swidtag": sim.driver_rim(),
        "sim-vbios.swidtag": sim.vbios_rim(),
        "sim-bad-gpu.hex": sim.report(SIM_NONCE, measurements=bad_block).hex().encode(),
        "sim-fwid-mismatch.hex": sim.report(SIM_NONCE, fwid=bytes(48)).hex().encode(),
        "sim-truncated.hex": sim.report(SIM_NONCE)[:1000].hex().encode(),
        "sim-driver-signed-by-device.swidtag": sim.driver_rim(signer="device"),
        "sim-ocsp-device-leaf-revoked.der": sim.ocsp_responses(at=at, revoked=(sim.device_chain[0],))[0],
        "sim-ocsp-device-leaf-stale.der": sim.ocsp_responses(at=at - timedelta(days=30))[0],
        "require-ocsp.yaml": b"nvidia-gpu:\n  require_ocsp: true\n",
    }
    for role, response in zip(OCSP_ROLES, sim.ocsp_responses(at=at), strict=True):
        files[f"sim-ocsp-{role}.der"] = response
    return files


def _real_cases() -> list[dict[str, Any]]:
    rims = ["--rim", DRIVER_RIM_2023, "--rim", VBIOS_RIM_2023]
    chain = ["--chain", CHAIN_2023]
    at = ["--at", REAL_AT]
    return [
        _case("real-flipped-signature", f"{REL}/real-2023-flipped-signature.hex", chain + rims + at, "BadSignature"),
        _case(
            "real-altered-measurement", f"{REL}/real-2023-altered-measurement.hex", chain + rims + at, "BadSignature"
        ),
        _case("real-report-other-chain", REAL_2023, ["--chain", CHAIN_2025, *rims, *at], "BadSignature"),
        _case(
            "real-rim-altered-value",
            REAL_2023,
            [*chain, "--rim", f"{REL}/real-2023-driver-rim-altered.swidtag", "--rim", VBIOS_RIM_2023, *at],
            "BadSignature",
        ),
        _case("real-expired-today", REAL_2023, [*chain, *rims, "--at", REAL_EXPIRED_AT], "Expired"),
        _case("real-2025-report-2023-rims", REAL_2025, ["--chain", CHAIN_2025, *rims, *at], "MeasurementMismatch"),
    ]


def _simulator_cases() -> list[dict[str, Any]]:
    good_ocsp = [f"sim-ocsp-{role}.der" for role in OCSP_ROLES]
    return [
        _sim("sim-untrusted-root", "UntrustedSimulatorRoot", trust_simulator=False),
        _sim("sim-bad-gpu", "MeasurementMismatch", report="sim-bad-gpu"),
        _sim("sim-rim-signed-by-device", "BadChain", driver_rim="sim-driver-signed-by-device"),
        _sim("sim-fwid-mismatch", "FwidMismatch", report="sim-fwid-mismatch"),
        _sim("sim-nonce-mismatch", "NonceMismatch", "--nonce", bytes(reversed(SIM_NONCE)).hex()),
        _sim("sim-ocsp-revoked", "Revoked", *_ocsp(["sim-ocsp-device-leaf-revoked.der", *good_ocsp[1:]])),
        _sim("sim-ocsp-stale", "Expired", *_ocsp(["sim-ocsp-device-leaf-stale.der", *good_ocsp[1:]])),
        _sim("sim-reference-requires-ocsp", "ReferenceValueViolation", "--reference", f"{REL}/require-ocsp.yaml"),
        _sim("sim-no-rims", "CollateralMissing", rims=False, exit_code=3),
        _sim("sim-truncated", "SpdmMalformed", report="sim-truncated"),
    ]


def _ocsp(names: list[str]) -> list[str]:
    return [arg for name in names for arg in ("--ocsp", f"{REL}/{name}")]


def _sim(
    name: str,
    error: str,
    *extra: str,
    report: str = "sim-valid",
    driver_rim: str = "sim-driver",
    rims: bool = True,
    trust_simulator: bool = True,
    exit_code: int = 1,
) -> dict[str, Any]:
    args = ["--chain", f"{REL}/sim-chain.pem", "--root", f"{REL}/sim-device-root.pem"]
    args += ["--rim-root", f"{REL}/sim-rim-root.pem"]
    if rims:
        args += ["--rim", f"{REL}/{driver_rim}.swidtag", "--rim", f"{REL}/sim-vbios.swidtag"]
    args += ["--unsafe-trust-simulator-root"] if trust_simulator else []
    args += ["--at", SIM_AT, *extra]
    return _case(name, f"{REL}/{report}.hex", args, error, exit_code)


def _case(name: str, evidence: str, args: list[str], error: str, exit_code: int = 1) -> dict[str, Any]:
    return {"name": name, "evidence": evidence, "args": args, "error": error, "exit": exit_code}


def _resolve(path: str, vectors: Path) -> Path:
    return Path(path.replace("{vectors}", str(vectors)))


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes((data[offset] ^ 0x01,)) + data[offset + 1 :]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def main(argv: list[str] | None = None) -> int:
    return forgery_cli.run(__doc__, argv, generate, FORGED, create_keys)


if __name__ == "__main__":
    sys.exit(main())
