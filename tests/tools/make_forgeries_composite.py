"""Generate the forged composite (CPU + GPU) negatives in tests/assets/forged/composite/ and their ``cases.json``.

Run from the repository root: ``python -m tests.tools.make_forgeries_composite``. There are no keys of its own: the
CPU is the SEV-SNP Milan simulator of ``make_forgeries_snp`` and the GPUs are the NVIDIA simulator of
``make_forgeries_nvidia``, both under their committed fixture keys, so the output is byte-identical on every run.
Two GPUs share the simulator's keys and differ in their firmware identity (FWID), as two boards of one model do.

Each case in ``cases.json`` names the evidence and the extra arguments of
``ccdeploy attest verify EVIDENCE --type composite --json``, and the expected error class and exit code.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from attestation.claims import Tee
from attestation.composite import GpuEvidence, compose, gpu_nonce
from attestation.simulator.nvidia import NvidiaGpuSimulator, default_measurements
from tests.tools import forgery_cli, make_forgeries_nvidia, make_forgeries_snp

REPO = Path(__file__).resolve().parents[2]
FORGED = REPO / "tests" / "assets" / "forged" / "composite"
REL = "tests/assets/forged/composite"
#: Inside both simulators' windows (SNP from 2024-01-01, NVIDIA around 2025-01-01).
SIM_AT = "2025-01-01T00:00:00Z"
REPORT_DATA = b"ccdeploy composite".ljust(64, b"\0")
MEASUREMENT = bytes(range(48))
#: An SPDM block the driver RIM pins (RIM index 22 is active), changed on the "bad" GPU.
BAD_BLOCK = 23


def _gpus() -> tuple[NvidiaGpuSimulator, NvidiaGpuSimulator]:
    base = make_forgeries_nvidia.simulator()
    at = datetime.fromisoformat(SIM_AT)
    return base, NvidiaGpuSimulator.from_keys(base.keys, at=at, fwid=bytes(reversed(base.fwid)))


def _composite(
    report: bytes,
    gpus: Sequence[NvidiaGpuSimulator],
    nonces: Sequence[bytes],
    blocks: Mapping[int, bytes] | None = None,
) -> bytes:
    parts = [
        GpuEvidence(
            f"GPU-{index}",
            gpu.report(nonce, measurements=blocks if index == len(gpus) - 1 else None),
            gpu.certificate_chain_pem(),
        )
        for index, (gpu, nonce) in enumerate(zip(gpus, nonces, strict=True))
    ]
    return compose(Tee.SEV_SNP, report, parts)


def _swap_chains(document: bytes) -> bytes:
    parsed = json.loads(document)
    first, second = parsed["gpus"]
    first["certificate_chain"], second["certificate_chain"] = second["certificate_chain"], first["certificate_chain"]
    return json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()


def _flip_member(document: bytes, path: tuple[str, ...], offset: int) -> bytes:
    parsed = json.loads(document)
    node = parsed
    for key in path[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    data = bytearray(base64.b64decode(node[path[-1]]))
    data[offset] ^= 0x01
    node[path[-1]] = base64.b64encode(bytes(data)).decode()
    return json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()


def generate(out_dir: Path = FORGED) -> list[dict[str, Any]]:
    """Write every forged file and ``cases.json`` into ``out_dir``; return the cases."""
    cpu = make_forgeries_snp.simulators()["milan"]
    gpus = _gpus()
    valid_cpu = cpu.report(measurement=MEASUREMENT, report_data=REPORT_DATA)
    debug_cpu = cpu.report(measurement=MEASUREMENT, report_data=REPORT_DATA, debug=True)
    bound = gpu_nonce(REPORT_DATA)
    other = gpu_nonce(bytes(64))
    bad = {BAD_BLOCK: bytes(reversed(default_measurements()[BAD_BLOCK]))}
    valid = _composite(valid_cpu.report, gpus, [bound, bound])
    files = {
        "sim-ark.pem": cpu.ark.public_bytes(serialization.Encoding.PEM),
        "sim-ask.pem": cpu.chain_pem("vcek"),
        "sim-vcek.pem": valid_cpu.signing_cert.public_bytes(serialization.Encoding.PEM),
        "sim-debug-vcek.pem": debug_cpu.signing_cert.public_bytes(serialization.Encoding.PEM),
        "sim-gpu-root.pem": gpus[0].device_root_pem(),
        "sim-rim-root.pem": gpus[0].rim_root_pem(),
        "sim-driver.swidtag": gpus[0].driver_rim(),
        "sim-vbios.swidtag": gpus[0].vbios_rim(),
        "valid.json": valid,
        "gpu-other-nonce.json": _composite(valid_cpu.report, gpus, [bound, other]),
        "gpus-of-other-cpu-evidence.json": _composite(valid_cpu.report, gpus, [other, other]),
        "same-gpu-twice.json": _composite(valid_cpu.report, (gpus[0], gpus[0]), [bound, bound]),
        "bad-gpu.json": _composite(valid_cpu.report, gpus, [bound, bound], bad),
        "swapped-gpu-chains.json": _swap_chains(valid),
        "cpu-altered.json": _flip_member(valid, ("cpu", "evidence"), 0x50),
        "gpu-altered.json": _flip_member(valid, ("gpus", "0", "evidence"), 60),
        "debug-cpu.json": _composite(debug_cpu.report, gpus, [bound, bound]),
    }
    cases = [
        _case("gpu-answers-another-nonce", "gpu-other-nonce", [], "NonceMismatch"),
        _case("gpus-of-other-cpu-evidence", "gpus-of-other-cpu-evidence", [], "NonceMismatch"),
        _case("same-gpu-twice", "same-gpu-twice", [], "DuplicateDevice"),
        _case("bad-gpu", "bad-gpu", [], "MeasurementMismatch"),
        _case("swapped-gpu-chains", "swapped-gpu-chains", [], "FwidMismatch"),
        _case("cpu-altered", "cpu-altered", [], "BadSignature"),
        _case("gpu-altered", "gpu-altered", [], "BadSignature"),
        _case("debug-cpu", "debug-cpu", [], "DebugNotAllowed", vcek="sim-debug-vcek.pem"),
        _case("cpu-nonce-mismatch", "valid", ["--nonce", "00" * 64], "NonceMismatch"),
        _case("no-rims", "valid", [], "CollateralMissing", exit_code=3, rims=False),
        _case("simulator-root-not-trusted", "valid", [], "UntrustedSimulatorRoot", trust_simulator=False),
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (out_dir / name).write_bytes(content)
    (out_dir / "cases.json").write_text(json.dumps(cases, indent=2) + "\n")
    return cases


def _case(
    name: str,
    evidence: str,
    extra: list[str],
    error: str,
    *,
    exit_code: int = 1,
    vcek: str = "sim-vcek.pem",
    rims: bool = True,
    trust_simulator: bool = True,
) -> dict[str, Any]:
    args = [
        "--root", f"{REL}/sim-ark.pem", "--root", f"{REL}/sim-gpu-root.pem", "--rim-root", f"{REL}/sim-rim-root.pem",
        "--chain", f"{REL}/sim-ask.pem", "--signing-cert", f"{REL}/{vcek}",
    ]  # fmt: skip
    if rims:
        args += ["--rim", f"{REL}/sim-driver.swidtag", "--rim", f"{REL}/sim-vbios.swidtag"]
    if trust_simulator:
        args.append("--unsafe-trust-simulator-root")
    args += ["--at", SIM_AT, "--offline", *extra]
    return {"name": name, "evidence": f"{REL}/{evidence}.json", "args": args, "error": error, "exit": exit_code}


def main(argv: list[str] | None = None) -> int:
    return forgery_cli.run(__doc__, argv, generate, FORGED)


if __name__ == "__main__":
    sys.exit(main())
