"""Simulated NVIDIA confidential GPUs: H100-shaped SPDM reports from :mod:`attestation.simulator.nvidia`.

The GPUs share the simulator's keys, device root and RIM signing root, and each has its own firmware identity
(FWID), so that they are distinct devices to the verifier. Their collateral is the driver and VBIOS RIMs and OCSP
responses for every certificate. A GPU can be made "bad": one driver measurement block differs from its RIM, as
tampered firmware would, and verification names that GPU and the RIM index.

Simulated evidence proves nothing about hardware: a broker accepts it only where a policy names the simulator's
roots (``trust_roots: {nvidia-gpu: ..., nvidia-rim: ...}``) and sets ``unsafe_accept_simulator_roots``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Collection
from datetime import datetime
from pathlib import Path

from cryptography import x509

from attestation.composite import GpuEvidence, gpu_nonce
from attestation.simulator.nvidia import (
    DEFAULT_DRIVER_VERSION,
    DEFAULT_VBIOS_VERSION,
    DRIVER_ACTIVE,
    NvidiaGpuSimulator,
    NvidiaGpuSimulatorKeys,
)
from enclave.attesters._state import load_state, write_state
from enclave.attesters.base import check_report_data
from enclave.attesters.collateral import AttesterCollateral
from enclave.errors import AttesterUnavailable

__all__ = [
    "DEVICE_ROOT_FILE",
    "RIM_ROOT_FILE",
    "TAMPERED_RIM_INDEX",
    "SimulatorNvidiaAttester",
    "load_gpu_state",
    "simulated_fwid",
    "write_gpu_state",
]

DEVICE_ROOT_FILE = "device-root.pem"
"""The simulated NVIDIA Device Identity root, as a policy's ``trust_roots.nvidia-gpu`` names it."""
RIM_ROOT_FILE = "rim-root.pem"
"""The simulated RIM signing root, as a policy's ``trust_roots.nvidia-rim`` names it."""
TAMPERED_RIM_INDEX = DRIVER_ACTIVE[0]
"""The driver RIM index whose measurement a bad GPU reports wrong (SPDM block ``TAMPERED_RIM_INDEX + 1``)."""
_ROLES = (
    "device_root",
    "identity",
    "provisioner",
    "brom",
    "attestation",
    "rim_root",
    "rim_ca",
    "rim_l3",
    "rim_signer",
)


def simulated_fwid(index: int) -> bytes:
    """The firmware identity of simulated GPU ``index`` (distinct per GPU, so none can stand in for another)."""
    return hashlib.sha384(f"ccdeploy simulated GPU-{index} firmware".encode()).digest()


class SimulatorNvidiaAttester:
    """``count`` simulated GPUs answering SPDM GET_MEASUREMENTS for a nonce.

    As a :class:`~enclave.attesters.composite.GpuSource` it feeds composite evidence; as an attester (evidence
    type ``nvidia-gpu``) it returns GPU-0's report for ``gpu_nonce(report_data)``, for tests and inspection (a
    broker never releases to GPU evidence alone).

    Args:
        simulator: The simulated GPU (keys, roots); each GPU is this simulator with its own FWID.
        at: When ``simulator`` was created (its certificates are built around it).
        count: How many GPUs.
        clock: Dates the OCSP responses of :meth:`collateral`.
        driver_version: The driver version the GPUs report and the driver RIM is for.
        vbios_version: The VBIOS version the GPUs report and the VBIOS RIM is for.
        bad: Indices of GPUs whose driver measurement ``TAMPERED_RIM_INDEX`` differs from the RIM.
    """

    name = "simulator-nvidia"
    evidence_type = "nvidia-gpu"

    def __init__(
        self,
        simulator: NvidiaGpuSimulator,
        *,
        at: datetime,
        count: int = 1,
        clock: Callable[[], datetime],
        driver_version: str = DEFAULT_DRIVER_VERSION,
        vbios_version: str = DEFAULT_VBIOS_VERSION,
        bad: Collection[int] = (),
    ) -> None:
        if not 1 <= count <= 64:
            raise ValueError(f"between 1 and 64 simulated GPUs, not {count}")
        if any(not 0 <= index < count for index in bad):
            raise ValueError(f"bad GPU indices must be below the GPU count {count}: {sorted(bad)}")
        self._gpus = tuple(
            NvidiaGpuSimulator.from_keys(simulator.keys, at=at, fwid=simulated_fwid(index)) for index in range(count)
        )
        self._simulator = simulator
        self._clock = clock
        self._driver = driver_version
        self._vbios = vbios_version
        self._bad = frozenset(bad)

    @property
    def device_root(self) -> x509.Certificate:
        """The simulated device identity root every GPU chains to."""
        return self._simulator.device_root

    @property
    def rim_root(self) -> x509.Certificate:
        """The simulated RIM signing root."""
        return self._simulator.rim_root

    def gpu_evidence(self, nonce: bytes) -> tuple[GpuEvidence, ...]:
        """Every GPU's SPDM request‖response over ``nonce`` and its certificate chain (PEM, leaf first)."""
        tampered = {TAMPERED_RIM_INDEX + 1: hashlib.sha384(b"ccdeploy simulated tampered GPU firmware").digest()}
        return tuple(
            GpuEvidence(
                f"GPU-{index}",
                gpu.report(
                    bytes(nonce),
                    driver_version=self._driver,
                    vbios_version=self._vbios,
                    measurements=tampered if index in self._bad else None,
                ),
                gpu.certificate_chain_pem(),
            )
            for index, gpu in enumerate(self._gpus)
        )

    def attest(self, report_data: bytes, nonce: bytes) -> bytes:
        """GPU-0's report for ``gpu_nonce(report_data)`` (``nonce`` is bound through the report data only)."""
        return self.gpu_evidence(gpu_nonce(check_report_data(report_data)))[0].evidence

    def collateral(self) -> AttesterCollateral:
        """The driver and VBIOS RIMs and fresh OCSP responses for every GPU's certificates."""
        at = self._clock()
        ocsp = tuple(dict.fromkeys(response for gpu in self._gpus for response in gpu.ocsp_responses(at=at)))
        rims = (self._simulator.driver_rim(version=self._driver), self._simulator.vbios_rim(version=self._vbios))
        return AttesterCollateral(rims=rims, ocsp=ocsp)


def write_gpu_state(directory: str | os.PathLike[str], simulator: NvidiaGpuSimulator, at: datetime) -> Path:
    """Persist a GPU simulator created at ``at`` (keys, time, device and RIM roots) for an enclave process.

    Raises:
        AttesterUnavailable: ``directory`` exists but is not a plain directory.
    """
    roots = {DEVICE_ROOT_FILE: simulator.device_root_pem(), RIM_ROOT_FILE: simulator.rim_root_pem()}
    return write_state(directory, simulator.keys.to_pem(), at, **roots)


def load_gpu_state(directory: str | os.PathLike[str]) -> tuple[NvidiaGpuSimulator, datetime]:
    """The GPU simulator written by :func:`write_gpu_state` (its certificates rebuilt exactly) and its time.

    Raises:
        AttesterUnavailable: Files missing, unreadable or readable by others, or roots that are not the stored ones.
    """
    pems, at = load_state(directory, _ROLES)
    path = Path(directory)
    try:
        simulator = NvidiaGpuSimulator.from_keys(NvidiaGpuSimulatorKeys.from_pem(pems), at=at)
        device_root = x509.load_pem_x509_certificate((path / DEVICE_ROOT_FILE).read_bytes())
        rim_root = x509.load_pem_x509_certificate((path / RIM_ROOT_FILE).read_bytes())
    except (OSError, ValueError, KeyError) as exc:
        raise AttesterUnavailable(f"cannot load the GPU simulator state in {path}: {exc}") from None
    if device_root != simulator.device_root or rim_root != simulator.rim_root:
        raise AttesterUnavailable(f"the roots in {path} are not those the stored keys make")
    return simulator, at
