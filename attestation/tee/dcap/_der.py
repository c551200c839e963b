"""A minimal strict DER reader for Intel's SGX certificate extension (nested SEQUENCEs of OID/value pairs).

``cryptography`` hands unrecognised extensions over as raw bytes. These readers decode definite-length DER only,
refuse lengths that run past the data or use more than 4 length bytes, and raise ``ValueError``; callers turn it
into the typed error that fits.
"""

from __future__ import annotations

from collections.abc import Iterator

TAG_INTEGER = 0x02
TAG_OCTET_STRING = 0x04
TAG_OID = 0x06
TAG_ENUMERATED = 0x0A
TAG_SEQUENCE = 0x30


def _element(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """(tag, content, offset after the element) of the element starting at ``offset``."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER element")
    tag, length, start = data[offset], data[offset + 1], offset + 2
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte DER tags are not used here")
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or start + count > len(data):
            raise ValueError("bad DER length")
        length, start = int.from_bytes(data[start : start + count], "big"), start + count
    end = start + length
    if end > len(data):
        raise ValueError("DER length runs past the data")
    return tag, data[start:end], end


def elements(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Every (tag, content) element concatenated in ``data``."""
    offset = 0
    while offset < len(data):
        tag, content, offset = _element(data, offset)
        yield tag, content


def single(data: bytes, tag: int) -> bytes:
    """The content of the single element ``data``, which must carry ``tag``."""
    found, content, end = _element(data, 0)
    if found != tag or end != len(data):
        raise ValueError(f"expected exactly one DER element with tag 0x{tag:02x}")
    return content


def oid_text(content: bytes) -> str:
    """The dotted form of an OBJECT IDENTIFIER's content octets."""
    if not content or content[-1] & 0x80:
        raise ValueError("malformed OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in (first, arcs[0] - 40 * first, *arcs[1:]))


def unsigned(tag: int, content: bytes) -> int:
    """A non-negative INTEGER or ENUMERATED value."""
    if tag not in (TAG_INTEGER, TAG_ENUMERATED) or not content or content[0] & 0x80:
        raise ValueError("expected a non-negative DER INTEGER or ENUMERATED")
    return int.from_bytes(content, "big")


def oid_pairs(sequence_content: bytes) -> dict[str, tuple[int, bytes]]:
    """The SEQUENCE { OID, value } entries of a SEQUENCE's content, by OID (duplicates refused)."""
    pairs: dict[str, tuple[int, bytes]] = {}
    for tag, content in elements(sequence_content):
        if tag != TAG_SEQUENCE:
            raise ValueError("expected SEQUENCE { OID, value }")
        parts = list(elements(content))
        if len(parts) != 2 or parts[0][0] != TAG_OID:
            raise ValueError("expected SEQUENCE { OID, value }")
        oid = oid_text(parts[0][1])
        if oid in pairs:
            raise ValueError(f"duplicate entry {oid}")
        pairs[oid] = parts[1]
    return pairs
