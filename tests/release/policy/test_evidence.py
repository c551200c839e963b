"""appraise_evidence: simulator documents and real AWS Nitro evidence against release policies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from attestation.simulator.nitro import NitroSimulator, default_pcrs
from attestation.simulator.snp import SnpSimulator
from ccdeploy.release.decide import EvidenceDecision, appraise_evidence
from ccdeploy.release.policy import load_policy
from ccdeploy.release.protocol import DenialReason
from tests.release.policy.conftest import ISSUED, NOW, SIM_AT, PolicyDoc, dump

REAL = "aws-nitro/blocky-nitrite-2024-09-07.cbor"
REAL_DEBUG = "aws-nitro/blocky-nitrite-debug-2024-09-07.cbor"
REAL_TIMESTAMP = datetime(2024, 9, 7, 14, 37, 39, 545_000, tzinfo=UTC)
REAL_DEBUG_TIMESTAMP = datetime(2024, 9, 7, 14, 38, 6, 508_000, tzinfo=UTC)
REAL_PCRS = {
    0: "e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a",
    1: "0343b056cd8485ca7890ddd833476d78460aed2aa161548e4e26bedf321726696257d623e8805f3f605946b3d8b0c6aa",
    2: "d5dcbdea0aa39c802f9d55ced2ea6e4d74ecec5f08fe40c508882639c9090642669106a062a3e24ee2805a3024b9b75c",
    4: "45706d7b621e4620a332e147a5ddb000b049f73d47d3e61f6b03d2069152d4df6a4a786ad1c10102b955799a9dc96b44",
}


def decide(document: PolicyDoc, evidence: bytes, evidence_type: str = "nitro", **kwargs: object) -> EvidenceDecision:
    now = kwargs.pop("now", NOW)
    assert isinstance(now, datetime)
    return appraise_evidence(load_policy(dump(document)), evidence, evidence_type, now=now, **kwargs)  # type: ignore[arg-type]


def failed(decision: EvidenceDecision) -> list[str]:
    return [check.name for check in decision.checks if not check.ok]


@pytest.fixture
def doc(simulator: NitroSimulator) -> bytes:
    return simulator.document(timestamp=ISSUED, nonce=b"n" * 32, user_data=b"u" * 64)


def test_accepted(base_policy: PolicyDoc, doc: bytes) -> None:
    decision = decide(base_policy | {"cel": ['claims.vendor.module_id.startsWith("i-")']}, doc)
    assert decision.ok, decision.detail
    assert decision.denial is None and decision.detail == "every check passed"
    assert decision.claims is not None and decision.claims.signer.simulated
    names = [check.name for check in decision.checks]
    assert names == [
        "platform",
        "evidence",
        "debug",
        "nitro.pcr0",
        "nitro.pcr1",
        "nitro.pcr2",
        "evidence.age",
        "gpu",
        "cel[0]",
    ]
    assert all(check.ok for check in decision.checks)


def test_nonce_is_not_checked_here(base_policy: PolicyDoc, simulator: NitroSimulator) -> None:
    # The broker compares nonce and report data with its request; appraisal must not need them.
    assert decide(base_policy, simulator.document(timestamp=ISSUED)).ok


def test_wrong_pcr(base_policy: PolicyDoc, simulator: NitroSimulator) -> None:
    evidence = simulator.document(timestamp=ISSUED, pcrs={1: b"\x01" * 48})
    decision = decide(base_policy, evidence)
    assert decision.denial is DenialReason.MEASUREMENT_MISMATCH
    assert failed(decision) == ["nitro.pcr1"]
    assert "0101" in decision.detail


def test_debug_enclave(base_policy: PolicyDoc, simulator: NitroSimulator) -> None:
    evidence = simulator.document(timestamp=ISSUED, debug=True)
    decision = decide(base_policy, evidence)
    assert decision.denial is DenialReason.DEBUG_NOT_ALLOWED
    assert failed(decision)[0] == "debug"


def test_debug_allowed_still_needs_the_measurements(base_policy: PolicyDoc, simulator: NitroSimulator) -> None:
    evidence = simulator.document(timestamp=ISSUED, debug=True)
    # A debug enclave's PCR0-2 read as zeros, so only PCR4 can be pinned: the loud opt-out is needed.
    document = base_policy | {"allow_debug": True, "unsafe_no_code_identity": True}
    document["platforms"] = {"nitro": {"pcrs": {4: default_pcrs()[4].hex()}}}
    decision = decide(document, evidence)
    assert decision.ok, decision.detail
    document["platforms"] = {"nitro": {"pcrs": {0: default_pcrs()[0].hex()}}}
    assert decide(document, evidence).denial is DenialReason.MEASUREMENT_MISMATCH


def test_simulator_root_not_named(base_policy: PolicyDoc, doc: bytes) -> None:
    document = dict(base_policy)
    del document["trust_roots"]
    decision = decide(document, doc)
    assert decision.denial is DenialReason.EVIDENCE_INVALID
    assert decision.claims is None and failed(decision) == ["evidence"]


def test_simulator_root_without_the_unsafe_flag(base_policy: PolicyDoc, doc: bytes) -> None:
    decision = decide(base_policy | {"unsafe_accept_simulator_roots": False}, doc)
    assert decision.denial is DenialReason.EVIDENCE_INVALID
    assert "simulator" in decision.detail.lower()


def test_another_simulator_root(base_policy: PolicyDoc, doc: bytes) -> None:
    other = NitroSimulator.create(at=SIM_AT)
    document = base_policy | {"trust_roots": {"nitro": [other.root_pem().decode()]}}
    assert decide(document, doc).denial is DenialReason.EVIDENCE_INVALID


def test_stale_evidence(base_policy: PolicyDoc, doc: bytes) -> None:
    decision = decide(base_policy | {"max_evidence_age": 30}, doc)
    assert decision.denial is DenialReason.EVIDENCE_STALE
    assert failed(decision) == ["evidence.age"]
    assert decide(base_policy | {"max_evidence_age": 61}, doc).ok


def test_evidence_from_the_future(base_policy: PolicyDoc, simulator: NitroSimulator) -> None:
    evidence = simulator.document(timestamp=NOW + timedelta(minutes=1))
    # Certificates are valid from 3 s before the document's time, so verification at NOW already refuses it.
    assert decide(base_policy, evidence).denial is DenialReason.EVIDENCE_INVALID
    evidence = simulator.document(timestamp=NOW + timedelta(seconds=2))
    decision = decide(base_policy, evidence)
    assert decision.ok, decision.detail


def test_gpu_required(base_policy: PolicyDoc, doc: bytes) -> None:
    decision = decide(base_policy | {"gpu": {"required": True, "drivers": ["550.90.07"]}}, doc)
    assert decision.denial is DenialReason.GPU_REQUIRED
    assert "nitro alone" in decision.detail
    assert failed(decision) == ["gpu.count"]


def test_cel_false(base_policy: PolicyDoc, doc: bytes) -> None:
    decision = decide(
        base_policy | {"cel": ["claims.debug == false", 'model.name == "other"']},
        doc,
        model={"name": "tiny", "artifact_id": "00"},
    )
    assert decision.denial is DenialReason.POLICY_EXPRESSION_FAILED
    assert failed(decision) == ["cel[1]"]
    assert "model.name" in decision.detail


def test_first_failure_names_the_denial(base_policy: PolicyDoc, simulator: NitroSimulator) -> None:
    evidence = simulator.document(timestamp=ISSUED, pcrs={0: b"\x02" * 48})
    decision = decide(base_policy | {"max_evidence_age": 1, "gpu": {"required": True}, "cel": ["false"]}, evidence)
    assert decision.denial is DenialReason.MEASUREMENT_MISMATCH
    assert failed(decision) == ["nitro.pcr0", "evidence.age", "gpu.count", "cel[0]"]


def test_snp_evidence_under_a_nitro_policy(base_policy: PolicyDoc) -> None:
    snp = SnpSimulator.create(at=SIM_AT, rsa_key_size=2048)
    report = snp.report(report_data=b"r" * 64).report
    decision = decide(base_policy, report, "sev-snp")
    assert decision.denial is DenialReason.PLATFORM_NOT_ACCEPTED
    assert decision.claims is None and failed(decision) == ["platform"]


@pytest.mark.parametrize("evidence_type", ["tdx", "", "NITRO", "x" * 200, "nvidia-gpu", "sgx"])
def test_unknown_evidence_type(base_policy: PolicyDoc, doc: bytes, evidence_type: str) -> None:
    decision = decide(base_policy, doc, evidence_type)
    assert decision.denial is DenialReason.PLATFORM_NOT_ACCEPTED
    assert len(decision.detail) < 200


@pytest.mark.parametrize("evidence", [b"", b"\x00" * 10, b"garbage" * 100])
def test_garbage_evidence(base_policy: PolicyDoc, evidence: bytes) -> None:
    assert decide(base_policy, evidence).denial is DenialReason.EVIDENCE_INVALID


def test_flipped_signature_byte(base_policy: PolicyDoc, doc: bytes) -> None:
    forged = doc[:-5] + bytes([doc[-5] ^ 1]) + doc[-4:]
    assert decide(base_policy, forged).denial is DenialReason.EVIDENCE_INVALID


def test_naive_time_is_a_programming_error(base_policy: PolicyDoc, doc: bytes) -> None:
    with pytest.raises(ValueError, match="timezone"):
        decide(base_policy, doc, now=datetime(2030, 1, 1))


def real_policy(**extra: object) -> PolicyDoc:
    return {"version": 1, "platforms": {"nitro": {"pcrs": {i: REAL_PCRS[i] for i in (0, 1, 2, 4)}}}, **extra}


def test_real_nitro_document(vectors: Path) -> None:
    evidence = (vectors / REAL).read_bytes()
    decision = decide(real_policy(), evidence, now=REAL_TIMESTAMP)
    assert decision.ok, decision.detail
    assert decision.claims is not None and not decision.claims.signer.simulated
    assert decision.claims.signer.root_sha256 == "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"


def test_real_nitro_document_later(vectors: Path) -> None:
    evidence = (vectors / REAL).read_bytes()
    decision = decide(real_policy(), evidence, now=REAL_TIMESTAMP + timedelta(minutes=10))
    assert decision.denial is DenialReason.EVIDENCE_STALE
    decision = decide(real_policy(), evidence, now=REAL_TIMESTAMP + timedelta(hours=4))
    assert decision.denial is DenialReason.EVIDENCE_INVALID  # the leaf has expired


def test_real_nitro_document_other_pcr(vectors: Path) -> None:
    evidence = (vectors / REAL).read_bytes()
    document = real_policy()
    document["platforms"]["nitro"]["pcrs"][4] = "00" * 48
    assert decide(document, evidence, now=REAL_TIMESTAMP).denial is DenialReason.MEASUREMENT_MISMATCH


def test_real_nitro_document_under_the_simulator_root(vectors: Path, simulator: NitroSimulator) -> None:
    evidence = (vectors / REAL).read_bytes()
    document = real_policy(trust_roots={"nitro": [simulator.root_pem().decode()]}, unsafe_accept_simulator_roots=True)
    assert decide(document, evidence, now=REAL_TIMESTAMP).denial is DenialReason.EVIDENCE_INVALID


def test_real_debug_document(vectors: Path) -> None:
    evidence = (vectors / REAL_DEBUG).read_bytes()
    # a debug enclave reports PCR0-2 as zeros: only PCR4 can be pinned, which needs the loud opt-out
    document = {"version": 1, "unsafe_no_code_identity": True, "platforms": {"nitro": {"pcrs": {4: REAL_PCRS[4]}}}}
    decision = decide(document, evidence, now=REAL_DEBUG_TIMESTAMP)
    assert decision.denial is DenialReason.DEBUG_NOT_ALLOWED
    assert decide(document | {"allow_debug": True}, evidence, now=REAL_DEBUG_TIMESTAMP).ok
