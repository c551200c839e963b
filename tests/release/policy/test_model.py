"""check_model: a sealed artifact known by its head and stream digests, its provenance and its BOM."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ccdeploy._cli import main
from ccdeploy.release.decide import ModelDecision, check_model
from ccdeploy.release.policy import load_policy
from ccdeploy.release.protocol import DenialReason
from ccdeploy.seal.digest import sealed_digest, sealed_digest_from_parts, sealed_head_and_parts
from tests.conftest import MakeKek
from tests.release.policy.conftest import MakeSigned, PolicyDoc, SignedModel, dump, pem

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def check(
    document: PolicyDoc,
    model: SignedModel,
    *,
    provenance: bytes | str | None = "default",
    parts: tuple[str, ...] | None = None,
    head: bytes | None = None,
) -> ModelDecision:
    return check_model(
        load_policy(dump(document)),
        head=model.head if head is None else head,
        part_digests=model.parts if parts is None else parts,
        provenance=model.provenance if provenance == "default" else provenance,  # type: ignore[arg-type]
        now=NOW,
        name=model.sealed.name,
    )


def failed(decision: ModelDecision) -> list[str]:
    return [c.name for c in decision.checks if not c.ok]


@pytest.fixture
def by_key(base_policy: PolicyDoc, signed: SignedModel) -> PolicyDoc:
    return base_policy | {"provenance": {"key": pem(signed.key)}, "bom": {"required": True}}


def test_digest_from_parts_matches_the_file(signed: SignedModel) -> None:
    whole = sealed_digest(signed.sealed)
    known = sealed_digest_from_parts(signed.head, signed.parts)
    assert (known.value, known.header_sha256, known.artifact_id, known.size) == (
        whole.value,
        whole.header_sha256,
        whole.artifact_id,
        whole.size,
    )


def test_signed_artifact_passes(by_key: PolicyDoc, signed: SignedModel) -> None:
    decision = check(by_key | {"bom": {"digest": "sha256:" + signed.bom_sha256}}, signed)
    assert decision.ok, decision.detail
    assert decision.artifact_digest == sealed_digest(signed.sealed).value
    names = {c.name for c in decision.checks}
    assert {"artifact", "provenance.signature", "provenance.subject", "provenance.subject.seal_header"} <= names
    assert {"provenance.predicate", "bom"} <= names


def test_builder_id(by_key: PolicyDoc, signed: SignedModel) -> None:
    document = by_key | {"provenance": {"key": pem(signed.key), "builder_id": "https://ccdeploy.dev/builders/local/v1"}}
    assert check(document, signed).ok
    document["provenance"]["builder_id"] = "https://github.com/o/r/.github/workflows/release.yml"
    decision = check(document, signed)
    assert decision.denial is DenialReason.SIGNER_MISMATCH
    assert failed(decision) == ["provenance.builder_id"]


def test_no_requirement(base_policy: PolicyDoc, signed: SignedModel) -> None:
    decision = check(base_policy, signed, provenance=None)
    assert decision.ok
    assert [c.name for c in decision.checks] == ["artifact", "provenance", "bom"]


def test_missing_bundle(by_key: PolicyDoc, signed: SignedModel) -> None:
    decision = check(by_key, signed, provenance=None)
    assert decision.denial is DenialReason.PROVENANCE_MISSING
    assert failed(decision) == ["provenance"]


def test_another_key(by_key: PolicyDoc, signed: SignedModel) -> None:
    document = by_key | {"provenance": {"key": pem(ec.generate_private_key(ec.SECP256R1()))}}
    decision = check(document, signed)
    assert decision.denial is DenialReason.SIGNER_MISMATCH
    assert "another key" in decision.detail


def test_bundle_of_another_artifact(by_key: PolicyDoc, signed: SignedModel, make_signed: MakeSigned) -> None:
    other = make_signed("other")
    document = by_key | {"provenance": {"key": pem(other.key)}}
    decision = check(document, signed, provenance=other.provenance)
    assert decision.denial is DenialReason.PROVENANCE_INVALID
    assert "provenance.subject" in failed(decision)


def test_tampered_part_digest(by_key: PolicyDoc, signed: SignedModel) -> None:
    parts = (signed.parts[0][:-1] + ("0" if signed.parts[0][-1] != "0" else "1"), *signed.parts[1:])
    decision = check(by_key, signed, parts=parts)
    assert decision.denial is DenialReason.PROVENANCE_INVALID
    assert failed(decision) == ["provenance.subject"]


def test_tampered_head(by_key: PolicyDoc, signed: SignedModel) -> None:
    head = signed.head[:-1] + bytes([signed.head[-1] ^ 1])  # a flipped MAC byte still parses
    decision = check(by_key, signed, head=head)
    assert decision.denial is DenialReason.PROVENANCE_INVALID


@pytest.mark.parametrize(
    ("head", "parts"),
    [(b"not a sealed artifact", None), (None, ()), (None, ("zz",)), (None, ("00",)), ("trailing", None)],
)
def test_malformed_artifact(by_key: PolicyDoc, signed: SignedModel, head: object, parts: object) -> None:
    raw = signed.head + b"x" if head == "trailing" else head
    decision = check(by_key, signed, head=raw, parts=parts)  # type: ignore[arg-type]
    assert decision.denial is DenialReason.PROVENANCE_INVALID
    assert failed(decision) == ["artifact"]


def test_tampered_signature(by_key: PolicyDoc, signed: SignedModel) -> None:
    bundle = json.loads(signed.provenance)
    payload = bundle["dsseEnvelope"]["payload"]
    bundle["dsseEnvelope"]["payload"] = payload[:20] + ("A" if payload[20] != "A" else "B") + payload[21:]
    decision = check(by_key, signed, provenance=json.dumps(bundle).encode())
    assert decision.denial is DenialReason.PROVENANCE_INVALID


@pytest.mark.parametrize("bundle", [b"", b"{}", b"[]", b"not json", b'{"mediaType": "x"}'])
def test_malformed_bundle(by_key: PolicyDoc, signed: SignedModel, bundle: bytes) -> None:
    assert check(by_key, signed, provenance=bundle).denial is DenialReason.PROVENANCE_INVALID


def test_key_bundle_under_a_keyless_policy(base_policy: PolicyDoc, signed: SignedModel) -> None:
    document = base_policy | {"provenance": {"identity": "someone@example.com", "issuer": "https://accounts.example"}}
    decision = check(document, signed)
    assert decision.denial is DenialReason.SIGNER_MISMATCH
    assert "signed by a key" in decision.detail


def test_bom_mismatch(by_key: PolicyDoc, signed: SignedModel) -> None:
    decision = check(by_key | {"bom": {"digest": "sha256:" + "ab" * 32}}, signed)
    assert decision.denial is DenialReason.BOM_MISMATCH
    assert failed(decision) == ["bom"]


def test_bom_required_but_not_recorded(by_key: PolicyDoc, tmp_path: Path, make_kek: MakeKek) -> None:
    model = tmp_path / "plain-model"
    model.mkdir()
    (model / "model.onnx").write_bytes(b"\x08\x07" * 100)
    sealed = tmp_path / "plain.ccseal"
    assert main(["seal", str(model), "--kek", make_kek("plain").uri, "-o", str(sealed)]) == 0
    head, parts = sealed_head_and_parts(sealed)
    decision = check_model(load_policy(dump(by_key)), head=head, part_digests=parts, provenance=None, now=NOW)
    assert decision.denial is DenialReason.PROVENANCE_MISSING
    assert failed(decision) == ["provenance", "bom"]
    assert any("records no BOM" in c.detail for c in decision.checks)
    no_provenance = {key: value for key, value in by_key.items() if key != "provenance"}
    decision = check_model(load_policy(dump(no_provenance)), head=head, part_digests=parts, provenance=None, now=NOW)
    assert decision.denial is DenialReason.BOM_MISMATCH
