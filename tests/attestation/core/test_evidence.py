"""Evidence files: raw binary, hex and base64 text are told apart; size limits."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attestation import MalformedEvidence, decode_evidence
from attestation.evidence import MAX_EVIDENCE_BYTES

RAW = bytes([0x84, 0x44, 0xA1, 0x01, 0x38, 0x22, 0xA0, 0x00, 0xFF]) * 7


def test_raw_binary_is_kept() -> None:
    assert decode_evidence(RAW) == RAW


def test_hex_text_with_whitespace() -> None:
    text = RAW.hex().upper()
    assert decode_evidence(f"  {text[:20]}\n{text[20:]}\n".encode()) == RAW


@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
def test_base64_text(encode) -> None:  # type: ignore[no-untyped-def]
    text = encode(RAW)
    assert decode_evidence(text + b"\n") == RAW
    assert decode_evidence(text.rstrip(b"=")) == RAW


def test_text_that_is_both_hex_and_base64_reads_as_hex() -> None:
    assert decode_evidence(b"AAAA") == b"\xaa\xaa"


def test_empty_and_oversized_evidence() -> None:
    with pytest.raises(MalformedEvidence, match="empty"):
        decode_evidence(b"")
    with pytest.raises(MalformedEvidence, match="larger than"):
        decode_evidence(bytes(MAX_EVIDENCE_BYTES + 1))


@given(st.binary(min_size=1, max_size=300))
def test_any_bytes_decode_without_surprises(data: bytes) -> None:
    decoded = decode_evidence(data)
    assert isinstance(decoded, bytes)
    encoded = base64.b64encode(data)
    if not re.fullmatch(rb"[0-9A-Fa-f]*", encoded) or len(encoded) % 2:  # all-hex base64 reads as hex, by design
        assert decode_evidence(encoded) == data
    assert decode_evidence(data.hex().encode()) == data
