"""A strict, bounded CBOR (RFC 8949) decoder for untrusted evidence, and the matching small encoder.

Written by hand rather than taken from ``cbor2`` because evidence is attacker-controlled and ``cbor2`` is
lenient where a verifier must not be: it silently keeps the last of duplicate map keys (so two parsers can
disagree about what a signed document says), accepts non-shortest encodings, and has no per-item size
limits (a 9-byte header can announce a multi-gigabyte string). This decoder accepts only the subset that
attestation documents use and rejects everything else:

* major types 0-5 (unsigned and negative integers, byte and text strings, arrays, maps) with definite
  lengths, the simple values ``false``, ``true`` and ``null``, and one top-level tag where the caller allows it;
* integers and lengths in their shortest form (RFC 8949 §4.2.1 preferred serialization), so one value has one
  encoding; map keys that are integers or strings, each at most once; no bytes after the top-level item;
* nesting up to ``max_depth`` and declared lengths only up to what remains of the input (and ``max_size``).

Every failure raises :class:`~attestation.errors.MalformedEvidence`; no ``IndexError``, ``RecursionError`` or
``UnicodeDecodeError`` escapes. Integers stay Python ints, byte strings ``bytes``, maps ``dict`` (in encoded order).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

from attestation.errors import MalformedEvidence

#: AWS KMS accepts attestation documents of at most 256 KiB; nothing this decoder reads needs more.
MAX_DOCUMENT_BYTES = 256 * 1024
#: Attestation documents nest three or four levels deep; a small bound keeps recursion far from Python's limit.
MAX_DEPTH = 16

_UINT, _NEGINT, _BYTES, _TEXT, _ARRAY, _MAP, _TAG, _SIMPLE = range(8)
_SIMPLE_VALUES: dict[int, bool | None] = {20: False, 21: True, 22: None}
_ARGUMENT_BYTES = {24: 1, 25: 2, 26: 4, 27: 8}
_SHORTEST_MINIMUM = {1: 24, 2: 0x100, 4: 0x1_0000, 8: 0x1_0000_0000}


@dataclass(frozen=True, slots=True)
class Tagged:
    """A tagged item (major type 6); only produced for a top-level tag the caller allowed."""

    tag: int
    value: CborValue


CborKey: TypeAlias = int | str | bytes
CborValue: TypeAlias = "int | str | bytes | bool | list[CborValue] | dict[CborKey, CborValue] | Tagged | None"


def decode(
    data: bytes,
    *,
    what: str,
    allowed_tag: int | None = None,
    max_size: int = MAX_DOCUMENT_BYTES,
    max_depth: int = MAX_DEPTH,
) -> CborValue:
    """Decode exactly one CBOR item that fills ``data``.

    Args:
        data: The encoded item.
        what: What the bytes are, for error messages (``"attestation document"``).
        allowed_tag: A tag number accepted on the top-level item only (``18`` for COSE_Sign1); any other tag,
            and any tag below the top level, is refused.
        max_size: The largest input accepted, in bytes.
        max_depth: The deepest nesting of arrays and maps accepted (the top-level item is depth 1).

    Returns:
        The decoded value; a :class:`Tagged` only when ``allowed_tag`` was used.

    Raises:
        attestation.errors.MalformedEvidence: The input is not a single item of the accepted subset.
    """
    if len(data) > max_size:
        raise MalformedEvidence(f"{what} is {len(data)} bytes, more than the {max_size} accepted")
    reader = _Reader(bytes(data), what, max_depth)
    value = reader.item(depth=1, allowed_tag=allowed_tag)
    if reader.offset != len(data):
        raise MalformedEvidence(f"{what} has {len(data) - reader.offset} trailing bytes after its CBOR item")
    return value


class _Reader:
    def __init__(self, data: bytes, what: str, max_depth: int) -> None:
        self.data = data
        self.what = what
        self.max_depth = max_depth
        self.offset = 0
        self.start = 0  # where the item being read began, for error messages

    def fail(self, reason: str) -> MalformedEvidence:
        return MalformedEvidence(f"{self.what} is not valid strict CBOR: {reason} (item at byte {self.start})")

    def take(self, count: int) -> bytes:
        if count > len(self.data) - self.offset:
            raise self.fail(f"{count} bytes announced but only {len(self.data) - self.offset} remain")
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk

    def head(self) -> tuple[int, int, int]:
        """Read an initial byte and its argument: (major type, additional information, argument)."""
        self.start = self.offset
        initial = self.take(1)[0]
        major, info = initial >> 5, initial & 0x1F
        if info < 24:
            return major, info, info
        if info == 31:
            raise self.fail("indefinite lengths and break codes are not accepted")
        width = _ARGUMENT_BYTES.get(info)
        if width is None:
            raise self.fail(f"reserved additional information {info}")
        if major == _SIMPLE:
            return major, info, 0  # a float or a two-byte simple value; refused by the caller
        argument = int.from_bytes(self.take(width), "big")
        if argument < _SHORTEST_MINIMUM[width]:
            raise self.fail(f"argument {argument} is not in its shortest encoding")
        return major, info, argument

    def item(self, *, depth: int, allowed_tag: int | None = None) -> CborValue:
        if depth > self.max_depth:
            raise self.fail(f"nesting deeper than {self.max_depth}")
        major, info, argument = self.head()
        if major == _UINT:
            return argument
        if major == _NEGINT:
            return -1 - argument
        if major == _BYTES:
            return self.take(argument)
        if major == _TEXT:
            return self.text(argument)
        if major == _ARRAY:
            return self.array(argument, depth)
        if major == _MAP:
            return self.map(argument, depth)
        if major == _TAG:
            if allowed_tag is None or argument != allowed_tag:
                raise self.fail(f"tag {argument} is not accepted here")
            return Tagged(argument, self.item(depth=depth))
        return self.simple(info)

    def text(self, length: int) -> str:
        raw = self.take(length)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("a text string is not valid UTF-8") from None

    def check_count(self, count: int, bytes_per_entry: int) -> None:
        # Every item takes at least one byte, so a count beyond the remaining input can only be a lie; refusing
        # it up front keeps a tiny header from making us loop (or allocate) for billions of entries.
        if count * bytes_per_entry > len(self.data) - self.offset:
            raise self.fail(f"{count} entries announced but only {len(self.data) - self.offset} bytes remain")

    def array(self, count: int, depth: int) -> list[CborValue]:
        self.check_count(count, 1)
        return [self.item(depth=depth + 1) for _ in range(count)]

    def map(self, count: int, depth: int) -> dict[CborKey, CborValue]:
        self.check_count(count, 2)
        result: dict[CborKey, CborValue] = {}
        for _ in range(count):
            key = self.item(depth=depth + 1)
            if isinstance(key, bool) or not isinstance(key, int | str | bytes):
                raise self.fail(f"map key of type {type(key).__name__} (only integers and strings are accepted)")
            if key in result:
                raise self.fail(f"duplicate map key {key!r}")
            result[key] = self.item(depth=depth + 1)
        return result

    def simple(self, info: int) -> bool | None:
        if info in _SIMPLE_VALUES:
            return _SIMPLE_VALUES[info]
        if info in (25, 26, 27):
            raise self.fail("floating-point numbers are not accepted")
        raise self.fail(f"simple value {info} is not accepted (only false, true and null)")


def encode(value: object) -> bytes:
    """Encode ``value`` with shortest-form heads and definite lengths, keeping map entries in their given order.

    The output is what :func:`decode` accepts: ints, bytes, text, booleans, ``None``, lists and tuples (arrays),
    mappings (maps) and :class:`Tagged`. Anything else raises ``TypeError``; integers beyond 64 bits ``ValueError``.
    """
    out = bytearray()
    _encode_into(out, value)
    return bytes(out)


def encode_head(major: int, argument: int) -> bytes:
    """The shortest initial byte(s) for ``major`` type with ``argument`` (a length, count, tag or integer)."""
    if argument < 24:
        return bytes([major << 5 | argument])
    for info, width in _ARGUMENT_BYTES.items():
        if argument < 1 << (8 * width):
            return bytes([major << 5 | info]) + argument.to_bytes(width, "big")
    raise ValueError(f"CBOR argument {argument} does not fit in 64 bits")


def _encode_into(out: bytearray, value: object) -> None:
    if value is None or isinstance(value, bool):
        out.append(0xF6 if value is None else 0xF5 if value else 0xF4)
    elif isinstance(value, int):
        out += encode_head(_UINT, value) if value >= 0 else encode_head(_NEGINT, -1 - value)
    elif isinstance(value, bytes | bytearray | memoryview):
        out += encode_head(_BYTES, len(value)) + bytes(value)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        out += encode_head(_TEXT, len(raw)) + raw
    elif isinstance(value, Tagged):
        out += encode_head(_TAG, value.tag)
        _encode_into(out, value.value)
    elif isinstance(value, Mapping):
        out += encode_head(_MAP, len(value))
        for key, item in value.items():
            _encode_into(out, key)
            _encode_into(out, item)
    elif isinstance(value, list | tuple):
        out += encode_head(_ARRAY, len(value))
        for item in value:
            _encode_into(out, item)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as CBOR")
