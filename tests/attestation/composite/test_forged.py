"""The committed composite forgeries are exactly what tests/tools/make_forgeries_composite.py writes."""

from __future__ import annotations

from pathlib import Path

from tests.tools import make_forgeries_composite


def test_regenerated_files_are_byte_identical(tmp_path: Path) -> None:
    make_forgeries_composite.generate(tmp_path)
    committed = sorted(path.name for path in make_forgeries_composite.FORGED.iterdir())
    assert sorted(path.name for path in tmp_path.iterdir()) == committed
    for name in committed:
        assert (tmp_path / name).read_bytes() == (make_forgeries_composite.FORGED / name).read_bytes(), name
