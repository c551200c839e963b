"""AttestedClient and ``ccdeploy infer`` against real TLS servers on loopback with simulated Nitro evidence."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from attestation.simulator.nitro import NitroSimulator, default_pcrs
from ccdeploy._cli import main
from ccdeploy.client import AttestedClient
from ccdeploy.errors import CouldNotCheck, EnclaveRejected, InferenceRejected, UsageError
from ccdeploy.release.binding import report_data
from ccdeploy.release.hpke import HpkeKeyPair, HpkeSuite
from enclave.runtime import ModelSession
from enclave.server import AttestationDocument, create_app
from enclave.tensors import InputLimits
from tests.enclave.server.harness import AT, Tls, make_tls, nitro_attestation, running

X = np.arange(12, dtype=np.float32).reshape(3, 4) / 5


def _policy(simulator: NitroSimulator, pcr0: str | None = None) -> bytes:
    pcrs = {i: default_pcrs()[i].hex() for i in (0, 1, 2)}
    if pcr0 is not None:
        pcrs[0] = pcr0
    document = {
        "version": 1,
        "platforms": {"nitro": {"pcrs": pcrs}},
        "trust_roots": {"nitro": [simulator.root_pem().decode()]},
        "unsafe_accept_simulator_roots": True,
        "max_evidence_age": 300,
    }
    return yaml.safe_dump(document).encode()


@pytest.fixture(scope="module")
def policy(simulator: NitroSimulator) -> bytes:
    return _policy(simulator)


Serve = Callable[..., Any]


@pytest.fixture
def serve(session: ModelSession, tls: Tls) -> Iterator[Serve]:
    """Start a TLS server for one test: ``serve(attestation, tls=...)`` -> URL."""
    stack: list[Any] = []

    def start(attestation: Callable[[bytes], AttestationDocument] | None, served_tls: Tls = tls) -> str:
        app = create_app(session, model_name="tiny", attestation=attestation, limits=InputLimits())
        context = running(app, served_tls)
        stack.append(context)
        return context.__enter__()

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


@pytest.fixture
def honest(simulator: NitroSimulator, hpke: HpkeKeyPair, tls: Tls) -> Callable[[bytes], AttestationDocument]:
    return nitro_attestation(simulator, hpke_public_key=hpke.public, tls_pem=tls.pem)


def test_attest_pin_and_infer(
    serve: Serve, honest: Any, policy: bytes, session: ModelSession, hpke: HpkeKeyPair
) -> None:
    url = serve(honest)
    with AttestedClient(url, policy=policy, now=lambda: AT) as client:
        verified = client.attest()
        assert verified.evidence_type == "nitro" and verified.debug is False
        assert verified.measurements["pcr0"] == default_pcrs()[0].hex()
        assert verified.checks and all(ok for _, ok, _ in verified.checks)
        assert verified.hpke_suite == "X25519"
        assert client.model_metadata("tiny")["inputs"][0]["shape"] == [-1, 4]
        expected = session.run({"x": X})["y"]
        for binary in (True, False):
            np.testing.assert_array_equal(client.infer("tiny", {"x": X}, binary=binary)["y"], expected)
        np.testing.assert_array_equal(client.infer("tiny", {"x": X}, outputs=["y"])["y"], expected)
        with pytest.raises(InferenceRejected, match=r"HTTP 400.*must be FP32"):
            client.infer("tiny", {"x": X.astype(np.float64)})
        with pytest.raises(InferenceRejected, match="HTTP 404"):
            client.infer("other", {"x": X})


def test_infer_attests_first(serve: Serve, honest: Any, policy: bytes) -> None:
    with AttestedClient(serve(honest), policy=policy, now=lambda: AT) as client:
        assert client.verified is None
        client.infer("tiny", {"x": X})
        assert client.verified is not None


def test_evidence_for_another_nonce_is_rejected(
    serve: Serve, simulator: NitroSimulator, hpke: HpkeKeyPair, tls: Tls, policy: bytes
) -> None:
    replayed = nitro_attestation(
        simulator, hpke_public_key=hpke.public, tls_pem=tls.pem, bind_nonce=lambda n: os.urandom(32)
    )
    with (
        AttestedClient(serve(replayed), policy=policy, now=lambda: AT) as client,
        pytest.raises(EnclaveRejected, match="another nonce"),
    ):
        client.attest()


def test_report_data_binding_another_key_is_rejected(
    serve: Serve, simulator: NitroSimulator, hpke: HpkeKeyPair, tls: Tls, policy: bytes
) -> None:
    other_hpke = HpkeKeyPair.generate(HpkeSuite.X25519).public

    def attest(nonce: bytes) -> AttestationDocument:  # evidence binds another HPKE key than the document shows
        evidence = simulator.document(timestamp=AT, user_data=report_data(nonce, other_hpke, tls.spki), nonce=nonce)
        return AttestationDocument(evidence, "nitro", "X25519", hpke.public, tls.pem, nonce)

    with (
        AttestedClient(serve(attest), policy=policy, now=lambda: AT) as client,
        pytest.raises(EnclaveRejected, match="does not bind"),
    ):
        client.attest()


def test_server_with_another_certificate_is_rejected(serve: Serve, honest: Any, policy: bytes, tmp_path: Path) -> None:
    impostor = make_tls(tmp_path / "impostor")  # serves its own key, relays the honest enclave's document
    with (
        AttestedClient(serve(honest, impostor), policy=policy, now=lambda: AT) as client,
        pytest.raises(EnclaveRejected, match="another certificate"),
    ):
        client.attest()


def test_evidence_failing_the_policy_is_rejected(serve: Serve, honest: Any, simulator: NitroSimulator) -> None:
    url = serve(honest)
    wrong = _policy(simulator, pcr0="ab" * 48)
    with (
        AttestedClient(url, policy=wrong, now=lambda: AT) as client,
        pytest.raises(EnclaveRejected, match="measurement-mismatch"),
    ):
        client.attest()
    stale = AT + timedelta(hours=1)
    with (
        AttestedClient(url, policy=_policy(simulator), now=lambda: stale) as client,
        pytest.raises(EnclaveRejected, match="does not satisfy"),
    ):
        client.attest()


def test_debug_enclave_is_rejected(
    serve: Serve, simulator: NitroSimulator, hpke: HpkeKeyPair, tls: Tls, policy: bytes
) -> None:
    def attest(nonce: bytes) -> AttestationDocument:
        bound = report_data(nonce, hpke.public, tls.spki)
        return AttestationDocument(
            simulator.document(timestamp=AT, user_data=bound, nonce=nonce, debug=True),
            "nitro",
            "X25519",
            hpke.public,
            tls.pem,
            nonce,
        )

    with AttestedClient(serve(attest), policy=policy, now=lambda: AT) as client, pytest.raises(EnclaveRejected):
        client.attest()


def test_no_attestation_or_wrong_echo_is_rejected(serve: Serve, honest: Any, policy: bytes) -> None:
    with (
        AttestedClient(serve(None), policy=policy, now=lambda: AT) as client,
        pytest.raises(EnclaveRejected, match="HTTP 404"),
    ):
        client.attest()

    def echo_other(nonce: bytes) -> AttestationDocument:
        document: AttestationDocument = honest(nonce)
        return replace(document, nonce=bytes(32))

    with (
        AttestedClient(serve(echo_other), policy=policy, now=lambda: AT) as client,
        pytest.raises(EnclaveRejected, match="another nonce"),
    ):
        client.attest()


def test_usage_and_unreachable(policy: bytes) -> None:
    with pytest.raises(UsageError, match="https"):
        AttestedClient("http://127.0.0.1:1", policy=policy)
    with pytest.raises(UsageError, match="exactly one"):
        AttestedClient("https://127.0.0.1:1")
    with AttestedClient("https://127.0.0.1:1", policy=policy) as client, pytest.raises(CouldNotCheck):
        client.attest()


def test_cli_infer(
    serve: Serve, honest: Any, policy: bytes, session: ModelSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = serve(honest)
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_bytes(policy)
    np.save(tmp_path / "x.npy", X)
    at = "2026-03-01T12:00:00Z"
    assert (
        main(
            [
                "infer",
                url,
                "--model",
                "tiny",
                "--policy",
                str(policy_file),
                "--input",
                f"x={tmp_path / 'x.npy'}",
                "--at",
                at,
                "--output-dir",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "verified nitro evidence" in text and "TLS key pinned: sha256:" in text and "output y float32 [3, 3]" in text
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "y.npy"), session.run({"x": X})["y"])

    assert (
        main(
            [
                "infer",
                url,
                "--model",
                "tiny",
                "--policy",
                str(policy_file),
                "--input",
                "x=@[[1, 2, 3, 4]]",
                "--at",
                at,
                "--json",
            ]
        )
        == 0
    )
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] and document["verified"]["evidence_type"] == "nitro"
    expected = session.run({"x": np.array([[1, 2, 3, 4]], dtype=np.float32)})["y"]
    assert document["outputs"]["y"]["shape"] == [1, 3]
    np.testing.assert_allclose(document["outputs"]["y"]["data"], expected.ravel())

    wrong = tmp_path / "wrong.yaml"
    wrong.write_bytes(policy.replace(default_pcrs()[0].hex().encode(), b"ab" * 48))
    assert (
        main(["infer", url, "--model", "tiny", "--policy", str(wrong), "--input", "x=@[[1, 2, 3, 4]]", "--at", at]) == 1
    )
    assert "measurement-mismatch" in capsys.readouterr().err
    assert main(["infer", url, "--model", "tiny", "--policy", str(policy_file), "--input", "x", "--at", at]) == 2
