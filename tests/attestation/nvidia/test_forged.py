"""The committed forged NVIDIA GPU negatives (tests/assets/forged/nvidia-gpu): each fails with its error through the
library, and the files are exactly what tests/tools/make_forgeries_nvidia.py writes (byte for byte: the simulator
signs reports, certificates, RIMs and OCSP responses deterministically)."""

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
from attestation.evidence import decode_evidence
from attestation.reference import ReferenceValues
from attestation.tee.nvidia import NvidiaGpuVerifier
from attestation.verify import verify
from tests.tools import make_forgeries_nvidia as forge

CASES: list[dict[str, Any]] = json.loads((forge.FORGED / "cases.json").read_text())


@dataclass
class Options:
    """The ``ccdeploy attest verify --type nvidia-gpu`` options a case uses, loaded as the CLI loads them."""

    at: datetime | None = None
    roots: list[x509.Certificate] = field(default_factory=list)
    rim_roots: list[x509.Certificate] = field(default_factory=list)
    chain: tuple[x509.Certificate, ...] = ()
    rims: list[bytes] = field(default_factory=list)
    ocsp: list[bytes] = field(default_factory=list)
    nonce: bytes | None = None
    reference: ReferenceValues | None = None
    trust_simulator: bool = False


def resolve(path: str, vectors: Path) -> Path:
    return Path(path.replace("{vectors}", str(vectors))) if "{vectors}" in path else forge.REPO / path


def parse(args: list[str], vectors: Path) -> Options:
    options, rest = Options(), iter(args)
    for arg in rest:
        if arg == "--unsafe-trust-simulator-root":
            options.trust_simulator = True
            continue
        value = next(rest)
        if arg == "--at":
            options.at = datetime.fromisoformat(value)
        elif arg == "--nonce":
            options.nonce = bytes.fromhex(value)
        else:
            data = resolve(value, vectors).read_bytes()
            if arg == "--root":
                options.roots += load_certificates(data, arg)
            elif arg == "--rim-root":
                options.rim_roots += load_certificates(data, arg)
            elif arg == "--chain":
                options.chain = load_certificates(data, arg)
            elif arg == "--rim":
                options.rims.append(data)
            elif arg == "--ocsp":
                options.ocsp.append(data)
            elif arg == "--reference":
                options.reference = ReferenceValues.from_yaml(data)
            else:
                raise AssertionError(f"unknown option {arg}")
    return options


def run(case: dict[str, Any], vectors: Path) -> Claims:
    options = parse(case["args"], vectors)
    claims = verify(
        decode_evidence(resolve(case["evidence"], vectors).read_bytes()),
        tee="nvidia-gpu",
        at=options.at,
        roots=options.roots or None,
        collateral=Collateral(certificates=options.chain, rims=tuple(options.rims), ocsp=tuple(options.ocsp)),
        unsafe_allow_simulator_roots=options.trust_simulator,
        verifier=NvidiaGpuVerifier(rim_roots=options.rim_roots or None),
    )
    appraise(claims, options.reference, nonce=options.nonce).raise_for_failure()  # as `attest verify` does
    return claims


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_forged_case_fails_with_its_error(case: dict[str, Any], vectors: Path) -> None:
    with pytest.raises(AttestationError) as caught:
        run(case, vectors)
    assert type(caught.value).__name__ == case["error"], caught.value.message
    assert caught.value.exit_code == case["exit"]


def test_the_cases_cover_the_acceptance_list() -> None:
    assert {case["name"] for case in CASES} >= {
        "real-flipped-signature",
        "real-altered-measurement",
        "real-report-other-chain",
        "real-rim-altered-value",
        "real-expired-today",
        "real-2025-report-2023-rims",
        "sim-untrusted-root",
        "sim-bad-gpu",
        "sim-rim-signed-by-device",
        "sim-fwid-mismatch",
        "sim-nonce-mismatch",
        "sim-ocsp-revoked",
        "sim-ocsp-stale",
        "sim-reference-requires-ocsp",
        "sim-no-rims",
        "sim-truncated",
    }


def _without(case_name: str, *dropped: str) -> dict[str, Any]:
    """A case's arguments with the named options (and their values) removed: the valid control."""
    case = next(case for case in CASES if case["name"] == case_name)
    args, rest = [], iter(case["args"])
    for arg in rest:
        if arg in dropped:
            next(rest)
        else:
            args.append(arg)
    return dict(case, args=args)


def test_the_simulator_control_verifies_with_good_ocsp(vectors: Path) -> None:
    control = _without("sim-nonce-mismatch", "--nonce")
    control["args"] += [a for name in forge.OCSP_ROLES for a in ("--ocsp", f"{forge.REL}/sim-ocsp-{name}.der")]
    control["args"] += ["--nonce", forge.SIM_NONCE.hex(), "--reference", f"{forge.REL}/require-ocsp.yaml"]
    claims = run(control, vectors)
    assert claims.signer.simulated and claims.vendor["ocsp"] == "good"


def test_the_real_control_verifies(vectors: Path) -> None:
    case = next(case for case in CASES if case["name"] == "real-report-other-chain")
    control = dict(case, args=[forge.CHAIN_2023 if arg == forge.CHAIN_2025 else arg for arg in case["args"]])
    rims: Any = run(control, vectors).vendor["rims"]
    assert rims["driver"]["matched"] == 21 and rims["vbios"]["matched"] == 12


def test_the_mismatch_names_the_differing_indices(vectors: Path) -> None:
    case = next(case for case in CASES if case["name"] == "sim-bad-gpu")
    with pytest.raises(AttestationError, match=rf"RIM indices {forge.BAD_BLOCK - 1};"):
        run(case, vectors)


def test_committed_files_are_the_generators_output(tmp_path: Path, vectors: Path) -> None:
    forge.generate(tmp_path, vectors=vectors)
    committed = {p.name for p in forge.FORGED.iterdir() if p.is_file()}
    generated = {p.name for p in tmp_path.iterdir()}
    assert generated == committed
    for name in sorted(generated):
        assert (tmp_path / name).read_bytes() == (forge.FORGED / name).read_bytes(), name
