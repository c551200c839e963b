"""Byte compatibility of our payload streams with the ``tink`` package, both directions."""

from __future__ import annotations

import io
import os

import pytest
import tink
from tink import secret_key_access, streaming_aead
from tink.proto import aes_gcm_hkdf_streaming_pb2, common_pb2, tink_pb2

from ccdeploy.seal import _segments
from tests.seal.conftest import random_bytes

SIZES = [0, 1, _segments.FIRST_PLAINTEXT_SEGMENT_SIZE, 10 * 1024 * 1024 + 7]
AD = b"\x01" * 32


class _Sink(io.BytesIO):
    """tink closes the destination stream on exit; keep the bytes readable afterwards."""

    def close(self) -> None:
        pass


def _tink_primitive(key: bytes) -> streaming_aead.StreamingAead:
    streaming_aead.register()
    params = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingParams(
        ciphertext_segment_size=_segments.CIPHERTEXT_SEGMENT_SIZE, derived_key_size=32, hkdf_hash_type=common_pb2.SHA256
    )
    proto_key = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingKey(version=0, key_value=key, params=params)
    keyset = tink_pb2.Keyset(
        primary_key_id=1,
        key=[
            tink_pb2.Keyset.Key(
                key_data=tink_pb2.KeyData(
                    type_url="type.googleapis.com/google.crypto.tink.AesGcmHkdfStreamingKey",
                    value=proto_key.SerializeToString(),
                    key_material_type=tink_pb2.KeyData.SYMMETRIC,
                ),
                status=tink_pb2.ENABLED,
                key_id=1,
                output_prefix_type=tink_pb2.RAW,
            )
        ],
    )
    handle = tink.proto_keyset_format.parse(keyset.SerializeToString(), secret_key_access.TOKEN)
    return handle.primitive(streaming_aead.StreamingAead)


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
    with _tink_primitive(key).new_decrypting_stream(io.BytesIO(ciphertext), AD) as reader:
        assert reader.read() == plaintext


@pytest.mark.parametrize("size", SIZES, ids=lambda n: f"{n}B")
def test_we_decrypt_tinks(size: int) -> None:
    key = os.urandom(32)
    plaintext = random_bytes(size, seed=size + 1)
    sink = _Sink()
    with _tink_primitive(key).new_encrypting_stream(sink, AD) as writer:
        writer.write(plaintext)
    ciphertext = sink.getvalue()
    assert len(ciphertext) == _segments.ciphertext_size(size)
    assert _our_decrypt(key, ciphertext, size) == plaintext


def test_tink_rejects_our_stream_under_other_associated_data() -> None:
    key = os.urandom(32)
    ciphertext = _our_encrypt(key, b"model bytes")
    with (
        pytest.raises(tink.TinkError),
        _tink_primitive(key).new_decrypting_stream(io.BytesIO(ciphertext), b"other") as reader,
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
