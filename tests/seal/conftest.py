"""Fixtures for the sealed-artifact tests: local KEKs and small generated models."""

from __future__ import annotations

from pathlib import Path

import pytest


def write_model_dir(root: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` (relative path -> content) under ``root``; return ``root``."""
    for name, content in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return root


def random_bytes(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random content (fast for MiB sizes)."""
    import random

    return random.Random(seed).randbytes(size) if size else b""


@pytest.fixture
def two_file_model(tmp_path: Path) -> Path:
    """A model directory of two multi-segment files and a small one."""
    return write_model_dir(
        tmp_path / "model",
        {
            "model.onnx": random_bytes(3 * 1024 * 1024 + 11, seed=1),
            "weights/w.bin": random_bytes(2 * 1024 * 1024 + 5, seed=2),
            "config.json": b'{"a": 1}',
        },
    )
