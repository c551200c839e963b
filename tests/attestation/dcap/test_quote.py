"""The quote parser: real quotes of every version, strict bounds, and fuzzing (typed errors only)."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestation.errors import AttestationError, MalformedEvidence
from attestation.tee.dcap.quote import EnclaveReport, TdReport, parse_quote
from tests.attestation.dcap.conftest import DcapVector


def test_real_quotes_parse(tdx_v4: DcapVector, tdx_v5: DcapVector, sgx_v3: DcapVector) -> None:
    v4, v5, v3 = parse_quote(tdx_v4.quote), parse_quote(tdx_v5.quote), parse_quote(sgx_v3.quote)
    assert (v4.header.version, v4.body_type, len(v4.signed_bytes)) == (4, 2, 48 + 584)
    assert (v5.header.version, v5.body_type, len(v5.signed_bytes)) == (5, 3, 48 + 6 + 648)
    assert (v3.header.version, v3.body_type, len(v3.signed_bytes)) == (3, 1, 48 + 384)
    assert isinstance(v4.body, TdReport) and v4.body.mr_service_td is None
    assert isinstance(v5.body, TdReport) and v5.body.mr_service_td is not None and v5.body.tee_tcb_svn2 is not None
    assert isinstance(v3.body, EnclaveReport)
    for quote in (v4, v5, v3):
        assert quote.certification.pck_chain_pem.startswith(b"-----BEGIN CERTIFICATE-----")
        assert len(quote.certification.qe_auth_data) == 32
        assert quote.header.qe_vendor_id.hex() == "939a7233f79c4ca9940a0db3957f0607"


def test_every_truncation_is_malformed(tdx_v4: DcapVector) -> None:
    quote = tdx_v4.quote.rstrip(b"\0")
    for size in range(0, len(quote) - 1, 97):
        with pytest.raises(MalformedEvidence):
            parse_quote(quote[:size])


def test_zero_padding_is_tolerated_but_not_other_trailing_bytes(tdx_v4: DcapVector) -> None:
    parse_quote(tdx_v4.quote + bytes(10))
    with pytest.raises(MalformedEvidence, match="non-zero bytes after"):
        parse_quote(tdx_v4.quote + b"\x01")


def _with_header(quote: bytes, version: int, key_type: int, tee_type: int) -> bytes:
    return struct.pack("<HHI", version, key_type, tee_type) + quote[8:]


@pytest.mark.parametrize(
    ("version", "key_type", "tee_type", "message"),
    [
        (2, 2, 0x81, "unsupported quote version 2"),
        (4, 3, 0x81, "attestation key type 3"),
        (4, 2, 0x42, "unknown TEE type"),
        (3, 2, 0x81, "version 3 with TEE type 0x81"),
        (4, 2, 0x00, "version 4 with TEE type 0x0"),
    ],
)
def test_header_fields_are_checked(
    tdx_v4: DcapVector, version: int, key_type: int, tee_type: int, message: str
) -> None:
    with pytest.raises(MalformedEvidence, match=message):
        parse_quote(_with_header(tdx_v4.quote, version, key_type, tee_type))


def test_v5_body_descriptor_is_checked(tdx_v5: DcapVector) -> None:
    quote = tdx_v5.quote
    with pytest.raises(MalformedEvidence, match="body type 1"):
        parse_quote(quote[:48] + struct.pack("<H", 1) + quote[50:])
    with pytest.raises(MalformedEvidence, match="must be 648 bytes"):
        parse_quote(quote[:50] + struct.pack("<I", 584) + quote[54:])


def test_certification_data_types_are_checked(tdx_v4: DcapVector) -> None:
    quote = tdx_v4.quote
    at = 636 + 128  # certification data type of the v4 signature data
    with pytest.raises(MalformedEvidence, match="certification data type 5 is not supported"):
        parse_quote(quote[:at] + struct.pack("<H", 5) + quote[at + 2 :])


def test_non_bytes_is_malformed() -> None:
    with pytest.raises(MalformedEvidence):
        parse_quote("quote")  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2048))
def test_fuzz_random_bytes(data: bytes) -> None:
    with contextlib.suppress(AttestationError):
        parse_quote(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_mutated_real_quotes(
    data: st.DataObject, tdx_v4: DcapVector, tdx_v5: DcapVector, sgx_v3: DcapVector
) -> None:
    quote = bytearray(data.draw(st.sampled_from([tdx_v4.quote, tdx_v5.quote, sgx_v3.quote])))
    # Mutate the length fields and structure-bearing prefix most, where parsers break.
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, min(len(quote) - 1, 1400)))
        quote[position] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        quote = quote[: data.draw(st.integers(0, len(quote)))]
    with contextlib.suppress(AttestationError):
        parse_quote(bytes(quote))
