"""Validation of BOM documents: CycloneDX 1.6 against its strict JSON schema, SPDX 3.0.1 by reading it back.

Everything here works offline: the CycloneDX schemas ship with cyclonedx-python-lib, and SPDX documents are
checked with the generated spdx-python-model bindings (type-checked properties, required properties,
every referenced element present). ``spdx3-validate`` would fetch the SHACL model over the network.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from sbom.errors import BomInvalid

__all__ = [
    "SPDX_CONTEXT",
    "ValidatedBom",
    "dump_cyclonedx",
    "iter_components",
    "parse_json",
    "validate_bom",
    "validate_cyclonedx",
    "validate_spdx",
]

SPDX_CONTEXT = "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
MAX_BOM_BYTES = 256 << 20
_SCHEMAS = {"1.6": SchemaVersion.V1_6}


@dataclass(frozen=True)
class ValidatedBom:
    """A BOM document that passed validation."""

    format: Literal["cyclonedx", "spdx"]
    spec_version: str
    document: Mapping[str, Any]
    """The parsed JSON document."""
    serial: str | None
    """CycloneDX ``serialNumber``, or the SPDX document's ``spdxId``."""
    components: int
    """Number of CycloneDX components (metadata component and nested ones included) or SPDX elements."""


def parse_json(data: bytes) -> dict[str, Any]:
    """Parse a BOM's bytes as a JSON object.

    Raises:
        BomInvalid: too large, not UTF-8 JSON, duplicate keys, or not an object.
    """
    if len(data) > MAX_BOM_BYTES:
        raise BomInvalid(f"BOM is larger than {MAX_BOM_BYTES} bytes")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            raise BomInvalid("BOM has a duplicate JSON key")
        return dict(pairs)

    try:
        document = json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BomInvalid(f"BOM is not UTF-8 JSON: {type(exc).__name__}") from None
    if not isinstance(document, dict):
        raise BomInvalid("BOM is not a JSON object")
    return document


@cache
def _validator(version: str) -> JsonStrictValidator:
    return JsonStrictValidator(_SCHEMAS[version])


def iter_components(document: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every component of a CycloneDX document: the metadata component, top-level ones, nested ones."""
    stack: list[Any] = []
    metadata = document.get("metadata")
    if isinstance(metadata, Mapping) and isinstance(metadata.get("component"), Mapping):
        stack.append(metadata["component"])
    stack.extend(reversed(document.get("components") or []))
    while stack:
        component = stack.pop()
        if isinstance(component, Mapping):
            yield component
            stack.extend(reversed(component.get("components") or []))


def _check_cyclonedx(document: Mapping[str, Any]) -> ValidatedBom:
    if document.get("bomFormat") != "CycloneDX":
        raise BomInvalid("not a CycloneDX document (bomFormat is not 'CycloneDX')")
    version = document.get("specVersion")
    if version not in _SCHEMAS:
        raise BomInvalid(f"CycloneDX specVersion {version!r} is not supported (only 1.6)")
    error = _validator(version).validate_str(json.dumps(document))
    if error is not None:
        raw = error.data
        path = "/" + "/".join(str(part) for part in getattr(raw, "absolute_path", ()))
        message = " ".join(str(getattr(raw, "message", raw)).split())[:300]
        raise BomInvalid(f"fails the CycloneDX {version} schema at {path}: {message}")
    # The schema says bom-refs must be unique but cannot express it; a duplicate would make references ambiguous.
    refs = [c["bom-ref"] for c in iter_components(document) if "bom-ref" in c]
    twice = sorted({ref for ref in refs if refs.count(ref) > 1})
    if twice:
        raise BomInvalid(f"bom-ref used by more than one component: {', '.join(twice)[:300]}")
    serial = document.get("serialNumber")
    return ValidatedBom("cyclonedx", version, document, serial, len(refs))


def validate_cyclonedx(data: bytes) -> ValidatedBom:
    """Validate a CycloneDX 1.6 JSON document against the strict schema.

    Raises:
        BomInvalid: not JSON, not CycloneDX 1.6, or a schema violation (the message names the JSON path).
    """
    return _check_cyclonedx(parse_json(data))


def validate_spdx(data: bytes) -> ValidatedBom:
    """Validate an SPDX 3.0.1 JSON-LD document by reading it into spdx-python-model's object model.

    Raises:
        BomInvalid: not JSON-LD with the SPDX 3.0.1 context, a property of the wrong type, a required
            property missing, or a reference to an element the document does not hold.
    """
    return _check_spdx(parse_json(data))


def _check_spdx(document: Mapping[str, Any]) -> ValidatedBom:
    from sbom._spdx import read_spdx  # noqa: PLC0415 - spdx-python-model is large; load it only for SPDX

    if document.get("@context") != SPDX_CONTEXT:
        raise BomInvalid(f"not an SPDX 3.0.1 document (@context is not {SPDX_CONTEXT})")
    objects = read_spdx(document)
    documents = [o for o in objects if o.get("type") == "SpdxDocument"]
    if len(documents) != 1:
        raise BomInvalid(f"SPDX document must hold exactly one SpdxDocument element, found {len(documents)}")
    return ValidatedBom("spdx", "3.0.1", document, documents[0].get("spdxId"), len(objects))


def validate_bom(data: bytes) -> ValidatedBom:
    """Validate a BOM of either format: SPDX 3.0.1 when it has an ``@context``, else CycloneDX 1.6.

    Raises:
        BomInvalid: as :func:`validate_cyclonedx` or :func:`validate_spdx`.
    """
    document = parse_json(data)
    if "@context" in document:
        return _check_spdx(document)
    return _check_cyclonedx(document)


def dump_cyclonedx(document: dict[str, Any]) -> bytes:
    """Validate a CycloneDX document and serialise it deterministically (sorted keys, sorted components).

    Raises:
        BomInvalid: the document fails the 1.6 strict schema.
    """
    _sort_arrays(document)
    _check_cyclonedx(document)
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"


def _sort_arrays(document: dict[str, Any]) -> None:
    def by_ref(items: list[dict[str, Any]], key: str) -> None:
        items.sort(key=lambda item: str(item.get(key, "")))

    for component in list(iter_components(document)):
        if isinstance(component, dict):
            by_ref(component.get("components") or [], "bom-ref")
            refs = component.get("externalReferences")
            if refs:
                refs.sort(key=lambda r: (r.get("type", ""), r.get("url", ""), r.get("comment", "")))
    by_ref(document.get("components") or [], "bom-ref")
    by_ref(document.get("dependencies") or [], "ref")
    for dependency in document.get("dependencies") or []:
        if "dependsOn" in dependency:
            dependency["dependsOn"] = sorted(set(dependency["dependsOn"]))
    refs = document.get("externalReferences")
    if refs:
        refs.sort(key=lambda r: (r.get("type", ""), r.get("url", ""), r.get("comment", "")))
