"""Simulated TDX CPUs and NVIDIA GPUs for release tests: evidence, collateral and the policy that trusts them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from attestation import Collateral
from attestation.simulator.nvidia import DEFAULT_DRIVER_VERSION, NvidiaGpuSimulator
from attestation.simulator.tdx import TdxSimulator
from attestation.tee.dcap.collateral import DcapCollateral
from enclave.attesters.collateral import AttesterCollateral
from enclave.attesters.composite import CompositeAttester
from enclave.attesters.simulator_nvidia import SimulatorNvidiaAttester
from enclave.attesters.simulator_tdx import SimulatorTdxAttester

GPU_AT = datetime(2030, 1, 1, tzinfo=UTC)
"""When the TDX and GPU simulators are made: their certificates and collateral are valid around it."""
GPU_NOW = datetime(2030, 1, 1, 0, 11, tzinfo=UTC)
"""The decision time of GPU tests."""
REPORT_DATA = bytes(range(64))


@dataclass(frozen=True)
class Simulated:
    """One simulated TDX platform and one simulated GPU model (keys shared by every simulated GPU)."""

    tdx: TdxSimulator
    gpu: NvidiaGpuSimulator

    @classmethod
    def create(cls) -> Simulated:
        return cls(TdxSimulator.create(at=GPU_AT), NvidiaGpuSimulator.create(at=GPU_AT))

    def gpus(self, count: int = 2, **options: Any) -> SimulatorNvidiaAttester:
        return SimulatorNvidiaAttester(self.gpu, at=GPU_AT, count=count, clock=lambda: GPU_NOW, **options)

    def attester(self, count: int = 2, **options: Any) -> CompositeAttester:
        """A TDX guest with ``count`` GPUs (``options`` go to the GPUs: ``bad``, ``driver_version``...)."""
        return CompositeAttester(SimulatorTdxAttester(self.tdx), [self.gpus(count, **options)], name="test")

    def policy(self, **gpu: Any) -> dict[str, Any]:
        """A policy document accepting this TDX platform's default MRTD and these GPUs (``gpu`` section)."""
        document: dict[str, Any] = {
            "version": 1,
            "platforms": {"tdx": {"mrtd": self.tdx.default_mrtd().hex()}},
            "trust_roots": {
                "tdx": [self.tdx.root_pem().decode()],
                "nvidia-gpu": [self.gpu.device_root_pem().decode()],
                "nvidia-rim": [self.gpu.rim_root_pem().decode()],
            },
            "unsafe_accept_simulator_roots": True,
        }
        if gpu:
            document["gpu"] = gpu
        return document

    def gpu_policy(self, **extra: Any) -> dict[str, Any]:
        """The demo's GPU requirement: two GPUs with the simulator's driver."""
        return self.policy(required=True, count=2, drivers=[DEFAULT_DRIVER_VERSION], **extra)


def as_collateral(collateral: AttesterCollateral) -> Collateral:
    """An attester's collateral as the verifier takes it (what the broker builds from a request)."""
    dcap = None if collateral.dcap is None else DcapCollateral.from_dcap_qvl_json(collateral.dcap)
    return Collateral(dcap=dcap, rims=collateral.rims, ocsp=collateral.ocsp)
