"""Where plaintext and artifacts are written: atomic, never over the user's data unless asked."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from ccdeploy.errors import ArtifactTampered, CouldNotCheck, ModelInputError, UsageError
from ccdeploy.kek import KeyWrapper
from ccdeploy.seal import KekKeyProvider, _header, open_sealed, read_header, rekey, seal_model
from ccdeploy.seal import _segments as seg
from ccdeploy.seal._io import os_error
from ccdeploy.seal.reader import _install_directory
from tests.conftest import MakeKek
from tests.seal import forge
from tests.seal.conftest import random_bytes, write_model_dir

F, P = seg.FIRST_PLAINTEXT_SEGMENT_SIZE, seg.PLAINTEXT_SEGMENT_SIZE


@pytest.fixture
def sealed(tmp_path: Path, kek: KeyWrapper) -> Path:
    model = write_model_dir(tmp_path / "m", {"a.bin": b"alpha", "d/b.bin": b"beta"})
    seal_model(model, tmp_path / "m.ccseal", [kek])
    return tmp_path / "m.ccseal"


def test_refuses_to_unseal_over_the_current_directory_or_a_parent(
    sealed: Path, kek: KeyWrapper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work" / "sub"
    work.mkdir(parents=True)
    (work / "keep.txt").write_bytes(b"user data")
    monkeypatch.chdir(work)
    with open_sealed(sealed, KekKeyProvider([kek])) as artifact:
        for target in (Path("."), Path(".."), Path("x/.."), Path("/")):
            with pytest.raises(UsageError):
                artifact.extract(target, overwrite=True)
    assert (work / "keep.txt").read_bytes() == b"user data"
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["sub"]


def test_overwrite_replaces_a_directory_and_a_symlink_itself(sealed: Path, kek: KeyWrapper, tmp_path: Path) -> None:
    old = tmp_path / "out"
    old.mkdir()
    (old / "stale.txt").write_bytes(b"old")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "precious").write_bytes(b"not ours")
    (tmp_path / "via-link").symlink_to(linked)
    with open_sealed(sealed, KekKeyProvider([kek])) as artifact:
        with pytest.raises(UsageError, match="not an empty directory"):
            artifact.extract(old)
        with pytest.raises(UsageError, match="not an empty directory"):
            artifact.extract(tmp_path / "via-link")
        artifact.extract(old, overwrite=True)
        artifact.extract(tmp_path / "via-link", overwrite=True)
    assert sorted(p.name for p in old.iterdir()) == ["a.bin", "d"]
    assert not (tmp_path / "via-link").is_symlink()
    assert (linked / "precious").read_bytes() == b"not ours"
    assert [p.name for p in tmp_path.iterdir() if "ccdeploy-tmp" in p.name] == []


def test_a_directory_that_appears_meanwhile_is_never_deleted(tmp_path: Path) -> None:
    staging, target = tmp_path / "staging", tmp_path / "target"
    staging.mkdir()
    target.mkdir()
    (target / "user-data.txt").write_bytes(b"x")
    with pytest.raises(UsageError, match="not an empty directory"):
        _install_directory(staging, target, overwrite=False)
    assert (target / "user-data.txt").read_bytes() == b"x"


def test_a_failure_in_one_file_cancels_the_others(tmp_path: Path, kek: KeyWrapper) -> None:
    model = write_model_dir(tmp_path / "m", {f"f{i}.bin": random_bytes(3 * P, seed=i) for i in range(4)})
    seal_model(model, tmp_path / "m.ccseal", [kek])
    data = bytearray((tmp_path / "m.ccseal").read_bytes())
    start, _ = forge.layout(bytes(data)).segment_span(0, 0)
    data[start + 5] ^= 1
    seen: list[int] = []
    with open_sealed(bytes(data), KekKeyProvider([kek])) as artifact:
        with pytest.raises(ArtifactTampered, match=r"f0\.bin: segment 0"):
            artifact.read_all(progress=seen.append, workers=1)
        with pytest.raises(ArtifactTampered):
            artifact.extract(tmp_path / "out", workers=1)
    assert seen == []  # the failure came first, and the other three files were never decrypted
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("size", [F - 1, F + 1, F + P, F + 3 * P, F + 3 * P + 1, F + 4 * P + 7])
def test_segment_and_batch_boundaries(size: int, kek: KeyWrapper, tmp_path: Path) -> None:
    data = random_bytes(size, seed=size)
    (tmp_path / "m.bin").write_bytes(data)
    seal_model(tmp_path / "m.bin", tmp_path / "m.ccseal", [kek])
    with open_sealed(tmp_path / "m.ccseal", KekKeyProvider([kek])) as artifact:
        assert bytes(artifact.read_file()) == data
        with artifact.open() as reader:
            for start in (F - 3, F + P - 2, size - 5):
                reader.seek(start)
                assert reader.read(9) == data[start : start + 9]


def test_header_size_limit_is_checked_before_sealing(
    tmp_path: Path, kek: KeyWrapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = write_model_dir(tmp_path / "m", {f"{'n' * 200}{i}.bin": b"x" for i in range(20)})
    monkeypatch.setattr(_header, "MAX_HEADER_SIZE", 4096)
    with pytest.raises(ModelInputError, match="header would be"):
        seal_model(model, tmp_path / "m.ccseal", [kek])
    assert list(tmp_path.glob("*.ccseal")) == []


def test_control_characters_in_names_are_refused(tmp_path: Path, kek: KeyWrapper, sealed: Path) -> None:
    model = write_model_dir(tmp_path / "ctl", {"evil\x1b[2Jname.bin": b"x"})
    with pytest.raises(ModelInputError, match="control characters"):
        seal_model(model, tmp_path / "ctl.ccseal", [kek])
    document = forge.header_document(sealed.read_bytes())
    document["model"]["name"] = "line\nbreak"  # type: ignore[index]
    with pytest.raises(Exception, match="control characters") as caught:
        read_header(forge.replace_header(sealed.read_bytes(), document))
    assert type(caught.value).__name__ == "ArtifactCorrupt"


def test_opening_a_directory_is_a_usage_error(tmp_path: Path, kek: KeyWrapper) -> None:
    with pytest.raises(UsageError, match="not a regular file"):
        open_sealed(tmp_path, KekKeyProvider([kek]))


def test_rekey_never_replaces_another_file_unless_forced(
    sealed: Path, make_kek: MakeKek, kek: KeyWrapper, tmp_path: Path
) -> None:
    other = make_kek("other")
    precious = tmp_path / "precious.txt"
    precious.write_bytes(b"keep me")
    with pytest.raises(UsageError, match="already exists"):
        rekey(sealed, precious, KekKeyProvider([kek]), add=[other])
    assert precious.read_bytes() == b"keep me"
    rekey(sealed, precious, KekKeyProvider([kek]), add=[other], overwrite=True)
    assert len(read_header(precious).recipients) == 2


def test_rekey_in_place_keeps_mode_and_follows_a_symlink(
    sealed: Path, make_kek: MakeKek, kek: KeyWrapper, tmp_path: Path
) -> None:
    os.chmod(sealed, 0o644)
    link = tmp_path / "link.ccseal"
    link.symlink_to(sealed)
    rekey(link, link, KekKeyProvider([kek]), add=[make_kek("second")])
    assert link.is_symlink()
    assert oct(sealed.stat().st_mode & 0o777) == "0o644"
    assert len(read_header(sealed).recipients) == 2


def test_os_errors_map_to_exit_codes() -> None:
    assert isinstance(os_error(OSError(errno.ENOSPC, "No space left on device"), "write x"), CouldNotCheck)
    usage = os_error(OSError(errno.EACCES, "Permission denied"), "write x")
    assert isinstance(usage, UsageError) and usage.message == "cannot write x: Permission denied"
