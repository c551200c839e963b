"""What an enclave is told at start-up: where the broker is, which model to serve, how to attest and serve it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ccdeploy.release.hpke import DEFAULT_SUITE, HpkeSuite
from enclave.memory import DEFAULT_RAM_ROOT
from enclave.runtime import DEFAULT_PROVIDERS

__all__ = ["EnclaveConfig", "ExternalDataRoute"]

ExternalDataRoute = Literal["tmpfs", "memory"]
"""How external-data files reach ONNX Runtime: staged on a RAM-backed tmpfs it memory-maps (fast), or
handed over as in-memory initializers (ORT copies them: 2-3x slower to load, no files at all)."""


class EnclaveConfig(BaseModel):
    """The enclave runtime's configuration (``python -m enclave`` builds it from its arguments)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    broker_url: Annotated[str, Field(min_length=1)]
    """Base URL of the key broker (``https://broker.example:8443``)."""
    model: Annotated[str, Field(min_length=1, max_length=200)]
    """The model name registered at the broker."""
    sealed_path: Path
    """The sealed artifact (``.ccseal``) to open with the released key."""
    attester: str = "simulator-nitro"
    """Attester name (see :data:`enclave.attesters.ATTESTER_FOR_NAME`)."""
    attester_options: dict[str, str] = Field(default_factory=dict)
    """Constructor options for a device attester (e.g. ``{"device": "/dev/nsm"}``)."""
    simulator_state: Path | None = None
    """Simulators: the directory of their state (``write_simulator_state``; ``tdx/`` and ``gpu/`` in it)."""
    simulator_pcrs: dict[int, str] = Field(default_factory=dict)
    """``simulator-nitro``: PCR index -> hex value replacing the simulator's default (the measurement)."""
    simulator_debug: bool = False
    """Simulated CPUs: report a debug-mode enclave / TD."""
    simulator_bad_gpus: tuple[Annotated[int, Field(ge=0, le=63)], ...] = ()
    """``simulator-<cpu>+<n>gpu``: GPU indices whose measurements differ from their RIM (a tampered GPU)."""
    simulator_gpu_driver: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    """``simulator-<cpu>+<n>gpu``: the driver version the simulated GPUs report (default: the simulator's)."""
    providers: tuple[str, ...] = DEFAULT_PROVIDERS
    """ONNX Runtime execution providers, in priority order; the session must use exactly these."""
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8443
    san_names: tuple[str, ...] = ()
    """Extra host names / IP addresses for the TLS certificate (``localhost`` and ``127.0.0.1`` are always in)."""
    external_data: ExternalDataRoute = "tmpfs"
    staging_root: Path = DEFAULT_RAM_ROOT
    """The RAM-backed tmpfs under which external data is staged (route ``tmpfs``)."""
    hpke_suite: HpkeSuite = DEFAULT_SUITE
    broker_timeout: Annotated[float, Field(gt=0)] = 10.0
    broker_ca_file: Path | None = None
    max_request_bytes: Annotated[int, Field(gt=0)] = 64 * 1024 * 1024
    """Largest inference request body the server accepts."""
    max_elements: Annotated[int, Field(gt=0)] = 16 * 1024 * 1024
    """Largest number of tensor elements in one inference request, summed over its inputs."""

    @field_validator("providers")
    @classmethod
    def _some_provider(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one execution provider")
        return value
