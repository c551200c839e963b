"""Enclave bootstrap: keys, challenge, evidence, release, unseal, session; and what fails closed on the way."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from attestation.simulator.nitro import NitroSimulator
from ccdeploy.errors import BrokerUnavailable, ReleaseDenied
from ccdeploy.kek import KeyWrapper
from ccdeploy.release.hpke import HpkeKeyPair, HpkeSuite, release_info, seal_to
from ccdeploy.seal import open_sealed
from enclave import __main__ as cli
from enclave import bootstrap as bootstrap_module
from enclave.attesters.simulator import SimulatorNitroAttester, write_simulator_state
from enclave.bootstrap import attester_for, bootstrap
from enclave.config import EnclaveConfig
from enclave.errors import AttesterUnavailable, ReleaseFailed, RuntimeUnavailable
from tests.enclave.conftest import MODEL, InTestBroker, SealedMlp, now, real_broker, register_model, simulator_policy

X = np.ones((2, 4), dtype=np.float32)


def config_for(sealed: SealedMlp, **overrides: Any) -> EnclaveConfig:
    return EnclaveConfig(broker_url="http://unused", model=MODEL, sealed_path=sealed.path, **overrides)


@pytest.mark.parametrize("suite", [HpkeSuite.XWING, HpkeSuite.X25519])
@pytest.mark.parametrize("route", ["tmpfs", "memory"])
def test_bootstrap_serves_the_released_model(
    sealed_mlp: SealedMlp,
    simulator: NitroSimulator,
    attester: SimulatorNitroAttester,
    monkeypatch: pytest.MonkeyPatch,
    suite: HpkeSuite,
    route: Any,
) -> None:
    broker = InTestBroker(simulator, sealed_mlp.dek)
    providers: list[Any] = []

    def spy(path: Path, provider: Any) -> Any:
        providers.append(provider)
        return open_sealed(path, provider)

    monkeypatch.setattr(bootstrap_module, "open_sealed", spy)
    enclave = bootstrap(
        config_for(sealed_mlp, hpke_suite=suite, external_data=route),
        attester=attester,
        release_client=broker,
        clock=now,
    )
    assert broker.released == 1
    assert np.allclose(enclave.session.run({"x": X})["y"], sealed_mlp.expected(X), atol=1e-4)
    assert enclave.session.providers == ["CPUExecutionProvider"]
    assert enclave.receipt["test"] is True and enclave.log_entry == {"index": 0}
    assert enclave.keys.hpke.suite is suite
    # the only copy of the released DEK that bootstrap held is wiped
    (provider,) = providers
    assert bytes(provider._dek) == bytes(32) != sealed_mlp.dek


def test_denial_propagates_with_its_reason(sealed_mlp: SealedMlp, simulator: NitroSimulator) -> None:
    class WrongBinding:
        name, evidence_type = "simulator-nitro", "nitro"

        def attest(self, report_data: bytes, nonce: bytes) -> bytes:
            return SimulatorNitroAttester(simulator, now).attest(os.urandom(64), nonce)

    broker = InTestBroker(simulator, sealed_mlp.dek)
    with pytest.raises(ReleaseDenied) as denied:
        bootstrap(config_for(sealed_mlp), attester=WrongBinding(), release_client=broker, clock=now)
    assert denied.value.reason == "binding-mismatch" and broker.released == 0


def test_a_key_for_another_artifact_is_refused(
    sealed_mlp: SealedMlp, simulator: NitroSimulator, attester: SimulatorNitroAttester
) -> None:
    broker = InTestBroker(simulator, os.urandom(32))  # releases a DEK, just not this artifact's
    with pytest.raises(ReleaseFailed, match="header MAC"):
        bootstrap(config_for(sealed_mlp), attester=attester, release_client=broker, clock=now)


def test_a_key_sealed_to_someone_else_is_refused(
    sealed_mlp: SealedMlp, simulator: NitroSimulator, attester: SimulatorNitroAttester
) -> None:
    broker = InTestBroker(simulator, sealed_mlp.dek)
    stranger = HpkeKeyPair.generate()
    broker.sealed_key_override = seal_to(
        stranger.suite, stranger.public, sealed_mlp.dek, release_info(MODEL, b"another nonce")
    )
    with pytest.raises(ReleaseFailed, match="does not open"):
        bootstrap(config_for(sealed_mlp), attester=attester, release_client=broker, clock=now)


def test_cuda_requested_on_a_cpu_wheel_fails_closed(
    sealed_mlp: SealedMlp, simulator: NitroSimulator, attester: SimulatorNitroAttester
) -> None:
    broker = InTestBroker(simulator, sealed_mlp.dek)
    config = config_for(sealed_mlp, providers=("CUDAExecutionProvider", "CPUExecutionProvider"))
    with pytest.raises(RuntimeUnavailable, match="CUDAExecutionProvider"):
        bootstrap(config, attester=attester, release_client=broker, clock=now)


def test_logs_name_each_step_without_secrets(
    sealed_mlp: SealedMlp,
    simulator: NitroSimulator,
    attester: SimulatorNitroAttester,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    bootstrap(
        config_for(sealed_mlp), attester=attester, release_client=InTestBroker(simulator, sealed_mlp.dek), clock=now
    )
    text = caplog.text
    for step in ("ephemeral keys", "challenge", "evidence", "release granted", "opened sealed artifact", "loaded"):
        assert step in text
    assert sealed_mlp.dek.hex() not in text.lower()


def test_attester_for_loads_the_simulator_state(tmp_path: Path, simulator: NitroSimulator) -> None:
    state = write_simulator_state(tmp_path / "sim", simulator)
    base = {"broker_url": "http://unused", "model": MODEL, "sealed_path": tmp_path / "m.ccseal"}
    attester = attester_for(EnclaveConfig(**base, simulator_state=state, simulator_pcrs={0: "ab" * 48}), now)
    assert attester.evidence_type == "nitro"
    assert len(attester.attest(bytes(64), b"n" * 32)) > 1000
    with pytest.raises(AttesterUnavailable, match="--simulator-state"):
        attester_for(EnclaveConfig(**base), now)
    with pytest.raises(AttesterUnavailable, match="not hex"):
        attester_for(EnclaveConfig(**base, simulator_state=state, simulator_pcrs={0: "zz"}), now)
    with pytest.raises(AttesterUnavailable, match="unknown attester"):
        attester_for(EnclaveConfig(**base, attester="no-such-tee"), now)


def test_cli_arguments_build_the_config(tmp_path: Path) -> None:
    config, verbose = cli.parse_args(
        [
            "--broker", "http://b", "--model", "m", "--sealed", "m.ccseal", "--simulator-state", "s",
            "--simulator-pcr", "0=00", "--provider", "CUDAExecutionProvider", "--provider", "CPUExecutionProvider",
            "--port", "0", "--san", "enclave.local", "--external-data", "memory", "--hpke-suite", "X25519", "-v",
        ]
    )  # fmt: skip
    assert verbose
    assert config.providers == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert config.simulator_pcrs == {0: "00"} and config.port == 0 and config.san_names == ("enclave.local",)
    assert config.external_data == "memory" and config.hpke_suite is HpkeSuite.X25519
    with pytest.raises(SystemExit) as usage:
        cli.parse_args(["--broker", "http://b", "--model", "m", "--sealed", "x", "--port", "70000"])
    assert usage.value.code == 2


def test_cli_exit_codes(sealed_mlp: SealedMlp, tmp_path: Path, simulator: NitroSimulator) -> None:
    state = write_simulator_state(tmp_path / "sim", simulator)
    args = ["--broker", "http://127.0.0.1:9", "--model", MODEL, "--sealed", str(sealed_mlp.path), "--port", "0"]
    # nothing listens on port 9 of loopback: the broker cannot be reached -> could not check (3)
    assert cli.main([*args, "--simulator-state", str(state)]) == BrokerUnavailable.exit_code == 3
    assert cli.main(args) == AttesterUnavailable.exit_code == 3  # no simulator state


def test_cli_denial_exits_1_and_names_the_reason(
    sealed_mlp: SealedMlp,
    kek: KeyWrapper,
    tmp_path: Path,
    simulator: NitroSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = write_simulator_state(tmp_path / "sim", simulator)
    caplog.set_level(logging.INFO)
    with real_broker(tmp_path / "broker", tmp_path / "broker.db", kek.uri) as (url, token):
        register_model(url, token, sealed_mlp.path, simulator_policy(simulator))
        args = ["--broker", url, "--model", MODEL, "--sealed", str(sealed_mlp.path), "--simulator-state", str(state)]
        # an enclave with another measurement (PCR0) is refused by the model's policy
        assert cli.main([*args, "--port", "0", "--simulator-pcr", "0=" + "ee" * 48]) == ReleaseDenied.exit_code == 1
        assert "release denied (measurement-mismatch, HTTP 403)" in caplog.text
        assert cli.main([*args[:3], "other-model", *args[4:], "--port", "0"]) == 1
        assert "release denied (model-unknown, HTTP 404)" in caplog.text
