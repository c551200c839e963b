"""The statements ccdeploy signs for a sealed model, each with its own predicate.

- **SLSA Provenance v1** for the seal step (:func:`seal_provenance`). ``buildType`` is
  :data:`SEAL_BUILD_TYPE` (``https://ccdeploy.dev/seal/v1``); ``externalParameters`` name the model, its
  hash algorithm and the recipients (KEK URI, key id, wrap algorithm; never a wrapped key);
  ``internalParameters`` the payload AEAD, the format version and the sealing tool;
  ``resolvedDependencies`` the plaintext model (manifest SHA-256), the release policy and the AI BOM
  (where the header has their digests); ``runDetails`` the builder id, the artifact id as
  ``invocationId``, the header's creation time as ``startedOn`` and the header digest as a byproduct.
- **OpenSSF model_signing v1.0** over the plaintext model (:func:`model_signing_statement` and its
  builders from a sealed header or a model on disk), in model_signing 1.1.1's exact shape, so that
  ``model_signing verify key|certificate`` accepts the signature on the (unsealed) model unchanged.
- **CycloneDX** (:func:`bom_statement`): the AI BOM document itself as the predicate.

The SLSA and CycloneDX statements have two subjects: the sealed file (``ccseal.v1.blake3`` artifact
digest) and the plaintext model (its name, ``sha256`` manifest digest).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from ccdeploy.errors import ModelInputError, UsageError
from ccdeploy.provenance.statement import Statement, Subject
from ccdeploy.seal._header import HashAlgorithm, SealedHeader, manifest_sort_key
from ccdeploy.seal.digest import SealedDigest
from ccdeploy.seal.manifest import IGNORED_TOP_LEVEL, collect_model_files, hash_file, manifest_digest, new_hasher

__all__ = [
    "BOM_PREDICATE_TYPE",
    "DEFAULT_BUILDER_ID",
    "MODEL_SIGNING_PREDICATE_TYPE",
    "SEAL_BUILD_TYPE",
    "SLSA_PREDICATE_TYPE",
    "bom_statement",
    "model_signing_statement",
    "model_signing_statement_for_header",
    "model_signing_statement_for_model",
    "seal_provenance",
    "sealed_subjects",
]

SLSA_PREDICATE_TYPE: Final = "https://slsa.dev/provenance/v1"
SEAL_BUILD_TYPE: Final = "https://ccdeploy.dev/seal/v1"
"""The SLSA buildType of ``ccdeploy seal``; its parameters are described in this module's docstring."""
DEFAULT_BUILDER_ID: Final = "https://ccdeploy.dev/builders/local/v1"
"""The builder id when none is given: a person's ccdeploy CLI. CI should pass its workflow's URI."""
MODEL_SIGNING_PREDICATE_TYPE: Final = "https://model_signing/signature/v1.0"
BOM_PREDICATE_TYPE: Final = "https://cyclonedx.org/bom"
_MODEL_SIGNING_IGNORED: Final = tuple(sorted(IGNORED_TOP_LEVEL))


def sealed_subjects(digest: SealedDigest, sealed_name: str) -> tuple[Subject, Subject]:
    """The sealed file (by artifact digest) and the plaintext model (by manifest digest)."""
    model = digest.header.model
    return (
        Subject(sealed_name, digest.digest_set()),
        Subject(model.name, {"sha256": model.manifest_digest}),
    )


def seal_provenance(digest: SealedDigest, sealed_name: str, builder_id: str = DEFAULT_BUILDER_ID) -> Statement:
    """The SLSA Provenance v1 statement of the seal step that made the artifact ``digest`` names."""
    header = digest.header
    model = header.model
    dependencies: list[dict[str, Any]] = [{"name": model.name, "digest": {"sha256": model.manifest_digest}}]
    if header.policy_digest is not None:
        dependencies.append({"name": "release-policy", "digest": {"sha256": header.policy_digest}})
    if header.bom_digest is not None:
        dependencies.append({"name": "ai-bom", "digest": {"sha256": header.bom_digest}})
    predicate = {
        "buildDefinition": {
            "buildType": SEAL_BUILD_TYPE,
            "externalParameters": {
                "model": {"name": model.name, "hashAlgorithm": model.hash, "files": len(model.files)},
                "recipients": [{"kek": r.kek, "keyId": r.key_id, "wrap": r.wrap} for r in header.recipients],
            },
            "internalParameters": {
                "formatVersion": header.version,
                "payload": header.payload.aead,
                "tool": header.tool,
            },
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {"id": builder_id},
            "metadata": {"invocationId": header.artifact_id, "startedOn": header.created},
            "byproducts": [
                {"name": "ccseal-header", "digest": {"sha256": digest.header_sha256}, "mediaType": "application/json"}
            ],
        },
    }
    return Statement(sealed_subjects(digest, sealed_name), SLSA_PREDICATE_TYPE, predicate)


def model_signing_statement(
    name: str,
    files: Sequence[tuple[str, str]],
    hash_type: HashAlgorithm,
    ignore_paths: Iterable[str] = _MODEL_SIGNING_IGNORED,
) -> Statement:
    """model_signing's statement over files: ``files`` are ``(name, hex digest)`` in manifest order.

    The subject digest is SHA-256 over the raw file digests in that order (model_signing's root digest,
    equal to a sealed header's manifest digest); ``resources`` list each file; ``serialization`` is
    ``{method: files, hash_type, allow_symlinks: false, ignore_paths}``, which model_signing's verifier
    uses to hash the model again.
    """
    if not files:
        raise UsageError("a model_signing statement needs at least one file")
    root = manifest_digest(bytes.fromhex(digest) for _, digest in files)
    predicate = {
        "serialization": {
            "method": "files",
            "hash_type": hash_type,
            "allow_symlinks": False,
            "ignore_paths": sorted(set(ignore_paths)),
        },
        "resources": [{"name": path, "algorithm": hash_type, "digest": digest} for path, digest in files],
    }
    return Statement((Subject(name, {"sha256": root}),), MODEL_SIGNING_PREDICATE_TYPE, predicate)


def model_signing_statement_for_header(header: SealedHeader) -> Statement:
    """The model_signing statement of a sealed model, from its header alone (no plaintext, no key).

    Resources are named by the header's paths, so ``model_signing verify`` accepts it on the
    directory ``ccdeploy unseal`` writes (a single-file model unseals into a directory holding it).
    """
    model = header.model
    files = [(entry.path, entry.digest) for entry in model.files]
    statement = model_signing_statement(model.name, files, model.hash)
    if statement.subjects[0].digest["sha256"] != model.manifest_digest:
        raise UsageError("the sealed header's manifest digest does not match its file digests")
    return statement


def _ignored(path: str, ignore: Sequence[str]) -> bool:
    return any(path == name or path.startswith(name.rstrip("/") + "/") for name in ignore)


def model_signing_statement_for_model(
    model: Path, hash_type: HashAlgorithm = "sha256", ignore_paths: Sequence[str] = ()
) -> Statement:
    """Hash a plaintext model (file or directory) into its model_signing statement.

    Files are collected and ordered as ``ccdeploy seal`` and model_signing do (git paths ignored,
    symlinks refused); ``ignore_paths`` (relative to a model directory, e.g. a signature written inside
    it) are left out too and recorded. A single file is named ``.``, as model_signing names it.

    Raises:
        ModelInputError: the model is missing, empty, holds a symlink or an unusable name.
    """
    files = collect_model_files(model)
    single = not model.is_dir()
    kept = [entry for entry in files if single or not _ignored(entry.path, ignore_paths)]
    if not kept:
        raise ModelInputError(f"model {model} has no files left to sign")
    digests: list[tuple[str, str]] = []
    for entry in sorted(kept, key=lambda f: manifest_sort_key(f.path)):
        digests.append(("." if single else entry.path, hash_file(entry.source, new_hasher(hash_type))))
    name = Path(model).resolve().name
    return model_signing_statement(name, digests, hash_type, (*_MODEL_SIGNING_IGNORED, *ignore_paths))


def bom_statement(bom: bytes, digest: SealedDigest, sealed_name: str) -> Statement:
    """The CycloneDX statement of an AI BOM (its JSON as the predicate) over the sealed model.

    Raises:
        UsageError: the BOM is not a CycloneDX JSON document, or its SHA-256 differs from the
            ``bom_digest`` the sealed header records.
    """
    recorded = digest.header.bom_digest
    actual = hashlib.sha256(bom).hexdigest()
    if recorded is not None and recorded != actual:
        raise UsageError(
            f"the BOM's SHA-256 is {actual}, but the sealed artifact records BOM digest {recorded}: "
            "this is not the BOM it was sealed with"
        )
    try:
        document = json.loads(bom)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"the BOM is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("bomFormat") != "CycloneDX":
        raise UsageError('the BOM is not a CycloneDX JSON document (no "bomFormat": "CycloneDX")')
    return Statement(sealed_subjects(digest, sealed_name), BOM_PREDICATE_TYPE, document)
