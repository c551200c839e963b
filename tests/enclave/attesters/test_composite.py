"""Composite attester, simulated TDX and GPU attesters, their state on disk, and the bootstrap's use of them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from attestation import Collateral, verify
from attestation.composite import CompositeVerifier, GpuEvidence, parse_composite
from attestation.errors import BadSignature, MalformedEvidence, NonceMismatch, ReferenceValueViolation
from attestation.simulator.nvidia import NvidiaGpuSimulator
from attestation.simulator.tdx import TdxSimulator
from attestation.tee.dcap.collateral import DcapCollateral
from attestation.tee.nvidia import NvidiaGpuVerifier
from ccdeploy.release.binding import report_data
from enclave.attesters import attester_from_name
from enclave.attesters.collateral import AttesterCollateral, collateral_of
from enclave.attesters.composite import CompositeAttester, CompositeName, parse_composite_name
from enclave.attesters.simulator_nvidia import (
    TAMPERED_RIM_INDEX,
    SimulatorNvidiaAttester,
    load_gpu_state,
    write_gpu_state,
)
from enclave.attesters.simulator_tdx import SimulatorTdxAttester, load_tdx_state, write_tdx_state
from enclave.bootstrap import GPU_STATE, TDX_STATE, attester_for, request_collateral
from enclave.config import EnclaveConfig
from enclave.errors import AttesterUnavailable
from tests.enclave.attesters.conftest import AT

NONCE = bytes(range(32))
REPORT_DATA = report_data(NONCE, b"hpke-public-key", b"tls-spki")
NOW = AT + timedelta(minutes=5)


@pytest.fixture(scope="module")
def tdx() -> TdxSimulator:
    return TdxSimulator.create(at=AT)


@pytest.fixture(scope="module")
def gpu() -> NvidiaGpuSimulator:
    return NvidiaGpuSimulator.create(at=AT)


def _gpus(gpu: NvidiaGpuSimulator, count: int = 2, **options: object) -> SimulatorNvidiaAttester:
    return SimulatorNvidiaAttester(gpu, at=AT, count=count, clock=lambda: NOW, **options)  # type: ignore[arg-type]


def _verify(evidence: bytes, collateral: AttesterCollateral, tdx: TdxSimulator, gpu: NvidiaGpuSimulator) -> object:
    dcap = None if collateral.dcap is None else DcapCollateral.from_dcap_qvl_json(collateral.dcap)
    return verify(
        evidence,
        tee="composite",
        at=NOW,
        roots=[tdx.root, gpu.device_root],
        collateral=Collateral(dcap=dcap, rims=collateral.rims, ocsp=collateral.ocsp),
        unsafe_allow_simulator_roots=True,
        verifier=CompositeVerifier(gpu_verifier=NvidiaGpuVerifier(rim_roots=[gpu.rim_root])),
    )


def test_composite_evidence_verifies(tdx: TdxSimulator, gpu: NvidiaGpuSimulator) -> None:
    attester = CompositeAttester(SimulatorTdxAttester(tdx), [_gpus(gpu)], name="simulator-tdx+2gpu")
    evidence = attester.attest(REPORT_DATA, NONCE)
    document = parse_composite(evidence)
    assert document.cpu_type.value == "tdx" and [g.id for g in document.gpus] == ["GPU-0", "GPU-1"]
    collateral = attester.collateral()
    assert collateral.dcap is not None and len(collateral.rims) == 2 and collateral.ocsp
    claims = _verify(evidence, collateral, tdx, gpu)
    devices = claims.devices  # type: ignore[attr-defined]
    assert claims.report_data == REPORT_DATA  # type: ignore[attr-defined]
    assert [device.vendor["device"] for device in devices] == ["GPU-0", "GPU-1"]
    assert len({device.hardware_id for device in devices}) == 2  # distinct firmware identities
    assert all(device.vendor["ocsp"] == "good" for device in devices)


def test_bad_gpu_is_named(tdx: TdxSimulator, gpu: NvidiaGpuSimulator) -> None:
    attester = CompositeAttester(SimulatorTdxAttester(tdx), [_gpus(gpu, bad=[0])])
    with pytest.raises(ReferenceValueViolation, match=rf"GPU-0: .*indices {TAMPERED_RIM_INDEX}\b"):
        _verify(attester.attest(REPORT_DATA, NONCE), attester.collateral(), tdx, gpu)


def test_gpu_ids_run_across_sources(tdx: TdxSimulator, gpu: NvidiaGpuSimulator) -> None:
    attester = CompositeAttester(SimulatorTdxAttester(tdx), [_gpus(gpu, 1), _gpus(gpu, 1)])
    document = parse_composite(attester.attest(REPORT_DATA, NONCE))
    assert [g.id for g in document.gpus] == ["GPU-0", "GPU-1"]
    assert attester.name == "simulator-tdx+gpu" and attester.evidence_type == "composite"


def test_gpus_answer_the_nonce_derived_from_the_report_data(tdx: TdxSimulator, gpu: NvidiaGpuSimulator) -> None:
    class Replaying:
        """A GPU source that answers a nonce of its own choosing (another CPU evidence's)."""

        def gpu_evidence(self, nonce: bytes) -> tuple[GpuEvidence, ...]:
            return _gpus(gpu, 1).gpu_evidence(bytes(32))

    attester = CompositeAttester(SimulatorTdxAttester(tdx), [Replaying()])
    with pytest.raises(NonceMismatch, match="GPU-0"):
        _verify(
            attester.attest(REPORT_DATA, NONCE), collateral_of(_gpus(gpu)).merged(collateral_of(attester)), tdx, gpu
        )


def test_composite_needs_gpus_and_64_bytes(tdx: TdxSimulator, gpu: NvidiaGpuSimulator) -> None:
    with pytest.raises(ValueError, match="at least one GPU"):
        CompositeAttester(SimulatorTdxAttester(tdx), [])
    with pytest.raises(ValueError, match="64 bytes"):
        CompositeAttester(SimulatorTdxAttester(tdx), [_gpus(gpu)]).attest(b"short", NONCE)


def test_simulated_gpu_alone(gpu: NvidiaGpuSimulator) -> None:
    attester = attester_from_name("simulator-nvidia", simulator=gpu, at=AT, clock=lambda: NOW)
    evidence = attester.attest(REPORT_DATA, NONCE)
    assert isinstance(attester, SimulatorNvidiaAttester)
    chain = x509.load_pem_x509_certificates(attester.gpu_evidence(NONCE)[0].certificate_chain)
    claims = verify(
        evidence,
        tee="nvidia-gpu",
        at=NOW,
        roots=[gpu.device_root],
        collateral=Collateral(
            certificates=tuple(chain), rims=collateral_of(attester).rims, ocsp=collateral_of(attester).ocsp
        ),
        unsafe_allow_simulator_roots=True,
        verifier=NvidiaGpuVerifier(rim_roots=[gpu.rim_root]),
    )
    assert claims.nonce is not None and len(claims.nonce) == 32
    with pytest.raises(ValueError, match="below the GPU count"):
        _gpus(gpu, 2, bad=[2])
    with pytest.raises(ValueError, match="between 1 and 64"):
        _gpus(gpu, 0)


def test_simulated_tdx_quote_is_signed(tdx: TdxSimulator) -> None:
    quote = SimulatorTdxAttester(tdx, debug=True).attest(REPORT_DATA, NONCE)
    tampered = quote[:100] + bytes([quote[100] ^ 1]) + quote[101:]
    with pytest.raises((BadSignature, MalformedEvidence)):
        verify(tampered, tee="tdx", at=NOW, roots=[tdx.root], unsafe_allow_simulator_roots=True)
    with pytest.raises(ValueError, match="48 bytes"):
        SimulatorTdxAttester(tdx, mrtd=b"x")


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("simulator-tdx+2gpu", CompositeName("simulator-tdx", 2)),
        ("simulator-nitro+1gpu", CompositeName("simulator-nitro", 1)),
        ("tdx+nvidia-gpu", CompositeName("tdx", None)),
        ("tdx+2gpu", None),  # simulated GPUs with a hardware CPU would prove nothing
        ("simulator-tdx+nvidia-gpu", None),  # real GPUs beside a simulated CPU would look hardware-backed
        ("simulator-tdx+0gpu", None),
        ("simulator-tdx", None),
        ("simulator-tdx+2gpu+", None),
    ],
)
def test_composite_names(name: str, parsed: CompositeName | None) -> None:
    assert parse_composite_name(name) == parsed


def test_state_round_trip(tmp_path: Path, tdx: TdxSimulator, gpu: NvidiaGpuSimulator) -> None:
    write_tdx_state(tmp_path / TDX_STATE, tdx)
    write_gpu_state(tmp_path / GPU_STATE, gpu, AT)
    assert load_tdx_state(tmp_path / TDX_STATE).root == tdx.root
    loaded, created = load_gpu_state(tmp_path / GPU_STATE)
    assert (loaded.device_root, loaded.rim_root, created) == (gpu.device_root, gpu.rim_root, AT)
    assert all(p.stat().st_mode & 0o077 == 0 for p in (tmp_path / GPU_STATE).iterdir())
    (tmp_path / GPU_STATE / "rim-root.pem").write_bytes(tdx.root_pem())
    with pytest.raises(AttesterUnavailable, match="roots"):
        load_gpu_state(tmp_path / GPU_STATE)
    (tmp_path / TDX_STATE / "root-key.pem").chmod(0o644)
    with pytest.raises(AttesterUnavailable, match="group or others"):
        load_tdx_state(tmp_path / TDX_STATE)


def test_bootstrap_builds_the_simulated_composite(tmp_path: Path, tdx: TdxSimulator, gpu: NvidiaGpuSimulator) -> None:
    write_tdx_state(tmp_path / TDX_STATE, tdx)
    write_gpu_state(tmp_path / GPU_STATE, gpu, AT)
    base = {"broker_url": "http://127.0.0.1:1", "model": "m", "sealed_path": tmp_path / "x.ccseal"}
    config = EnclaveConfig(
        **base,
        attester="simulator-tdx+2gpu",
        simulator_state=tmp_path,
        simulator_bad_gpus=(1,),
        simulator_gpu_driver="560.35.03",
    )
    attester = attester_for(config, lambda: NOW)
    assert attester.name == "simulator-tdx+2gpu" and attester.evidence_type == "composite"
    evidence = attester.attest(REPORT_DATA, NONCE)
    collateral = collateral_of(attester)
    with pytest.raises(ReferenceValueViolation, match="GPU-1"):
        _verify(evidence, collateral, tdx, gpu)
    sent = request_collateral(collateral)
    assert sent is not None and sent.dcap is not None and len(sent.rims) == 2
    assert request_collateral(AttesterCollateral()) is None
    tdx_only = attester_for(EnclaveConfig(**base, attester="simulator-tdx", simulator_state=tmp_path), lambda: NOW)
    assert tdx_only.evidence_type == "tdx"
    for bad in (
        EnclaveConfig(**base, attester="simulator-tdx+2gpu"),
        EnclaveConfig(**base, attester="simulator-snp+2gpu", simulator_state=tmp_path),
        EnclaveConfig(**base, attester="simulator-tdx+3gpu", simulator_state=tmp_path, simulator_bad_gpus=(3,)),
    ):
        with pytest.raises(AttesterUnavailable):
            attester_for(bad, lambda: NOW)
