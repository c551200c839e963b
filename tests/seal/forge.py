"""Reproducible forgeries of sealed artifacts: locate segments and streams, rebuild headers."""

from __future__ import annotations

import json
from dataclasses import dataclass

import rfc8785

from ccdeploy.seal import _header, _segments, read_header


@dataclass(frozen=True)
class Layout:
    """Where things are inside a sealed artifact."""

    header_length: int
    payload_start: int
    stream_offsets: list[int]
    stream_sizes: list[int]
    file_sizes: list[int]

    def segment_span(self, stream: int, segment: int) -> tuple[int, int]:
        """Absolute (start, end) of one ciphertext segment."""
        start = self.stream_offsets[stream] + _segments.segment_ciphertext_start(segment)
        length = _segments.segment_plaintext_size(segment, self.file_sizes[stream]) + _segments.TAG_SIZE
        return start, start + length


def layout(data: bytes) -> Layout:
    header = read_header(data)
    length = _header.decode_preamble(data[: _header.PREAMBLE_SIZE])
    start = _header.PREAMBLE_SIZE + length + _header.MAC_SIZE
    offsets, position = [], start
    for size in header.stream_sizes():
        offsets.append(position)
        position += size
    return Layout(length, start, offsets, header.stream_sizes(), [f.size for f in header.model.files])


def replace_header(data: bytes, document: dict[str, object]) -> bytes:
    """Re-encode a (modified) header document canonically, keeping the old MAC and payload."""
    old = layout(data)
    raw = rfc8785.dumps(document)  # type: ignore[arg-type]  # plain JSON data
    mac = data[_header.PREAMBLE_SIZE + old.header_length : old.payload_start]
    return _header.encode_preamble(len(raw)) + raw + mac + data[old.payload_start :]


def header_document(data: bytes) -> dict[str, object]:
    old = layout(data)
    doc: dict[str, object] = json.loads(data[_header.PREAMBLE_SIZE : _header.PREAMBLE_SIZE + old.header_length])
    return doc
