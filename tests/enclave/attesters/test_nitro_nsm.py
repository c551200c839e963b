"""The /dev/nsm path against a fake ioctl that plays the NSM driver with simulator documents."""

from __future__ import annotations

import ctypes
import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attestation import verify
from attestation.simulator.nitro import NitroSimulator
from enclave.attesters.nitro_nsm import (
    NSM_IOCTL_RAW,
    NSM_RESPONSE_MAX_SIZE,
    NitroNsmAttester,
    NsmDevice,
    NsmMessage,
)
from enclave.errors import AttestationFailed, AttesterUnavailable
from tests.enclave.attesters.conftest import AT

REPORT_DATA = bytes(range(64))
NONCE = b"\x07" * 32


class FakeNsmDriver:
    """Plays ``drivers/misc/nsm.c``: reads the request buffer, writes a response and its length back."""

    def __init__(self, simulator: NitroSimulator, answer: Callable[[dict[str, Any]], bytes] | None = None) -> None:
        self.simulator = simulator
        self.answer = answer or self.attest
        self.requests: list[dict[str, Any]] = []

    def attest(self, request: dict[str, Any]) -> bytes:
        body = request["Attestation"]
        document = self.simulator.document(
            timestamp=AT, user_data=body["user_data"], nonce=body["nonce"], public_key=body["public_key"]
        )
        return cbor2.dumps({"Attestation": {"document": document}})

    def __call__(self, descriptor: int, request: int, argument: Any) -> int:
        assert request == NSM_IOCTL_RAW
        assert isinstance(argument, NsmMessage)
        message = cbor2.loads(ctypes.string_at(argument.request.addr, argument.request.len))
        self.requests.append(message)
        response = self.answer(message)
        if len(response) > argument.response.len:
            raise OSError(errno.EMSGSIZE, "response too large")
        ctypes.memmove(argument.response.addr, response, len(response))
        argument.response.len = len(response)
        return 0


@pytest.fixture
def device(tmp_path: Path) -> str:
    path = tmp_path / "nsm"
    path.write_bytes(b"")
    return str(path)


def test_ioctl_number_matches_the_uapi_header() -> None:
    assert ctypes.sizeof(NsmMessage) == 32
    assert NSM_IOCTL_RAW == 0xC0200A00


def test_document_binds_report_data_and_nonce(device: str, nitro_simulator: NitroSimulator) -> None:
    driver = FakeNsmDriver(nitro_simulator)
    attester = NitroNsmAttester(device, ioctl=driver)
    evidence = attester.attest(REPORT_DATA, NONCE)
    assert driver.requests == [{"Attestation": {"user_data": REPORT_DATA, "nonce": NONCE, "public_key": None}}]
    claims = verify(evidence, tee="nitro", at=None, roots=[nitro_simulator.root], unsafe_allow_simulator_roots=True)
    assert (claims.report_data, claims.nonce) == (REPORT_DATA, NONCE)


@settings(max_examples=15, deadline=None)
@given(data=st.binary(min_size=64, max_size=64), nonce=st.binary(min_size=1, max_size=1024))
def test_any_report_data_and_nonce_round_trip(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, nonce: bytes
) -> None:
    path = tmp_path_factory.mktemp("nsm") / "nsm"
    path.write_bytes(b"")
    evidence = NitroNsmAttester(str(path), ioctl=FakeNsmDriver(_SIMULATOR)).attest(data, nonce)
    claims = verify(evidence, tee="nitro", at=None, roots=[_SIMULATOR.root], unsafe_allow_simulator_roots=True)
    assert (claims.report_data, claims.nonce) == (data, nonce)


_SIMULATOR = NitroSimulator.create(at=AT)


def test_error_response(device: str, nitro_simulator: NitroSimulator) -> None:
    driver = FakeNsmDriver(nitro_simulator, answer=lambda _: cbor2.dumps({"Error": "InvalidArgument"}))
    with pytest.raises(AttestationFailed, match="InvalidArgument"):
        NitroNsmAttester(device, ioctl=driver).attest(REPORT_DATA, NONCE)


@pytest.mark.parametrize(
    "response",
    [
        b"\xff\x00garbage",
        cbor2.dumps({"Attestation": {}}),
        cbor2.dumps({"Attestation": {"document": b""}}),
        cbor2.dumps({"DescribePCR": {"lock": False}}),
        cbor2.dumps({"Attestation": {"document": cbor2.dumps([b"", {}, b"not cbor \xff", b""])}}),
        cbor2.dumps({"Attestation": {"document": cbor2.dumps({"not": "cose"})}}),
    ],
)
def test_malformed_responses(device: str, nitro_simulator: NitroSimulator, response: bytes) -> None:
    driver = FakeNsmDriver(nitro_simulator, answer=lambda _: response)
    with pytest.raises(AttestationFailed):
        NitroNsmAttester(device, ioctl=driver).attest(REPORT_DATA, NONCE)


def test_document_for_other_user_data_is_refused(device: str, nitro_simulator: NitroSimulator) -> None:
    def stale(request: dict[str, Any]) -> bytes:
        document = nitro_simulator.document(timestamp=AT, user_data=bytes(64), nonce=request["Attestation"]["nonce"])
        return cbor2.dumps({"Attestation": {"document": document}})

    with pytest.raises(AttestationFailed, match="other user data"):
        NitroNsmAttester(device, ioctl=FakeNsmDriver(nitro_simulator, answer=stale)).attest(REPORT_DATA, NONCE)


def test_tagged_cose_is_accepted(device: str, nitro_simulator: NitroSimulator) -> None:
    def tagged(request: dict[str, Any]) -> bytes:
        body = request["Attestation"]
        document = nitro_simulator.document(timestamp=AT, user_data=body["user_data"], nonce=body["nonce"])
        wrapped = cbor2.dumps(cbor2.CBORTag(18, cbor2.loads(document)))
        return cbor2.dumps({"Attestation": {"document": wrapped}})

    evidence = NitroNsmAttester(device, ioctl=FakeNsmDriver(nitro_simulator, answer=tagged)).attest(REPORT_DATA, NONCE)
    assert evidence.startswith(b"\xd2")


def test_ioctl_failure(device: str) -> None:
    def failing(descriptor: int, request: int, argument: Any) -> int:
        raise OSError(errno.EIO, "I/O error")

    with pytest.raises(AttestationFailed, match="EIO"):
        NitroNsmAttester(device, ioctl=failing).attest(REPORT_DATA, NONCE)


@pytest.mark.parametrize("length", [0, NSM_RESPONSE_MAX_SIZE + 1])
def test_impossible_response_length(device: str, length: int) -> None:
    def lying(descriptor: int, request: int, argument: Any) -> int:
        argument.response.len = length
        return 0

    with pytest.raises(AttestationFailed, match="impossible response length"):
        NsmDevice(device, ioctl=lying).request(b"\xa0")


def test_missing_device(tmp_path: Path) -> None:
    with pytest.raises(AttesterUnavailable, match="cannot open"):
        NitroNsmAttester(str(tmp_path / "nsm")).attest(REPORT_DATA, NONCE)


def test_oversized_request(device: str) -> None:
    with pytest.raises(AttestationFailed, match="exceeds"):
        NsmDevice(device, ioctl=lambda *_: 0).request(bytes(0x1001))


def test_wrong_sizes_are_caller_errors(device: str, nitro_simulator: NitroSimulator) -> None:
    attester = NitroNsmAttester(device, ioctl=FakeNsmDriver(nitro_simulator))
    with pytest.raises(ValueError, match="64 bytes"):
        attester.attest(bytes(63), NONCE)
    with pytest.raises(ValueError, match="nonce"):
        attester.attest(REPORT_DATA, bytes(1025))
