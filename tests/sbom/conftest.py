"""Fixtures for the AI BOM tests: the example card, a small model and a fixed serial and time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest

from sbom import AiBom, Dependency, FileDigest, ModelCard, build_bom, load_card

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CARD = REPO / "examples" / "card.yaml"
SERIAL = UUID("6f1c1a52-8e0b-4a43-9a7d-0d3c2a9e4b11")
CREATED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture(scope="session")
def card() -> ModelCard:
    return load_card(EXAMPLE_CARD.read_bytes())


@pytest.fixture
def files() -> list[FileDigest]:
    return [
        FileDigest(path="model.onnx", sha256="1" * 64, size=1234),
        FileDigest(path="weights/model.onnx.data", sha256="2" * 64, size=99),
    ]


@pytest.fixture
def aibom(card: ModelCard, files: list[FileDigest]) -> AiBom:
    dependencies = [Dependency(name="onnxruntime", version="1.20.1", hashes=("3" * 64,))]
    return build_bom(card.name, card.version, files, card, dependencies, serial=SERIAL, created=CREATED)
