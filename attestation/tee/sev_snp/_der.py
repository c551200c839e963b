"""The few DER primitives AMD's VCEK/VLEK extensions use: INTEGER, IA5String, OCTET STRING.

``cryptography`` hands unknown extensions over as raw bytes; these readers decode exactly one value and refuse
trailing bytes, long-form lengths over 4 bytes, and negative integers. They raise ``ValueError``; callers turn it into
the typed error that fits.
"""

from __future__ import annotations

TAG_INTEGER = 0x02
TAG_OCTET_STRING = 0x04
TAG_IA5_STRING = 0x16


def read_tlv(data: bytes, tag: int) -> bytes:
    """The content of the single DER element ``data``, which must carry ``tag``."""
    if len(data) < 2 or data[0] != tag:
        raise ValueError(f"expected DER tag 0x{tag:02x}")
    length, offset = data[1], 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or len(data) < 2 + count:
            raise ValueError("bad DER length")
        length, offset = int.from_bytes(data[2 : 2 + count], "big"), 2 + count
    if len(data) != offset + length:
        raise ValueError("DER length does not match the data")
    return data[offset:]


def read_unsigned(data: bytes) -> int:
    """A non-negative DER INTEGER."""
    content = read_tlv(data, TAG_INTEGER)
    if not content or content[0] & 0x80:
        raise ValueError("DER INTEGER is empty or negative")
    return int.from_bytes(content, "big")


def read_ia5(data: bytes) -> str:
    """A DER IA5String (ASCII)."""
    return read_tlv(data, TAG_IA5_STRING).decode("ascii")


def encode_unsigned(value: int) -> bytes:
    """DER INTEGER of a non-negative ``value`` (for the simulator)."""
    content = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return _encode(TAG_INTEGER, content)


def encode_ia5(text: str) -> bytes:
    """DER IA5String of ASCII ``text`` (for the simulator)."""
    return _encode(TAG_IA5_STRING, text.encode("ascii"))


def _encode(tag: int, content: bytes) -> bytes:
    if len(content) < 0x80:
        return bytes((tag, len(content))) + content
    size = len(content).to_bytes((len(content).bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content
