"""Rendering an :class:`AiBom` as SPDX 3.0.1 JSON-LD, and reading SPDX 3.0.1 back for validation.

Uses the official generated bindings (spdx-python-model 0.0.6, ``v3_0_1``): the model is an ``ai_AIPackage``
containing one ``software_File`` per model file, each dataset a ``dataset_DatasetPackage`` linked by
``trainedOn`` (training and validation data) or ``testedOn`` (test data), and each runtime dependency a
``software_Package`` the model ``dependsOn``. spdx-tools is not used: its SPDX 3 support follows a pre-3.0 draft.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from spdx_python_model import v3_0_1 as spdx

from sbom.card import Dataset
from sbom.errors import BomInvalid
from sbom.model import AiBom

__all__ = ["read_spdx", "render_spdx"]

_HASH_ALGORITHMS = {
    "sha256": "sha256",
    "sha384": "sha384",
    "sha512": "sha512",
    "sha3-256": "sha3_256",
    "sha3-512": "sha3_512",
    "blake3": "blake3",
}


class _Builder:
    def __init__(self, bom: AiBom) -> None:
        self.base = f"urn:uuid:{bom.serial}#"
        self.objects = spdx.SHACLObjectSet()
        self.agent = spdx.SoftwareAgent(_id=self.id("agent", "ccdeploy"), name="ccdeploy")
        self.info = spdx.CreationInfo(
            specVersion="3.0.1",
            created=bom.created,
            createdBy=[self.agent],
        )
        self.agent.creationInfo = self.info
        self.elements: list[Any] = [self.agent]

    def id(self, kind: str, local: str) -> str:
        return f"{self.base}{kind}-{quote(local, safe='')}"

    def add(self, element: Any) -> Any:
        element.creationInfo = self.info
        self.elements.append(element)
        return element

    def hashes(self, digests: Mapping[str, str]) -> list[Any]:
        return [
            spdx.Hash(algorithm=getattr(spdx.HashAlgorithm, _HASH_ALGORITHMS[alg]), hashValue=value)
            for alg, value in sorted(digests.items())
        ]

    def relationship(self, name: str, source: Any, kind: str, targets: list[Any]) -> None:
        if targets:
            self.add(
                spdx.Relationship(
                    _id=self.id("relationship", name),
                    from_=source,
                    relationshipType=getattr(spdx.RelationshipType, kind),
                    to=targets,
                )
            )


def _model_package(builder: _Builder, bom: AiBom) -> Any:
    card = bom.card
    model = builder.add(
        spdx.ai_AIPackage(
            _id=builder.id("model", bom.model_name),
            name=bom.model_name,
            software_packageVersion=bom.model_version,
            software_primaryPurpose=spdx.software_SoftwarePurpose.model,
        )
    )
    if card.description:
        model.description = card.description
    if card.task:
        model.ai_domain = [card.task]
    arch = card.architecture
    if arch is not None and (arch.family or arch.name):
        model.ai_typeOfModel = [name for name in (arch.family, arch.name) if name]
    if card.limitations:
        model.ai_limitation = "\n".join(card.limitations)
    if card.intended_use is not None and card.intended_use.use_cases:
        model.ai_informationAboutApplication = "\n".join(card.intended_use.use_cases)
    if card.metrics:
        model.ai_metric = [
            spdx.DictionaryEntry(key=m.type + (f" ({m.slice})" if m.slice else ""), value=str(m.value))
            for m in card.metrics
        ]
    return model


def _dataset_package(builder: _Builder, dataset: Dataset) -> Any:
    package = builder.add(
        spdx.dataset_DatasetPackage(
            _id=builder.id("dataset", dataset.ref.removeprefix("dataset:")),
            name=dataset.name,
            software_primaryPurpose=spdx.software_SoftwarePurpose.data,
            dataset_datasetType=[spdx.dataset_DatasetType.other],
        )
    )
    if dataset.version:
        package.software_packageVersion = dataset.version
    if dataset.url:
        package.software_downloadLocation = dataset.url
    if dataset.description:
        package.description = dataset.description
    if dataset.digests:
        package.verifiedUsing = builder.hashes({str(alg): value for alg, value in dataset.digests.items()})
    if dataset.sensitive_data:
        package.dataset_hasSensitivePersonalInformation = spdx.PresenceType.yes
    return package


def _build(bom: AiBom) -> Any:
    builder = _Builder(bom)
    model = _model_package(builder, bom)
    files = [
        builder.add(
            spdx.software_File(
                _id=builder.id("file", f.path),
                name=f.path,
                verifiedUsing=builder.hashes({"sha256": f.sha256}),
                software_primaryPurpose=spdx.software_SoftwarePurpose.model,
            )
        )
        for f in bom.files
    ]
    builder.relationship("model-contains-files", model, "contains", files)
    datasets = [(d, _dataset_package(builder, d)) for d in bom.card.datasets]
    trained = [package for d, package in datasets if d.role in ("training", "validation")]
    tested = [package for d, package in datasets if d.role == "testing"]
    builder.relationship("model-trained-on", model, "trainedOn", trained)
    builder.relationship("model-tested-on", model, "testedOn", tested)
    packages = [
        builder.add(
            spdx.software_Package(
                _id=builder.id("package", d.purl),
                name=d.name,
                software_packageVersion=d.version,
                software_packageUrl=d.purl,
                software_primaryPurpose=spdx.software_SoftwarePurpose.library,
                verifiedUsing=[spdx.Hash(algorithm=spdx.HashAlgorithm.sha256, hashValue=h) for h in d.hashes],
            )
        )
        for d in bom.dependencies
    ]
    builder.relationship("model-depends-on", model, "dependsOn", packages)
    sealed = []
    for artifact in bom.sealed:
        element = builder.add(
            spdx.software_File(
                _id=builder.id("sealed", artifact.artifact_id),
                name=artifact.name,
                software_primaryPurpose=spdx.software_SoftwarePurpose.archive,
                comment="sealed (encrypted) model artifact; "
                + ", ".join(f"{alg}: {value}" for alg, value in artifact.digest_set.items())
                + f"; header-sha256: {artifact.header_sha256}",
            )
        )
        sealed.append(element)
    builder.relationship("model-packaged-by", model, "packagedBy", sealed)
    document = spdx.SpdxDocument(
        _id=builder.id("document", bom.model_name),
        name=f"AI BOM of {bom.model_name} {bom.model_version}",
        creationInfo=builder.info,
        rootElement=[model],
        element=list(builder.elements),
    )
    for element in [document, *builder.elements]:
        builder.objects.add(element)
    return builder.objects


def render_spdx(bom: AiBom) -> bytes:
    """See :meth:`AiBom.to_spdx_jsonld`."""
    try:
        data = spdx.JSONLDSerializer().serialize_data(_build(bom), force_at_graph=True)
    except (TypeError, ValueError) as exc:
        raise BomInvalid(f"cannot write the SPDX document: {exc}") from None
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"
    read_spdx(json.loads(text))
    return text


def read_spdx(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Read an SPDX 3.0.1 JSON-LD document into the bindings' object model and back; return its elements.

    Raises:
        BomInvalid: the bindings refuse it, or it references elements it does not hold.
    """
    objects = spdx.SHACLObjectSet()
    try:
        spdx.JSONLDDeserializer().deserialize_data(document, objects)
        missing = objects.link()
        reencoded = spdx.JSONLDSerializer().serialize_data(objects, force_at_graph=True)
    except Exception as exc:
        # The generated deserializer signals bad input with assorted built-in exceptions (TypeError,
        # ValueError, KeyError, AttributeError...), not one error type; any of them means "not valid SPDX".
        raise BomInvalid(f"not a valid SPDX 3.0.1 document: {type(exc).__name__}: {str(exc)[:300]}") from None
    if missing:
        raise BomInvalid(f"SPDX document references elements it does not hold: {', '.join(sorted(missing))[:300]}")
    graph = reencoded.get("@graph", [])
    return [node for node in graph if isinstance(node, dict)]
