"""Composite CPU+GPU evidence through the simulators: one CPU (SEV-SNP) and two GPUs bound to one nonce."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attestation import Collateral, appraise, verify
from attestation.claims import Claims, Tee
from attestation.composite import CompositeVerifier, DuplicateDevice, GpuEvidence, compose, gpu_nonce
from attestation.errors import (
    AttestationError,
    BadSignature,
    CollateralMissing,
    NonceMismatch,
    UntrustedSimulatorRoot,
)
from attestation.reference import ReferenceValues
from attestation.result import verify_and_appraise
from attestation.simulator.nvidia import NvidiaGpuSimulator, NvidiaGpuSimulatorKeys
from attestation.simulator.snp import SnpSimulator
from attestation.tee.nvidia import NvidiaGpuVerifier
from ccdeploy._cli import main

AT = datetime(2025, 6, 1, tzinfo=UTC)
REPORT_DATA = bytes(range(64))
MEASUREMENT = bytes(range(48))


@dataclass(frozen=True)
class Machine:
    """A simulated confidential VM: one SEV-SNP CPU and two GPUs sharing one NVIDIA simulator chain."""

    cpu: SnpSimulator
    gpus: tuple[NvidiaGpuSimulator, ...]

    def evidence(
        self,
        report_data: bytes = REPORT_DATA,
        *,
        gpu_nonces: Sequence[bytes] | None = None,
        gpu_measurements: dict[int, dict[int, bytes]] | None = None,
        gpu_order: Sequence[int] = (0, 1),
    ) -> tuple[bytes, x509.Certificate]:
        report = self.cpu.report(measurement=MEASUREMENT, report_data=report_data)
        nonces = list(gpu_nonces) if gpu_nonces is not None else [gpu_nonce(report_data)] * len(gpu_order)
        parts = [
            GpuEvidence(
                f"GPU-{slot}",
                self.gpus[index].report(nonces[slot], measurements=(gpu_measurements or {}).get(slot)),
                self.gpus[index].certificate_chain_pem(),
            )
            for slot, index in enumerate(gpu_order)
        ]
        return compose(Tee.SEV_SNP, report.report, parts), report.signing_cert

    @property
    def roots(self) -> list[x509.Certificate]:
        return [self.cpu.ark, self.gpus[0].device_root]

    def collateral(self, signing_cert: x509.Certificate, *, rims: bool = True) -> Collateral:
        gpu = self.gpus[0]
        return Collateral(
            certificates=self.cpu.chain("vcek"),
            signing_cert=signing_cert,
            rims=(gpu.driver_rim(), gpu.vbios_rim()) if rims else (),
        )

    def verifier(self) -> CompositeVerifier:
        return CompositeVerifier(gpu_verifier=NvidiaGpuVerifier(rim_roots=[self.gpus[0].rim_root]))


@pytest.fixture(scope="module")
def machine() -> Machine:
    keys = NvidiaGpuSimulatorKeys.generate()
    gpus = tuple(NvidiaGpuSimulator.from_keys(keys, at=AT, fwid=bytes([index + 1]) * 48) for index in range(2))
    return Machine(SnpSimulator.create(at=AT, rsa_key_size=2048), gpus)


def run(machine: Machine, evidence: bytes, signing_cert: x509.Certificate, **kwargs: Any) -> Claims:
    return verify(
        evidence,
        tee=Tee.COMPOSITE,
        at=AT,
        roots=machine.roots,
        collateral=kwargs.pop("collateral", machine.collateral(signing_cert)),
        unsafe_allow_simulator_roots=kwargs.pop("allow_simulator", True),
        verifier=machine.verifier(),
        **kwargs,
    )


def test_a_cpu_with_two_gpus_verifies(machine: Machine) -> None:
    evidence, vcek = machine.evidence()
    claims = run(machine, evidence, vcek)
    assert claims.tee is Tee.SEV_SNP
    assert claims.report_data == REPORT_DATA
    assert claims.measurements["measurement"] == MEASUREMENT
    assert [device.vendor["device"] for device in claims.devices] == ["GPU-0", "GPU-1"]
    assert all(device.tee is Tee.NVIDIA_GPU and device.nonce == gpu_nonce(REPORT_DATA) for device in claims.devices)
    assert {device.hardware_id for device in claims.devices} == {"01" * 48, "02" * 48}
    appraisal = appraise(claims, nonce=REPORT_DATA)
    assert appraisal.ok, appraisal.failures
    names = [result.name for result in appraisal.results]
    assert "GPU-0.debug" in names and "GPU-1.debug" in names
    as_json = claims.to_dict()
    assert [device["vendor"]["device"] for device in as_json["devices"]] == ["GPU-0", "GPU-1"]


def test_a_gpu_answering_another_nonce_is_invalid_and_named(machine: Machine) -> None:
    evidence, vcek = machine.evidence(gpu_nonces=[gpu_nonce(REPORT_DATA), gpu_nonce(bytes(64))])
    with pytest.raises(NonceMismatch, match=r"^GPU-1: "):
        run(machine, evidence, vcek)


def test_gpus_bound_to_other_cpu_evidence_are_invalid(machine: Machine) -> None:
    evidence, vcek = machine.evidence(gpu_nonces=[bytes(32), bytes(32)])
    with pytest.raises(NonceMismatch, match=r"^GPU-0: "):
        run(machine, evidence, vcek)


def test_one_gpu_cannot_stand_in_for_two(machine: Machine) -> None:
    evidence, vcek = machine.evidence(gpu_order=(0, 0))
    with pytest.raises(DuplicateDevice, match="GPU-0 and GPU-1"):
        run(machine, evidence, vcek)


def test_a_gpu_failing_its_rim_is_named(machine: Machine) -> None:
    evidence, vcek = machine.evidence(gpu_measurements={1: {23: b"\xee" * 48}})
    with pytest.raises(AttestationError, match=r"^GPU-1: ") as caught:
        run(machine, evidence, vcek)
    assert caught.value.check == "measurements"
    assert "23" in caught.value.message or "22" in caught.value.message  # SPDM block 23 is RIM index 22


def test_without_rims_each_gpu_is_could_not_check(machine: Machine) -> None:
    evidence, vcek = machine.evidence()
    claims = run(machine, evidence, vcek, collateral=machine.collateral(vcek, rims=False))
    error = appraise(claims).error()
    assert isinstance(error, CollateralMissing)
    assert "GPU-0.nvidia-gpu.measurements" in error.message and "GPU-1.nvidia-gpu.measurements" in error.message
    waived = ReferenceValues.from_yaml(
        f"sev-snp: {{measurement: '{MEASUREMENT.hex()}'}}\nwaive: [nvidia-gpu.measurements]"
    )
    assert appraise(claims, waived).ok


def test_a_tampered_cpu_report_is_named(machine: Machine) -> None:
    evidence, vcek = machine.evidence()
    document = json.loads(evidence)
    report = bytearray(base64.b64decode(document["cpu"]["evidence"]))
    report[0x50] ^= 1
    document["cpu"]["evidence"] = base64.b64encode(bytes(report)).decode()
    with pytest.raises(BadSignature, match=r"^cpu: "):
        run(machine, json.dumps(document).encode(), vcek)


def test_simulator_roots_are_refused_unless_allowed(machine: Machine) -> None:
    evidence, vcek = machine.evidence()
    with pytest.raises(UntrustedSimulatorRoot):
        run(machine, evidence, vcek, allow_simulator=False)


def test_composite_result_lists_every_members_steps(machine: Machine) -> None:
    evidence, vcek = machine.evidence()
    result = verify_and_appraise(
        evidence,
        tee=Tee.COMPOSITE,
        at=AT,
        roots=machine.roots,
        collateral=machine.collateral(vcek),
        unsafe_allow_simulator_roots=True,
        verifier=machine.verifier(),
        nonce=REPORT_DATA,
    )
    assert result.verdict == "verified", result.error
    names = [check.name for check in result.checks]
    assert names[:5] == ["format", "cpu", "gpus", "gpu-nonce", "distinct-devices"]
    assert "cpu.signature" in names and "GPU-1.signature" in names


def test_composite_through_the_cli(machine: Machine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evidence, vcek = machine.evidence()
    gpu = machine.gpus[0]
    files = {
        "evidence.json": evidence,
        "ark.pem": machine.cpu.ark.public_bytes(encoding=Encoding.PEM),
        "vcek.pem": vcek.public_bytes(encoding=Encoding.PEM),
        "chain.pem": machine.cpu.chain_pem("vcek"),
        "gpu-root.pem": gpu.device_root_pem(),
        "rim-root.pem": gpu.rim_root_pem(),
        "driver.xml": gpu.driver_rim(),
        "vbios.xml": gpu.vbios_rim(),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    args = [
        "attest", "verify", str(tmp_path / "evidence.json"), "--type", "composite", "--at", "2025-06-01T00:00:00Z",
        "--root", str(tmp_path / "ark.pem"), "--root", str(tmp_path / "gpu-root.pem"),
        "--rim-root", str(tmp_path / "rim-root.pem"), "--chain", str(tmp_path / "chain.pem"),
        "--signing-cert", str(tmp_path / "vcek.pem"), "--rim", str(tmp_path / "driver.xml"),
        "--rim", str(tmp_path / "vbios.xml"), "--unsafe-trust-simulator-root", "--offline",
        "--nonce", REPORT_DATA.hex(), "--json",
    ]  # fmt: skip
    code = main(args)
    doc = json.loads(capsys.readouterr().out)
    assert (code, doc["verdict"], doc["tee"]) == (0, "verified", "composite"), doc["error"]
    assert len(doc["claims"]["devices"]) == 2
