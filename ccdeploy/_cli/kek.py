"""``ccdeploy kek``: manage key-encryption keys."""

from __future__ import annotations

from pathlib import Path

import click

from ccdeploy._cli._output import emit_json, json_option, say
from ccdeploy.kek import kek_from_uri
from ccdeploy.kek.file import create_kek_file


@click.group()
def kek() -> None:
    """Create and inspect key-encryption keys (KEKs)."""


@kek.command("create")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@json_option
def create(path: Path, json_output: bool) -> None:
    """Write a new random local KEK to PATH (mode 0600; never overwrites)."""
    uri = create_kek_file(path)
    key_id = kek_from_uri(uri).key_id
    if json_output:
        emit_json({"ok": True, "kek": uri, "key_id": key_id})
    else:
        say(f"created KEK {uri} (key id {key_id}); keep this file secret and backed up")
