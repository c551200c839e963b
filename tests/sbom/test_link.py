"""Adding sealed artifacts and external references to an existing CycloneDX BOM."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ccdeploy.kek import KeyWrapper
from ccdeploy.seal import seal_model
from ccdeploy.seal.digest import sealed_digest
from sbom import AiBom, BomInvalid, InputInvalid, add_reference, add_sealed_artifact, diff_boms, validate_cyclonedx


def _model(document: dict[str, Any]) -> dict[str, Any]:
    component: dict[str, Any] = document["metadata"]["component"]
    return component


def test_add_real_sealed_artifact(aibom: AiBom, tmp_path: Path, kek: KeyWrapper) -> None:
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07onnx-ish bytes")
    artifact = tmp_path / "model.ccseal"
    seal_model(tmp_path / "model.onnx", artifact, [kek], created=datetime(2026, 1, 1, tzinfo=UTC))
    digest = sealed_digest(artifact)
    base = aibom.to_cyclonedx_json()
    out = add_sealed_artifact(base, artifact.name, digest.digest_set(), digest.artifact_id, digest.header_sha256)
    validate_cyclonedx(out)
    document = json.loads(out)
    sealed = next(c for c in document["components"] if c["bom-ref"] == f"sealed:{digest.artifact_id}")
    assert {"name": "ccdeploy:digest:ccseal.v1.blake3", "value": digest.value} in sealed["properties"]
    assert {"ref": f"sealed:{digest.artifact_id}", "dependsOn": ["model"]} in document["dependencies"]
    again = add_sealed_artifact(out, artifact.name, digest.digest_set(), digest.artifact_id, digest.header_sha256)
    assert again == out
    assert "sealed:" in str(diff_boms(base, out))


def test_add_reference_replaces_same_kind_and_url(aibom: AiBom) -> None:
    base = aibom.to_cyclonedx_json()
    once = add_reference(base, "signature-bundle", "model.sigstore.json", "a" * 64, "keyless")
    twice = add_reference(once, "signature-bundle", "model.sigstore.json", "b" * 64)
    refs = _model(json.loads(twice))["externalReferences"]
    assert refs == [
        {
            "type": "digital-signature",
            "url": "model.sigstore.json",
            "comment": "ccdeploy:signature-bundle",
            "hashes": [{"alg": "SHA-256", "content": "b" * 64}],
        }
    ]
    receipt = add_reference(twice, "release-receipt", "https://broker.example/r/1", {"sha512": "c" * 128})
    kinds = [r["comment"] for r in _model(json.loads(receipt))["externalReferences"]]
    assert sorted(kinds) == ["ccdeploy:release-receipt", "ccdeploy:signature-bundle"]
    on_file = add_reference(base, "provenance", "p.json", "d" * 64, target="file:model.onnx")
    files = _model(json.loads(on_file))["components"]
    assert isinstance(files, list)
    assert files[0]["externalReferences"][0]["type"] == "attestation"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "selfie"}, "unknown reference kind"),
        ({"digest": "xyz"}, "not lowercase hex"),
        ({"digest": {"md5": "a" * 32}}, "unsupported digest"),
        ({"url": "has space"}, "whitespace"),
        ({"target": "nowhere"}, "no component"),
    ],
)
def test_bad_references(aibom: AiBom, kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"kind": "provenance", "url": "p.json", "digest": "a" * 64, **kwargs}
    with pytest.raises(InputInvalid, match=message):
        add_reference(aibom.to_cyclonedx_json(), **arguments)  # type: ignore[arg-type]


def test_link_refuses_an_invalid_bom() -> None:
    with pytest.raises(BomInvalid):
        add_reference(b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "x": 1}', "provenance", "p", "a" * 64)
    with pytest.raises(InputInvalid, match="no component"):
        add_reference(b'{"bomFormat": "CycloneDX", "specVersion": "1.6"}', "provenance", "p", "a" * 64)
    with pytest.raises(InputInvalid, match="sealed artifact"):
        add_sealed_artifact(b"", "x", {}, "0" * 64, "0" * 64)
