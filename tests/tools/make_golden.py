"""Generate the golden ``.ccseal`` v1 artifacts under tests/assets/compat/v1/ (run once per format version).

Golden files are never regenerated for an existing version: they exist so that every future build
proves it still opens what version 1 wrote. Run ``python -m tests.tools.make_golden`` only to create a
new version's directory.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

from ccdeploy.kek import kek_from_uri
from ccdeploy.kek.file import create_kek_file
from ccdeploy.seal import seal_model

GOLDEN = Path("tests/assets/compat/v1")
"""Relative to the repository root (run from there), so recipients record a portable KEK URI."""
CREATED = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def golden_files() -> dict[str, bytes]:
    """The plaintext model the goldens seal, regenerated deterministically by the tests."""
    rng = random.Random(20261122)
    return {
        "model.onnx": rng.randbytes(4096),
        "weights/layer0.bin": rng.randbytes(1_048_600),  # just over one segment: two segments
        "weights/empty.bin": b"",
        "config.json": b'{"name": "golden", "format": "ccseal/v1"}\n',
    }


def main() -> int:
    if any(GOLDEN.glob("*.ccseal")):
        print(f"{GOLDEN} already holds golden artifacts; they are never regenerated", file=sys.stderr)
        return 1
    GOLDEN.mkdir(parents=True, exist_ok=True)
    kek = kek_from_uri(create_kek_file(GOLDEN / "test-kek.json"))
    second = kek_from_uri(create_kek_file(GOLDEN / "test-kek-2.json"))
    model = GOLDEN / "_plaintext"
    for name, content in golden_files().items():
        (model / name).parent.mkdir(parents=True, exist_ok=True)
        (model / name).write_bytes(content)
    expected = {}
    for algorithm, keks in (("sha256", [kek]), ("blake3", [kek, second])):
        target = GOLDEN / f"golden-{algorithm}.ccseal"
        header = seal_model(model, target, keks, hash_algorithm=algorithm, name="golden", created=CREATED)  # type: ignore[arg-type]
        expected[target.name] = header.model_dump(mode="json")
    (GOLDEN / "expected-headers.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
    for path in sorted(model.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    model.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
