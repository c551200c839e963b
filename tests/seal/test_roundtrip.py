"""Sealing and opening: every output route, random access, several recipients, rekey."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from ccdeploy.errors import UsageError, WrongKek
from ccdeploy.kek import KeyWrapper
from ccdeploy.seal import DekKeyProvider, KekKeyProvider, _segments, open_sealed, read_header, rekey, seal_model
from tests.conftest import MakeKek
from tests.seal.conftest import random_bytes


def _contents(model: Path) -> dict[str, bytes]:
    return {p.relative_to(model).as_posix(): p.read_bytes() for p in sorted(model.rglob("*")) if p.is_file()}


def test_directory_round_trip_every_route(two_file_model: Path, kek: KeyWrapper, tmp_path: Path) -> None:
    expected = _contents(two_file_model)
    sealed = tmp_path / "m.ccseal"
    progress: list[int] = []
    header = seal_model(two_file_model, sealed, [kek], progress=progress.append)
    assert sum(progress) == sum(len(v) for v in expected.values())
    assert [f.path for f in header.model.files] == ["config.json", "model.onnx", "weights/w.bin"]
    provider = KekKeyProvider([kek])
    for source in (sealed, str(sealed), sealed.read_bytes(), io.BytesIO(sealed.read_bytes())):
        with open_sealed(source, provider) as artifact:
            assert {f.path: bytes(artifact.read_file(f.path)) for f in artifact.files} == expected
    with open_sealed(sealed, provider) as artifact:
        written = artifact.extract(tmp_path / "out")
    assert _contents(tmp_path / "out") == expected
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in written)
    with open_sealed(sealed, provider) as artifact:
        out = tmp_path / "stream.bin"
        fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            artifact.write_to(fd, "model.onnx")
        finally:
            os.close(fd)
    assert out.read_bytes() == expected["model.onnx"]


@pytest.mark.parametrize("size", [0, 1, _segments.FIRST_PLAINTEXT_SEGMENT_SIZE, 5 * 1024 * 1024 + 3])
def test_single_file_sizes(size: int, kek: KeyWrapper, tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(random_bytes(size, seed=size))
    sealed = tmp_path / "m.ccseal"
    seal_model(model, sealed, [kek], hash_algorithm="blake3")
    with open_sealed(sealed, KekKeyProvider([kek])) as artifact:
        assert bytes(artifact.read_file()) == model.read_bytes()


def test_random_access_reads_any_range(kek: KeyWrapper, tmp_path: Path) -> None:
    data = random_bytes(4 * 1024 * 1024 + 77, seed=5)
    model = tmp_path / "big.bin"
    model.write_bytes(data)
    sealed = tmp_path / "big.ccseal"
    seal_model(model, sealed, [kek])
    boundary = _segments.FIRST_PLAINTEXT_SEGMENT_SIZE
    with open_sealed(sealed, KekKeyProvider([kek])) as artifact, artifact.open() as reader:
        for start, length in [
            (0, 10),
            (boundary - 5, 10),
            (boundary + 1048560 * 2 - 3, 9),
            (len(data) - 4, 100),
            (123_456, 2_500_000),
        ]:
            reader.seek(start)
            assert reader.read(length) == data[start : start + length]
        reader.seek(-3, io.SEEK_END)
        assert reader.read() == data[-3:]
        assert reader.read(5) == b""
        with pytest.raises(ValueError):
            reader.seek(-1)


def test_several_recipients_each_open_it(make_kek: MakeKek, tmp_path: Path) -> None:
    a, b, c = make_kek("a"), make_kek("b"), make_kek("c")
    model = tmp_path / "m.bin"
    model.write_bytes(b"weights")
    sealed = tmp_path / "m.ccseal"
    header = seal_model(model, sealed, [a, b])
    assert [r.key_id for r in header.recipients] == [a.key_id, b.key_id]
    for kek in (a, b):
        with open_sealed(sealed, KekKeyProvider([kek])) as artifact:
            assert bytes(artifact.read_file()) == b"weights"
    with pytest.raises(WrongKek):
        open_sealed(sealed, KekKeyProvider([c]))


def test_rekey_rewrites_only_the_header(make_kek: MakeKek, two_file_model: Path, tmp_path: Path) -> None:
    old, new, extra = make_kek("old"), make_kek("new"), make_kek("extra")
    sealed = tmp_path / "m.ccseal"
    before = seal_model(two_file_model, sealed, [old])
    payload_before = sealed.read_bytes()[-sum(before.stream_sizes()) :]
    after = rekey(sealed, sealed, KekKeyProvider([old]), add=[new, extra], remove=[old.key_id])
    assert [r.key_id for r in after.recipients] == [new.key_id, extra.key_id]
    assert after.artifact_id == before.artifact_id
    assert sealed.read_bytes()[-len(payload_before) :] == payload_before
    with pytest.raises(WrongKek):
        open_sealed(sealed, KekKeyProvider([old]))
    for kek in (new, extra):
        with open_sealed(sealed, KekKeyProvider([kek])) as artifact:
            assert bytes(artifact.read_file("config.json")) == b'{"a": 1}'
    rekey(sealed, tmp_path / "copy.ccseal", KekKeyProvider([new]), remove=[extra.uri])
    assert [r.key_id for r in read_header(tmp_path / "copy.ccseal").recipients] == [new.key_id]
    with pytest.raises(UsageError, match="last recipient"):
        rekey(tmp_path / "copy.ccseal", tmp_path / "copy.ccseal", KekKeyProvider([new]), remove=[new.key_id])
    with pytest.raises(UsageError, match="already a recipient"):
        rekey(sealed, sealed, KekKeyProvider([new]), add=[new])
    with pytest.raises(UsageError, match="no recipient matches"):
        rekey(sealed, sealed, KekKeyProvider([new]), remove=["nope"])


def test_dek_provider_opens_with_the_released_key(kek: KeyWrapper, tmp_path: Path) -> None:
    model = tmp_path / "m.bin"
    model.write_bytes(b"abc")
    sealed = tmp_path / "m.ccseal"
    seal_model(model, sealed, [kek])
    recipient = read_header(sealed).recipients[0]
    dek = kek.unwrap(recipient.to_wrapped())
    with open_sealed(sealed, DekKeyProvider(dek)) as artifact:
        assert hashlib.sha256(artifact.read_file()).hexdigest() == artifact.files[0].digest


def test_output_is_never_overwritten_unless_asked(kek: KeyWrapper, tmp_path: Path) -> None:
    model = tmp_path / "m.bin"
    model.write_bytes(b"abc")
    sealed = tmp_path / "m.ccseal"
    sealed.write_bytes(b"precious")
    with pytest.raises(UsageError, match="already exists"):
        seal_model(model, sealed, [kek])
    assert sealed.read_bytes() == b"precious"
    seal_model(model, sealed, [kek], overwrite=True)
    assert read_header(sealed).model.files[0].size == 3
    assert [p.name for p in tmp_path.iterdir() if "ccdeploy-tmp" in p.name] == []


def test_unseal_refuses_a_non_empty_directory(kek: KeyWrapper, tmp_path: Path) -> None:
    model = tmp_path / "m.bin"
    model.write_bytes(b"abc")
    sealed = tmp_path / "m.ccseal"
    seal_model(model, sealed, [kek])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep").write_bytes(b"x")
    with open_sealed(sealed, KekKeyProvider([kek])) as artifact:
        with pytest.raises(UsageError):
            artifact.extract(tmp_path / "out")
        assert (tmp_path / "out" / "keep").exists()
        artifact.extract(tmp_path / "out", overwrite=True)
    assert (tmp_path / "out" / "m.bin").read_bytes() == b"abc"
    with open_sealed(sealed, KekKeyProvider([kek])) as artifact, pytest.raises(UsageError, match="no file"):
        artifact.read_file("other")


def test_unusable_inputs_are_usage_errors(kek: KeyWrapper, tmp_path: Path) -> None:
    from ccdeploy.errors import ModelInputError

    model = tmp_path / "m.bin"
    model.write_bytes(b"abc")
    with pytest.raises(UsageError, match="twice"):
        seal_model(model, tmp_path / "a.ccseal", [kek, kek])
    with pytest.raises(UsageError, match="at least one KEK"):
        seal_model(model, tmp_path / "a.ccseal", [])
    with pytest.raises(ModelInputError, match="name: String should have at most 1024"):
        seal_model(model, tmp_path / "a.ccseal", [kek], name="x" * 2000)
    with pytest.raises(ModelInputError, match="cannot read"):
        seal_model(tmp_path / "missing", tmp_path / "a.ccseal", [kek])
    assert not (tmp_path / "a.ccseal").exists()
    assert [p.name for p in tmp_path.iterdir() if "ccdeploy-tmp" in p.name] == []
