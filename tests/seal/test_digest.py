"""The sealed-artifact digest (``ccseal.v1.blake3``): defined over head and streams, recorded while sealing."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import blake3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccdeploy.errors import ArtifactCorrupt
from ccdeploy.kek import KeyWrapper
from ccdeploy.seal import _header, read_header, seal_model
from ccdeploy.seal.digest import (
    DIGEST_ALGORITHM,
    read_digest_record,
    record_path,
    sealed_digest,
    sealed_digest_cached,
)
from tests.seal.conftest import random_bytes, write_model_dir


def _independent_digest(path: Path) -> str:
    """The digest recomputed from the definition in the module docstring, with nothing of ccdeploy's hashing."""
    data = path.read_bytes()
    header = read_header(path)
    (length,) = (int.from_bytes(data[10:14], "big"),)
    head_end = _header.PREAMBLE_SIZE + length + _header.MAC_SIZE
    parts = [blake3.blake3(data[:head_end]).digest()]
    offset = head_end
    for size in header.stream_sizes():
        parts.append(blake3.blake3(data[offset : offset + size]).digest())
        offset += size
    assert offset == len(data)
    return blake3.blake3(b"ccseal/v1 artifact digest\n" + b"".join(parts)).hexdigest()


@pytest.fixture
def sealed(tmp_path: Path, two_file_model: Path, kek: KeyWrapper) -> Path:
    output = tmp_path / "m.ccseal"
    seal_model(two_file_model, output, [kek])
    return output


def test_the_record_written_while_sealing_equals_the_digest_of_the_bytes(sealed: Path) -> None:
    record = read_digest_record(sealed)
    assert record is not None
    computed = sealed_digest(sealed)
    assert record.value == computed.value == _independent_digest(sealed)
    assert computed.digest_set() == {DIGEST_ALGORITHM: computed.value}
    assert record.artifact_id == computed.artifact_id == read_header(sealed).artifact_id
    assert record.size == computed.size == sealed.stat().st_size


def test_a_single_file_model_and_an_empty_file(tmp_path: Path, kek: KeyWrapper) -> None:
    for name, content in (("one.onnx", random_bytes(1 << 20, seed=3)), ("empty.bin", b"")):
        source = tmp_path / name
        source.write_bytes(content)
        output = tmp_path / f"{name}.ccseal"
        seal_model(source, output, [kek])
        record = read_digest_record(output)
        assert record is not None
        assert record.value == sealed_digest(output).value == _independent_digest(output)


def test_the_cached_digest_is_used_only_while_the_file_is_unchanged(sealed: Path) -> None:
    cached, from_record = sealed_digest_cached(sealed)
    assert from_record
    assert cached.value == sealed_digest(sealed).value
    stat = sealed.stat()
    os.utime(sealed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    fresh, from_record = sealed_digest_cached(sealed)
    assert not from_record
    assert fresh.value == cached.value


def test_a_forged_record_is_not_trusted_when_the_header_differs(sealed: Path) -> None:
    path = record_path(sealed)
    document = json.loads(path.read_text())
    document["header_sha256"] = "0" * 64
    path.write_text(json.dumps(document))
    digest, from_record = sealed_digest_cached(sealed)
    assert not from_record
    assert digest.value == _independent_digest(sealed)


def test_a_record_cannot_name_another_artifact(sealed: Path, tmp_path: Path, kek: KeyWrapper) -> None:
    """Whoever edits the record cannot make the digest cover another artifact's head (review finding)."""
    other_model = write_model_dir(tmp_path / "other", {"x.bin": b"other model"})
    other = tmp_path / "other.ccseal"
    seal_model(other_model, other, [kek])
    path = record_path(sealed)
    document = json.loads(path.read_text())
    foreign = json.loads(record_path(other).read_text())
    document["digest"] = foreign["digest"]  # the summary value is never trusted
    path.write_text(json.dumps(document))
    digest, from_record = sealed_digest_cached(sealed)
    assert from_record
    assert digest.value == _independent_digest(sealed) != foreign["digest"]
    document["parts"][0] = foreign["parts"][0]  # another artifact's head: refused, recomputed
    path.write_text(json.dumps(document))
    digest, from_record = sealed_digest_cached(sealed)
    assert not from_record
    assert digest.value == _independent_digest(sealed)
    document["parts"] = document["parts"][:1]  # wrong number of parts
    path.write_text(json.dumps(document))
    assert sealed_digest_cached(sealed) == (sealed_digest(sealed), False)


@pytest.mark.parametrize(
    "content", [b"", b"{", b"[]", b'{"format": "ccseal-digest-record/v1"}', b'{"format": "ccseal-digest-record/v2"}']
)
def test_an_unreadable_record_is_ignored(sealed: Path, content: bytes) -> None:
    record_path(sealed).write_bytes(content)
    assert read_digest_record(sealed) is None
    assert sealed_digest_cached(sealed) == (sealed_digest(sealed), False)


def test_sealing_without_a_record(tmp_path: Path, two_file_model: Path, kek: KeyWrapper) -> None:
    output = tmp_path / "bare.ccseal"
    seal_model(two_file_model, output, [kek], digest_record=False)
    assert not record_path(output).exists()


def test_trailing_bytes_and_truncation_are_refused(sealed: Path, tmp_path: Path) -> None:
    data = sealed.read_bytes()
    for name, forged in (("trailing", data + b"\0"), ("truncated", data[:-1]), ("tiny", data[:5])):
        target = tmp_path / f"{name}.ccseal"
        target.write_bytes(forged)
        with pytest.raises(ArtifactCorrupt):
            sealed_digest(target)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_every_byte_of_the_artifact_is_covered(sealed: Path, data: st.DataObject) -> None:
    original = sealed.read_bytes()
    reference = sealed_digest(sealed).value
    position = data.draw(st.integers(min_value=_header.PREAMBLE_SIZE + 40, max_value=len(original) - 1))
    forged = bytearray(original)
    forged[position] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
    target = sealed.with_name("forged.ccseal")
    target.write_bytes(forged)
    # A flip inside the header JSON can make it unparsable: refused, which is as good as a new digest.
    with contextlib.suppress(ArtifactCorrupt):
        assert sealed_digest(target).value != reference


def test_known_answer(tmp_path: Path) -> None:
    """The artifact digest (docs/formats/ccseal.md §15) of the known-answer artifact of §14: the definition never changes."""
    from tests.seal.test_known_answer import _artifact

    target = tmp_path / "kat.ccseal"
    target.write_bytes(_artifact())
    assert sealed_digest(target).value == "bacbe85e4c9c0bb31d5bac8ca9240e9fb5c3d74715d49ba5a7ff129bd6ab321a"
    assert sealed_digest(target).value == _independent_digest(target)
