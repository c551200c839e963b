"""NrasClient against a local HTTP double of NRAS: the request shape and every check of the detached EAT."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta

import pytest

from attestation import _jwt
from attestation.errors import BadSignature, CollateralMissing, Expired, FetchFailed, MalformedEvidence, NonceMismatch
from attestation.fetch import HttpFetcher
from attestation.tee.nvidia.nras import GpuEvidence, NrasClient, NrasRejected, SubmoduleDigestMismatch
from tests.attestation.nras.double import ISSUED, NrasDouble, nras_double

NONCE = bytes(range(32))
AT = ISSUED + timedelta(minutes=5)
EVIDENCE = [GpuEvidence(b"spdm-0", b"-----BEGIN CERTIFICATE-----\n"), GpuEvidence(b"spdm-1", b"chain-1")]


@pytest.fixture
def double() -> Iterator[NrasDouble]:
    with nras_double() as running:
        yield running


def client(double: NrasDouble, **options: object) -> NrasClient:
    return NrasClient(double.base_url, fetcher=HttpFetcher(timeout=5), **options)  # type: ignore[arg-type]


def test_verified_answer_with_per_gpu_claims_and_the_request_shape(double: NrasDouble) -> None:
    result = client(double).attest_gpu(EVIDENCE, NONCE, at=AT)
    assert result.overall["x-nvidia-overall-att-result"] is True
    assert set(result.gpus) == {"GPU-0", "GPU-1"}
    assert result.gpus["GPU-1"]["measres"] == "success"
    assert result.gpus["GPU-0"]["x-nvidia-gpu-driver-version"] == "550.54.15"
    assert result.signer.subjects == ("CN=NRAS double",)
    (request,) = double.knobs.requests
    assert request["nonce"] == NONCE.hex() and request["arch"] == "HOPPER"
    assert base64.b64decode(request["evidence_list"][1]["evidence"]) == b"spdm-1"
    assert base64.b64decode(request["evidence_list"][1]["certificate"]) == b"chain-1"


def test_given_jwks_needs_no_fetch(double: NrasDouble) -> None:
    assert NrasClient(double.base_url, jwks=double.jwks()).attest_gpu(EVIDENCE[:1], NONCE, at=AT).gpus


def test_no_jwks_and_no_fetcher_is_collateral_missing(double: NrasDouble) -> None:
    with pytest.raises(CollateralMissing):
        NrasClient(double.base_url).attest_gpu(EVIDENCE, NONCE, at=AT)


def test_tampered_detached_token(double: NrasDouble) -> None:
    double.knobs.tamper_gpu = "GPU-1"
    with pytest.raises(SubmoduleDigestMismatch):
        client(double).attest_gpu(EVIDENCE, NONCE, at=AT)


def test_tampered_token_named_by_a_matching_digest_fails_its_signature(double: NrasDouble) -> None:
    double.knobs.tamper_gpu, double.knobs.digest_after_tamper = "GPU-0", True
    with pytest.raises(BadSignature):
        client(double).attest_gpu(EVIDENCE, NONCE, at=AT)


def test_wrong_nonce(double: NrasDouble) -> None:
    double.knobs.answer_nonce = "ff" * 32
    with pytest.raises(NonceMismatch):
        client(double).attest_gpu(EVIDENCE, NONCE, at=AT)


def test_submods_digest_mismatch(double: NrasDouble) -> None:
    double.knobs.wrong_digest = "GPU-0"
    with pytest.raises(SubmoduleDigestMismatch):
        client(double).attest_gpu(EVIDENCE, NONCE, at=AT)


def test_overall_result_false(double: NrasDouble) -> None:
    double.knobs.overall_result = False
    with pytest.raises(NrasRejected):
        client(double).attest_gpu(EVIDENCE, NONCE, at=AT)


def test_other_issuer(double: NrasDouble) -> None:
    double.knobs.issuer = "https://nras.attestation.nvidia.com"
    with pytest.raises(_jwt.IssuerMismatch):
        client(double).attest_gpu(EVIDENCE, NONCE, at=AT)


def test_expired_at_the_injected_time(double: NrasDouble) -> None:
    with pytest.raises(Expired):
        client(double).attest_gpu(EVIDENCE, NONCE, at=ISSUED + timedelta(hours=2))


def test_http_error_and_malformed_answer(double: NrasDouble) -> None:
    with pytest.raises(FetchFailed):
        NrasClient(double.base_url + "/nowhere", jwks=double.jwks()).attest_gpu(EVIDENCE, NONCE, at=AT)
    with pytest.raises(MalformedEvidence):
        client(double).verify_eat(b'{"not": "an EAT"}', NONCE, at=AT)
