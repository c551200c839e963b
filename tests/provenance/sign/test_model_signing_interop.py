"""Our bundles are accepted by OpenSSF model_signing 1.1.1 (CLI and Python API), and refused when tampered."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from model_signing import hashing, verifying
from OpenSSL.crypto import X509StoreContextError

from ccdeploy._cli import main
from ccdeploy.provenance.predicates import model_signing_statement_for_header, model_signing_statement_for_model
from ccdeploy.provenance.sign import sign_model
from ccdeploy.provenance.signers import SignerOptions, signer_from_uri
from ccdeploy.seal import read_header
from tests.provenance.sign.conftest import KeyFiles, Pki, certificate

MODEL_SIGNING = Path(sys.executable).with_name("model_signing")


def ms_config() -> Any:
    """model_signing's verification config (its API is untyped)."""
    return verifying.Config()  # type: ignore[no-untyped-call]


def ms_verify_key(model: Path, signature: Path, public: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MODEL_SIGNING), "verify", "key", "--signature", str(signature), "--public_key", str(public), str(model)],
        capture_output=True,
        text=True,
        check=False,
    )


def statement_of(bundle: Path) -> dict[str, object]:
    document = json.loads(bundle.read_bytes())
    payload: dict[str, object] = json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))
    return payload


@pytest.mark.parametrize("key_name", ["p256", "p384"])
def test_key_signed_directory_is_accepted_by_the_model_signing_cli(
    key_name: str, model_dir: Path, request: pytest.FixtureRequest
) -> None:
    key: KeyFiles = request.getfixturevalue(key_name)
    assert main(["sign", str(model_dir), "--signer", key.uri]) == 0
    signature = model_dir.with_name("tiny-model.model.sig")
    result = ms_verify_key(model_dir, signature, key.public)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verification succeeded" in result.stdout


def test_key_signed_directory_is_accepted_by_the_python_api(p384: KeyFiles, model_dir: Path) -> None:
    signer = signer_from_uri(p384.uri)
    (bundle,) = sign_model(model_dir, signer).bundles
    ms_config().use_elliptic_key_verifier(public_key=p384.public).verify(model_dir, bundle.path)


def test_tampered_model_or_other_key_is_refused(p384: KeyFiles, p256: KeyFiles, model_dir: Path) -> None:
    (bundle,) = sign_model(model_dir, signer_from_uri(p384.uri)).bundles
    assert ms_verify_key(model_dir, bundle.path, p256.public).returncode != 0
    weights = model_dir / "weights" / "w0.bin"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x02")
    result = ms_verify_key(model_dir, bundle.path, p384.public)
    assert result.returncode != 0
    assert "Hash mismatch for 'weights/w0.bin'" in result.stdout + result.stderr


def test_forged_signature_byte_is_refused(p384: KeyFiles, model_dir: Path) -> None:
    (bundle,) = sign_model(model_dir, signer_from_uri(p384.uri)).bundles
    document = json.loads(bundle.path.read_bytes())
    payload = bytearray(base64.b64decode(document["dsseEnvelope"]["payload"]))
    payload[payload.index(b"sha256") + 12] ^= 0x01
    document["dsseEnvelope"]["payload"] = base64.b64encode(bytes(payload)).decode()
    bundle.path.write_text(json.dumps(document))
    assert ms_verify_key(model_dir, bundle.path, p384.public).returncode != 0


def test_signature_inside_the_model_directory_is_ignored(p256: KeyFiles, model_dir: Path) -> None:
    signature = model_dir / "model.sig"
    sign_model(model_dir, signer_from_uri(p256.uri), output=signature)
    serialization = statement_of(signature)["predicate"]
    assert isinstance(serialization, dict)
    assert "model.sig" in serialization["serialization"]["ignore_paths"]
    assert ms_verify_key(model_dir, signature, p256.public).returncode == 0


def test_single_file_model_is_accepted(p256: KeyFiles, model_dir: Path) -> None:
    onnx = model_dir / "model.onnx"
    (bundle,) = sign_model(onnx, signer_from_uri(p256.uri)).bundles
    assert bundle.path == onnx.with_name("model.onnx.model.sig")
    assert ms_verify_key(onnx, bundle.path, p256.public).returncode == 0


def test_blake3_model_is_accepted_by_the_python_api(p256: KeyFiles, model_dir: Path) -> None:
    # model_signing 1.1.1's CLI verifies with a fixed SHA-256 hashing config; its Python API reads
    # the hash type from the signature, so BLAKE3 signatures are checked there.
    (bundle,) = sign_model(model_dir, signer_from_uri(p256.uri), hash_type="blake3").bundles
    ms_config().use_elliptic_key_verifier(public_key=p256.public).verify(model_dir, bundle.path)


def test_statement_matches_model_signing_own_format(model_dir: Path, vectors: Path) -> None:
    ours = model_signing_statement_for_model(model_dir).to_json()
    manifest = hashing.Config().use_file_serialization().hash(model_dir)  # type: ignore[no-untyped-call]
    assert ours["subject"][0]["name"] == manifest.model_name
    assert [(r["name"], r["digest"]) for r in ours["predicate"]["resources"]] == [
        (rd.identifier, rd.digest.digest_hex) for rd in manifest.resource_descriptors()
    ]
    assert ours["predicate"]["serialization"] == {
        **manifest.serialization_type,
        "ignore_paths": sorted(manifest.serialization_type["ignore_paths"]),
    }
    real = statement_of(vectors / "model-signing/v1.1.0-elliptic-key/model.sig")
    assert set(real) == set(ours)
    real_predicate = real["predicate"]
    assert isinstance(real_predicate, dict)
    assert set(real_predicate["serialization"]) == set(ours["predicate"]["serialization"])
    assert set(real_predicate["resources"][0]) == set(ours["predicate"]["resources"][0])


def test_vector_model_statement_is_reproduced(vectors: Path, tmp_path: Path) -> None:
    source = vectors / "model-signing/v1.1.0-elliptic-key"
    model = tmp_path / "v1.1.0-elliptic-key"
    shutil.copytree(source, model)
    ours = model_signing_statement_for_model(model, ignore_paths=["model.sig", "ignore-me"]).to_json()
    real = statement_of(source / "model.sig")
    assert ours["subject"] == real["subject"]
    real_predicate = real["predicate"]
    assert isinstance(real_predicate, dict)
    assert ours["predicate"]["resources"] == real_predicate["resources"]
    assert ours["predicate"]["serialization"]["ignore_paths"] == sorted(real_predicate["serialization"]["ignore_paths"])


def test_certificate_signed_bundle_is_accepted_by_verify_certificate(pki: Pki, model_dir: Path) -> None:
    uri = f"x509:{pki.leaf_key.private}?chain={pki.chain}"
    assert main(["sign", str(model_dir), "--signer", uri]) == 0
    signature = model_dir.with_name("tiny-model.model.sig")
    document = json.loads(signature.read_bytes())
    assert len(document["verificationMaterial"]["x509CertificateChain"]["certificates"]) == 2
    assert document["verificationMaterial"]["tlogEntries"] == []
    command = [
        str(MODEL_SIGNING),
        "verify",
        "certificate",
        "--signature",
        str(signature),
        "--certificate_chain",
        str(pki.root),
        str(model_dir),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    ms_config().use_certificate_verifier(certificate_chain=[pki.root]).verify(model_dir, signature)


def test_certificate_chain_option_with_a_file_key(pki: Pki, model_dir: Path) -> None:
    signer = signer_from_uri(pki.leaf_key.uri, SignerOptions(certificate_chain=pki.chain))
    (bundle,) = sign_model(model_dir, signer).bundles
    ms_config().use_certificate_verifier(certificate_chain=[pki.root]).verify(model_dir, bundle.path)


def test_certificate_bundle_under_another_root_is_refused(pki: Pki, model_dir: Path, tmp_path: Path) -> None:
    signer = signer_from_uri(f"x509:{pki.leaf_key.private}?chain={pki.chain}")
    (bundle,) = sign_model(model_dir, signer).bundles
    other_key = ec.generate_private_key(ec.SECP384R1())
    other = certificate("ccdeploy test root", other_key.public_key(), "ccdeploy test root", other_key, ca=True)
    other_root = tmp_path / "other-root.pem"
    other_root.write_bytes(other.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(X509StoreContextError, match=r"unable to get local issuer certificate"):
        ms_config().use_certificate_verifier(certificate_chain=[other_root]).verify(model_dir, bundle.path)


def test_header_statement_verifies_on_the_unsealed_model(sealed: Path, p384: KeyFiles, tmp_path: Path) -> None:
    header = read_header(sealed)
    statement = model_signing_statement_for_header(header)
    assert statement.subjects[0].digest == {"sha256": header.model.manifest_digest}
    assert main(["sign", str(sealed), "--signer", p384.uri]) == 0
    unsealed = tmp_path / "unsealed"
    kek = sorted((tmp_path).glob("seal.kek"))[0]
    assert main(["unseal", str(sealed), "--kek", f"file:{kek}", "-o", str(unsealed)]) == 0
    result = ms_verify_key(unsealed, sealed.with_name("tiny-model.model.sig"), p384.public)
    assert result.returncode == 0, result.stdout + result.stderr
