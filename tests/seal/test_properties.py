"""Property tests: arbitrary bytes and single-byte corruptions always end in a typed error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccdeploy.errors import ArtifactCorrupt, CcdError, UnsupportedFormat
from ccdeploy.kek import KeyWrapper, kek_from_uri
from ccdeploy.kek.file import create_kek_file
from ccdeploy.seal import KekKeyProvider, _header, open_sealed, read_header, seal_model
from tests.seal.conftest import random_bytes, write_model_dir

_PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def small_artifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, KeyWrapper]:
    root = tmp_path_factory.mktemp("prop")
    kek = kek_from_uri(create_kek_file(root / "k.kek"))
    model = write_model_dir(root / "m", {"a.onnx": b"graph bytes", "w/x.bin": random_bytes(300, seed=1), "e": b""})
    seal_model(model, root / "m.ccseal", [kek])
    return (root / "m.ccseal").read_bytes(), kek


@pytest.fixture(scope="module")
def multi_segment_artifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, KeyWrapper]:
    root = tmp_path_factory.mktemp("prop-big")
    kek = kek_from_uri(create_kek_file(root / "k.kek"))
    model = write_model_dir(root / "m", {"a.bin": random_bytes(2_200_000, seed=2), "b.bin": random_bytes(10, seed=3)})
    seal_model(model, root / "m.ccseal", [kek], hash_algorithm="blake3")
    return (root / "m.ccseal").read_bytes(), kek


def _open_everything(data: bytes, kek: KeyWrapper) -> list[memoryview]:
    with open_sealed(data, KekKeyProvider([kek])) as artifact:
        return [artifact.read_file(entry.path) for entry in artifact.files]


@given(st.binary(max_size=4096))
@settings(max_examples=500, deadline=None)
def test_header_parser_on_arbitrary_bytes(raw: bytes) -> None:
    with pytest.raises((ArtifactCorrupt, UnsupportedFormat)):
        _header.parse_header(raw)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)


@given(_json)
@settings(max_examples=300, deadline=None)
def test_header_parser_on_arbitrary_json(document: object) -> None:
    with pytest.raises((ArtifactCorrupt, UnsupportedFormat)):
        _header.parse_header(json.dumps(document, separators=(",", ":")).encode())


@given(st.binary(max_size=2048))
@settings(max_examples=300, deadline=None)
def test_reader_on_arbitrary_bytes_after_a_valid_preamble(tail: bytes) -> None:
    data = _header.encode_preamble(len(tail)) + tail
    with pytest.raises(CcdError):
        read_header(data)


def test_every_single_byte_flip_is_refused(small_artifact: tuple[bytes, KeyWrapper]) -> None:
    """Exhaustive: each byte position of a small multi-file artifact, flipped, yields a typed error."""
    data, kek = small_artifact
    assert _open_everything(data, kek)
    for position in range(len(data)):
        forged = bytearray(data)
        forged[position] ^= 0x01
        with pytest.raises(CcdError):
            _open_everything(bytes(forged), kek)


@given(st.data())
@_PROFILE
def test_random_byte_corruption_in_multi_segment_artifact(
    multi_segment_artifact: tuple[bytes, KeyWrapper], data: st.DataObject
) -> None:
    original, kek = multi_segment_artifact
    position = data.draw(st.integers(0, len(original) - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="xor")
    forged = bytearray(original)
    forged[position] ^= mask
    with pytest.raises(CcdError):
        _open_everything(bytes(forged), kek)


def test_golden_layout_of_preamble(small_artifact: tuple[bytes, KeyWrapper], tmp_path: Path) -> None:
    data, _ = small_artifact
    assert data[:8] == b"\x89CCSEAL\n"
    assert data[8:10] == b"\x00\x01"
    length = int.from_bytes(data[10:14], "big")
    assert data[14 : 14 + length] == read_header(data).canonical_json()


def test_json_integers_beyond_2_53_are_refused(small_artifact: tuple[bytes, KeyWrapper]) -> None:
    data, _ = small_artifact
    document = json.loads(read_header(data).canonical_json())
    document["model"]["files"][0]["size"] = 1 << 53
    with pytest.raises(ArtifactCorrupt):
        _header.parse_header(json.dumps(document, separators=(",", ":"), sort_keys=True).encode())
