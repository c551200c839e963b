"""The ``tink`` package's streaming AEAD over a key of our own: the reference ccseal payloads must match.

Shared by the interop tests and the benchmark.
"""

from __future__ import annotations

import io

import tink
from tink import secret_key_access, streaming_aead
from tink.proto import aes_gcm_hkdf_streaming_pb2, common_pb2, tink_pb2

from ccdeploy.seal import _segments

__all__ = ["KeepOpenBytesIO", "tink_streaming_aead"]

_KEY_TYPE = "type.googleapis.com/google.crypto.tink.AesGcmHkdfStreamingKey"


class KeepOpenBytesIO(io.BytesIO):
    """tink closes its destination stream on exit; keep the bytes readable afterwards."""

    def close(self) -> None:
        pass


def tink_streaming_aead(key: bytes) -> streaming_aead.StreamingAead:
    """tink's ``AES256_GCM_HKDF_1MB`` primitive holding ``key`` (RAW output prefix, 1 MiB segments)."""
    streaming_aead.register()
    params = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingParams(
        ciphertext_segment_size=_segments.CIPHERTEXT_SEGMENT_SIZE,
        derived_key_size=_segments.KEY_SIZE,
        hkdf_hash_type=common_pb2.SHA256,
    )
    proto_key = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingKey(version=0, key_value=key, params=params)
    keyset = tink_pb2.Keyset(
        primary_key_id=1,
        key=[
            tink_pb2.Keyset.Key(
                key_data=tink_pb2.KeyData(
                    type_url=_KEY_TYPE,
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
