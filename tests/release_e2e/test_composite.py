"""A broker process releases to composite evidence (simulated TDX + two GPUs) with collateral in the request."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.simulator.nvidia import DEFAULT_DRIVER_VERSION, NvidiaGpuSimulator
from attestation.simulator.tdx import TdxSimulator
from ccdeploy.broker.admin import AdminClient, sealed_registration
from ccdeploy.broker.auth import read_token_file
from ccdeploy.broker.keys import ADMIN_TOKEN_FILE
from ccdeploy.release.binding import report_data, spki_der
from ccdeploy.release.hpke import HpkeKeyPair, release_info
from ccdeploy.release.protocol import ReleaseGrant, ReleaseRequest, RequestCollateral
from enclave.attesters.composite import CompositeAttester
from enclave.attesters.simulator_nvidia import SimulatorNvidiaAttester
from enclave.attesters.simulator_tdx import SimulatorTdxAttester
from tests.broker.helpers import SealedModel, dump, public_pem
from tests.release_e2e.harness import Brokers, check_dek_opens, new_state

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def tdx() -> TdxSimulator:
    return TdxSimulator.create(at=NOW)


@pytest.fixture(scope="module")
def gpu() -> NvidiaGpuSimulator:
    return NvidiaGpuSimulator.create(at=NOW)


def _policy(tdx: TdxSimulator, gpu: NvidiaGpuSimulator, model: SealedModel) -> dict[str, Any]:
    return {
        "version": 1,
        "platforms": {"tdx": {"mrtd": tdx.default_mrtd().hex()}},
        "trust_roots": {
            "tdx": [tdx.root_pem().decode()],
            "nvidia-gpu": [gpu.device_root_pem().decode()],
            "nvidia-rim": [gpu.rim_root_pem().decode()],
        },
        "unsafe_accept_simulator_roots": True,
        "gpu": {"required": True, "count": 2, "drivers": [DEFAULT_DRIVER_VERSION], "require_ocsp": True},
        "provenance": {"key": public_pem(model.signer)},
    }


def _prepare(
    url: str, attester: CompositeAttester, *, collateral: bool = True, dcap: str | None = None
) -> tuple[HpkeKeyPair, ReleaseRequest]:
    """A challenge from the broker, and a release request with the attester's evidence and collateral."""
    with httpx.Client(base_url=url, timeout=10) as client:
        answer = client.post("/v1/challenge")
        answer.raise_for_status()
    nonce = base64.b64decode(answer.json()["nonce"])
    hpke = HpkeKeyPair.generate()
    tls = spki_der(ec.generate_private_key(ec.SECP256R1()).public_key())
    evidence = attester.attest(report_data(nonce, hpke.public, tls), nonce)
    sent = attester.collateral()
    dcap_text = dcap if dcap is not None else (sent.dcap or b"").decode()
    request = ReleaseRequest(
        model="gpu-model",
        nonce=nonce,
        evidence=evidence,
        evidence_type=attester.evidence_type,
        hpke_suite=hpke.suite,
        hpke_public_key=hpke.public,
        tls_public_key=tls,
        collateral=RequestCollateral(rims=sent.rims, ocsp=sent.ocsp, dcap=dcap_text) if collateral else None,
    )
    return hpke, request


def _post(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post("/v1/release", content=body, headers={"Content-Type": "application/json"})


def _reason(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, str(response.json().get("reason"))


def test_composite_release_over_loopback(
    tmp_path: Path, brokers: Brokers, sealed_model: SealedModel, tdx: TdxSimulator, gpu: NvidiaGpuSimulator
) -> None:
    state = new_state(tmp_path)
    broker = brokers.start(state, f"sqlite:///{tmp_path / 'broker.db'}", sealed_model.kek.uri)
    registration = sealed_registration(
        sealed_model.sealed,
        dump(_policy(tdx, gpu, sealed_model)),
        provenance=sealed_model.provenance,
        name="gpu-model",
    )
    with AdminClient(broker.url, read_token_file(state / ADMIN_TOKEN_FILE)) as admin:
        admin.register(registration)

    def attester(**options: Any) -> CompositeAttester:
        gpus = SimulatorNvidiaAttester(gpu, at=NOW, count=2, clock=lambda: datetime.now(UTC), **options)
        return CompositeAttester(SimulatorTdxAttester(tdx), [gpus], name="simulator-tdx+2gpu")

    with httpx.Client(base_url=broker.url, timeout=30) as client:
        hpke, good = _prepare(broker.url, attester())
        answer = _post(client, good.model_dump_json().encode())
        assert answer.status_code == 200, answer.text
        grant = ReleaseGrant.model_validate_json(answer.content)
        check_dek_opens(sealed_model, bytes(hpke.open(grant.sealed_key, release_info(grant.model, good.nonce))))

        bad = _post(client, _prepare(broker.url, attester(bad=[1]))[1].model_dump_json().encode())
        assert _reason(bad) == (403, "measurement-mismatch"), bad.text
        assert "GPU-1" in bad.json()["detail"]

        bare = _post(client, _prepare(broker.url, attester(), collateral=False)[1].model_dump_json().encode())
        assert _reason(bare) == (403, "evidence-unverifiable"), bare.text

        malformed = _post(
            client, _prepare(broker.url, attester(), dcap='{"tcb_info": 1}')[1].model_dump_json().encode()
        )
        assert _reason(malformed) == (400, "malformed-request"), malformed.text

        _, fresh = _prepare(broker.url, attester())
        forged = fresh.model_dump_json().encode().replace(b'"ocsp":["', b'"ocsp":["not base64!","', 1)
        assert _reason(_post(client, forged)) == (400, "malformed-request")
