"""Enclave start-up: attest, obtain the model key from the broker, unseal the model in memory, load it.

The steps, in order (each logged without secrets):

1. make ephemeral keys (HPKE to receive the data key, TLS to serve);
2. take a single-use challenge from the broker;
3. collect evidence binding ``report_data(nonce, HPKE public key, TLS SPKI)``, and the vendor-signed collateral
   the attester has for it (NVIDIA RIMs and OCSP responses, Intel DCAP collateral);
4. ask for the release, the collateral with it; a denial raises :class:`~ccdeploy.errors.ReleaseDenied` with its
   typed reason;
5. open the HPKE-sealed data key (``info`` = model name + nonce);
6. open the sealed artifact with it: the header MAC proves the key belongs to this artifact;
7. decrypt the model into memory (external data through a RAM-backed tmpfs or in-memory initializers)
   and create the ONNX Runtime session with exactly the providers asked for;
8. zero the data key.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ccdeploy.errors import ArtifactTampered
from ccdeploy.release.hpke import HpkeError, release_info
from ccdeploy.release.protocol import Challenge, ReleaseGrant, ReleaseRequest, RequestCollateral
from ccdeploy.seal import open_sealed
from ccdeploy.seal._header import SealedHeader
from enclave.attesters.base import Attester, attester_from_name
from enclave.attesters.collateral import AttesterCollateral, collateral_of
from enclave.attesters.composite import CompositeAttester, parse_composite_name
from enclave.config import EnclaveConfig
from enclave.errors import AttesterUnavailable, ReleaseFailed
from enclave.keys import EnclaveKeys
from enclave.loader import session_from_sealed
from enclave.memory import zero
from enclave.runtime import ModelSession
from enclave.server import InputLimits, attestation_source, create_app

__all__ = [
    "GPU_STATE",
    "RECEIPT_PATH",
    "TDX_STATE",
    "Enclave",
    "ReleaseClientLike",
    "attester_for",
    "bootstrap",
    "request_collateral",
]

if TYPE_CHECKING:
    from enclave.attesters.simulator_nvidia import SimulatorNvidiaAttester

_log = logging.getLogger(__name__)

RECEIPT_PATH = "/v1/receipt"
TDX_STATE = "tdx"
"""Where ``simulator-tdx`` keeps its state, under ``--simulator-state``."""
GPU_STATE = "gpu"
"""Where the simulated GPUs (``simulator-<cpu>+<n>gpu``) keep their state, under ``--simulator-state``."""


class ReleaseClientLike(Protocol):
    """What bootstrap needs from :class:`ccdeploy.release.client.ReleaseClient`."""

    def challenge(self) -> Challenge:
        """A fresh single-use nonce from the broker."""
        ...

    def release(self, request: ReleaseRequest) -> ReleaseGrant:
        """The data key sealed to the enclave, or raise ``ReleaseDenied`` / ``BrokerUnavailable``."""
        ...


@dataclass(frozen=True)
class Enclave:
    """A bootstrapped enclave: its keys, its attester, the model session and the release receipt."""

    config: EnclaveConfig
    keys: EnclaveKeys
    attester: Attester
    session: ModelSession
    receipt: dict[str, Any] = field(repr=False)
    """The broker's signed release receipt (Sigstore bundle JSON), kept in memory and served at ``/v1/receipt``."""
    log_entry: dict[str, Any] = field(repr=False)
    """The receipt's transparency-log entry."""
    artifact_id: str = ""

    def app(self) -> Starlette:
        """The inference server's ASGI app: OIP v2, ``/v1/attestation`` with this enclave's keys, ``/v1/receipt``."""
        source = attestation_source(
            self.attester,
            hpke_suite=self.keys.hpke.suite.value,
            hpke_public_key=self.keys.hpke.public,
            tls_certificate_pem=self.keys.tls.certificate_pem,
        )
        limits = InputLimits(max_request_bytes=self.config.max_request_bytes, max_elements=self.config.max_elements)
        app = create_app(self.session, model_name=self.config.model, attestation=source, limits=limits)
        if not any(getattr(route, "path", None) == RECEIPT_PATH for route in app.routes):
            app.router.routes.append(Route(RECEIPT_PATH, self._receipt, methods=["GET"]))
        return app

    async def _receipt(self, request: Request) -> Response:
        return JSONResponse(self.receipt)


class _ReleasedKey:
    """Hands the released data key to ``open_sealed`` without an immutable copy, so that zeroing it wipes it.

    The seal code only measures the key and feeds it to HKDF, which takes any buffer; a ``bytes`` copy
    could not be wiped.
    """

    def __init__(self, dek: bytearray) -> None:
        self._dek = dek

    def data_key(self, header: SealedHeader) -> bytes:
        return cast(bytes, self._dek)


def bootstrap(
    config: EnclaveConfig,
    *,
    attester: Attester,
    release_client: ReleaseClientLike,
    clock: Callable[[], datetime],
) -> Enclave:
    """Run the enclave's start-up sequence (see the module docstring) and return the ready enclave.

    Args:
        config: What to serve and how.
        attester: Produces evidence binding the report data.
        release_client: Talks to the key broker.
        clock: Returns the current time (timezone-aware), for the TLS certificate.

    Raises:
        ccdeploy.errors.ReleaseDenied: The broker refused (its typed reason in ``.reason``).
        ccdeploy.errors.BrokerUnavailable: The broker could not be reached.
        ReleaseFailed: The granted key does not open here, or does not belong to the artifact.
        enclave.errors.AttesterUnavailable: The attester cannot produce evidence.
        enclave.errors.RuntimeUnavailable: A requested provider is not in use, or no RAM-backed tmpfs.
        enclave.errors.ModelRejected: ONNX Runtime refuses the model.
    """
    keys = EnclaveKeys.generate(clock, suite=config.hpke_suite, san_names=config.san_names)
    _log.info(
        "generated ephemeral keys: HPKE %s (public key sha256 %s), TLS P-256 (SPKI sha256 %s)",
        keys.hpke.suite.value,
        _sha256(keys.hpke.public)[:16],
        _sha256(keys.tls.spki_der)[:16],
    )
    challenge = release_client.challenge()
    _log.info("took a challenge from the broker (expires %s)", challenge.expires_at.isoformat())
    nonce = challenge.nonce
    evidence = attester.attest(keys.binding(nonce), nonce)
    _log.info("collected %s evidence from %s (%d bytes)", attester.evidence_type, attester.name, len(evidence))
    collateral = collateral_of(attester)
    if collateral:
        _log.info(
            "sending collateral: %d RIM(s), %d OCSP response(s)%s",
            len(collateral.rims),
            len(collateral.ocsp),
            ", Intel DCAP collateral" if collateral.dcap is not None else "",
        )
    request = ReleaseRequest(
        model=config.model,
        nonce=nonce,
        evidence=evidence,
        evidence_type=attester.evidence_type,
        hpke_suite=keys.hpke.suite,
        hpke_public_key=keys.hpke.public,
        tls_public_key=keys.tls.spki_der,
        collateral=request_collateral(collateral),
    )
    grant = release_client.release(request)
    _log.info("release granted for model %r (suite %s)", grant.model, grant.suite_name)
    dek = _open_grant(grant, keys, config.model, nonce)
    try:
        session, artifact_id = _load(config, dek)
    finally:
        zero(dek)
    _log.info("model %r loaded: providers %s, inputs %s", config.model, session.providers, session.input_names)
    return Enclave(config, keys, attester, session, dict(grant.receipt), dict(grant.log_entry), artifact_id)


def request_collateral(collateral: AttesterCollateral) -> RequestCollateral | None:
    """The release request's ``collateral`` member for an attester's collateral (``None`` when it has none).

    Raises:
        AttesterUnavailable: The DCAP collateral is not UTF-8 JSON text.
    """
    if not collateral:
        return None
    try:
        dcap = None if collateral.dcap is None else collateral.dcap.decode("utf-8")
    except UnicodeDecodeError:
        raise AttesterUnavailable("the attester's DCAP collateral is not UTF-8 text") from None
    return RequestCollateral(rims=collateral.rims, ocsp=collateral.ocsp, dcap=dcap)


def attester_for(config: EnclaveConfig, clock: Callable[[], datetime]) -> Attester:
    """The attester ``config`` names; simulators sign under the roots kept in ``config.simulator_state``.

    Simulator names: ``simulator-nitro`` (state in the directory itself), ``simulator-tdx`` (in ``tdx/``), and
    ``simulator-nitro+<n>gpu`` / ``simulator-tdx+<n>gpu``: that CPU with ``n`` simulated GPUs (in ``gpu/``),
    GPUs listed in ``config.simulator_bad_gpus`` reporting a measurement their RIM does not have.

    Raises:
        AttesterUnavailable: Unknown attester, simulator state missing or unusable, or a bad PCR value.
    """
    name = config.attester
    composite = parse_composite_name(name)
    if composite is not None and composite.simulated_gpus is not None:
        cpu = _simulated_cpu(config, composite.cpu, clock)
        gpus = _simulated_gpus(config, composite.simulated_gpus, clock)
        return CompositeAttester(cpu, [gpus], name=name)
    if name.startswith("simulator-"):
        return _simulated_cpu(config, name, clock)
    attester: Attester = attester_from_name(name, **config.attester_options)
    return attester


def _state(config: EnclaveConfig, name: str) -> Path:
    if config.simulator_state is None:
        raise AttesterUnavailable(f"the {name} attester needs its state directory (--simulator-state)")
    return config.simulator_state


def _simulated_cpu(config: EnclaveConfig, name: str, clock: Callable[[], datetime]) -> Attester:
    if name == "simulator-tdx":
        from enclave.attesters.simulator_tdx import SimulatorTdxAttester, load_tdx_state  # noqa: PLC0415

        return SimulatorTdxAttester(load_tdx_state(_state(config, name) / TDX_STATE), debug=config.simulator_debug)
    if name != "simulator-nitro":
        raise AttesterUnavailable(
            f"attester {name!r} cannot be started from a configuration (simulator-nitro and simulator-tdx can)"
        )
    from enclave.attesters.simulator import SimulatorNitroAttester, load_simulator_state  # noqa: PLC0415

    state = _state(config, name)
    try:
        pcrs = {index: bytes.fromhex(value) for index, value in config.simulator_pcrs.items()}
    except ValueError:
        raise AttesterUnavailable("a simulator PCR value is not hex") from None
    simulator = load_simulator_state(state, clock())
    return SimulatorNitroAttester(simulator, clock, pcrs=pcrs or None, debug=config.simulator_debug)


def _simulated_gpus(config: EnclaveConfig, count: int, clock: Callable[[], datetime]) -> SimulatorNvidiaAttester:
    from enclave.attesters.simulator_nvidia import SimulatorNvidiaAttester, load_gpu_state  # noqa: PLC0415

    simulator, created = load_gpu_state(_state(config, "simulated GPU") / GPU_STATE)
    versions = {} if config.simulator_gpu_driver is None else {"driver_version": config.simulator_gpu_driver}
    try:
        return SimulatorNvidiaAttester(
            simulator, at=created, count=count, clock=clock, bad=config.simulator_bad_gpus, **versions
        )
    except ValueError as exc:
        raise AttesterUnavailable(str(exc)) from None


def _open_grant(grant: ReleaseGrant, keys: EnclaveKeys, model: str, nonce: bytes) -> bytearray:
    if grant.model != model:
        raise ReleaseFailed(f"the broker released a key for model {grant.model!r}, not {model!r}")
    if grant.suite is not keys.hpke.suite:
        raise ReleaseFailed(f"the broker sealed the key with {grant.suite.value}, not {keys.hpke.suite.value}")
    try:
        return bytearray(keys.hpke.open(grant.sealed_key, release_info(model, nonce)))
    except HpkeError:
        raise ReleaseFailed("the released key does not open with this enclave's key and release context") from None


def _load(config: EnclaveConfig, dek: bytearray) -> tuple[ModelSession, str]:
    try:
        artifact = open_sealed(config.sealed_path, _ReleasedKey(dek))
    except ArtifactTampered:
        raise ReleaseFailed(f"the released key does not belong to {config.sealed_path} (header MAC)") from None
    with artifact:
        _log.info("opened sealed artifact %s (%d file(s))", artifact.header.artifact_id, len(artifact.files))
        session = session_from_sealed(
            artifact,
            providers=config.providers,
            external_data=config.external_data,
            staging_root=config.staging_root,
        )
        return session, artifact.header.artifact_id


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
