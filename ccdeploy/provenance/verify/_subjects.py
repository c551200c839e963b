"""Recompute a target's digests from its files and match them to the subjects of a verified statement.

Digests are always recomputed here; a statement's digests are only ever compared against, never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from ccdeploy.errors import ModelInputError, SubjectMismatch, UsageError
from ccdeploy.provenance.predicates import SEAL_BUILD_TYPE, SLSA_PREDICATE_TYPE
from ccdeploy.provenance.verify._report import Report, SubjectMatch
from ccdeploy.provenance.verify._statement import Statement
from ccdeploy.seal.digest import DIGEST_ALGORITHM, SealedDigest, sealed_digest
from ccdeploy.seal.manifest import collect_model_files, hash_file, manifest_digest, new_hasher
from ccdeploy.seal.reader import is_sealed_artifact

__all__ = [
    "FILE_DIGESTS",
    "MODEL_SIGNING_PREDICATE",
    "Target",
    "file_digest",
    "match_subjects",
    "open_target",
    "sealed_target",
]

MODEL_SIGNING_PREDICATE = "https://model_signing/signature/v1.0"
FILE_DIGESTS = ("sha256", "sha384", "sha512")
SEAL_HEADER_BYPRODUCT = "ccseal-header"
"""The byproduct of a ccdeploy seal provenance that names the sealed header by its SHA-256."""

TargetKind = Literal["file", "sealed", "directory"]


@dataclass(frozen=True)
class Target:
    """What was signed, on disk: a single file, a sealed artifact, or a model directory."""

    path: Path
    kind: TargetKind
    ignore_paths: tuple[str, ...] = ()
    """Directory targets: paths (relative to the directory) left out, on top of the predicate's own."""
    sealed: SealedDigest | None = None
    """Sealed targets known only by their digest (see :func:`sealed_target`): used instead of reading ``path``."""


def sealed_target(digest: SealedDigest, name: str) -> Target:
    """A sealed artifact known by its digest (head + stream digests), not by a file; ``name`` is for reports.

    Its subjects are matched exactly as a sealed file's are, against ``digest`` instead of a digest
    recomputed from disk; the caller is responsible for ``digest`` describing the artifact it cares about
    (:func:`ccdeploy.seal.digest.sealed_digest_from_parts` recomputes it from the head and stream digests).
    """
    return Target(Path(name), "sealed", sealed=digest)


def open_target(path: Path, ignore_paths: Sequence[str] = (), signature: Path | None = None) -> Target:
    """Classify ``path``; a signature file inside a model directory is ignored, as model_signing does.

    Raises:
        UsageError: the target does not exist or is neither a regular file nor a directory.
    """
    try:
        info = path.stat()
    except OSError as exc:
        raise UsageError(f"cannot read target {path}: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        ignored = list(ignore_paths)
        if signature is not None:
            with contextlib.suppress(ValueError):
                ignored.append(signature.resolve().relative_to(path.resolve()).as_posix())
        return Target(path, "directory", tuple(ignored))
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"target {path} is neither a file nor a directory")
    return Target(path, "sealed" if is_sealed_artifact(path) else "file")


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file (``sha256``, ``sha384`` or ``sha512``)."""
    return hash_file(path, hashlib.new(algorithm))


def _require_one(report: Report, matches: list[SubjectMatch], what: str) -> list[SubjectMatch]:
    report.subjects.extend(matches)
    if not any(m.matched for m in matches):
        report.failed("subject", f"no subject of the statement matches {what}")
        raise SubjectMismatch(f"no subject of the signed statement matches {what}")
    report.passed("subject", f"{what} matches subject {next(m.name for m in matches if m.matched)!r}")
    return matches


def _match_file(statement: Statement, path: Path, report: Report) -> list[SubjectMatch]:
    if statement.predicate_type == MODEL_SIGNING_PREDICATE:
        # model_signing hashes a single-file model as a one-file manifest whose resource is named ".".
        hash_type, _ = _model_serialization(statement.predicate)
        signed = _signed_resources(statement.predicate, hash_type)
        return _match_model_manifest(statement, signed, {".": _hash_file(path, hash_type)}, hash_type, path, report)
    computed: dict[str, str] = {}
    matches = []
    for name, digest in statement.subjects:
        matched = False
        for algorithm in FILE_DIGESTS:
            if algorithm in digest:
                if algorithm not in computed:
                    computed[algorithm] = file_digest(path, algorithm)
                matched = matched or digest[algorithm] == computed[algorithm]
        matches.append(SubjectMatch(name, digest, matched))
    return _require_one(report, matches, f"the digest of {path.name}")


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _check_seal_provenance(statement: Statement, sealed: SealedDigest, report: Report) -> None:
    """A ccdeploy seal provenance names the header it was made from: it must be this artifact's header."""
    if statement.predicate_type != SLSA_PREDICATE_TYPE:
        return
    if _dict(statement.predicate.get("buildDefinition")).get("buildType") != SEAL_BUILD_TYPE:
        return
    run = _dict(statement.predicate.get("runDetails"))
    byproducts = run.get("byproducts")
    headers = [
        _dict(b).get("digest")
        for b in (byproducts if isinstance(byproducts, list) else [])
        if _dict(b).get("name") == SEAL_HEADER_BYPRODUCT
    ]
    expected = {"sha256": sealed.header_sha256}
    if len(headers) != 1 or headers[0] != expected:
        detail = f"{SEAL_HEADER_BYPRODUCT} byproduct {headers!r}, the artifact's header has {expected!r}"
        report.failed("subject.seal_header", detail)
        raise SubjectMismatch(f"the seal provenance names another header than the artifact's: {detail}")
    invocation = _dict(run.get("metadata")).get("invocationId")
    if invocation is not None and invocation != sealed.artifact_id:
        detail = f"invocationId {invocation!r}, the artifact id is {sealed.artifact_id!r}"
        report.failed("subject.seal_header", detail)
        raise SubjectMismatch(f"the seal provenance names another artifact: {detail}")
    report.passed("subject.seal_header", f"seal provenance names this artifact's header ({sealed.header_sha256})")


def _match_sealed(
    statement: Statement, path: Path, report: Report, known: SealedDigest | None = None
) -> list[SubjectMatch]:
    sealed = known if known is not None else sealed_digest(path)
    own = {DIGEST_ALGORITHM: sealed.value}
    manifest = {"sha256": sealed.header.model.manifest_digest}
    matches = []
    for name, digest in statement.subjects:
        # Either the sealed file itself (its artifact digest, nothing else) or the plaintext model it
        # seals, whose manifest digest the header binds and the sealed digest covers.
        matched = digest in (own, manifest)
        matches.append(SubjectMatch(name, digest, matched))
    report.subjects.extend(matches)
    if own not in (m.digest for m in matches):
        report.failed("subject", f"no subject carries the {DIGEST_ALGORITHM} digest of {path.name}")
        raise SubjectMismatch(
            f"no subject of the signed statement carries the {DIGEST_ALGORITHM} digest of {path.name}"
        )
    unmatched = [m.name for m in matches if not m.matched]
    if unmatched:
        detail = f"subjects {unmatched!r} are neither {path.name} nor the model it seals"
        report.failed("subject", detail)
        raise SubjectMismatch(f"the signed statement names other artifacts than {path.name}: {detail}")
    report.passed("subject", f"every subject is {path.name} (sealed digest) or the model it seals (manifest digest)")
    _check_seal_provenance(statement, sealed, report)
    return matches


def _ignored(path: str, ignore: Iterable[str]) -> bool:
    parts = PurePosixPath(path).parts
    for entry in ignore:
        prefix = PurePosixPath(entry.strip("/")).parts
        if prefix and parts[: len(prefix)] == prefix:
            return True
    return False


def _model_serialization(predicate: dict[str, object]) -> tuple[str, list[str]]:
    serialization = predicate.get("serialization")
    if not isinstance(serialization, dict):
        raise SubjectMismatch("model_signing predicate has no serialization")
    if serialization.get("method") != "files":
        raise SubjectMismatch(
            f"model_signing serialization {serialization.get('method')!r} is not supported (files only)"
        )
    hash_type = serialization.get("hash_type")
    if hash_type not in ("sha256", "blake3"):
        raise SubjectMismatch(f"model_signing hash type {hash_type!r} is not supported")
    if serialization.get("allow_symlinks") not in (False, None):
        raise SubjectMismatch("model_signing signatures that follow symlinks are refused")
    ignore = serialization.get("ignore_paths", [])
    if not isinstance(ignore, list) or not all(isinstance(i, str) for i in ignore):
        raise SubjectMismatch("model_signing ignore_paths malformed")
    return str(hash_type), list(ignore)


def _signed_resources(predicate: dict[str, object], hash_type: str) -> dict[str, str]:
    resources = predicate.get("resources")
    if not isinstance(resources, list):
        raise SubjectMismatch("model_signing predicate has no resources")
    signed: dict[str, str] = {}
    for item in resources:
        if not isinstance(item, dict) or item.get("algorithm") != hash_type:
            raise SubjectMismatch("model_signing resource malformed or hashed with another algorithm")
        name, digest = item.get("name"), item.get("digest")
        if not isinstance(name, str) or not isinstance(digest, str) or name in signed:
            raise SubjectMismatch("model_signing resource malformed or duplicated")
        signed[name] = digest.lower()
    return signed


def _hash_file(path: Path, hash_type: str) -> str:
    return hash_file(path, new_hasher("sha256" if hash_type == "sha256" else "blake3"))


def _match_model_manifest(
    statement: Statement,
    signed: dict[str, str],
    computed: dict[str, str],
    hash_type: str,
    path: Path,
    report: Report,
) -> list[SubjectMatch]:
    """Compare the signed resources with the recomputed ones (in manifest order), then the root digest."""
    if not signed or not computed:
        detail = f"signed resources {len(signed)}, files hashed {len(computed)}"
        report.failed("model.resources", detail)
        raise SubjectMismatch(f"a model_signing statement must cover at least one file: {detail}")
    added = sorted(set(computed) - set(signed))
    removed = sorted(set(signed) - set(computed))
    changed = sorted(n for n in set(signed) & set(computed) if signed[n] != computed[n])
    if added or removed or changed:
        detail = f"added {added}, removed {removed}, changed {changed}"
        report.failed("model.resources", detail)
        raise SubjectMismatch(f"model differs from the signed manifest: {detail}")
    report.passed("model.resources", f"{len(computed)} files match the signed {hash_type} manifest")
    root = manifest_digest(bytes.fromhex(digest) for digest in computed.values())
    matches = [SubjectMatch(name, digest, digest.get("sha256") == root) for name, digest in statement.subjects]
    return _require_one(report, matches, f"the manifest digest of {path.name}")


def _match_directory(statement: Statement, target: Target, report: Report) -> list[SubjectMatch]:
    if statement.predicate_type != MODEL_SIGNING_PREDICATE:
        raise SubjectMismatch(f"a model directory needs a {MODEL_SIGNING_PREDICATE} statement")
    hash_type, ignore = _model_serialization(statement.predicate)
    ignore = ignore + list(target.ignore_paths)
    signed = _signed_resources(statement.predicate, hash_type)
    try:
        files = [f for f in collect_model_files(target.path) if not _ignored(f.path, ignore)]
    except ModelInputError as exc:
        raise SubjectMismatch(f"model directory cannot be hashed as signed: {exc.message}") from None
    computed = {entry.path: _hash_file(entry.source, hash_type) for entry in files}
    return _match_model_manifest(statement, signed, computed, hash_type, target.path, report)


def match_subjects(statement: Statement, target: Target, report: Report) -> list[SubjectMatch]:
    """Match ``target`` against the statement's subjects (see ``ccdeploy verify --help`` for the rules).

    A sealed target needs a subject with its ``ccseal.v1.blake3`` digest, and every other subject must be
    the plaintext model it seals (``sha256`` manifest digest); a ccdeploy seal provenance must name its header.
    A model_signing statement must cover at least one file; a single file is its one resource ``.``.

    Raises:
        SubjectMismatch: nothing matches, a sealed target's statement names something else, or a model
            differs from its signed manifest.
        ArtifactCorrupt: a sealed target is malformed.
    """
    if target.kind == "file":
        return _match_file(statement, target.path, report)
    if target.kind == "sealed":
        return _match_sealed(statement, target.path, report, target.sealed)
    return _match_directory(statement, target, report)
