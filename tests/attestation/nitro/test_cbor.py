"""The strict CBOR decoder: accepted subset, every refusal, limits, and differential checks against cbor2."""

from __future__ import annotations

import contextlib
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attestation import _cbor
from attestation.errors import MalformedEvidence

_FAST = settings(max_examples=200, deadline=None)


def _decode(hex_text: str, **kwargs: Any) -> _cbor.CborValue:
    return _cbor.decode(bytes.fromhex(hex_text), what="test item", **kwargs)


@pytest.mark.parametrize(
    ("encoded", "value"),
    [
        ("00", 0),
        ("17", 23),
        ("1818", 24),
        ("19ffff", 0xFFFF),
        ("1a00010000", 0x10000),
        ("1b0000000100000000", 1 << 32),
        ("1bffffffffffffffff", (1 << 64) - 1),
        ("20", -1),
        ("3bffffffffffffffff", -(1 << 64)),
        ("40", b""),
        ("4401020304", b"\x01\x02\x03\x04"),
        ("60", ""),
        ("62c3bc", "\u00fc"),
        ("80", []),
        ("83010203", [1, 2, 3]),
        ("a0", {}),
        ("a201026161820304", {1: 2, "a": [3, 4]}),
        ("a1416b01", {b"k": 1}),
        ("f4", False),
        ("f5", True),
        ("f6", None),
    ],
)
def test_accepted_items(encoded: str, value: object) -> None:
    decoded = _decode(encoded)
    assert decoded == value
    assert type(decoded) is type(value)
    assert _cbor.encode(decoded) == bytes.fromhex(encoded)


def test_map_keeps_encoded_order() -> None:
    encoded = _cbor.encode({"zz": 1, 3: "three", b"a": None, -1: 0})
    decoded = _cbor.decode(encoded, what="map")
    assert isinstance(decoded, dict)
    assert list(decoded) == ["zz", 3, b"a", -1]


@pytest.mark.parametrize(
    ("encoded", "reason"),
    [
        ("", "announced"),
        ("1800", "shortest"),
        ("1900ff", "shortest"),
        ("1a0000ffff", "shortest"),
        ("1b00000000ffffffff", "shortest"),
        ("380a", "shortest"),
        ("5800", "shortest"),
        ("780161", "shortest"),
        ("9800", "shortest"),
        ("b800", "shortest"),
        ("d81200", "shortest"),
        ("5f4100ff", "indefinite"),
        ("7f6161ff", "indefinite"),
        ("9f01ff", "indefinite"),
        ("bf0101ff", "indefinite"),
        ("1f", "indefinite"),
        ("ff", "indefinite"),
        ("1c", "reserved"),
        ("5d", "reserved"),
        ("fe", "reserved"),
        ("f90000", "floating"),
        ("fa00000000", "floating"),
        ("fb0000000000000000", "floating"),
        ("f7", "simple value 23"),
        ("f820", "simple value 24"),
        ("e0", "simple value 0"),
        ("c074323031332d30332d32315432303a30343a30305a", "tag 0"),
        ("d24100", "tag 18"),  # tags only where the caller allows them
        ("a201000100", "duplicate map key 1"),
        ("a2616101616102", "duplicate map key 'a'"),
        ("a1f500", "map key of type bool"),
        ("a1f600", "map key of type NoneType"),
        ("a1800100", "map key of type list"),
        ("62c328", "UTF-8"),
        ("0000", "trailing"),
        ("5affffffff", "announced"),
        ("7bffffffffffffffff", "announced"),
        ("9bffffffffffffffff", "announced"),
        ("bbffffffffffffffff", "announced"),
        ("a10000a1", "trailing"),
        ("810001", "trailing"),
        ("8201", "announced"),
        ("a201", "announced"),
    ],
)
def test_refused_items(encoded: str, reason: str) -> None:
    with pytest.raises(MalformedEvidence, match=reason):
        _decode(encoded)


def test_allowed_tag_only_at_the_top() -> None:
    assert _decode("d280", allowed_tag=18) == _cbor.Tagged(18, [])
    with pytest.raises(MalformedEvidence, match="tag 18"):
        _decode("d2d280", allowed_tag=18)
    with pytest.raises(MalformedEvidence, match="tag 18"):
        _decode("81d280", allowed_tag=18)
    with pytest.raises(MalformedEvidence, match="tag 98"):
        _decode("d86280", allowed_tag=18)


def test_nesting_limit() -> None:
    deep = b"\x81" * (_cbor.MAX_DEPTH - 1) + b"\x80"
    _cbor.decode(deep, what="deep")
    with pytest.raises(MalformedEvidence, match="nesting deeper"):
        _cbor.decode(b"\x81" + deep, what="deep")
    with pytest.raises(MalformedEvidence, match="nesting deeper"):
        _cbor.decode(b"\x81" * 100_000, what="very deep")  # no RecursionError
    with pytest.raises(MalformedEvidence, match="nesting deeper"):
        _cbor.decode(b"\x81\x81\x80", what="limited", max_depth=2)


def test_size_limit() -> None:
    big = _cbor.encode(b"\x00" * _cbor.MAX_DOCUMENT_BYTES)
    with pytest.raises(MalformedEvidence, match="more than the 262144 accepted"):
        _cbor.decode(big, what="huge")
    assert _cbor.decode(_cbor.encode(b"\x00" * 100), what="small", max_size=102) == b"\x00" * 100
    with pytest.raises(MalformedEvidence, match="more than the 101"):
        _cbor.decode(_cbor.encode(b"\x00" * 100), what="small", max_size=101)


def test_error_names_what_was_decoded() -> None:
    with pytest.raises(MalformedEvidence, match=r"^the thing is not valid strict CBOR: .* \(item at byte 2\)$"):
        _cbor.decode(b"\x82\x01\x18\x00", what="the thing")


def test_encoder_refuses_what_cbor_cannot_hold() -> None:
    with pytest.raises(ValueError, match="64 bits"):
        _cbor.encode(1 << 64)
    with pytest.raises(TypeError, match="float"):
        _cbor.encode(1.5)


# --- properties -----------------------------------------------------------------------------------------------

_INTS = st.integers(min_value=-(1 << 64), max_value=(1 << 64) - 1)
_KEYS = st.one_of(_INTS, st.text(max_size=8), st.binary(max_size=8))
_SCALARS = st.one_of(_INTS, st.binary(max_size=40), st.text(max_size=20), st.booleans(), st.none())
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(_KEYS, inner, max_size=5)),
    max_leaves=30,
)


def _same(a: object, b: object) -> bool:
    """Equality that also tells True from 1 and lists from tuples (type confusion must not hide)."""
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=False))
    if isinstance(a, dict):
        return (
            isinstance(b, dict) and list(map(repr, a)) == list(map(repr, b)) and all(_same(a[key], b[key]) for key in a)
        )
    return type(a) is type(b) and a == b


def _canonical_dict_order(value: object) -> object:
    """``value`` as cbor2 canonical output would decode (map keys sorted by their encoding)."""
    if isinstance(value, list):
        return [_canonical_dict_order(item) for item in value]
    if isinstance(value, dict):
        keys = sorted(value, key=lambda key: (len(_cbor.encode(key)), _cbor.encode(key)))
        return {key: _canonical_dict_order(value[key]) for key in keys}
    return value


@given(_VALUES)
@_FAST
def test_round_trip(value: _cbor.CborValue) -> None:
    assert _same(_cbor.decode(_cbor.encode(value), what="round trip"), value)


@given(_VALUES)
@_FAST
def test_differential_against_cbor2_canonical(value: _cbor.CborValue) -> None:
    encoded = cbor2.dumps(value, canonical=True)
    decoded = _cbor.decode(encoded, what="cbor2 output")
    assert _same(decoded, _canonical_dict_order(value))
    assert _cbor.encode(decoded) == encoded


@given(st.binary(max_size=256))
@_FAST
def test_arbitrary_bytes_raise_only_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedEvidence):
        _cbor.decode(data, what="fuzz", allowed_tag=18)


@given(_VALUES, st.data())
@_FAST
def test_mutated_encodings_agree_with_cbor2_when_accepted(value: _cbor.CborValue, data: st.DataObject) -> None:
    encoded = bytearray(_cbor.encode(value))
    offset = data.draw(st.integers(0, len(encoded) - 1))
    encoded[offset] = data.draw(st.integers(0, 255))
    try:
        ours = _cbor.decode(bytes(encoded), what="mutated")
    except MalformedEvidence:
        return
    assert _same(ours, _lists(cbor2.loads(bytes(encoded))))


def _lists(value: object) -> object:
    """cbor2 6 may return tuples for arrays in some positions; compare as lists."""
    if isinstance(value, list | tuple):
        return [_lists(item) for item in value]
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    return value
