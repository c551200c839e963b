"""Composite evidence: the CPU attester's evidence and every GPU's, bound to one nonce.

Each GPU is asked for an SPDM measurement report over ``gpu_nonce(report_data)`` (SHA-256 of a fixed domain and the
CPU evidence's report data, :func:`attestation.composite.gpu_nonce`), so one broker nonce, bound in the report
data, covers the CPU and every GPU. The evidence is :func:`attestation.composite.compose`'s JSON, evidence type
``composite``.

Names (``--attester``): ``<cpu>+<n>gpu`` pairs a simulated CPU with ``n`` simulated GPUs (``simulator-tdx+2gpu``,
``simulator-nitro+1gpu``; see :mod:`enclave.attesters.simulator_nvidia`); ``<cpu>+nvidia-gpu`` pairs a hardware
CPU attester with every GPU NVML lists (``tdx+nvidia-gpu``, ``sev-snp+nvidia-gpu``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from attestation.composite import MAX_GPUS, GpuEvidence, compose, gpu_nonce
from enclave.attesters.base import Attester, attester_from_name, check_report_data
from enclave.attesters.collateral import AttesterCollateral, collateral_of
from enclave.errors import AttestationFailed, AttesterUnavailable

__all__ = [
    "COMPOSITE_EVIDENCE_TYPE",
    "CompositeAttester",
    "CompositeName",
    "GpuSource",
    "SevSnpNvidiaAttester",
    "TdxNvidiaAttester",
    "parse_composite_name",
]

COMPOSITE_EVIDENCE_TYPE = "composite"
_NAME = re.compile(r"\A(?P<cpu>[a-z0-9-]+)\+(?:(?P<count>[1-9][0-9]?)gpu|(?P<hardware>nvidia-gpu))\Z")


@runtime_checkable
class GpuSource(Protocol):
    """Confidential GPUs that answer an SPDM nonce with their signed measurement reports."""

    def gpu_evidence(self, nonce: bytes) -> tuple[GpuEvidence, ...]:
        """One entry per GPU: its SPDM request‖response over the 32-byte ``nonce`` and its certificate chain.

        Raises:
            enclave.errors.AttesterUnavailable: No GPU, or confidential computing is off.
            enclave.errors.AttestationFailed: A GPU failed to answer, or answered another nonce.
        """
        ...


class CompositeAttester:
    """Evidence of a CPU TEE and its GPUs in one document (evidence type ``composite``).

    GPU ids are ``GPU-0``, ``GPU-1``, ... in the order of ``gpus`` and of each source's devices.

    Args:
        cpu: The CPU attester; its evidence must carry the report data (every CPU attester's does).
        gpus: The GPU sources (at least one).
        name: The attester's name (default ``<cpu name>+gpu``).
    """

    evidence_type = COMPOSITE_EVIDENCE_TYPE
    name: str

    def __init__(self, cpu: Attester, gpus: Sequence[GpuSource], *, name: str | None = None) -> None:
        if not gpus:
            raise ValueError("composite evidence needs at least one GPU source")
        self.cpu = cpu
        self.gpus = tuple(gpus)
        self.name = name or f"{cpu.name}+gpu"

    def attest(self, report_data: bytes, nonce: bytes) -> bytes:
        """The CPU's evidence for ``report_data`` and ``nonce``, and each GPU's for ``gpu_nonce(report_data)``.

        Raises:
            ValueError: ``report_data`` is not 64 bytes.
            AttesterUnavailable: The CPU or a GPU cannot attest here.
            AttestationFailed: A device answered with an error, or there are more GPUs than evidence may hold.
        """
        data = check_report_data(report_data)
        cpu_evidence = self.cpu.attest(data, nonce)
        derived = gpu_nonce(data)
        devices = [device for source in self.gpus for device in source.gpu_evidence(derived)]
        if not devices:
            raise AttesterUnavailable("the GPU sources report no GPU")
        if len(devices) > MAX_GPUS:
            raise AttestationFailed(f"{len(devices)} GPUs: composite evidence holds at most {MAX_GPUS}")
        named = [replace(device, id=f"GPU-{index}") for index, device in enumerate(devices)]
        return compose(self.cpu.evidence_type, cpu_evidence, named)

    def collateral(self) -> AttesterCollateral:
        """The CPU attester's collateral and every GPU source's, merged."""
        merged = collateral_of(self.cpu)
        for source in self.gpus:
            merged = merged.merged(collateral_of(source))
        return merged


@dataclass(frozen=True, slots=True)
class CompositeName:
    """A parsed composite attester name: the CPU attester's name and either a simulated GPU count or hardware."""

    cpu: str
    simulated_gpus: int | None


def parse_composite_name(name: str) -> CompositeName | None:
    """``simulator-tdx+2gpu`` -> (``simulator-tdx``, 2); ``tdx+nvidia-gpu`` -> (``tdx``, None); else ``None``.

    Simulated GPUs go with simulated CPUs only, and NVML's GPUs with hardware CPUs only: mixing them would prove
    nothing (or make a simulated CPU look hardware-backed).
    """
    match = _NAME.match(name)
    if match is None:
        return None
    cpu = match["cpu"]
    simulated = cpu.startswith("simulator-")
    if match["count"] is not None:
        return CompositeName(cpu, int(match["count"])) if simulated else None
    return None if simulated else CompositeName(cpu, None)


class _WithNvidiaGpus(CompositeAttester):
    """A hardware CPU attester with every NVIDIA GPU NVML lists (``options`` go to the CPU attester)."""

    cpu_name: str

    def __init__(self, **options: object) -> None:
        from enclave.attesters.nvidia import NvidiaGpuAttester  # noqa: PLC0415 - NVML only when asked for

        super().__init__(attester_from_name(self.cpu_name, **options), [NvidiaGpuAttester()], name=self.name)


class TdxNvidiaAttester(_WithNvidiaGpus):
    """A TDX guest with its NVIDIA confidential GPUs."""

    name = "tdx+nvidia-gpu"
    cpu_name = "tdx"


class SevSnpNvidiaAttester(_WithNvidiaGpus):
    """An SEV-SNP guest with its NVIDIA confidential GPUs."""

    name = "sev-snp+nvidia-gpu"
    cpu_name = "sev-snp"
