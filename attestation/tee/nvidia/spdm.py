"""SPDM 1.1 GET_MEASUREMENTS request and MEASUREMENTS response, parsed by their lengths (DMTF DSP0274 §10.11).

NVIDIA GPU evidence is the request the driver sent followed by the GPU's signed response::

    request:  version 0x11 | 0xE0 | param1 | param2 | nonce[32] | slot id
    response: version 0x11 | 0x60 | param1 | param2 | number of blocks | record length (u24 LE)
              | measurement blocks | responder nonce[32] | opaque length (u16 LE) | opaque data | signature

Each measurement block is ``index | specification | size (u16 LE) | DMTF type | value size (u16 LE) | value``.
The signature (P-384: 96 bytes r||s) covers the request and the response up to the signature. Real reports carry
bytes after the signature; they are not signed, are kept in :attr:`SpdmReport.trailing` and never read.
Every failure is a :class:`SpdmMalformed` naming the offset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from attestation.errors import MalformedEvidence
from attestation.tee.nvidia.opaque import OpaqueData, parse_opaque_data

SPDM_VERSION_1_1 = 0x11
GET_MEASUREMENTS = 0xE0
MEASUREMENTS = 0x60
NONCE_BYTES = 32
REQUEST_BYTES = 4 + NONCE_BYTES + 1
#: ECDSA P-384 signature r||s: what NVIDIA's GPU attestation keys produce.
P384_SIGNATURE_BYTES = 96
#: Measurement specification bit 0: the DMTF measurement format.
DMTF_SPECIFICATION = 0x01
#: param1 bit 0 of the request: a signature was requested (and the request carries a slot id).
_SIGNATURE_REQUESTED = 0x01
_RESPONSE_HEADER = 8
_BLOCK_HEADER = 4
_DMTF_HEADER = 3
_OPAQUE_LENGTH = 2
#: Far above any real report (about 4 KiB); stops abuse before any parsing.
MAX_REPORT_BYTES = 1 << 20


class SpdmMalformed(MalformedEvidence):
    """The SPDM request or response does not decode."""


@dataclass(frozen=True, slots=True)
class SpdmRequest:
    """A GET_MEASUREMENTS request with a signature requested."""

    version: int
    param1: int
    param2: int
    nonce: bytes
    slot_id: int


@dataclass(frozen=True, slots=True)
class MeasurementBlock:
    """One measurement block in the DMTF format."""

    index: int
    specification: int
    value_type: int
    value: bytes


@dataclass(frozen=True, slots=True)
class SpdmReport:
    """A parsed GET_MEASUREMENTS request and MEASUREMENTS response (nothing verified yet).

    Attributes:
        request: The request, with the requester's nonce.
        version: The response's SPDM version.
        param1: The response's param1.
        param2: The response's param2 (slot id in its low nibble).
        blocks: Measurement blocks by index (1-based, as SPDM numbers them), in report order.
        responder_nonce: The GPU's own nonce.
        opaque: NVIDIA's opaque fields, decoded.
        opaque_bytes: The raw opaque data.
        signed: The request followed by the response up to the signature: what the signature covers.
        signature: The raw signature (r||s).
        trailing: Unsigned bytes after the signature (present in real reports); never interpreted.
    """

    request: SpdmRequest
    version: int
    param1: int
    param2: int
    blocks: Mapping[int, MeasurementBlock]
    responder_nonce: bytes
    opaque: OpaqueData
    opaque_bytes: bytes
    signed: bytes
    signature: bytes
    trailing: bytes

    @property
    def nonce(self) -> bytes:
        """The requester's 32-byte nonce (the freshness value the verifier's caller chose)."""
        return self.request.nonce


class _Reader:
    """Reads fields front to back and names the offset of whatever is missing."""

    def __init__(self, data: bytes, base: int = 0) -> None:
        self.data = data
        self.offset = 0
        self.base = base  # where ``data`` starts in the evidence, so that messages name absolute offsets

    def take(self, size: int, what: str) -> bytes:
        if size > len(self.data) - self.offset:
            raise SpdmMalformed(
                f"SPDM report truncated: {what} needs {size} bytes at offset {self.base + self.offset}, "
                f"{len(self.data) - self.offset} left"
            )
        value = self.data[self.offset : self.offset + size]
        self.offset += size
        return value

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def little(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "little")


def _parse_request(reader: _Reader) -> SpdmRequest:
    version = reader.byte("request version")
    if version != SPDM_VERSION_1_1:
        raise SpdmMalformed(f"request at offset 0: SPDM version 0x{version:02x} is not supported (expected 0x11)")
    code = reader.byte("request code")
    if code != GET_MEASUREMENTS:
        raise SpdmMalformed(f"offset 1: request code 0x{code:02x} is not GET_MEASUREMENTS (0xe0)")
    param1 = reader.byte("request param1")
    if not param1 & _SIGNATURE_REQUESTED:
        raise SpdmMalformed("offset 2: the request did not ask for a signed response (param1 bit 0 clear)")
    param2 = reader.byte("request param2")
    nonce = reader.take(NONCE_BYTES, "request nonce")
    slot_id = reader.byte("request slot id")
    return SpdmRequest(version=version, param1=param1, param2=param2, nonce=nonce, slot_id=slot_id)


def _parse_block(reader: _Reader) -> MeasurementBlock:
    start = reader.base + reader.offset
    index = reader.byte("measurement block index")
    specification = reader.byte("measurement specification")
    size = reader.little(2, "measurement size")
    if not specification & DMTF_SPECIFICATION:
        raise SpdmMalformed(f"offset {start}: measurement block {index} is not in the DMTF format")
    if size < _DMTF_HEADER:
        raise SpdmMalformed(f"offset {start}: measurement block {index} of {size} bytes has no DMTF header")
    value_type = reader.byte("DMTF value type")
    value_size = reader.little(2, "DMTF value size")
    if value_size != size - _DMTF_HEADER:
        raise SpdmMalformed(
            f"offset {start}: measurement block {index}: DMTF value size {value_size} does not match block size {size}"
        )
    value = reader.take(value_size, f"measurement block {index} value")
    return MeasurementBlock(index=index, specification=specification, value_type=value_type, value=value)


def _parse_record(data: bytes, base: int, count: int) -> dict[int, MeasurementBlock]:
    reader = _Reader(data, base)
    blocks: dict[int, MeasurementBlock] = {}
    for _ in range(count):
        start = reader.base + reader.offset
        block = _parse_block(reader)
        if block.index in blocks:
            raise SpdmMalformed(f"offset {start}: measurement block index {block.index} repeated")
        blocks[block.index] = block
    if reader.offset != len(data):
        raise SpdmMalformed(
            f"offset {base + reader.offset}: measurement record length is {len(data)} bytes but its {count} blocks "
            f"take {reader.offset}"
        )
    return blocks


def parse_spdm_report(data: bytes, *, signature_size: int = P384_SIGNATURE_BYTES) -> SpdmReport:
    """Parse request || response by the lengths they state; raise :class:`SpdmMalformed` on any inconsistency.

    Args:
        data: The raw evidence bytes (the request immediately followed by the response).
        signature_size: The signature length the attestation key implies (96 for P-384).
    """
    if len(data) > MAX_REPORT_BYTES:
        raise SpdmMalformed(f"SPDM report of {len(data)} bytes is over the {MAX_REPORT_BYTES}-byte limit")
    reader = _Reader(bytes(data))
    request = _parse_request(reader)
    response_start = reader.offset
    version = reader.byte("response version")
    if version != request.version:
        raise SpdmMalformed(
            f"offset {response_start}: response SPDM version 0x{version:02x} differs from the request's"
        )
    code = reader.byte("response code")
    if code != MEASUREMENTS:
        raise SpdmMalformed(f"offset {response_start + 1}: response code 0x{code:02x} is not MEASUREMENTS (0x60)")
    param1 = reader.byte("response param1")
    param2 = reader.byte("response param2")
    count = reader.byte("number of blocks")
    record_length = reader.little(3, "measurement record length")
    record_start = reader.offset
    blocks = _parse_record(reader.take(record_length, "measurement record"), record_start, count)
    responder_nonce = reader.take(NONCE_BYTES, "responder nonce")
    opaque_length = reader.little(_OPAQUE_LENGTH, "opaque length")
    opaque_start = reader.offset
    opaque_bytes = reader.take(opaque_length, "opaque data")
    opaque = parse_opaque_data(opaque_bytes, base_offset=opaque_start)
    signed_end = reader.offset
    signature = reader.take(signature_size, "signature")
    return SpdmReport(
        request=request,
        version=version,
        param1=param1,
        param2=param2,
        blocks=MappingProxyType(blocks),
        responder_nonce=responder_nonce,
        opaque=opaque,
        opaque_bytes=opaque_bytes,
        signed=reader.data[:signed_end],
        signature=signature,
        trailing=reader.data[reader.offset :],
    )
