"""Simulator attesters, verified end to end by the attestation library."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attestation import verify
from attestation.collateral import Collateral
from attestation.errors import BadChain, UntrustedSimulatorRoot
from attestation.simulator.nitro import NitroSimulator
from attestation.simulator.snp import SnpSimulator
from ccdeploy.release.binding import report_data
from enclave.attesters import attester_from_name
from enclave.attesters.simulator import (
    ROOT_FILE,
    SimulatorNitroAttester,
    SimulatorSnpAttester,
    load_simulator_state,
    write_simulator_state,
)
from enclave.errors import AttesterUnavailable
from tests.enclave.attesters.conftest import AT

NONCE = bytes(range(32))
REPORT_DATA = report_data(NONCE, b"hpke-public-key", b"tls-spki")


def _nitro(simulator: NitroSimulator, **options: object) -> SimulatorNitroAttester:
    return SimulatorNitroAttester(simulator, lambda: AT, **options)  # type: ignore[arg-type]


def test_nitro_document_verifies_and_binds_report_data_and_nonce(nitro_simulator: NitroSimulator) -> None:
    attester = _nitro(nitro_simulator)
    evidence = attester.attest(REPORT_DATA, NONCE)
    claims = verify(
        evidence, tee=attester.evidence_type, at=None, roots=[nitro_simulator.root], unsafe_allow_simulator_roots=True
    )
    assert claims.report_data == REPORT_DATA
    assert claims.nonce == NONCE
    assert claims.vendor["public_key"] is None
    assert claims.issued_at == AT
    assert not claims.debug


def test_nitro_simulator_root_is_refused_unless_allowed(nitro_simulator: NitroSimulator) -> None:
    evidence = _nitro(nitro_simulator).attest(REPORT_DATA, NONCE)
    with pytest.raises(UntrustedSimulatorRoot):
        verify(evidence, tee="nitro", at=None, roots=[nitro_simulator.root])


def test_nitro_debug_and_pcrs_reach_the_claims(nitro_simulator: NitroSimulator) -> None:
    pcr0 = b"\x42" * 48
    custom = verify(
        _nitro(nitro_simulator, pcrs={0: pcr0}).attest(REPORT_DATA, NONCE),
        tee="nitro",
        at=None,
        roots=[nitro_simulator.root],
        unsafe_allow_simulator_roots=True,
    )
    assert custom.measurements["pcr0"] == pcr0
    debug = verify(
        _nitro(nitro_simulator, debug=True).attest(REPORT_DATA, NONCE),
        tee="nitro",
        at=None,
        roots=[nitro_simulator.root],
        unsafe_allow_simulator_roots=True,
    )
    assert debug.debug


@settings(max_examples=20, deadline=None)
@given(data=st.binary(min_size=64, max_size=64), nonce=st.binary(min_size=1, max_size=1024))
def test_nitro_round_trips_any_report_data_and_nonce(data: bytes, nonce: bytes) -> None:
    simulator = _SHARED_NITRO
    claims = verify(
        _nitro(simulator).attest(data, nonce),
        tee="nitro",
        at=None,
        roots=[simulator.root],
        unsafe_allow_simulator_roots=True,
    )
    assert (claims.report_data, claims.nonce) == (data, nonce)


_SHARED_NITRO = NitroSimulator.create(at=AT)


@pytest.mark.parametrize("size", [0, 32, 63, 65, 128])
def test_report_data_must_be_64_bytes(nitro_simulator: NitroSimulator, size: int) -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        _nitro(nitro_simulator).attest(bytes(size), NONCE)


@pytest.mark.parametrize("nonce", [b"", bytes(1025)])
def test_nitro_nonce_limits(nitro_simulator: NitroSimulator, nonce: bytes) -> None:
    with pytest.raises(ValueError, match="nonce"):
        _nitro(nitro_simulator).attest(REPORT_DATA, nonce)


def test_registry_builds_the_simulator(nitro_simulator: NitroSimulator) -> None:
    attester = attester_from_name("simulator-nitro", simulator=nitro_simulator, clock=lambda: AT)
    assert isinstance(attester, SimulatorNitroAttester)
    assert (attester.name, attester.evidence_type) == ("simulator-nitro", "nitro")


def test_snp_report_verifies_with_report_data(snp_simulator: SnpSimulator) -> None:
    measurement = b"\x11" * 48
    attester = SimulatorSnpAttester(snp_simulator, measurement=measurement)
    evidence = attester.attest(REPORT_DATA, NONCE)
    assert len(evidence) == 1184
    claims = verify(
        evidence,
        tee=attester.evidence_type,
        at=AT,
        roots=[attester.root],
        collateral=Collateral(certificates=snp_simulator.chain(), signing_cert=attester.vcek_certificate),
        unsafe_allow_simulator_roots=True,
    )
    assert claims.report_data == REPORT_DATA
    assert claims.measurements["measurement"] == measurement
    assert claims.nonce is None
    assert not claims.debug


def test_snp_debug_policy(snp_simulator: SnpSimulator) -> None:
    attester = SimulatorSnpAttester(snp_simulator, debug=True)
    claims = verify(
        attester.attest(REPORT_DATA, NONCE),
        tee="sev-snp",
        at=AT,
        roots=[attester.root],
        collateral=Collateral(certificates=snp_simulator.chain(), signing_cert=attester.vcek_certificate),
        unsafe_allow_simulator_roots=True,
    )
    assert claims.debug


def test_state_round_trip_keeps_the_root_byte_for_byte(tmp_path: Path, nitro_simulator: NitroSimulator) -> None:
    directory = tmp_path / "sim"
    write_simulator_state(directory, nitro_simulator)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = sorted(path.name for path in directory.iterdir())
    assert files == sorted([ROOT_FILE, *(f"{role}-key.pem" for role in nitro_simulator.keys.to_pem())])
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert (directory / ROOT_FILE).read_bytes() == nitro_simulator.root_pem()

    later = AT + timedelta(days=40)  # long after the original intermediates expired
    reloaded = load_simulator_state(directory, later)
    assert reloaded.root == nitro_simulator.root
    evidence = SimulatorNitroAttester(reloaded, lambda: later).attest(REPORT_DATA, NONCE)
    claims = verify(evidence, tee="nitro", at=None, roots=[nitro_simulator.root], unsafe_allow_simulator_roots=True)
    assert claims.report_data == REPORT_DATA


def test_state_overwrite_tightens_modes(tmp_path: Path, nitro_simulator: NitroSimulator) -> None:
    directory = tmp_path / "sim"
    directory.mkdir(mode=0o755)
    (directory / ROOT_FILE).write_bytes(b"old")
    os.chmod(directory / ROOT_FILE, 0o644)
    write_simulator_state(directory, nitro_simulator)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / ROOT_FILE).stat().st_mode) == 0o600


def test_load_refuses_keys_readable_by_others(tmp_path: Path, nitro_simulator: NitroSimulator) -> None:
    directory = write_simulator_state(tmp_path / "sim", nitro_simulator)
    os.chmod(directory / "leaf-key.pem", 0o644)
    with pytest.raises(AttesterUnavailable, match="group or others"):
        load_simulator_state(directory, AT)


def test_load_refuses_a_root_of_another_key(tmp_path: Path, nitro_simulator: NitroSimulator) -> None:
    directory = write_simulator_state(tmp_path / "sim", nitro_simulator)
    other = NitroSimulator.create(at=AT)
    (directory / ROOT_FILE).write_bytes(other.root_pem())
    with pytest.raises(AttesterUnavailable, match="not the certificate of the stored root key"):
        load_simulator_state(directory, AT)


def test_load_of_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(AttesterUnavailable, match="cannot load"):
        load_simulator_state(tmp_path / "absent", AT)


def test_write_refuses_a_symlink(tmp_path: Path, nitro_simulator: NitroSimulator) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(AttesterUnavailable, match="plain directory"):
        write_simulator_state(tmp_path / "link", nitro_simulator)


def test_documents_from_another_root_fail(nitro_simulator: NitroSimulator) -> None:
    other = NitroSimulator.create(at=AT)
    evidence = _nitro(other).attest(REPORT_DATA, NONCE)
    with pytest.raises(BadChain):
        verify(evidence, tee="nitro", at=None, roots=[nitro_simulator.root], unsafe_allow_simulator_roots=True)
