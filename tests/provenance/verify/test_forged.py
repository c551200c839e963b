"""Forged negatives, made reproducibly from the real vectors or with throwaway keys and CAs."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from ccdeploy.kek import KeyWrapper
from ccdeploy.seal import seal_model
from ccdeploy.seal.digest import DIGEST_ALGORITHM, sealed_digest
from ccdeploy.seal.manifest import compute_manifest
from tests.provenance.verify.conftest import (
    RunCli,
    cert_bundle,
    days,
    key_bundle,
    make_pki,
    now,
    pem_public,
    statement,
)

BCR = "https://github.com/bazel-contrib/.github/.github/workflows/release_ruleset.yaml"


def _flip(data: str, index: int = 10) -> str:
    raw = bytearray(base64.b64decode(data))
    raw[index % len(raw)] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _write(tmp_path: Path, bundle: dict[str, Any], name: str = "bundle.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(bundle))
    return path


@pytest.fixture
def bcr_bundle(vectors: Path) -> dict[str, Any]:
    raw = (vectors / "in-toto-slsa" / "slsa-bcr" / "rules_lint-v1.3.1.tar.gz.intoto.jsonl").read_text()
    bundle: dict[str, Any] = json.loads(raw)
    return bundle


def _run_bcr(run_cli: RunCli, vectors: Path, bundle_path: Path) -> tuple[int, dict[str, Any]]:
    archive = vectors / "in-toto-slsa" / "slsa-bcr" / "rules_lint-v1.3.1.tar.gz"
    return run_cli(
        archive, "--signature", bundle_path, "--source", "github.com/aspect-build/rules_lint", "--builder-id", BCR
    )


@pytest.mark.parametrize("where", ["signature", "payload", "tlog-body"])
def test_flipped_byte_in_keyless_bundle_fails(
    run_cli: RunCli, vectors: Path, tmp_path: Path, bcr_bundle: dict[str, Any], where: str
) -> None:
    if where == "signature":
        sig = bcr_bundle["dsseEnvelope"]["signatures"][0]
        sig["sig"] = _flip(sig["sig"])
    elif where == "payload":
        bcr_bundle["dsseEnvelope"]["payload"] = _flip(bcr_bundle["dsseEnvelope"]["payload"], 200)
    else:
        entry = bcr_bundle["verificationMaterial"]["tlogEntries"][0]
        entry["canonicalizedBody"] = _flip(entry["canonicalizedBody"], 40)
    rc, doc = _run_bcr(run_cli, vectors, _write(tmp_path, bcr_bundle))
    assert rc == 1, doc
    assert doc["error"]["type"] in ("SignatureInvalid", "BundleMalformed")


def test_untouched_bcr_bundle_verifies(
    run_cli: RunCli, vectors: Path, tmp_path: Path, bcr_bundle: dict[str, Any]
) -> None:
    rc, doc = _run_bcr(run_cli, vectors, _write(tmp_path, bcr_bundle))
    assert rc == 0, doc


def test_slsa_predicate_builder_change_fails_at_signature(
    run_cli: RunCli, vectors: Path, tmp_path: Path, bcr_bundle: dict[str, Any]
) -> None:
    payload = json.loads(base64.b64decode(bcr_bundle["dsseEnvelope"]["payload"]))
    payload["predicate"]["runDetails"]["builder"]["id"] = BCR + "@refs/tags/v9.9.9"
    bcr_bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    rc, doc = _run_bcr(run_cli, vectors, _write(tmp_path, bcr_bundle))
    assert rc == 1
    assert doc["error"]["type"] == "SignatureInvalid"
    assert doc["error"]["check"] == "sigstore"


def test_intoto_v002_payload_swap_fails(run_cli: RunCli, vectors: Path, tmp_path: Path) -> None:
    npm = vectors / "in-toto-slsa" / "slsa-npm"
    container = json.loads((npm / "gundam-visor-cli-v1-tag.tgz.json").read_text())
    provenance = container["attestations"][1]["bundle"]
    provenance["dsseEnvelope"]["payload"] = _flip(provenance["dsseEnvelope"]["payload"], 300)
    rc, doc = run_cli(
        npm / "gundam-visor-cli-v1-tag.tgz",
        "--signature",
        _write(tmp_path, container),
        "--source",
        "github.com/ramonpetgrave64/gundam-visor",
        "--builder-id",
        "https://github.com/actions/runner/github-hosted",
    )
    assert rc == 1
    assert doc["error"]["type"] == "SignatureInvalid"


# --- key-signed and certificate-signed bundles made here -----------------------------------------------------


def _model(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\x00\x01" * 1000)
    (model / "sub").mkdir()
    (model / "sub" / "config.json").write_bytes(b'{"layers": 2}')
    return model


def _model_statement(model: Path, hash_type: str = "sha256") -> bytes:
    digests, root = compute_manifest(model, "blake3" if hash_type == "blake3" else "sha256")
    resources = [{"name": n, "algorithm": hash_type, "digest": d} for n, d in digests.items()]
    predicate = {
        "serialization": {"method": "files", "hash_type": hash_type, "allow_symlinks": False, "ignore_paths": []},
        "resources": resources,
    }
    return statement(
        [{"name": model.name, "digest": {"sha256": root}}], "https://model_signing/signature/v1.0", predicate
    )


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()], ids=["p256", "p384"])
@pytest.mark.parametrize("hash_type", ["sha256", "blake3"])
def test_key_signed_model_directory(run_cli: RunCli, tmp_path: Path, curve: ec.EllipticCurve, hash_type: str) -> None:
    key = ec.generate_private_key(curve)
    (tmp_path / "key.pem").write_bytes(pem_public(key))
    model = _model(tmp_path)
    sig = _write(tmp_path, key_bundle(key, _model_statement(model, hash_type)))
    rc, doc = run_cli(model, "--signature", sig, "--key", tmp_path / "key.pem")
    assert rc == 0, doc
    (model / "sub" / "config.json").write_bytes(b'{"layers": 3}')
    rc, doc = run_cli(model, "--signature", sig, "--key", tmp_path / "key.pem")
    assert rc == 1
    assert doc["error"]["type"] == "SubjectMismatch"


def test_model_signing_interop_verifies_our_key_bundle(tmp_path: Path) -> None:
    from model_signing import verifying

    key = ec.generate_private_key(ec.SECP384R1())
    (tmp_path / "key.pem").write_bytes(pem_public(key))
    model = _model(tmp_path)
    sig = _write(tmp_path, key_bundle(key, _model_statement(model)), "model.sig.json")
    verifying.Config().use_elliptic_key_verifier(public_key=tmp_path / "key.pem").verify(model, sig)  # type: ignore[no-untyped-call]


def test_certificate_bundle_valid_then_expired(run_cli: RunCli, tmp_path: Path) -> None:
    model = _model(tmp_path)
    body = _model_statement(model)
    good = make_pki(now() - days(1), now() + days(30))
    (tmp_path / "root.pem").write_bytes(good.root.public_bytes(Encoding.PEM))
    rc, doc = run_cli(
        model, "--signature", _write(tmp_path, cert_bundle(good, body)), "--cert-root", tmp_path / "root.pem"
    )
    assert rc == 0, doc

    expired = make_pki(now() - days(30), now() - days(1))
    pem = expired.root.public_bytes(Encoding.PEM)
    (tmp_path / "old-root.pem").write_bytes(pem)
    args = [
        "--signature",
        _write(tmp_path, cert_bundle(expired, body), "old.json"),
        "--cert-root",
        tmp_path / "old-root.pem",
    ]
    rc, doc = run_cli(model, *args)
    assert rc == 1
    assert doc["error"]["type"] == "UntrustedSigner"
    # The same chain validates when asked about a time inside its validity (explicit --at).
    rc, doc = run_cli(model, *args, "--at", (now() - days(2)).isoformat())
    assert rc == 0, doc


def test_certificate_without_code_signing_eku_fails(run_cli: RunCli, tmp_path: Path) -> None:
    model = _model(tmp_path)
    pki = make_pki(now() - days(1), now() + days(30), code_signing=False)
    (tmp_path / "root.pem").write_bytes(pki.root.public_bytes(Encoding.PEM))
    sig = _write(tmp_path, cert_bundle(pki, _model_statement(model)))
    rc, doc = run_cli(model, "--signature", sig, "--cert-root", tmp_path / "root.pem")
    assert rc == 1
    assert doc["error"]["type"] == "UntrustedSigner"


def test_certificate_from_another_ca_fails(run_cli: RunCli, tmp_path: Path) -> None:
    model = _model(tmp_path)
    pki = make_pki(now() - days(1), now() + days(30))
    other = make_pki(now() - days(1), now() + days(30))
    (tmp_path / "other.pem").write_bytes(other.root.public_bytes(Encoding.PEM))
    sig = _write(tmp_path, cert_bundle(pki, _model_statement(model)))
    rc, _ = run_cli(model, "--signature", sig, "--cert-root", tmp_path / "other.pem")
    assert rc == 1


# --- sealed artifacts ---------------------------------------------------------------------------------------


def test_sealed_artifact_subjects(run_cli: RunCli, tmp_path: Path, kek: KeyWrapper) -> None:
    model = _model(tmp_path)
    sealed = tmp_path / "model.ccseal"
    seal_model(model, sealed, [kek], digest_record=False)
    digest = sealed_digest(sealed)
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "key.pem").write_bytes(pem_public(key))
    subjects = [
        {"name": "model.ccseal", "digest": {DIGEST_ALGORITHM: digest.value}},
        {"name": "model", "digest": {"sha256": digest.header.model.manifest_digest}},
    ]
    sig = _write(tmp_path, key_bundle(key, statement(subjects, "https://slsa.dev/provenance/v1", {})))
    rc, doc = run_cli(sealed, "--signature", sig, "--key", tmp_path / "key.pem")
    assert rc == 0, doc
    assert [s["matched"] for s in doc["subjects"]] == [True, True]

    # Only the plaintext manifest digest, without the sealed digest: not enough.
    only_manifest = key_bundle(key, statement(subjects[1:], "https://slsa.dev/provenance/v1", {}))
    rc, doc = run_cli(sealed, "--signature", _write(tmp_path, only_manifest, "m.json"), "--key", tmp_path / "key.pem")
    assert rc == 1
    assert doc["error"]["type"] == "SubjectMismatch"

    data = bytearray(sealed.read_bytes())
    data[-5] ^= 0x01
    sealed.write_bytes(bytes(data))
    rc, doc = run_cli(sealed, "--signature", sig, "--key", tmp_path / "key.pem")
    assert rc == 1
    assert doc["error"]["type"] == "SubjectMismatch"


def test_single_file_any_subject_digest_algorithm(run_cli: RunCli, tmp_path: Path) -> None:
    import hashlib

    artifact = tmp_path / "artifact.bin"
    artifact.write_bytes(b"payload")
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "key.pem").write_bytes(pem_public(key))
    subject = [{"name": "renamed", "digest": {"sha512": hashlib.sha512(b"payload").hexdigest()}}]
    sig = _write(tmp_path, key_bundle(key, statement(subject, "https://slsa.dev/provenance/v1", {})))
    rc, doc = run_cli(artifact, "--signature", sig, "--key", tmp_path / "key.pem")
    assert rc == 0, doc
    artifact.write_bytes(b"payloaD")
    rc, doc = run_cli(artifact, "--signature", sig, "--key", tmp_path / "key.pem")
    assert rc == 1
    assert doc["error"]["type"] == "SubjectMismatch"
