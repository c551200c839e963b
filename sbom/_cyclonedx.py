"""Rendering an :class:`AiBom` as CycloneDX 1.6 JSON.

The library builds what it models (components, hashes, licences, purls, dependencies); the model card, the
datasets' ``data`` blocks and the training ``formulation`` are added to its JSON output here, because
cyclonedx-python-lib 11.12 has no classes for them, and the result is validated against the 1.6 schema.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.contact import OrganizationalContact
from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.spdx import is_supported_id
from packageurl import PackageURL

from sbom.card import Dataset, IntendedUse, Metric, ModelCard
from sbom.model import MODEL_REF, AiBom, SealedArtifact
from sbom.validate import dump_cyclonedx

__all__ = ["HASH_NAMES", "library_bom", "render_cyclonedx", "sealed_component"]

HASH_NAMES = {
    "sha256": "SHA-256",
    "sha384": "SHA-384",
    "sha512": "SHA-512",
    "sha3-256": "SHA3-256",
    "sha3-512": "SHA3-512",
    "blake3": "BLAKE3",
}
"""Our digest algorithm names -> CycloneDX ``hash-alg`` names."""

PROPERTY_PREFIX = "ccdeploy:"


def _licences(names: tuple[str, ...]) -> list[LicenseExpression | DisjunctiveLicense]:
    if len(names) == 1 and not is_supported_id(names[0]) and any(op in names[0] for op in (" AND ", " OR ", " WITH ")):
        return [LicenseExpression(names[0])]
    # The schema takes one expression or a list of licences: several names become a list, SPDX ids as ids.
    return [DisjunctiveLicense(id=name) if is_supported_id(name) else DisjunctiveLicense(name=name) for name in names]


def _hashes(digests: dict[str, str]) -> list[HashType]:
    return [HashType(alg=HashAlgorithm(HASH_NAMES[alg]), content=value) for alg, value in sorted(digests.items())]


def _dataset_component(dataset: Dataset) -> Component:
    references = []
    if dataset.url is not None:
        references.append(ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(dataset.url)))
    return Component(
        name=dataset.name,
        version=dataset.version,
        type=ComponentType.DATA,
        bom_ref=dataset.ref,
        hashes=_hashes({str(alg): value for alg, value in dataset.digests.items()}),
        licenses=_licences((dataset.licence,)) if dataset.licence else None,
        external_references=references,
        properties=[Property(name=f"{PROPERTY_PREFIX}dataset-role", value=dataset.role)],
    )


def sealed_component(sealed: SealedArtifact) -> dict[str, Any]:
    """The JSON component for a sealed artifact (its digests are not plain file hashes, so they are properties)."""
    properties = [
        {"name": f"{PROPERTY_PREFIX}digest:{alg}", "value": value} for alg, value in sealed.digest_set.items()
    ]
    properties += [
        {"name": f"{PROPERTY_PREFIX}artifact-id", "value": sealed.artifact_id},
        {"name": f"{PROPERTY_PREFIX}header-sha256", "value": sealed.header_sha256},
    ]
    return {
        "bom-ref": sealed.ref,
        "type": "file",
        "name": sealed.name,
        "mime-type": "application/vnd.ccdeploy.ccseal",
        "description": "sealed (encrypted) model artifact",
        "properties": sorted(properties, key=lambda p: (p["name"], p["value"])),
    }


def library_bom(bom: AiBom) -> Bom:
    """The parts of the BOM cyclonedx-python-lib models (no model card, dataset data or formulation)."""
    card = bom.card
    model = Component(
        name=bom.model_name,
        version=bom.model_version,
        type=ComponentType.MACHINE_LEARNING_MODEL,
        bom_ref=MODEL_REF,
        description=card.description,
        licenses=_licences(card.licences) if card.licences else None,
        authors=[OrganizationalContact(name=a.name, email=a.email) for a in card.authors],
        components=[
            Component(
                name=f.path,
                type=ComponentType.FILE,
                bom_ref=f"file:{f.path}",
                hashes=[HashType(alg=HashAlgorithm.SHA_256, content=f.sha256)],
                properties=[Property(name=f"{PROPERTY_PREFIX}size", value=str(f.size))],
            )
            for f in bom.files
        ],
    )
    libraries = [
        Component(
            name=d.name,
            version=d.version,
            type=ComponentType.LIBRARY,
            bom_ref=d.purl,
            purl=PackageURL.from_string(d.purl),
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=h) for h in d.hashes],
            properties=[Property(name=f"{PROPERTY_PREFIX}environment-marker", value=d.marker)] if d.marker else None,
        )
        for d in bom.dependencies
    ]
    result = Bom(serial_number=bom.serial, components=[*libraries, *map(_dataset_component, card.datasets)])
    result.metadata.timestamp = bom.created
    result.metadata.component = model
    result.register_dependency(model, libraries)
    for library in libraries:
        result.register_dependency(library, [])
    for dataset in result.components:
        if dataset.type is ComponentType.DATA:
            result.register_dependency(dataset, [])
    return result


def _model_parameters(card: ModelCard) -> dict[str, Any]:
    arch = card.architecture
    parameters: dict[str, Any] = {}
    if arch is not None:
        parameters = {
            "approach": {"type": arch.approach} if arch.approach else None,
            "architectureFamily": arch.family,
            "modelArchitecture": arch.name,
            "inputs": [{"format": f} for f in arch.inputs],
            "outputs": [{"format": f} for f in arch.outputs],
        }
    parameters["task"] = card.task
    parameters["datasets"] = [{"ref": d.ref} for d in card.datasets]
    return _pruned(parameters)


def _pruned(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value}


def _metric(metric: Metric) -> dict[str, Any]:
    ci = metric.confidence_interval
    return _pruned(
        {
            "type": metric.type,
            "value": str(metric.value),
            "slice": metric.slice,
            "confidenceInterval": {"lowerBound": str(ci.lower), "upperBound": str(ci.upper)} if ci else None,
        }
    )


def _model_card(card: ModelCard) -> dict[str, Any]:
    use = card.intended_use or IntendedUse()
    considerations = _pruned(
        {
            "users": list(use.users),
            "useCases": list(use.use_cases),
            "technicalLimitations": list(card.limitations),
            "performanceTradeoffs": list(card.tradeoffs),
            "ethicalConsiderations": [
                _pruned({"name": r.name, "mitigationStrategy": r.mitigation}) for r in card.ethical_considerations
            ],
        }
    )
    extra = [{"name": f"{PROPERTY_PREFIX}out-of-scope-use", "value": text} for text in use.out_of_scope]
    if card.architecture is not None and card.architecture.parameters is not None:
        extra.append({"name": f"{PROPERTY_PREFIX}parameter-count", "value": str(card.architecture.parameters)})
    return {
        "bom-ref": "model-card",
        **_pruned(
            {
                "modelParameters": _model_parameters(card),
                "quantitativeAnalysis": {"performanceMetrics": [_metric(m) for m in card.metrics]}
                if card.metrics
                else None,
                "considerations": considerations,
                "properties": extra,
            }
        ),
    }


def _dataset_data(dataset: Dataset) -> list[dict[str, Any]]:
    data: dict[str, Any] = {"type": "dataset", "name": dataset.name}
    if dataset.url:
        data["contents"] = {"url": dataset.url}
    if dataset.classification:
        data["classification"] = dataset.classification
    if dataset.sensitive_data:
        data["sensitiveData"] = list(dataset.sensitive_data)
    if dataset.description:
        data["description"] = dataset.description
    return [data]


def _formulation(card: ModelCard) -> list[dict[str, Any]]:
    workflows = []
    for uid, roles, task_type in (
        ("training", ("training", "validation"), "build"),
        ("evaluation", ("testing",), "test"),
    ):
        inputs = [{"resource": {"ref": d.ref}} for d in card.datasets if d.role in roles]
        if not inputs:
            continue
        if uid == "evaluation":
            inputs.append({"resource": {"ref": MODEL_REF}})
        workflow: dict[str, Any] = {
            "bom-ref": f"workflow:{uid}",
            "uid": uid,
            "name": f"model {uid}",
            "taskTypes": [task_type],
            "inputs": inputs,
        }
        if uid == "training":
            workflow["outputs"] = [{"type": "artifact", "resource": {"ref": MODEL_REF}}]
        workflows.append(workflow)
    return [{"bom-ref": "formulation", "workflows": workflows}] if workflows else []


def render_cyclonedx(bom: AiBom) -> bytes:
    """See :meth:`AiBom.to_cyclonedx_json`."""
    with warnings.catch_warnings():
        # A model with no runtime dependencies is a complete graph for us; the library warns it may be incomplete.
        warnings.filterwarnings("ignore", message="The Component this BOM is describing", category=UserWarning)
        document: dict[str, Any] = json.loads(JsonV1Dot6(library_bom(bom)).output_as_string())
    document["metadata"]["component"]["modelCard"] = _model_card(bom.card)
    datasets = {d.ref: d for d in bom.card.datasets}
    for component in document.get("components", []):
        if component.get("bom-ref") in datasets:
            component["data"] = _dataset_data(datasets[component["bom-ref"]])
    formulation = _formulation(bom.card)
    if formulation:
        document["formulation"] = formulation
    if bom.sealed:
        document.setdefault("components", []).extend(sealed_component(s) for s in bom.sealed)
        document.setdefault("dependencies", []).extend({"ref": s.ref, "dependsOn": [MODEL_REF]} for s in bom.sealed)
    return dump_cyclonedx(document)
