"""The command line shared by the ``make_forgeries_*`` scripts: optionally create fixture keys, then regenerate."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sized
from pathlib import Path


def run(
    doc: str | None,
    argv: list[str] | None,
    generate: Callable[[], Sized],
    out_dir: Path,
    create_keys: Callable[[], None] | None = None,
) -> int:
    """Parse ``argv`` (``--new-keys`` when the script has fixture keys), write the forgeries, say where."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    if create_keys is not None:
        parser.add_argument(
            "--new-keys", action="store_true", help="create missing fixture keys first (never overwrites)"
        )
    args = parser.parse_args(argv)
    if create_keys is not None and args.new_keys:
        create_keys()
    cases = generate()
    print(f"wrote {len(cases)} cases to {out_dir}")
    return 0
