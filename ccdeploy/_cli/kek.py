"""``ccdeploy kek``: manage key-encryption keys."""

from __future__ import annotations

from pathlib import Path

import click

from ccdeploy._cli._output import emit_json, json_option, say
from ccdeploy.errors import UsageError
from ccdeploy.kek import kek_from_uri
from ccdeploy.kek.file import create_kek_file


@click.group()
def kek() -> None:
    """Create key-encryption keys (KEKs)."""


@kek.command("create")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False), required=False)
@click.option(
    "--pkcs11",
    "pkcs11_uri",
    metavar="URI",
    help="Instead of a file, generate a non-extractable AES-256 KEK on the PKCS#11 token this URI names.",
)
@json_option
def create(path: Path | None, pkcs11_uri: str | None, json_output: bool) -> None:
    """Write a new random local KEK to PATH (mode 0600; never overwrites), or create one on a token."""
    if (path is None) == (pkcs11_uri is None):
        raise UsageError("give either PATH (a local key file) or --pkcs11 URI (a key on a token)")
    if pkcs11_uri is not None:
        from ccdeploy.kek.pkcs11 import create_pkcs11_kek  # noqa: PLC0415 - optional dependency

        uri = create_pkcs11_kek(pkcs11_uri)
    else:
        assert path is not None
        uri = create_kek_file(path)
    key_id = kek_from_uri(pkcs11_uri or uri).key_id  # the public URI of a token key may lack the PIN
    if json_output:
        emit_json({"ok": True, "kek": uri, "key_id": key_id})
    else:
        say(f"created KEK {uri} (key id {key_id})")
        if pkcs11_uri is None:
            say("keep this file secret and backed up: without it, artifacts sealed only to it cannot be opened")
