"""CycloneDX 1.6 output: strict-schema valid, ML parts kept, deterministic, broken model cards caught."""

from __future__ import annotations

import json
from datetime import timedelta, timezone

import pytest
from cyclonedx.model.bom import Bom
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from sbom import AiBom, BomInvalid, InputInvalid, ModelCard, build_bom, validate_cyclonedx
from sbom.validate import dump_cyclonedx
from tests.sbom.conftest import CREATED, SERIAL


def test_output_passes_the_library_strict_validator(aibom: AiBom) -> None:
    data = aibom.to_cyclonedx_json()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(data.decode()) is None
    result = validate_cyclonedx(data)
    assert result.format == "cyclonedx"
    assert result.spec_version == "1.6"
    assert result.serial == f"urn:uuid:{SERIAL}"


def test_model_card_data_and_formulation_survive(aibom: AiBom) -> None:
    document = json.loads(aibom.to_cyclonedx_json())
    model = document["metadata"]["component"]
    assert model["type"] == "machine-learning-model"
    card = model["modelCard"]
    assert card["modelParameters"]["architectureFamily"] == "convolutional neural network"
    assert card["modelParameters"]["datasets"] == [
        {"ref": "dataset:tf-flowers@3.0.1"},
        {"ref": "dataset:tf-flowers-holdout@3.0.1"},
    ]
    metrics = card["quantitativeAnalysis"]["performanceMetrics"]
    assert metrics[0] == {
        "type": "accuracy",
        "value": "0.912",
        "slice": "tf-flowers-holdout",
        "confidenceInterval": {"lowerBound": "0.894", "upperBound": "0.928"},
    }
    assert card["considerations"]["ethicalConsiderations"][0]["mitigationStrategy"].startswith("The application")
    datasets = {c["bom-ref"]: c for c in document["components"] if c["type"] == "data"}
    assert datasets["dataset:tf-flowers@3.0.1"]["data"][0]["contents"]["url"].endswith("flower_photos.tgz")
    assert datasets["dataset:tf-flowers-holdout@3.0.1"]["data"][0]["sensitiveData"]
    workflows = {w["uid"]: w for w in document["formulation"][0]["workflows"]}
    assert workflows["training"]["inputs"] == [{"resource": {"ref": "dataset:tf-flowers@3.0.1"}}]
    assert workflows["evaluation"]["taskTypes"] == ["test"]
    files = {c["name"]: c["hashes"][0]["content"] for c in model["components"]}
    assert files == {"model.onnx": "1" * 64, "weights/model.onnx.data": "2" * 64}


def test_library_round_trip_drops_the_ml_parts(aibom: AiBom) -> None:
    # Why AiBom keeps the ML parts itself: the library's parser silently loses them.
    parsed = Bom.from_json(json.loads(aibom.to_cyclonedx_json()))  # type: ignore[attr-defined]
    assert parsed.metadata.component is not None
    assert not hasattr(parsed.metadata.component, "model_card")


def test_same_inputs_same_bytes(card: ModelCard, aibom: AiBom) -> None:
    again = build_bom(
        card.name, card.version, list(reversed(aibom.files)), card, aibom.dependencies, serial=SERIAL, created=CREATED
    )
    assert again.to_cyclonedx_json() == aibom.to_cyclonedx_json()
    assert again.to_spdx_jsonld() == aibom.to_spdx_jsonld()
    other_zone = CREATED.astimezone(timezone(timedelta(hours=5)))
    shifted = build_bom(
        card.name, card.version, aibom.files, card, aibom.dependencies, serial=SERIAL, created=other_zone
    )
    assert shifted.to_cyclonedx_json() == aibom.to_cyclonedx_json()


def test_broken_model_card_is_caught(aibom: AiBom) -> None:
    document = json.loads(aibom.to_cyclonedx_json())
    document["metadata"]["component"]["modelCard"]["modelParameters"]["approach"] = {"type": "guessing"}
    with pytest.raises(BomInvalid, match="/metadata/component/modelCard/modelParameters/approach/type"):
        dump_cyclonedx(document)
    document = json.loads(aibom.to_cyclonedx_json())
    document["metadata"]["component"]["modelCard"]["quantitativeAnalysis"]["performanceMetrics"][0]["value"] = 0.9
    with pytest.raises(BomInvalid, match="performanceMetrics"):
        validate_cyclonedx(json.dumps(document).encode())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff", "not UTF-8 JSON"),
        (b"[]", "not a JSON object"),
        (b'{"bomFormat": "CycloneDX", "bomFormat": "CycloneDX"}', "duplicate JSON key"),
        (b'{"bomFormat": "SPDX"}', "not a CycloneDX"),
        (b'{"bomFormat": "CycloneDX", "specVersion": "1.4"}', "not supported"),
    ],
)
def test_malformed_documents(data: bytes, message: str) -> None:
    with pytest.raises(BomInvalid, match=message):
        validate_cyclonedx(data)


def test_duplicate_bom_ref_is_refused(aibom: AiBom) -> None:
    document = json.loads(aibom.to_cyclonedx_json())
    document["components"][1]["bom-ref"] = document["components"][0]["bom-ref"]
    with pytest.raises(BomInvalid, match="more than one component"):
        validate_cyclonedx(json.dumps(document).encode())


def test_naive_time_and_duplicate_files_are_refused(card: ModelCard, aibom: AiBom) -> None:
    with pytest.raises(InputInvalid, match="timezone"):
        build_bom(card.name, card.version, aibom.files, card, serial=SERIAL, created=CREATED.replace(tzinfo=None))
    with pytest.raises(InputInvalid, match="listed twice"):
        build_bom(card.name, card.version, [*aibom.files, aibom.files[0]], card, serial=SERIAL, created=CREATED)
