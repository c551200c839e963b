"""Every way of damaging a sealed artifact ends in a typed error and releases no plaintext."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from ccdeploy.errors import ArtifactCorrupt, ArtifactTampered, CcdError, UnsupportedFormat, WrongKek
from ccdeploy.kek import KeyWrapper
from ccdeploy.seal import KekKeyProvider, _header, open_sealed, seal_model
from tests.conftest import MakeKek
from tests.seal import forge
from tests.seal.conftest import random_bytes


@pytest.fixture
def sealed(two_file_model: Path, kek: KeyWrapper, tmp_path: Path) -> bytes:
    seal_model(two_file_model, tmp_path / "m.ccseal", [kek])
    return (tmp_path / "m.ccseal").read_bytes()


def _open_all(data: bytes, kek: KeyWrapper) -> None:
    with open_sealed(data, KekKeyProvider([kek])) as artifact:
        for entry in artifact.files:
            artifact.read_file(entry.path)


def _assert_refused(data: bytes, kek: KeyWrapper, error: type[CcdError], match: str | None = None) -> None:
    with pytest.raises(error, match=match):
        _open_all(data, kek)


def _swap(data: bytes, a: tuple[int, int], b: tuple[int, int]) -> bytes:
    out = bytearray(data)
    assert a[1] - a[0] == b[1] - b[0]
    out[a[0] : a[1]], out[b[0] : b[1]] = data[b[0] : b[1]], data[a[0] : a[1]]
    return bytes(out)


def test_untouched_artifact_opens(sealed: bytes, kek: KeyWrapper) -> None:
    _open_all(sealed, kek)


def test_truncation_anywhere(sealed: bytes, kek: KeyWrapper) -> None:
    lay = forge.layout(sealed)
    for cut in [0, 5, _header.PREAMBLE_SIZE + 10, lay.payload_start - 1, lay.payload_start + 100, len(sealed) - 1]:
        _assert_refused(sealed[:cut], kek, ArtifactCorrupt)


def test_trailing_bytes(sealed: bytes, kek: KeyWrapper) -> None:
    _assert_refused(sealed + b"\x00", kek, ArtifactCorrupt, "trailing")


def test_reordered_segments(sealed: bytes, kek: KeyWrapper) -> None:
    lay = forge.layout(sealed)
    # Stream 1 (model.onnx, 3 MiB + 11 B) has full segments 1 and 2 of equal size.
    _assert_refused(_swap(sealed, lay.segment_span(1, 1), lay.segment_span(1, 2)), kek, ArtifactTampered, "segment")


def test_duplicated_segment(sealed: bytes, kek: KeyWrapper) -> None:
    lay = forge.layout(sealed)
    s1, s2 = lay.segment_span(1, 1), lay.segment_span(1, 2)
    forged = sealed[: s2[0]] + sealed[s1[0] : s1[1]] + sealed[s2[1] :]
    _assert_refused(forged, kek, ArtifactTampered, "segment 2")


def test_dropped_segment_with_header_kept_consistent(sealed: bytes, kek: KeyWrapper) -> None:
    lay = forge.layout(sealed)
    start, end = lay.segment_span(1, 2)
    _assert_refused(sealed[:start] + sealed[end:], kek, ArtifactCorrupt, "truncated")


def test_segment_moved_between_files(sealed: bytes, kek: KeyWrapper) -> None:
    lay = forge.layout(sealed)
    # Segment 1 of model.onnx and of weights/w.bin are both full 1 MiB segments.
    _assert_refused(_swap(sealed, lay.segment_span(1, 1), lay.segment_span(2, 1)), kek, ArtifactTampered, "segment 1")


def test_whole_stream_moved_between_files(tmp_path: Path, kek: KeyWrapper) -> None:
    model = tmp_path / "twins"
    model.mkdir()
    (model / "a.bin").write_bytes(random_bytes(100, seed=1))
    (model / "b.bin").write_bytes(random_bytes(100, seed=2))
    seal_model(model, tmp_path / "t.ccseal", [kek])
    data = (tmp_path / "t.ccseal").read_bytes()
    lay = forge.layout(data)
    spans = [(o, o + s) for o, s in zip(lay.stream_offsets, lay.stream_sizes, strict=True)]
    _assert_refused(_swap(data, spans[0], spans[1]), kek, ArtifactTampered)


def test_segment_moved_between_artifacts(two_file_model: Path, kek: KeyWrapper, sealed: bytes, tmp_path: Path) -> None:
    seal_model(two_file_model, tmp_path / "other.ccseal", [kek])
    other = (tmp_path / "other.ccseal").read_bytes()
    lay, lay_other = forge.layout(sealed), forge.layout(other)
    start, end = lay.segment_span(1, 1)
    o_start, o_end = lay_other.segment_span(1, 1)
    _assert_refused(sealed[:start] + other[o_start:o_end] + sealed[end:], kek, ArtifactTampered, "segment 1")


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["model"].update(name="evil"),
        lambda d: d.update(policy_digest="ab" * 32),
        lambda d: d["model"]["files"][0].update(digest="00" * 32),
        lambda d: d["recipients"][0].update(kek="file:/elsewhere"),
        lambda d: d.update(created="2030-01-01T00:00:00Z"),
    ],
    ids=["name", "policy", "digest", "kek-uri", "created"],
)
def test_edited_header_fails_the_mac(sealed: bytes, kek: KeyWrapper, edit: Callable[[dict[str, object]], None]) -> None:
    document = forge.header_document(sealed)
    edit(document)
    _assert_refused(forge.replace_header(sealed, document), kek, ArtifactTampered, "header authentication")


def test_swapped_wrapped_key(two_file_model: Path, kek: KeyWrapper, sealed: bytes, tmp_path: Path) -> None:
    """A valid wrapped DEK of another artifact under the same KEK unwraps, but the MAC then fails."""
    seal_model(two_file_model, tmp_path / "other.ccseal", [kek])
    other = forge.header_document((tmp_path / "other.ccseal").read_bytes())
    document = forge.header_document(sealed)
    document["recipients"][0]["wrapped_dek"] = other["recipients"][0]["wrapped_dek"]  # type: ignore[index]
    _assert_refused(forge.replace_header(sealed, document), kek, ArtifactTampered, "header authentication")


def test_wrong_kek(sealed: bytes, make_kek: MakeKek) -> None:
    _assert_refused(sealed, make_kek("stranger"), WrongKek)


def test_wrong_kek_with_same_key_id_cannot_unwrap(sealed: bytes, kek: KeyWrapper, tmp_path: Path) -> None:
    document = forge.header_document(sealed)
    document["recipients"][0]["wrapped_dek"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"  # type: ignore[index]
    _assert_refused(forge.replace_header(sealed, document), kek, WrongKek, "could not unwrap")


def test_unknown_version(sealed: bytes, kek: KeyWrapper) -> None:
    forged = sealed[:8] + struct.pack(">H", 2) + sealed[10:]
    _assert_refused(forged, kek, UnsupportedFormat, "version 2")


def test_unknown_payload_algorithm(sealed: bytes, kek: KeyWrapper) -> None:
    document = forge.header_document(sealed)
    document["payload"] = {"aead": "CHACHA20_POLY1305_HKDF_1MB"}
    _assert_refused(forge.replace_header(sealed, document), kek, UnsupportedFormat, "CHACHA20")


def test_bad_magic(sealed: bytes, kek: KeyWrapper) -> None:
    _assert_refused(b"PK\x03\x04" + sealed[4:], kek, ArtifactCorrupt, "magic")


def test_non_canonical_header(sealed: bytes, kek: KeyWrapper) -> None:
    lay = forge.layout(sealed)
    raw = sealed[_header.PREAMBLE_SIZE : _header.PREAMBLE_SIZE + lay.header_length]
    spaced = raw.replace(b'{"artifact_id"', b'{ "artifact_id"', 1)
    forged = _header.encode_preamble(len(spaced)) + spaced + sealed[_header.PREAMBLE_SIZE + lay.header_length :]
    _assert_refused(forged, kek, ArtifactCorrupt, "canonical")


def test_path_traversal_names_are_rejected(sealed: bytes, kek: KeyWrapper) -> None:
    for evil in ["../evil", "/etc/passwd", "a/../../b", "a//b", "a\\b"]:
        document = forge.header_document(sealed)
        document["model"]["files"][0]["path"] = evil  # type: ignore[index]
        _assert_refused(forge.replace_header(sealed, document), kek, ArtifactCorrupt)


def test_tampered_last_segment_leaves_no_file_behind(sealed: bytes, kek: KeyWrapper, tmp_path: Path) -> None:
    """Acceptance 4: unseal to disk after tampering with the very last segment writes nothing."""
    lay = forge.layout(sealed)
    _start, end = lay.segment_span(len(lay.stream_offsets) - 1, 2)  # weights/w.bin: 3 segments
    assert end == len(sealed)
    forged = bytearray(sealed)
    forged[end - 1] ^= 0x80
    source = tmp_path / "forged.ccseal"
    source.write_bytes(forged)
    target = tmp_path / "unsealed"
    before = set(tmp_path.iterdir())
    with open_sealed(source, KekKeyProvider([kek])) as artifact, pytest.raises(ArtifactTampered, match="segment 2"):
        artifact.extract(target)
    assert not target.exists()
    assert set(tmp_path.iterdir()) == before


def test_tampered_digest_with_valid_segments_releases_nothing(
    two_file_model: Path, kek: KeyWrapper, tmp_path: Path
) -> None:
    """A DEK holder who writes a header whose digest disagrees with the payload is still caught."""
    from ccdeploy.seal import read_header

    sealed = tmp_path / "m.ccseal"
    seal_model(two_file_model, sealed, [kek])
    data = sealed.read_bytes()
    document = forge.header_document(data)
    document["model"]["files"][0]["digest"] = "11" * 32  # type: ignore[index]
    forged = forge.replace_header(data, document)
    dek = kek.unwrap(read_header(data).recipients[0].to_wrapped())
    lay = forge.layout(forged)
    head = forged[: _header.PREAMBLE_SIZE + lay.header_length]
    header = read_header(forged)
    mac = _header.header_mac(dek, header.artifact_id_bytes, head)
    forged = head + mac + forged[lay.payload_start :]
    with open_sealed(forged, KekKeyProvider([kek])) as artifact, pytest.raises(ArtifactTampered, match="digest"):
        artifact.read_file("config.json")
    with open_sealed(forged, KekKeyProvider([kek])) as artifact, pytest.raises(ArtifactTampered, match="digest"):
        artifact.extract(tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda d: d["model"]["files"][0].update(size=4_600_000_000_000_000), ArtifactCorrupt),  # > 2^32 segments
        (lambda d: d.update(created="20250102T030405Z"), ArtifactCorrupt),
        (lambda d: d.update(created="2025-01-02 03:04:05Z"), ArtifactCorrupt),
        (lambda d: d["recipients"][0].update(kek="no-scheme-here"), ArtifactCorrupt),
        (lambda d: d["model"].update(hash="md5"), UnsupportedFormat),
        (lambda d: d.update(extra_field=1), ArtifactCorrupt),
        (lambda d: d["recipients"].append(dict(d["recipients"][0], kek="FILE:x")), ArtifactCorrupt),
    ],
    ids=[
        "size-too-many-segments",
        "created-basic-format",
        "created-space",
        "kek-no-scheme",
        "hash-md5",
        "unknown-field",
        "dup-kek",
    ],
)
def test_malformed_headers_are_refused_before_any_key_is_used(
    sealed: bytes, kek: KeyWrapper, edit: Callable[[dict[str, object]], None], error: type[CcdError]
) -> None:
    document = forge.header_document(sealed)
    edit(document)
    _assert_refused(forge.replace_header(sealed, document), kek, error)


def test_file_shadowing_a_directory_is_refused(sealed: bytes, kek: KeyWrapper) -> None:
    document = forge.header_document(sealed)
    files = document["model"]["files"]  # type: ignore[index]
    files[0]["path"] = "model.onnx"  # config.json -> "model.onnx" sorts before "model.onnx/..."
    files[1]["path"] = "model.onnx/x"
    _assert_refused(forge.replace_header(sealed, document), kek, ArtifactCorrupt, "directory")


def test_wrong_length_data_key_is_refused(sealed: bytes) -> None:
    from ccdeploy.seal import DekKeyProvider

    with pytest.raises(ArtifactTampered, match="wrong length"):
        open_sealed(sealed, DekKeyProvider(b"\x00" * 16))
    with pytest.raises(ArtifactTampered, match="header authentication"):
        open_sealed(sealed, DekKeyProvider(b"\x00" * 32))
