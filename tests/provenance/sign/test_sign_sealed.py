"""Signing a sealed artifact: the three bundles, the digest record fast path, BOMs, and no partial output."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ccdeploy._cli import main
from ccdeploy.errors import SignerUnavailable
from ccdeploy.provenance.dsse import pae
from ccdeploy.provenance.predicates import (
    BOM_PREDICATE_TYPE,
    MODEL_SIGNING_PREDICATE_TYPE,
    SEAL_BUILD_TYPE,
    SLSA_PREDICATE_TYPE,
)
from ccdeploy.provenance.sign import sign_sealed
from ccdeploy.provenance.signers import SignerOptions, StatementSigner, signer_from_uri
from ccdeploy.seal import read_header
from ccdeploy.seal.digest import record_path, sealed_digest
from tests.provenance.sign.conftest import BOM, KeyFiles

NAMES = ("tiny-model.provenance.sigstore.json", "tiny-model.model.sig", "tiny-model.bom.sigstore.json")


def _verified_statement(bundle: Path, key: KeyFiles) -> dict[str, Any]:
    """Check the DSSE signature with cryptography directly; return the statement."""
    document = json.loads(bundle.read_bytes())
    envelope = document["dsseEnvelope"]
    payload = base64.b64decode(envelope["payload"])
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    key.key.public_key().verify(signature, pae(envelope["payloadType"], payload), ec.ECDSA(hashes.SHA384()))
    statement: dict[str, Any] = json.loads(payload)
    return statement


def test_seal_bom_records_the_digest_and_the_record(
    sealed: Path, bom_file: Path, model_dir: Path, make_kek: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert read_header(sealed).bom_digest == hashlib.sha256(BOM).hexdigest()
    assert record_path(sealed).is_file()
    output = sealed.with_name("again.ccseal")
    kek = make_kek("again")
    assert main(["seal", str(model_dir), "--kek", kek.uri, "-o", str(output), "--bom", str(bom_file), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["digest_record"] == str(record_path(output))
    assert document["header"]["bom_digest"] == hashlib.sha256(BOM).hexdigest()


def test_sealed_artifact_gets_three_signed_statements(
    sealed: Path, bom_file: Path, p384: KeyFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    builder = "https://github.com/example/models/.github/workflows/release.yml@refs/heads/main"
    rc = main(["sign", str(sealed), "--signer", p384.uri, "--bom", str(bom_file), "--builder-id", builder, "--json"])
    assert rc == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True
    assert document["sealed"]["digest_from_record"] is True
    paths = [Path(b["path"]) for b in document["bundles"]]
    assert [p.name for p in paths] == list(NAMES)
    assert [b["predicate_type"] for b in document["bundles"]] == [
        SLSA_PREDICATE_TYPE,
        MODEL_SIGNING_PREDICATE_TYPE,
        BOM_PREDICATE_TYPE,
    ]

    header = read_header(sealed)
    artifact = sealed_digest(sealed)
    subjects = [
        {"name": "tiny-model.ccseal", "digest": {"ccseal.v1.blake3": artifact.value}},
        {"name": "tiny-model", "digest": {"sha256": header.model.manifest_digest}},
    ]
    slsa = _verified_statement(paths[0], p384)
    assert slsa["subject"] == subjects
    definition = slsa["predicate"]["buildDefinition"]
    assert definition["buildType"] == SEAL_BUILD_TYPE
    assert definition["externalParameters"]["model"] == {"name": "tiny-model", "hashAlgorithm": "sha256", "files": 3}
    (recipient,) = definition["externalParameters"]["recipients"]
    assert recipient == {"kek": header.recipients[0].kek, "keyId": header.recipients[0].key_id, "wrap": "AES-KWP"}
    assert header.recipients[0].wrapped_dek not in paths[0].read_text()
    assert definition["resolvedDependencies"] == [
        {"name": "tiny-model", "digest": {"sha256": header.model.manifest_digest}},
        {"name": "ai-bom", "digest": {"sha256": hashlib.sha256(BOM).hexdigest()}},
    ]
    run = slsa["predicate"]["runDetails"]
    assert run["builder"] == {"id": builder}
    assert run["metadata"] == {"invocationId": header.artifact_id, "startedOn": header.created}
    assert run["byproducts"][0]["digest"] == {"sha256": artifact.header_sha256}

    model = _verified_statement(paths[1], p384)
    assert model["subject"] == [subjects[1]]
    assert [r["name"] for r in model["predicate"]["resources"]] == ["config.json", "model.onnx", "weights/w0.bin"]

    bom = _verified_statement(paths[2], p384)
    assert bom["subject"] == subjects
    assert bom["predicate"] == json.loads(BOM)


def test_statements_are_byte_stable(sealed: Path, p384: KeyFiles, tmp_path: Path) -> None:
    signer = signer_from_uri(p384.uri)
    first = sign_sealed(sealed, signer).bundles
    again = tmp_path / "again"
    again.mkdir()
    second = sign_sealed(sealed, signer, output_dir=again).bundles
    for a, b in zip(first, second, strict=True):
        payload_a = json.loads(a.path.read_bytes())["dsseEnvelope"]["payload"]
        payload_b = json.loads(b.path.read_bytes())["dsseEnvelope"]["payload"]
        assert payload_a == payload_b


def test_valid_record_means_the_payload_is_not_read(sealed: Path, p384: KeyFiles) -> None:
    """Flip a payload byte but keep size and mtime: the record still answers, so no payload byte was read."""
    honest = sealed_digest(sealed).value
    info = sealed.stat()
    with sealed.open("r+b") as handle:
        handle.seek(info.st_size - 5)
        byte = handle.read(1)
        handle.seek(info.st_size - 5)
        handle.write(bytes([byte[0] ^ 0xFF]))
    os.utime(sealed, ns=(info.st_atime_ns, info.st_mtime_ns))
    result = sign_sealed(sealed, signer_from_uri(p384.uri))
    assert result.digest_from_record is True
    assert result.sealed is not None
    assert result.sealed.value == honest != sealed_digest(sealed).value


def test_stale_record_falls_back_to_hashing(sealed: Path, p384: KeyFiles) -> None:
    os.utime(sealed, ns=(sealed.stat().st_atime_ns, sealed.stat().st_mtime_ns + 1_000_000_000))
    result = sign_sealed(sealed, signer_from_uri(p384.uri))
    assert result.digest_from_record is False
    assert result.sealed is not None
    assert result.sealed.value == sealed_digest(sealed).value
    record_path(sealed).unlink()
    result = sign_sealed(sealed, signer_from_uri(p384.uri), overwrite=True)
    assert result.digest_from_record is False


def test_bom_that_was_not_sealed_exits_2_and_writes_nothing(
    sealed: Path, p384: KeyFiles, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other-bom.json"
    other.write_bytes(BOM.replace(b"tiny-model", b"other-model"))
    assert main(["sign", str(sealed), "--signer", p384.uri, "--bom", str(other)]) == 2
    assert "not the BOM it was sealed with" in capsys.readouterr().err
    assert not any(sealed.with_name(name).exists() for name in NAMES)


def test_not_a_cyclonedx_bom_exits_2(sealed: Path, p384: KeyFiles, tmp_path: Path, make_kek: Any) -> None:
    spdx = tmp_path / "spdx.json"
    spdx.write_text('{"spdxVersion": "SPDX-2.3"}')
    assert main(["sign", str(sealed), "--signer", p384.uri, "--bom", str(spdx)]) == 2


def test_bom_options_need_a_sealed_artifact(model_dir: Path, p384: KeyFiles, bom_file: Path) -> None:
    assert main(["sign", str(model_dir), "--signer", p384.uri, "--bom", str(bom_file)]) == 2
    assert main(["sign", str(model_dir), "--signer", p384.uri, "--builder-id", "https://x"]) == 2


class _FailsSecondTime(StatementSigner):
    """A real signer (a file key) whose backend goes away after the first signature."""

    scheme = "test"

    def __init__(self, inner: StatementSigner) -> None:
        self._inner = inner
        self._calls = 0

    @classmethod
    def from_uri(cls, uri: str, options: SignerOptions) -> _FailsSecondTime:
        return cls(signer_from_uri(uri, options))

    def sign_dsse(self, payload: bytes, payload_type: str) -> dict[str, Any]:
        self._calls += 1
        if self._calls > 1:
            raise SignerUnavailable("the signing service went away")
        return self._inner.sign_dsse(payload, payload_type)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.scheme}


def test_signer_failure_leaves_no_partial_output(sealed: Path, p384: KeyFiles) -> None:
    before = sorted(p.name for p in sealed.parent.iterdir())
    with pytest.raises(SignerUnavailable):
        sign_sealed(sealed, _FailsSecondTime.from_uri(p384.uri, SignerOptions()))
    assert sorted(p.name for p in sealed.parent.iterdir()) == before


def test_write_failure_removes_bundles_already_written(sealed: Path, p384: KeyFiles) -> None:
    blocker = sealed.with_name(NAMES[1])
    blocker.mkdir()  # the second target is a directory: its rename fails after the first file landed
    before = sorted(p.name for p in sealed.parent.iterdir())
    assert main(["sign", str(sealed), "--signer", p384.uri, "--force"]) != 0
    assert sorted(p.name for p in sealed.parent.iterdir()) == before


def test_refuses_to_overwrite_without_force(sealed: Path, p384: KeyFiles) -> None:
    assert main(["sign", str(sealed), "--signer", p384.uri]) == 0
    provenance = sealed.with_name(NAMES[0])
    first = provenance.read_bytes()
    assert main(["sign", str(sealed), "--signer", p384.uri]) == 2
    assert provenance.read_bytes() == first
    assert main(["sign", str(sealed), "--signer", p384.uri, "--force"]) == 0


def test_output_dir(sealed: Path, p384: KeyFiles, tmp_path: Path) -> None:
    out = tmp_path / "bundles"
    assert main(["sign", str(sealed), "--signer", p384.uri, "-o", str(out)]) == 2
    out.mkdir()
    assert main(["sign", str(sealed), "--signer", p384.uri, "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES[:2])
