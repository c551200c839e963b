"""Known-answer test: the artifact of docs/formats/ccseal.md §14, rebuilt from fixed inputs.

The spec's values were computed by an implementation written from the spec alone; this test rebuilds
the same bytes with ccdeploy's own building blocks, then opens them through the public API.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from ccdeploy.kek.file import FileKek
from ccdeploy.seal import DekKeyProvider, KekKeyProvider, _header, _segments, open_sealed

KEK = bytes(range(0x00, 0x20))
DEK = bytes(range(0x40, 0x60))
ARTIFACT_ID = bytes(range(0xA0, 0xC0))
FILES = [("a/b", b"hello", b"\x11" * 32, b"\x22" * 7), ("a-c", b"", b"\x33" * 32, b"\x44" * 7)]


def _stream(index: int, plaintext: bytes, salt: bytes, prefix: bytes) -> bytes:
    stream_header = bytes([_segments.HEADER_SIZE]) + salt + prefix
    key = _segments.open_stream(DEK, stream_header, _header.stream_associated_data(ARTIFACT_ID, index))
    out = bytearray(len(plaintext) + _segments.TAG_SIZE)
    _segments.encrypt_segment_into(key, 0, True, memoryview(plaintext), memoryview(out))
    return stream_header + bytes(out)


def _artifact() -> bytes:
    kek = FileKek("file:/etc/ccdeploy/kek.json", KEK)
    assert kek.key_id == "a26ca7fe8c9e0df8c39b301546a17308"
    wrapped = aes_key_wrap_with_padding(KEK, DEK)
    assert wrapped.hex() == "6d10efa7ee3023460945c8a9886e7101353d66337100c5ff2bcb08bf790e9e202eaa28c31d721d87"
    digests = [hashlib.sha256(content).digest() for _, content, _, _ in FILES]
    header = _header.SealedHeader(
        artifact_id=ARTIFACT_ID.hex(),
        created="2025-01-02T03:04:05Z",
        tool="ccdeploy/0.1.0",
        model=_header.ModelInfo(
            name="demo",
            hash="sha256",
            manifest_digest=hashlib.sha256(b"".join(digests)).hexdigest(),
            files=tuple(
                _header.FileEntry(path=path, size=len(content), digest=digest.hex())
                for (path, content, _, _), digest in zip(FILES, digests, strict=True)
            ),
        ),
        payload=_header.PayloadInfo(aead="AES256_GCM_HKDF_1MB"),
        recipients=(
            _header.Recipient(
                kek=kek.uri,
                key_id=kek.key_id,
                wrap="AES-KWP",
                wrapped_dek=base64.b64encode(wrapped).decode(),
                context={"ccdeploy:artifact_id": ARTIFACT_ID.hex()},
            ),
        ),
    )
    assert header.model.manifest_digest == "6f56cb7315f2efda3924f966ffee8a0b59057481ffe287876c863db44f2e5683"
    raw = header.canonical_json()
    authenticated = _header.encode_preamble(len(raw)) + raw
    assert authenticated[:14].hex() == "8943435345414c0a000100000357"
    mac = _header.header_mac(DEK, ARTIFACT_ID, authenticated)
    assert mac.hex() == "257699cbb95ad522edb28bf072510c26c8efd29f2c11c0134e5934542414b5ab"
    streams = b"".join(_stream(i, content, salt, prefix) for i, (_, content, salt, prefix) in enumerate(FILES))
    return authenticated + mac + streams


def test_known_answer_artifact_bytes() -> None:
    assert _header.stream_associated_data(ARTIFACT_ID, 0).hex() == (
        "c775002a1c3e97b0dead94c8eac3c585cf28fb19d5c7e118f9aa929e5638c477"
    )
    data = _artifact()
    assert len(data) == 1018
    assert data[901 + 40 : 901 + 61].hex() == "7d6f8aeda2" + "db961d36785b7140ddb9b728046601b9"
    assert hashlib.sha256(data).hexdigest() == "ed4255864470e42889ca9cafb1cef8fd7db3646df18f7b8c701499398e937191"


def test_known_answer_artifact_opens() -> None:
    data = _artifact()
    kek = FileKek("file:/etc/ccdeploy/kek.json", KEK)
    for provider in (KekKeyProvider([kek]), DekKeyProvider(DEK)):
        with open_sealed(data, provider) as artifact:
            assert bytes(artifact.read_file("a/b")) == b"hello"
            assert bytes(artifact.read_file("a-c")) == b""
