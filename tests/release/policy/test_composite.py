"""appraise_evidence on TDX and composite (TDX + NVIDIA GPUs) simulator evidence, and real Azure Attestation tokens."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from attestation import Collateral
from attestation.composite import compose, gpu_nonce, parse_composite
from ccdeploy.release.decide import EvidenceDecision, appraise_evidence
from ccdeploy.release.policy import load_policy
from ccdeploy.release.protocol import DenialReason
from enclave.attesters.simulator_nvidia import TAMPERED_RIM_INDEX
from tests.release.policy.conftest import dump
from tests.release.simulated import GPU_NOW, REPORT_DATA, Simulated, as_collateral


@pytest.fixture(scope="module")
def sim() -> Simulated:
    return Simulated.create()


def decide(document: dict[str, Any], evidence: bytes, evidence_type: str, **kwargs: Any) -> EvidenceDecision:
    now = kwargs.pop("now", GPU_NOW)
    return appraise_evidence(load_policy(dump(document)), evidence, evidence_type, now=now, **kwargs)


def failed(decision: EvidenceDecision) -> list[str]:
    return [check.name for check in decision.checks if not check.ok]


def composite(sim: Simulated, count: int = 2, **options: Any) -> tuple[bytes, Collateral]:
    attester = sim.attester(count, **options)
    return attester.attest(REPORT_DATA, b"n" * 32), as_collateral(attester.collateral())


# --- TDX alone ---------------------------------------------------------------------------------------------------


def test_tdx_released(sim: Simulated) -> None:
    attester = sim.attester()
    quote = attester.cpu.attest(REPORT_DATA, b"n")
    decision = decide(sim.policy(), quote, "tdx", collateral=as_collateral(attester.collateral()))
    assert decision.ok, decision.detail
    assert decision.claims is not None and decision.claims.report_data == REPORT_DATA
    names = [check.name for check in decision.checks]
    assert names[:3] == ["platform", "evidence", "debug"]
    assert {"tdx.tcb-status", "tdx.mrtd", "evidence.age", "gpu"} <= set(names)


def test_tdx_wrong_mrtd(sim: Simulated) -> None:
    document = sim.policy()
    document["platforms"]["tdx"]["mrtd"] = "ab" * 48
    attester = sim.attester()
    decision = decide(
        document, attester.cpu.attest(REPORT_DATA, b"n"), "tdx", collateral=as_collateral(attester.collateral())
    )
    assert decision.denial is DenialReason.MEASUREMENT_MISMATCH
    assert failed(decision) == ["tdx.mrtd"]


def test_tdx_without_collateral_is_unverifiable(sim: Simulated) -> None:
    decision = decide(sim.policy(), sim.tdx.quote(REPORT_DATA), "tdx")
    assert decision.denial is DenialReason.EVIDENCE_UNVERIFIABLE
    assert "tdx.collateral" in failed(decision)


def test_tdx_under_a_gpu_policy_is_denied(sim: Simulated) -> None:
    attester = sim.attester()
    quote = attester.cpu.attest(REPORT_DATA, b"n")
    decision = decide(sim.gpu_policy(), quote, "tdx", collateral=as_collateral(attester.collateral()))
    assert decision.denial is DenialReason.GPU_REQUIRED
    assert failed(decision) == ["gpu.count"]
    assert "tdx alone" in decision.detail


# --- composite ---------------------------------------------------------------------------------------------------


def test_composite_released(sim: Simulated) -> None:
    evidence, collateral = composite(sim)
    decision = decide(sim.gpu_policy(require_ocsp=True), evidence, "composite", collateral=collateral)
    assert decision.ok, decision.detail
    assert decision.claims is not None and len(decision.claims.devices) == 2
    names = [check.name for check in decision.checks]
    for expected in ("gpu.count", "gpu.GPU-0.driver", "gpu.GPU-1.driver", "gpu.GPU-0.ocsp", "gpu.GPU-1.ocsp"):
        assert expected in names
    assert "GPU-0.debug" in names  # the GPUs' own appraisal
    assert "with 2 GPU(s)" in decision.checks[1].detail


def test_composite_without_gpu_requirement_is_released(sim: Simulated) -> None:
    evidence, collateral = composite(sim, 1)
    decision = decide(sim.policy(), evidence, "composite", collateral=collateral)
    assert decision.ok, decision.detail
    assert "1 GPU(s) verified" in decision.checks[-1].detail


def test_too_few_gpus(sim: Simulated) -> None:
    evidence, collateral = composite(sim, 1)
    decision = decide(sim.gpu_policy(), evidence, "composite", collateral=collateral)
    assert decision.denial is DenialReason.GPU_REQUIRED
    assert failed(decision) == ["gpu.count"]
    assert "1 GPU(s)" in decision.detail and "at least 2" in decision.detail


def test_wrong_driver(sim: Simulated) -> None:
    evidence, collateral = composite(sim, driver_version="535.104.05")
    # The RIMs follow the driver (an old driver is genuinely measured), so only the policy's list refuses it.
    decision = decide(sim.gpu_policy(), evidence, "composite", collateral=collateral)
    assert decision.denial is DenialReason.GPU_INVALID
    assert failed(decision) == ["gpu.GPU-0.driver", "gpu.GPU-1.driver"]
    assert "535.104.05" in decision.detail


def test_bad_gpu_is_denied_and_named(sim: Simulated) -> None:
    evidence, collateral = composite(sim, bad=[1])
    decision = decide(sim.gpu_policy(), evidence, "composite", collateral=collateral)
    assert decision.denial is DenialReason.MEASUREMENT_MISMATCH
    assert decision.claims is None
    assert failed(decision) == ["gpu.measurements"]
    assert "GPU-1" in decision.detail and "GPU-0" not in decision.detail
    assert f"indices {TAMPERED_RIM_INDEX}" in decision.detail


def test_gpu_nonce_of_other_cpu_evidence(sim: Simulated) -> None:
    attester = sim.attester()
    other = bytes(64)
    gpus = attester.gpus[0].gpu_evidence(gpu_nonce(other))  # answered for another CPU evidence's report data
    evidence = compose("tdx", attester.cpu.attest(REPORT_DATA, b"n"), gpus)
    decision = decide(sim.gpu_policy(), evidence, "composite", collateral=as_collateral(attester.collateral()))
    assert decision.denial is DenialReason.BINDING_MISMATCH
    assert "GPU-0" in decision.detail and "not bound" in decision.detail


def test_gpu_without_rims_is_unverifiable(sim: Simulated) -> None:
    evidence, collateral = composite(sim)
    decision = decide(sim.gpu_policy(), evidence, "composite", collateral=replace(collateral, rims=()))
    assert decision.denial is DenialReason.EVIDENCE_UNVERIFIABLE
    assert "GPU-0.nvidia-gpu.measurements" in failed(decision)


def test_ocsp_required_but_not_supplied(sim: Simulated) -> None:
    evidence, collateral = composite(sim)
    decision = decide(sim.gpu_policy(require_ocsp=True), evidence, "composite", collateral=replace(collateral, ocsp=()))
    assert decision.denial is DenialReason.GPU_INVALID
    assert failed(decision) == ["gpu.GPU-0.ocsp", "gpu.GPU-1.ocsp"]


def test_simulated_gpus_need_the_unsafe_flag(sim: Simulated) -> None:
    evidence, collateral = composite(sim)
    document = sim.gpu_policy() | {"unsafe_accept_simulator_roots": False}
    decision = decide(document, evidence, "composite", collateral=collateral)
    assert decision.denial is DenialReason.EVIDENCE_INVALID
    assert failed(decision) == ["evidence"]


def test_composite_cpu_must_be_accepted(sim: Simulated) -> None:
    evidence, collateral = composite(sim)
    document = sim.gpu_policy()
    document["platforms"] = {"sev-snp": {"measurement": "00" * 48}}
    del document["trust_roots"]["tdx"]
    decision = decide(document, evidence, "composite", collateral=collateral)
    assert decision.denial is DenialReason.PLATFORM_NOT_ACCEPTED
    assert "tdx" in decision.detail


@pytest.mark.parametrize("evidence", [b"", b"{}", b'{"format": "ccdeploy-composite/v1"}', b"\xff" * 40])
def test_malformed_composite(sim: Simulated, evidence: bytes) -> None:
    decision = decide(sim.gpu_policy(), evidence, "composite")
    assert decision.denial is DenialReason.EVIDENCE_INVALID
    assert failed(decision) == ["evidence"]


def test_duplicate_gpu_is_refused(sim: Simulated) -> None:
    evidence, collateral = composite(sim)
    document = parse_composite(evidence)
    twice = (document.gpus[0], replace(document.gpus[0], id="GPU-1"))
    forged = compose("tdx", document.cpu_evidence, twice)
    decision = decide(sim.gpu_policy(), forged, "composite", collateral=collateral)
    assert decision.denial is DenialReason.EVIDENCE_INVALID
    assert "same GPU" in decision.detail


# --- Azure Attestation (real tokens, MANIFEST §2) ----------------------------------------------------------------

MAA_IAT = datetime(2022, 5, 31, 22, 47, 56, tzinfo=UTC)
MRSIGNER = "4aea5f9a0ed04b11f889aadfe6a1d376213a29a95a85ce7337ae6f7fece6610c"
MRENCLAVE = "292a1f4b519e46627eb2478a3d9851405653c5b4b0a6925de843834d9216850e"
SHARED = "https://sharedwus.wus.attest.azure.net"


def maa_policy(issuer: str = SHARED, **claims: Any) -> dict[str, Any]:
    section = {"issuer": issuer, "mrsigner": MRSIGNER, **claims}
    return {"version": 1, "platforms": {"maa": section}, "allow_debug": True, "max_evidence_age": 600}


def maa(vectors: Path, name: str = "sharedwus") -> tuple[bytes, Collateral]:
    stem = vectors / "azure-maa" / f"azsdkcpp-sgx-{name}-2022-05-31"
    token = stem.with_suffix(".jwt").read_bytes().strip()
    return token, Collateral(jwks=stem.with_suffix(".jwks.json").read_bytes())


def test_maa_token_released(vectors: Path) -> None:
    token, collateral = maa(vectors)
    decision = decide(maa_policy(mrenclave=MRENCLAVE), token, "maa", collateral=collateral, now=MAA_IAT)
    assert decision.ok, decision.detail
    assert {"maa.mrsigner", "maa.mrenclave", "debug"} <= {check.name for check in decision.checks}


def test_maa_debug_token_denied_without_allow_debug(vectors: Path) -> None:
    token, collateral = maa(vectors)
    decision = decide(maa_policy() | {"allow_debug": False}, token, "maa", collateral=collateral, now=MAA_IAT)
    assert decision.denial is DenialReason.DEBUG_NOT_ALLOWED


def test_maa_token_of_another_provider_denied(vectors: Path) -> None:
    # The same regional key signs both providers' tokens: only the pinned issuer tells them apart.
    token, collateral = maa(vectors, "isolated")
    decision = decide(maa_policy(), token, "maa", collateral=collateral, now=MAA_IAT)
    assert decision.denial is DenialReason.EVIDENCE_INVALID
    assert failed(decision) == ["evidence"]


def test_maa_wrong_mrsigner(vectors: Path) -> None:
    token, collateral = maa(vectors)
    decision = decide(maa_policy(mrsigner="00" * 32), token, "maa", collateral=collateral, now=MAA_IAT)
    assert decision.denial is DenialReason.MEASUREMENT_MISMATCH
    assert failed(decision) == ["maa.mrsigner"]


def test_maa_without_jwks_offline_is_unverifiable(vectors: Path) -> None:
    token, _ = maa(vectors)
    decision = decide(maa_policy(), token, "maa", now=MAA_IAT)
    assert decision.denial is DenialReason.EVIDENCE_UNVERIFIABLE
