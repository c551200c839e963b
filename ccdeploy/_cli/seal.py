"""``ccdeploy seal``, ``unseal``, ``inspect`` and ``rekey``: the sealed-artifact commands."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import click

from ccdeploy._cli._output import emit_json, json_option, progress_bar, progress_enabled, say
from ccdeploy.errors import UsageError
from ccdeploy.kek import kek_from_uri
from ccdeploy.seal import (
    HASH_ALGORITHMS,
    HashAlgorithm,
    KekKeyProvider,
    SealedHeader,
    open_sealed,
    read_header,
    seal_model,
)
from ccdeploy.seal import rekey as rekey_artifact
from ccdeploy.seal.digest import record_path
from ccdeploy.seal.manifest import collect_model_files

_kek_option = click.option(
    "--kek",
    "keks",
    metavar="URI",
    multiple=True,
    required=True,
    help="Key-encryption key URI (file:PATH, pkcs11:...). Repeat for several.",
)


def _describe(header: SealedHeader) -> dict[str, Any]:
    """The header as shown to people and JSON consumers: every field, never the wrapped key bytes."""
    document = header.model_dump(mode="json")
    for shown, recipient in zip(document["recipients"], header.recipients, strict=True):
        del shown["wrapped_dek"]
        shown["wrapped_dek_bytes"] = len(recipient.to_wrapped().blob)
    return document


def _human(header: SealedHeader, authenticated: bool) -> str:
    model = header.model
    status = "authenticated (MAC verified with the DEK)" if authenticated else "NOT authenticated (no KEK given)"
    lines = [
        f"ccseal v1 artifact {header.artifact_id}",
        f"  header      {status}",
        f"  model       {model.name}",
        f"  created     {header.created} by {header.tool}",
        f"  payload     {header.payload.aead}",
        f"  digests     {model.hash}; manifest {model.manifest_digest}",
        f"  policy      {header.policy_digest or '-'}",
        f"  bom         {header.bom_digest or '-'}",
        f"  files ({len(model.files)}):",
    ]
    lines += [f"    {f.path}  {f.size} B  {model.hash}:{f.digest}" for f in model.files]
    lines.append(f"  recipients ({len(header.recipients)}):")
    lines += [f"    {r.kek}  key id {r.key_id}  {r.wrap}" for r in header.recipients]
    return "\n".join(lines)


@click.command()
@click.argument("model", type=click.Path(path_type=Path, exists=True))
@_kek_option
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True, help="Artifact to write."
)
@click.option(
    "--hash",
    "hash_algorithm",
    type=click.Choice(HASH_ALGORITHMS),
    default="sha256",
    show_default=True,
    help="Plaintext digest algorithm (model_signing supports both).",
)
@click.option("--name", help="Model name recorded in the header (default: file stem or directory name).")
@click.option(
    "--bom",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    metavar="FILE",
    help="AI BOM (CycloneDX JSON) whose SHA-256 the header records; sign it later with ccdeploy sign --bom.",
)
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@json_option
def seal(
    model: Path,
    keks: tuple[str, ...],
    output: Path,
    hash_algorithm: HashAlgorithm,
    name: str | None,
    bom: Path | None,
    force: bool,
    json_output: bool,
) -> None:
    """Encrypt MODEL (an ONNX file or model directory) into a sealed artifact.

    Also writes OUTPUT.digest.json, the artifact digest computed while sealing, so that ccdeploy sign
    need not read the sealed bytes again.
    """
    bom_digest = None
    if bom is not None:
        try:
            bom_digest = hashlib.sha256(bom.read_bytes()).hexdigest()
        except OSError as exc:
            raise UsageError(f"cannot read the BOM {bom}: {exc.strerror}") from None
    wrappers = [kek_from_uri(uri) for uri in keks]
    total = sum(f.size for f in collect_model_files(model))
    with progress_bar("sealing", total, progress_enabled(json_output)) as progress:
        header = seal_model(
            model,
            output,
            wrappers,
            hash_algorithm=hash_algorithm,
            name=name,
            overwrite=force,
            progress=progress,
            bom_digest=bom_digest,
        )
    record = record_path(output)
    if json_output:
        emit_json({"ok": True, "output": str(output), "digest_record": str(record), "header": _describe(header)})
    else:
        say(f"sealed {len(header.model.files)} file(s), {total} bytes -> {output}")
        say(f"  manifest {header.model.hash} digest {header.model.manifest_digest}")
        say(f"  artifact {header.artifact_id}; recipients: {', '.join(r.key_id for r in header.recipients)}")
        if bom_digest is not None:
            say(f"  bom sha256 {bom_digest}")
        say(f"  digest record {record}")


@click.command()
@click.argument("sealed", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@_kek_option
@click.option("-o", "--output", required=True, metavar="DIR|-", help="Directory to create, or - for stdout (one file).")
@click.option("--file", "member", metavar="PATH", help="With -o -: which file of a multi-file artifact to stream.")
@click.option("--force", is_flag=True, help="Replace DIR if it exists.")
@json_option
def unseal(
    sealed: Path, keks: tuple[str, ...], output: str, member: str | None, force: bool, json_output: bool
) -> None:
    """Decrypt SEALED into a directory, or stream one file to stdout.

    A directory is written to a temporary name and renamed only after every segment tag and plaintext
    digest verified. Streaming to stdout releases each batch once its tags verify and checks the whole
    file's digest at the end (exit 1 then, after the data was written).
    """
    provider = KekKeyProvider([kek_from_uri(uri) for uri in keks])
    with open_sealed(sealed, provider) as artifact:
        if output == "-":
            if json_output:
                raise UsageError("--json cannot be combined with -o - (stdout carries the plaintext)")
            sys.stdout.flush()
            artifact.write_to(sys.stdout.fileno(), member)
            return
        if member is not None:
            raise UsageError("--file only applies with -o -")
        total = sum(f.size for f in artifact.files)
        with progress_bar("unsealing", total, progress_enabled(json_output)) as progress:
            written = artifact.extract(Path(output), overwrite=force, progress=progress)
        if json_output:
            emit_json(
                {
                    "ok": True,
                    "output": output,
                    "files": [str(p) for p in written],
                    "artifact_id": artifact.header.artifact_id,
                    "verified": True,
                }
            )
        else:
            say(f"unsealed {len(written)} file(s) into {output}; every segment tag and digest verified")


@click.command()
@click.argument("sealed", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--kek", "keks", metavar="URI", multiple=True, help="Also authenticate the header with this KEK.")
@json_option
def inspect(sealed: Path, keks: tuple[str, ...], json_output: bool) -> None:
    """Show a sealed artifact's header (never key material).

    Without --kek the header is parsed but not authenticated; with --kek its MAC is verified.
    """
    if keks:
        with open_sealed(sealed, KekKeyProvider([kek_from_uri(uri) for uri in keks])) as artifact:
            header = artifact.header
    else:
        header = read_header(sealed)
    authenticated = bool(keks)
    if json_output:
        emit_json(
            {"ok": True, "format": "ccseal", "version": 1, "authenticated": authenticated, "header": _describe(header)}
        )
    else:
        say(_human(header, authenticated))


@click.command()
@click.argument("sealed", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@_kek_option
@click.option("--add", "add", metavar="URI", multiple=True, help="KEK to add as a recipient. Repeatable.")
@click.option("--remove", "remove", metavar="KEY_ID|URI", multiple=True, help="Recipient to drop. Repeatable.")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the result here instead of rewriting SEALED in place.",
)
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists (never needed in place).")
@json_option
def rekey(
    sealed: Path,
    keks: tuple[str, ...],
    add: tuple[str, ...],
    remove: tuple[str, ...],
    output: Path | None,
    force: bool,
    json_output: bool,
) -> None:
    """Add or remove recipients, or rotate a KEK (--add new --remove old), rewriting only the header.

    --kek must open the artifact as it is now. The payload is copied verbatim, never re-encrypted.
    """
    if not add and not remove:
        raise UsageError("nothing to do: give --add and/or --remove")
    provider = KekKeyProvider([kek_from_uri(uri) for uri in keks])
    header = rekey_artifact(
        sealed, output or sealed, provider, add=[kek_from_uri(uri) for uri in add], remove=remove, overwrite=force
    )
    if json_output:
        emit_json({"ok": True, "output": str(output or sealed), "header": _describe(header)})
    else:
        say(f"rekeyed {output or sealed}; recipients: {', '.join(f'{r.kek} ({r.key_id})' for r in header.recipients)}")
