"""SPDX 3.0.1 output: AI and Dataset profile elements, and a round trip through the official bindings."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from spdx_python_model import v3_0_1 as spdx

from sbom import AiBom, BomInvalid, validate_bom, validate_spdx


def _objects(data: bytes) -> spdx.SHACLObjectSet:
    objects = spdx.SHACLObjectSet()
    spdx.JSONLDDeserializer().read(io.BytesIO(data), objects)
    return objects


def _elements(objects: spdx.SHACLObjectSet) -> dict[str, str]:
    found: dict[str, str] = {}
    for obj in objects.foreach():
        ident: Any = getattr(obj, "_id", None)
        if ident and not ident.startswith("_:"):
            found[ident] = type(obj).__name__
    return found


def test_jsonld_round_trip_keeps_the_same_elements(aibom: AiBom) -> None:
    data = aibom.to_spdx_jsonld()
    assert json.loads(data)["@context"] == "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
    objects = _objects(data)
    assert not objects.link()
    out = io.BytesIO()
    spdx.JSONLDSerializer().write(objects, out, force_at_graph=True)
    assert _elements(_objects(out.getvalue())) == _elements(objects)
    kinds = sorted(_elements(objects).values())
    assert kinds.count("ai_AIPackage") == 1
    assert kinds.count("dataset_DatasetPackage") == 2
    assert kinds.count("software_File") == 2
    assert kinds.count("software_Package") == 1


def test_relationships_and_hashes(aibom: AiBom) -> None:
    objects = _objects(aibom.to_spdx_jsonld())
    objects.link()
    relationships: dict[str, list[str]] = {}
    for relationship in objects.foreach_type(spdx.Relationship):
        targets: list[Any] = list(relationship.to)
        relationships[str(relationship.relationshipType).rsplit("/", 1)[-1]] = sorted(t.name for t in targets)
    assert relationships["trainedOn"] == ["tf-flowers"]
    assert relationships["testedOn"] == ["tf-flowers-holdout"]
    assert relationships["dependsOn"] == ["onnxruntime"]
    assert relationships["contains"] == ["model.onnx", "weights/model.onnx.data"]
    files: dict[str, list[str]] = {}
    for file in objects.foreach_type(spdx.software_File):
        hashes: list[Any] = list(file.verifiedUsing)
        files[str(file.name)] = [h.hashValue for h in hashes]
    assert files["model.onnx"] == ["1" * 64]


def test_validate_detects_spdx(aibom: AiBom) -> None:
    result = validate_bom(aibom.to_spdx_jsonld())
    assert (result.format, result.spec_version) == ("spdx", "3.0.1")


def test_dangling_reference_is_invalid(aibom: AiBom) -> None:
    document = json.loads(aibom.to_spdx_jsonld())
    document["@graph"] = [n for n in document["@graph"] if n.get("type") != "dataset_DatasetPackage"]
    with pytest.raises(BomInvalid, match="references elements"):
        validate_spdx(json.dumps(document).encode())


def test_wrong_property_type_is_invalid(aibom: AiBom) -> None:
    document = json.loads(aibom.to_spdx_jsonld())
    for node in document["@graph"]:
        if node.get("type") == "ai_AIPackage":
            node["software_primaryPurpose"] = 7
    with pytest.raises(BomInvalid, match="not a valid SPDX"):
        validate_spdx(json.dumps(document).encode())


def test_wrong_context_is_invalid(aibom: AiBom) -> None:
    document = json.loads(aibom.to_spdx_jsonld())
    document["@context"] = "https://spdx.org/rdf/3.0.0/spdx-context.jsonld"
    with pytest.raises(BomInvalid, match="@context"):
        validate_bom(json.dumps(document).encode())
