"""Loading sealed models: the tmpfs staging route, the in-memory route, and the memory helpers under them."""

from __future__ import annotations

import mmap
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ccdeploy.seal import DekKeyProvider, open_sealed
from enclave import loader, memory, runtime
from enclave.errors import ModelRejected, RuntimeUnavailable
from enclave.loader import session_from_sealed
from enclave.memory import is_ram_backed, mount_type, ram_staging_dir, zero
from tests.enclave.conftest import SealedMlp

X = np.arange(12, dtype=np.float32).reshape(3, 4) / 7


@pytest.fixture
def shm_root() -> Iterator[Path]:
    """A private directory on /dev/shm to stage under, so a test sees exactly what was staged."""
    if not is_ram_backed(Path("/dev/shm")):
        pytest.skip("no tmpfs at /dev/shm")
    root = Path(tempfile.mkdtemp(prefix="ccdeploy-test-", dir="/dev/shm"))
    yield root
    for child in root.iterdir():
        raise AssertionError(f"left behind on tmpfs: {child}")
    root.rmdir()


def test_tmpfs_route_equals_memory_route_and_leaves_nothing(sealed_mlp: SealedMlp, shm_root: Path) -> None:
    with open_sealed(sealed_mlp.path, DekKeyProvider(sealed_mlp.dek)) as artifact:
        via_tmpfs = session_from_sealed(artifact, external_data="tmpfs", staging_root=shm_root)
        assert list(shm_root.iterdir()) == []  # staged files are gone once the session exists
        via_memory = session_from_sealed(artifact, external_data="memory")
    tmpfs_out = via_tmpfs.run({"x": X})["y"]
    memory_out = via_memory.run({"x": X})["y"]
    assert np.array_equal(tmpfs_out, memory_out)
    assert np.allclose(tmpfs_out, sealed_mlp.expected(X), atol=1e-4)
    # the session still runs after its staged files were unlinked (it holds the mapping)
    assert np.array_equal(via_tmpfs.run({"x": X})["y"], tmpfs_out)


def test_staged_files_are_private_while_they_exist(
    sealed_mlp: SealedMlp, shm_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    create = runtime.load_session

    def spy(model: bytes, providers: Any, *, session_config: Any) -> Any:
        folder = Path(session_config[loader.EXTERNAL_FOLDER_CONFIG])
        seen["folder"] = folder
        seen["dir_mode"] = stat.S_IMODE(folder.stat().st_mode)
        seen["files"] = {p.name: (stat.S_IMODE(p.stat().st_mode), p.read_bytes()) for p in folder.iterdir()}
        return create(model, providers, session_config=session_config)

    monkeypatch.setattr(loader, "load_session", spy)
    with open_sealed(sealed_mlp.path, DekKeyProvider(sealed_mlp.dek)) as artifact:
        session_from_sealed(artifact, staging_root=shm_root)
    assert seen["folder"].parent == shm_root
    assert seen["dir_mode"] == 0o700
    assert seen["files"] == {"weights.bin": (0o600, sealed_mlp.plaintexts["weights.bin"])}
    assert not seen["folder"].exists()


@pytest.mark.parametrize("route", ["tmpfs", "memory"])
def test_cuda_on_a_cpu_wheel_fails_closed(sealed_mlp: SealedMlp, shm_root: Path, route: Any) -> None:
    with (
        open_sealed(sealed_mlp.path, DekKeyProvider(sealed_mlp.dek)) as artifact,
        pytest.raises(RuntimeUnavailable, match="CUDAExecutionProvider"),
    ):
        session_from_sealed(artifact, providers=("CUDAExecutionProvider",), external_data=route, staging_root=shm_root)


def test_failed_session_scrubs_staged_files(
    sealed_mlp: SealedMlp, shm_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staged: list[Path] = []

    def refuse(model: bytes, providers: Any, *, session_config: Any) -> Any:
        staged.extend(Path(session_config[loader.EXTERNAL_FOLDER_CONFIG]).iterdir())
        raise ModelRejected("refused for the test")

    zero_filled: list[Path] = []
    real_zero_fill = memory._zero_fill

    def record(file: Path) -> None:
        real_zero_fill(file)
        zero_filled.append(file)
        assert file.read_bytes() == bytes(file.stat().st_size)

    monkeypatch.setattr(memory, "_zero_fill", record)
    monkeypatch.setattr(loader, "load_session", refuse)
    with open_sealed(sealed_mlp.path, DekKeyProvider(sealed_mlp.dek)) as artifact, pytest.raises(ModelRejected):
        session_from_sealed(artifact, staging_root=shm_root)
    assert staged and zero_filled == staged


def test_not_a_tmpfs_fails_closed(sealed_mlp: SealedMlp, tmp_path: Path) -> None:
    if is_ram_backed(tmp_path):
        pytest.skip("tmp_path is itself on a tmpfs here")
    with (
        open_sealed(sealed_mlp.path, DekKeyProvider(sealed_mlp.dek)) as artifact,
        pytest.raises(RuntimeUnavailable, match="not a RAM-backed tmpfs"),
    ):
        session_from_sealed(artifact, staging_root=tmp_path)
    assert not any(p.name.startswith("ccdeploy-enclave-") for p in tmp_path.iterdir())


def test_ram_staging_dir_is_private_and_removed(shm_root: Path) -> None:
    with ram_staging_dir(shm_root) as staging:
        assert stat.S_IMODE(staging.path.stat().st_mode) == 0o700
        fd = staging.create_file("sub/w.bin")
        os.write(fd, b"secret" * 10)
        os.close(fd)
        assert stat.S_IMODE((staging.path / "sub").stat().st_mode) == 0o700
        for bad in ("../escape", "/abs", "a/../../b", ""):
            with pytest.raises(ModelRejected):
                staging.create_file(bad)
    assert not staging.path.exists()


def test_mount_type_picks_the_longest_mount_point() -> None:
    mounts = "/dev/vda / ext4 rw 0 0\ntmpfs /dev/shm tmpfs rw 0 0\nnone /dev/shm/odd\\040dir ext4 rw 0 0\n"
    assert mount_type(Path("/dev/shm"), mounts) == "tmpfs"
    assert mount_type(Path("/dev/shm/x/y"), mounts) == "tmpfs"
    assert mount_type(Path("/dev/shm/odd dir/f"), mounts) == "ext4"
    assert mount_type(Path("/dev/shmx"), mounts) == "ext4"
    assert mount_type(Path("/"), "") is None


def test_zero_wipes_bytearrays_and_mapped_memory() -> None:
    data = bytearray(os.urandom(64))
    zero(data)
    assert data == bytes(64)
    region = mmap.mmap(-1, 4096)
    region.write(os.urandom(4096))
    view = memoryview(region)
    zero(view[100:200])
    assert bytes(view[100:200]) == bytes(100) and bytes(view[:100]) != bytes(100)
    view.release()
    region.close()  # no buffer export left behind by zero()
    floats = np.ones(8, dtype=np.float32)
    zero(floats.data)
    assert not floats.any()
    zero(bytearray())
    with pytest.raises(TypeError):
        zero(memoryview(b"immutable"))


def test_digest_failure_during_session_creation_drops_the_session_and_scrubs(
    sealed_mlp: SealedMlp, shm_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ccdeploy.errors import ArtifactTampered
    from ccdeploy.seal.reader import SealedModel

    checked: list[str] = []
    sessions: list[Any] = []
    real_check = SealedModel.check_digest
    create = runtime.load_session

    def wrong_digest(self: SealedModel, path: str | None, data: memoryview, **kwargs: Any) -> None:
        real_check(self, path, data, **kwargs)  # the genuine bytes pass ...
        checked.append(str(path))
        changed = bytearray(data)
        changed[0] ^= 1
        real_check(self, path, memoryview(changed), **kwargs)  # ... and one flipped bit does not

    def spy(model: bytes, providers: Any, *, session_config: Any) -> Any:
        session = create(model, providers, session_config=session_config)
        sessions.append(session)
        return session

    zero_filled: list[Path] = []
    real_zero_fill = memory._zero_fill

    def record(file: Path) -> None:
        real_zero_fill(file)
        zero_filled.append(file)
        assert file.read_bytes() == bytes(file.stat().st_size)

    monkeypatch.setattr(SealedModel, "check_digest", wrong_digest)
    monkeypatch.setattr(loader, "load_session", spy)
    monkeypatch.setattr(memory, "_zero_fill", record)
    with (
        open_sealed(sealed_mlp.path, DekKeyProvider(sealed_mlp.dek)) as artifact,
        pytest.raises(ArtifactTampered, match="digest does not match"),
    ):
        session_from_sealed(artifact, staging_root=shm_root)
    assert checked == ["weights.bin"]
    assert len(sessions) == 1  # the session was built beside the check, and never handed out
    assert [p.name for p in zero_filled] == ["weights.bin"]
