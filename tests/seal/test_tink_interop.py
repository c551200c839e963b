"""Byte compatibility of our payload streams with the ``tink`` package, both directions."""

from __future__ import annotations

import io
import os

import pytest
import tink

from ccdeploy.seal import _segments
from tests.seal.conftest import random_bytes
from tests.tink_keyset import KeepOpenBytesIO, tink_streaming_aead

SIZES = [0, 1, _segments.FIRST_PLAINTEXT_SEGMENT_SIZE, 10 * 1024 * 1024 + 7]
AD = b"\x01" * 32


def _our_encrypt(key: bytes, plaintext: bytes) -> bytes:
    header, stream_key = _segments.new_stream(key, AD)
    out = bytearray(header)
    total = _segments.segment_count(len(plaintext))
    view = memoryview(plaintext)
    for index in range(total):
        start = _segments.segment_plaintext_start(index)
        size = _segments.segment_plaintext_size(index, len(plaintext))
        buf = bytearray(size + _segments.TAG_SIZE)
        _segments.encrypt_segment_into(
            stream_key, index, index == total - 1, view[start : start + size], memoryview(buf)
        )
        out += buf
    return bytes(out)


def _our_decrypt(key: bytes, ciphertext: bytes, size: int) -> bytes:
    stream_key = _segments.open_stream(key, ciphertext[: _segments.HEADER_SIZE], AD)
    total = _segments.segment_count(size)
    out = bytearray()
    view = memoryview(ciphertext)
    for index in range(total):
        start = _segments.segment_ciphertext_start(index)
        length = _segments.segment_plaintext_size(index, size)
        buf = bytearray(length)
        last = index == total - 1
        _segments.decrypt_segment_into(stream_key, index, last, view[start : start + length + 16], memoryview(buf))
        out += buf
    return bytes(out)


@pytest.mark.parametrize("size", SIZES, ids=lambda n: f"{n}B")
def test_tink_decrypts_ours(size: int) -> None:
    key = os.urandom(32)
    plaintext = random_bytes(size, seed=size)
    ciphertext = _our_encrypt(key, plaintext)
    assert len(ciphertext) == _segments.ciphertext_size(size)
    with tink_streaming_aead(key).new_decrypting_stream(io.BytesIO(ciphertext), AD) as reader:
        assert reader.read() == plaintext


@pytest.mark.parametrize("size", SIZES, ids=lambda n: f"{n}B")
def test_we_decrypt_tinks(size: int) -> None:
    key = os.urandom(32)
    plaintext = random_bytes(size, seed=size + 1)
    sink = KeepOpenBytesIO()
    with tink_streaming_aead(key).new_encrypting_stream(sink, AD) as writer:
        writer.write(plaintext)
    ciphertext = sink.getvalue()
    assert len(ciphertext) == _segments.ciphertext_size(size)
    assert _our_decrypt(key, ciphertext, size) == plaintext


def test_tink_rejects_our_stream_under_other_associated_data() -> None:
    key = os.urandom(32)
    ciphertext = _our_encrypt(key, b"model bytes")
    with (
        pytest.raises(tink.TinkError),
        tink_streaming_aead(key).new_decrypting_stream(io.BytesIO(ciphertext), b"other") as reader,
    ):
        reader.read()


def test_segment_geometry_is_consistent() -> None:
    for size in [0, 1, 1048519, 1048520, 1048521, 2097080, 2097081, 50_000_000]:
        total = _segments.segment_count(size)
        sizes = [_segments.segment_plaintext_size(i, size) for i in range(total)]
        assert sum(sizes) == size
        assert all(s > 0 for s in sizes[:-1])
        for offset in {0, size // 2, max(size - 1, 0)}:
            if size:
                seg = _segments.segment_of_offset(offset)
                assert (
                    _segments.segment_plaintext_start(seg)
                    <= offset
                    < _segments.segment_plaintext_start(seg) + sizes[seg]
                )
