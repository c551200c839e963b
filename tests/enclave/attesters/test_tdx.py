"""TDX quotes through a fake configfs-tsm answering with synthetic v4/v5 quotes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enclave.attesters.configfs_tsm import TsmReportClient
from enclave.attesters.tdx import TdxAttester, quote_report_data
from enclave.errors import AttestationFailed, AttesterUnavailable
from tests.enclave.attesters.fake_tsm import FakeTsmKernel

ROOT = "/sys/kernel/config/tsm/report"
REPORT_DATA = bytes(range(100, 164))
NONCE = b"\x02" * 16


def synthetic_quote(report_data: bytes, *, version: int = 4, tee_type: int = 0x81, body_type: int = 2) -> bytes:
    """A structurally valid TDX quote: header, TD report body with REPORTDATA at +520, signature length, signature."""
    header = version.to_bytes(2, "little") + (2).to_bytes(2, "little") + tee_type.to_bytes(4, "little") + bytes(40)
    size = {2: 584, 3: 648}.get(body_type, 584)
    body = bytearray(size)
    body[520:584] = report_data
    descriptor = b"" if version == 4 else body_type.to_bytes(2, "little") + size.to_bytes(4, "little")
    signature = bytes(64)
    return header + descriptor + bytes(body) + len(signature).to_bytes(4, "little") + signature


def _attester(make: object) -> TdxAttester:
    kernel = FakeTsmKernel(ROOT, "tdx_guest", make)  # type: ignore[arg-type]
    return TdxAttester(tsm=TsmReportClient(ROOT, filesystem=kernel))


@pytest.mark.parametrize(("version", "body_type"), [(4, 2), (5, 2), (5, 3)])
def test_quote_is_returned_when_it_binds_the_report_data(version: int, body_type: int) -> None:
    attester = _attester(lambda data, level: synthetic_quote(data, version=version, body_type=body_type))
    quote = attester.attest(REPORT_DATA, NONCE)
    assert quote_report_data(quote) == REPORT_DATA
    assert (attester.name, attester.evidence_type) == ("tdx", "tdx")


def test_quote_for_other_data_is_refused() -> None:
    with pytest.raises(AttestationFailed, match="other REPORTDATA"):
        _attester(lambda data, level: synthetic_quote(bytes(64))).attest(REPORT_DATA, NONCE)


@pytest.mark.parametrize(
    ("quote", "message"),
    [
        (synthetic_quote(REPORT_DATA, tee_type=0x0), "not TDX"),
        (synthetic_quote(REPORT_DATA, version=3), "version 3"),
        (synthetic_quote(REPORT_DATA)[:600], "truncated"),
        (synthetic_quote(REPORT_DATA, version=5, body_type=9), "body type 9"),
        (b"\x04\x00", "shorter than its header"),
    ],
)
def test_malformed_quotes(quote: bytes, message: str) -> None:
    with pytest.raises(AttestationFailed, match=message):
        quote_report_data(quote)


@given(st.binary(max_size=800))
def test_parser_never_crashes(data: bytes) -> None:
    with contextlib.suppress(AttestationFailed):
        assert len(quote_report_data(data)) == 64


def test_sev_provider_is_not_tdx() -> None:
    kernel = FakeTsmKernel(ROOT, "sev_guest", lambda data, level: data)
    with pytest.raises(AttesterUnavailable, match="sev_guest"):
        TdxAttester(tsm=TsmReportClient(ROOT, filesystem=kernel)).attest(REPORT_DATA, NONCE)
