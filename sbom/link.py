"""Adding a sealed artifact and external references (signatures, provenance, receipts...) to a CycloneDX BOM.

Each step of a deployment adds its evidence to the same BOM through these functions; each takes the
document's bytes, validates them, and returns new validated bytes (the input is never edited in place).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from sbom._cyclonedx import HASH_NAMES, sealed_component
from sbom.errors import InputInvalid
from sbom.model import MODEL_REF, SealedArtifact
from sbom.validate import dump_cyclonedx, iter_components, validate_cyclonedx

__all__ = ["REFERENCE_KINDS", "add_reference", "add_sealed_artifact", "reference_kind"]

REFERENCE_KINDS: dict[str, str] = {
    "signature-bundle": "digital-signature",
    "provenance": "attestation",
    "release-receipt": "evidence",
    "attestation-result": "attestation",
    "release-policy": "configuration",
    "transparency-log": "log",
    "bom": "bom",
}
"""ccdeploy reference kinds -> CycloneDX ``externalReference.type``. The kind itself is kept in the comment."""

_KIND_COMMENT = re.compile(r"^ccdeploy:([a-z-]+)(?:: (.*))?$", re.DOTALL)


def reference_kind(reference: Mapping[str, Any]) -> str | None:
    """The ccdeploy kind of an external reference written by :func:`add_reference`, or ``None``."""
    match = _KIND_COMMENT.match(str(reference.get("comment", "")))
    return match.group(1) if match else None


def add_sealed_artifact(
    bom_json: bytes, name: str, digest_set: Mapping[str, str], artifact_id: str, header_sha256: str
) -> bytes:
    """Add (or replace) the component of a sealed artifact, bom-ref ``sealed:<artifact id>``.

    Args:
        bom_json: A CycloneDX 1.6 BOM.
        name: The artifact's file name.
        digest_set: Its in-toto digest set (``SealedDigest.digest_set()``: ``{"ccseal.v1.blake3": hex}``).
        artifact_id: The artifact id from its header (hex).
        header_sha256: SHA-256 of its canonical header (hex).

    Raises:
        BomInvalid: ``bom_json`` is not a valid CycloneDX 1.6 BOM.
        InputInvalid: a digest or id is malformed.
    """
    try:
        sealed = SealedArtifact(name=name, digest_set=digest_set, artifact_id=artifact_id, header_sha256=header_sha256)
    except ValidationError as exc:
        raise InputInvalid(f"sealed artifact: {exc.errors()[0]['msg']}") from None
    document = dict(validate_cyclonedx(bom_json).document)
    components = [c for c in document.get("components", []) if c.get("bom-ref") != sealed.ref]
    document["components"] = [*components, sealed_component(sealed)]
    dependencies = [d for d in document.get("dependencies", []) if d.get("ref") != sealed.ref]
    depends_on = [MODEL_REF] if _has_ref(document, MODEL_REF) else []
    document["dependencies"] = [*dependencies, {"ref": sealed.ref, **({"dependsOn": depends_on} if depends_on else {})}]
    return dump_cyclonedx(document)


def _has_ref(document: Mapping[str, Any], ref: str) -> bool:
    return any(c.get("bom-ref") == ref for c in iter_components(document))


def _digest_hashes(digest: str | Mapping[str, str]) -> list[dict[str, str]]:
    digests = {"sha256": digest} if isinstance(digest, str) else dict(digest)
    hashes = []
    for algorithm, value in sorted(digests.items()):
        name = HASH_NAMES.get(algorithm)
        if name is None:
            raise InputInvalid(f"unsupported digest algorithm {algorithm!r} (use one of {', '.join(HASH_NAMES)})")
        if not re.fullmatch(r"[0-9a-f]{64}|[0-9a-f]{96}|[0-9a-f]{128}", value):
            raise InputInvalid(f"digest {algorithm} is not lowercase hex of a valid length")
        hashes.append({"alg": name, "content": value})
    return hashes


def add_reference(
    bom_json: bytes,
    kind: str,
    url: str,
    digest: str | Mapping[str, str],
    comment: str | None = None,
    *,
    target: str | None = None,
) -> bytes:
    """Add an external reference to the model component (or to the component ``target`` names).

    A reference of the same kind and URL is replaced, so re-linking a re-signed file leaves one entry.

    Args:
        bom_json: A CycloneDX 1.6 BOM.
        kind: One of :data:`REFERENCE_KINDS` ("signature-bundle", "provenance", "release-receipt", ...).
        url: Where the referenced file lives (absolute URL or a reference relative to the BOM).
        digest: Its SHA-256 as hex, or a mapping of algorithm ("sha256", "sha512"...) to hex.
        comment: Free text kept after the kind in the reference's comment.
        target: bom-ref of the component to attach to; default the model (``metadata.component``).

    Raises:
        BomInvalid: ``bom_json`` is not a valid CycloneDX 1.6 BOM, or the result fails the schema.
        InputInvalid: unknown kind, bad digest, empty URL, or no component with the ``target`` bom-ref.
    """
    document = dict(validate_cyclonedx(bom_json).document)
    if kind not in REFERENCE_KINDS:
        raise InputInvalid(f"unknown reference kind {kind!r} (one of {', '.join(REFERENCE_KINDS)})")
    if not url or any(char.isspace() for char in url):
        raise InputInvalid("reference URL must be non-empty and contain no whitespace")
    wanted = target or MODEL_REF
    owner = next((c for c in iter_components(document) if c.get("bom-ref") == wanted), None)
    if owner is None:
        raise InputInvalid(f"the BOM has no component with bom-ref {wanted!r}")
    reference = {
        "type": REFERENCE_KINDS[kind],
        "url": url,
        "comment": f"ccdeploy:{kind}" + (f": {comment}" if comment else ""),
        "hashes": _digest_hashes(digest),
    }
    if not isinstance(owner, dict):  # json.loads gives dicts; this narrows the Mapping for mypy
        raise InputInvalid(f"component {wanted!r} is not a JSON object")
    kept = [r for r in owner.get("externalReferences", []) if not (reference_kind(r) == kind and r.get("url") == url)]
    owner["externalReferences"] = [*kept, reference]
    return dump_cyclonedx(document)
