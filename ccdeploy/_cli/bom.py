"""``ccdeploy bom``: create, validate, compare and link AI bills of materials (CycloneDX 1.6, SPDX 3.0.1)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import click
from pydantic import ValidationError

import sbom
from ccdeploy._cli._output import emit_json, json_option, say
from ccdeploy.errors import EXIT_DECISION, DecisionError, UsageError
from ccdeploy.seal import is_sealed_artifact, read_header
from ccdeploy.seal._io import atomic_output_file, pwrite_all
from ccdeploy.seal.digest import sealed_digest
from ccdeploy.seal.manifest import collect_model_files, hash_file

__all__ = ["bom"]

DEFAULT_LOCK = Path("requirements/dev.lock")


@contextmanager
def _as_ccdeploy_errors() -> Iterator[None]:
    """Turn the sbom package's errors into the CLI's tree: exit 1 for an invalid document, 2 for bad input."""
    try:
        yield
    except sbom.BomError as error:
        if error.exit_code == EXIT_DECISION:
            raise DecisionError(error.message) from None
        raise UsageError(error.message) from None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _write(target: Path, data: bytes, *, overwrite: bool) -> None:
    with atomic_output_file(target, overwrite=overwrite, mode=0o644) as fd:
        pwrite_all(fd, data, 0)


def _model_files(model: Path) -> list[sbom.FileDigest]:
    if is_sealed_artifact(model):
        header = read_header(model)
        if header.model.hash != "sha256":
            raise UsageError(
                f"{model} records {header.model.hash} file digests; a BOM lists SHA-256: give the plaintext model"
            )
        return [sbom.FileDigest(path=f.path, sha256=f.digest, size=f.size) for f in header.model.files]
    return [
        sbom.FileDigest(path=f.path, sha256=hash_file(f.source, hashlib.sha256()), size=f.size)
        for f in collect_model_files(model)
    ]


def _sha256_file(path: Path) -> str:
    try:
        return hash_file(path, hashlib.sha256())
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _dataset(path: Path) -> sbom.Dataset:
    if path.suffix.lower() in (".yaml", ".yml"):
        return sbom.load_dataset(_read(path, "dataset description"))
    if not path.is_file():
        raise UsageError(f"--dataset {path}: not a file (give a dataset file to hash, or a YAML description)")
    try:
        return sbom.Dataset(name=path.name, digests={"sha256": _sha256_file(path)})
    except ValidationError:
        raise UsageError(f"--dataset {path}: its file name cannot name a dataset; describe it in YAML") from None


def _sealed(path: Path) -> sbom.SealedArtifact:
    digest = sealed_digest(path)
    return sbom.SealedArtifact(
        name=path.name,
        digest_set=digest.digest_set(),
        artifact_id=digest.artifact_id,
        header_sha256=digest.header_sha256,
    )


def _created(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--created {text!r} is not an RFC 3339 time") from None
    if value.tzinfo is None:
        raise UsageError("--created needs a time zone (e.g. 2026-01-01T00:00:00Z)")
    return value


@click.group()
def bom() -> None:
    """Create, validate, compare and link AI bills of materials (CycloneDX 1.6 ML-BOM, SPDX 3.0.1)."""


@bom.command("create")
@click.argument("model", type=click.Path(path_type=Path, exists=True))
@click.option(
    "--card", "card_file", required=True, type=click.Path(path_type=Path, dir_okay=False), help="Model card (YAML)."
)
@click.option(
    "--dataset",
    "dataset_files",
    multiple=True,
    type=click.Path(path_type=Path, exists=True),
    metavar="FILE_OR_YAML",
    help="A dataset file to hash (SHA-256), or a YAML dataset description (repeatable).",
)
@click.option(
    "--lock",
    "lock_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help=f"Requirements lock of the serving runtime (default: {DEFAULT_LOCK} if present).",
)
@click.option("--no-lock", is_flag=True, help="List no runtime dependencies.")
@click.option(
    "--sealed",
    "sealed_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    metavar="ARTIFACT.ccseal",
    help="Add this sealed artifact as a component (default: MODEL itself when it is sealed).",
)
@click.option("--format", "fmt", type=click.Choice(["cyclonedx", "spdx"]), default="cyclonedx", show_default=True)
@click.option("--serial", "serial_text", metavar="UUID", help="Serial number (default: a fresh random UUID).")
@click.option("--created", "created_text", metavar="RFC3339", help="Creation time (default: now).")
@click.option(
    "-o", "--output", required=True, type=click.Path(path_type=Path, dir_okay=False), help="Write the BOM here."
)
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@json_option
def create_command(
    model: Path,
    card_file: Path,
    dataset_files: tuple[Path, ...],
    lock_file: Path | None,
    no_lock: bool,
    sealed_file: Path | None,
    fmt: str,
    serial_text: str | None,
    created_text: str | None,
    output: Path,
    force: bool,
    json_output: bool,
) -> None:
    """Write the AI BOM of MODEL (a model file or directory, or a sealed artifact)."""
    if no_lock and lock_file is not None:
        raise UsageError("--lock and --no-lock exclude each other")
    try:
        serial = uuid.UUID(serial_text) if serial_text else uuid.uuid4()
    except ValueError:
        raise UsageError(f"--serial {serial_text!r} is not a UUID") from None
    created = _created(created_text)
    if lock_file is None and not no_lock and DEFAULT_LOCK.is_file():
        lock_file = DEFAULT_LOCK
    with _as_ccdeploy_errors():
        card = sbom.load_card(_read(card_file, "model card"))
        card = card.with_datasets(tuple(_dataset(path) for path in dataset_files))
        dependencies = sbom.lock_dependencies(_read(lock_file, "lock").decode("utf-8", "replace")) if lock_file else []
        if sealed_file is None and is_sealed_artifact(model):
            sealed_file = model
        sealed = [_sealed(sealed_file)] if sealed_file is not None else []
        document = sbom.build_bom(
            card.name,
            card.version,
            _model_files(model),
            card,
            dependencies,
            serial=serial,
            created=created,
            sealed=sealed,
        )
        data = document.to_cyclonedx_json() if fmt == "cyclonedx" else document.to_spdx_jsonld()
    _write(output, data, overwrite=force)
    if json_output:
        emit_json(
            {
                "ok": True,
                "output": str(output),
                "format": fmt,
                "serial": f"urn:uuid:{serial}",
                "sha256": hashlib.sha256(data).hexdigest(),
                "files": len(document.files),
                "datasets": len(card.datasets),
                "dependencies": len(dependencies),
                "sealed": [s.ref for s in sealed],
            }
        )
    else:
        say(
            f"wrote {output} ({fmt}): {len(document.files)} model file(s), {len(card.datasets)} dataset(s), "
            f"{len(dependencies)} dependencies" + (", sealed artifact" if sealed else "")
        )


@bom.command("validate")
@click.argument("bom_file", metavar="FILE", type=click.Path(path_type=Path, dir_okay=False))
@json_option
def validate_command(bom_file: Path, json_output: bool) -> None:
    """Validate FILE: CycloneDX 1.6 (strict schema) or SPDX 3.0.1 JSON-LD. Exit 0 valid, 1 invalid."""
    data = _read(bom_file, "BOM")
    try:
        result = sbom.validate_bom(data)
    except sbom.BomInvalid as error:
        if json_output:
            emit_json({"verdict": "invalid", "file": str(bom_file), "error": error.message})
        else:
            say(f"invalid: {error.message}")
        raise click.exceptions.Exit(EXIT_DECISION) from None
    if json_output:
        emit_json(
            {
                "verdict": "verified",
                "file": str(bom_file),
                "format": result.format,
                "spec_version": result.spec_version,
                "serial": result.serial,
                "components": result.components,
                "error": None,
            }
        )
    else:
        say(f"valid {result.format} {result.spec_version} BOM ({result.components} components)")


@bom.command("diff")
@click.argument("old", metavar="A", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("new", metavar="B", type=click.Path(path_type=Path, dir_okay=False))
@json_option
def diff_command(old: Path, new: Path, json_output: bool) -> None:
    """Show what changed from BOM A to BOM B (exit 0 whenever both are valid)."""
    with _as_ccdeploy_errors():
        difference = sbom.diff_boms(_read(old, "BOM"), _read(new, "BOM"))
    if json_output:
        emit_json(difference.to_dict())
    else:
        say(difference.render_text())


@bom.command("link")
@click.argument("bom_file", metavar="BOM", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--signature", type=click.Path(path_type=Path, dir_okay=False, exists=True), help="A signature bundle.")
@click.option("--receipt", type=click.Path(path_type=Path, dir_okay=False, exists=True), help="A release receipt.")
@click.option(
    "--attestation", type=click.Path(path_type=Path, dir_okay=False, exists=True), help="An attestation result."
)
@click.option(
    "--provenance", type=click.Path(path_type=Path, dir_okay=False, exists=True), help="A provenance statement."
)
@click.option("--url", help="Where the file is published (default: its file name, relative to the BOM).")
@click.option("--comment", help="Free text stored with the reference.")
@click.option(
    "-o", "--output", required=True, type=click.Path(path_type=Path, dir_okay=False), help="Write the BOM here."
)
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists (it may be BOM itself).")
@json_option
def link_command(
    bom_file: Path,
    signature: Path | None,
    receipt: Path | None,
    attestation: Path | None,
    provenance: Path | None,
    url: str | None,
    comment: str | None,
    output: Path,
    force: bool,
    json_output: bool,
) -> None:
    """Add a reference to a signature, receipt, attestation result or provenance (with its SHA-256) to BOM."""
    given = [
        (kind, path)
        for kind, path in (
            ("signature-bundle", signature),
            ("release-receipt", receipt),
            ("attestation-result", attestation),
            ("provenance", provenance),
        )
        if path is not None
    ]
    if len(given) != 1:
        raise UsageError("give exactly one of --signature, --receipt, --attestation, --provenance")
    kind, path = given[0]
    digest = _sha256_file(path)
    with _as_ccdeploy_errors():
        data = sbom.add_reference(_read(bom_file, "BOM"), kind, url or quote(path.name), digest, comment)
    _write(output, data, overwrite=force)
    if json_output:
        emit_json({"ok": True, "output": str(output), "kind": kind, "url": url or quote(path.name), "sha256": digest})
    else:
        say(f"wrote {output}: {kind} {url or path.name} (sha256 {digest[:12]}…)")
