"""Sign a sealed artifact or a plaintext model: statements in, Sigstore bundle files out.

For a sealed artifact ``NAME.ccseal`` (``NAME`` = the file name less ``.ccseal``) three files are
written into the output directory (default: beside the artifact):

- ``NAME.provenance.sigstore.json``: the SLSA Provenance v1 statement of the seal step;
- ``NAME.model.sig``: the OpenSSF model_signing statement over the plaintext model, which
  ``model_signing verify`` accepts on the unsealed model directory;
- ``NAME.bom.sigstore.json``: the CycloneDX statement, only when a BOM is given.

For a plaintext model (a file or a directory) only the model_signing bundle is written, as
``NAME.model.sig`` beside it (``NAME`` = the file or directory name); ``output`` names another path
(inside a model directory it is left out of the signed files, as model_signing does).

The artifact digest comes from :func:`~ccdeploy.seal.digest.sealed_digest_cached`: while the seal-time
digest record is valid, signing reads the header and nothing of the payload. Every statement is signed
before any file is written; each file is written atomically, an existing file is never replaced without
``overwrite``, and a failure part-way removes the files this call already wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ccdeploy.errors import UsageError
from ccdeploy.provenance.predicates import (
    DEFAULT_BUILDER_ID,
    bom_statement,
    model_signing_statement_for_header,
    model_signing_statement_for_model,
    seal_provenance,
)
from ccdeploy.provenance.signers.base import StatementSigner
from ccdeploy.provenance.statement import PAYLOAD_TYPE, Statement, Subject
from ccdeploy.seal._io import os_error, output_path, temp_sibling, write_all
from ccdeploy.seal.digest import SealedDigest, sealed_digest_cached

__all__ = [
    "BOM_SUFFIX",
    "MODEL_SIGNATURE_SUFFIX",
    "PROVENANCE_SUFFIX",
    "SignResult",
    "SignedBundle",
    "sign_model",
    "sign_sealed",
]

PROVENANCE_SUFFIX: Final = ".provenance.sigstore.json"
MODEL_SIGNATURE_SUFFIX: Final = ".model.sig"
BOM_SUFFIX: Final = ".bom.sigstore.json"
_SEALED_SUFFIX: Final = ".ccseal"


@dataclass(frozen=True)
class SignedBundle:
    """One bundle written: where, and what it signs."""

    path: Path
    predicate_type: str
    subjects: tuple[Subject, ...]

    def to_json(self) -> dict[str, Any]:
        """``{path, predicate_type, subjects}`` for ``--json`` output."""
        return {
            "path": str(self.path),
            "predicate_type": self.predicate_type,
            "subjects": [subject.to_json() for subject in self.subjects],
        }


@dataclass(frozen=True)
class SignResult:
    """What a signing run wrote."""

    bundles: tuple[SignedBundle, ...]
    sealed: SealedDigest | None = None
    """The sealed artifact's digest (``None`` when a plaintext model was signed)."""
    digest_from_record: bool = False
    """Whether the artifact digest came from the seal-time record (no payload byte read)."""


def _base_name(path: Path) -> str:
    name = Path(output_path(path)).name
    return name.removesuffix(_SEALED_SUFFIX) or name


def _sign_all(signer: StatementSigner, planned: Sequence[tuple[Path, Statement]]) -> list[bytes]:
    documents = []
    for _, statement in planned:
        bundle = signer.sign_dsse(statement.to_bytes(), PAYLOAD_TYPE)
        documents.append(json.dumps(bundle, indent=2).encode() + b"\n")
    return documents


def _stage(targets: Sequence[Path], documents: Sequence[bytes], staged: list[tuple[Path, Path]]) -> None:
    for target, document in zip(targets, documents, strict=True):
        temp = temp_sibling(target)
        staged.append((temp, target))
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            write_all(fd, document)
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_all(planned: Sequence[tuple[Path, Statement]], documents: Sequence[bytes], overwrite: bool) -> None:
    """Write every bundle to a temporary sibling first, then rename them all into place.

    A failure while writing leaves no new file and never touches an existing bundle; a failure among
    the final renames removes the names this call created, and only bundles already replaced by then
    (with ``--force``) stay replaced.
    """
    targets = [output_path(path) for path, _ in planned]
    if len(set(targets)) != len(targets):
        raise UsageError("two bundles would be written to the same path")
    existing = {target for target in targets if os.path.lexists(target)}
    if existing and not overwrite:
        raise UsageError(f"{sorted(existing)[0]} already exists (use --force to replace it)")
    staged: list[tuple[Path, Path]] = []
    created: list[Path] = []
    try:
        _stage(targets, documents, staged)
        for temp, target in staged:
            # Without --force, link (which fails if the name appeared meanwhile) rather than replace.
            (os.replace if overwrite else os.link)(temp, target)
            if target not in existing:
                created.append(target)
    except OSError as exc:
        for path in created:
            with contextlib.suppress(OSError):
                path.unlink()
        raise os_error(exc, f"write {exc.filename or 'a bundle'}") from None
    finally:
        for temp, _ in staged:
            with contextlib.suppress(OSError):
                temp.unlink()


def _run(
    signer: StatementSigner, planned: Sequence[tuple[Path, Statement]], overwrite: bool
) -> tuple[SignedBundle, ...]:
    documents = _sign_all(signer, planned)
    _write_all(planned, documents, overwrite)
    return tuple(SignedBundle(output_path(path), st.predicate_type, st.subjects) for path, st in planned)


def sign_sealed(
    sealed: Path,
    signer: StatementSigner,
    *,
    output_dir: Path | None = None,
    bom: bytes | None = None,
    builder_id: str = DEFAULT_BUILDER_ID,
    overwrite: bool = False,
) -> SignResult:
    """Sign a sealed artifact: SLSA provenance, the model_signing statement and, with ``bom``, the BOM.

    Args:
        sealed: the ``.ccseal`` artifact.
        signer: the signer (see :func:`~ccdeploy.provenance.signers.signer_from_uri`).
        output_dir: where the bundles go (default: the artifact's directory).
        bom: the AI BOM's CycloneDX JSON bytes; checked against the header's ``bom_digest``.
        builder_id: the SLSA ``runDetails.builder.id``.
        overwrite: replace existing bundle files.

    Raises:
        ArtifactCorrupt: ``sealed`` is not a well-formed artifact.
        UsageError: a bundle exists (without ``overwrite``), or the BOM is not the one sealed.
        SignerError, SignerUnavailable: the signer failed; nothing is written then.
    """
    digest, from_record = sealed_digest_cached(sealed)
    directory = output_dir if output_dir is not None else output_path(sealed).parent
    if not directory.is_dir():
        raise UsageError(f"output directory {directory} does not exist")
    base = _base_name(sealed)
    sealed_name = output_path(sealed).name
    planned: list[tuple[Path, Statement]] = [
        (directory / f"{base}{PROVENANCE_SUFFIX}", seal_provenance(digest, sealed_name, builder_id)),
        (directory / f"{base}{MODEL_SIGNATURE_SUFFIX}", model_signing_statement_for_header(digest.header)),
    ]
    if bom is not None:
        planned.append((directory / f"{base}{BOM_SUFFIX}", bom_statement(bom, digest, sealed_name)))
    return SignResult(_run(signer, planned, overwrite), digest, from_record)


def sign_model(
    model: Path,
    signer: StatementSigner,
    *,
    output: Path | None = None,
    hash_type: str = "sha256",
    overwrite: bool = False,
) -> SignResult:
    """Sign a plaintext model (file or directory) with the model_signing predicate.

    Args:
        model: the model file or directory.
        signer: the signer.
        output: the bundle path (default: ``NAME.model.sig`` beside the model).
        hash_type: per-file digest, ``sha256`` or ``blake3``.
        overwrite: replace an existing bundle.

    Raises:
        ModelInputError: the model is unusable (missing, empty, symlinks).
        UsageError: the bundle exists (without ``overwrite``) or an unknown hash type.
    """
    if hash_type not in ("sha256", "blake3"):
        raise UsageError(f"unknown hash algorithm {hash_type!r} (sha256 or blake3)")
    absolute = output_path(model)
    target = output_path(output) if output is not None else absolute.with_name(absolute.name + MODEL_SIGNATURE_SUFFIX)
    ignore: list[str] = []
    if absolute.is_dir() and target.is_relative_to(absolute):
        ignore.append(target.relative_to(absolute).as_posix())
    statement = model_signing_statement_for_model(model, "sha256" if hash_type == "sha256" else "blake3", ignore)
    return SignResult(_run(signer, [(target, statement)], overwrite))
