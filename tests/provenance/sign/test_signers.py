"""file: and x509: signers: accepted keys, refused keys and URIs, and the CLI's exit codes for them."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given
from hypothesis import strategies as st

from ccdeploy._cli import main
from ccdeploy.errors import SignerError
from ccdeploy.provenance.signers import SignerOptions, signer_from_uri
from ccdeploy.provenance.signers.file import parse_file_uri
from tests.provenance.sign.conftest import KeyFiles, Pki, certificate, write_key


def _write_private(path: Path, key: object, encryption: serialization.KeySerializationEncryption) -> Path:
    assert isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    path.chmod(0o600)
    return path


def _sign_rc(model: Path, *args: str) -> int:
    return main(["sign", str(model), *args])


@pytest.mark.parametrize(
    "key",
    [
        rsa.generate_private_key(65537, 2048),
        ed25519.Ed25519PrivateKey.generate(),
        ec.generate_private_key(ec.SECP256K1()),
    ],
    ids=["rsa", "ed25519", "secp256k1"],
)
def test_wrong_key_types_exit_2(
    key: object, tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write_private(tmp_path / "wrong.pem", key, serialization.NoEncryption())
    assert _sign_rc(model_dir, "--signer", f"file:{path}", "--json") == 2
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False
    assert document["error"]["type"] == "SignerError"
    assert not model_dir.with_name("tiny-model.model.sig").exists()


@pytest.mark.parametrize(
    "uri",
    ["nonsense", "ftp:/key.pem", "file:", "file://example.com/key.pem", "x509:/nonexistent.pem", "file:/k.pem?x=1"],
)
def test_bad_signer_uris_exit_2(uri: str, model_dir: Path) -> None:
    assert _sign_rc(model_dir, "--signer", uri) == 2


def test_missing_key_file_exits_2(tmp_path: Path, model_dir: Path) -> None:
    assert _sign_rc(model_dir, "--signer", f"file:{tmp_path / 'absent.pem'}") == 2


def test_not_a_key_exits_2(tmp_path: Path, model_dir: Path) -> None:
    path = tmp_path / "junk.pem"
    path.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    path.chmod(0o600)
    assert _sign_rc(model_dir, "--signer", f"file:{path}") == 2


def test_world_readable_key_is_refused(p256: KeyFiles) -> None:
    p256.private.chmod(0o644)
    with pytest.raises(SignerError, match="chmod 600"):
        signer_from_uri(p256.uri)
    p256.private.chmod(0o640)
    assert signer_from_uri(p256.uri).describe()["kind"] == "file"


def test_encrypted_key_needs_its_passphrase_variable(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    path = _write_private(tmp_path / "enc.pem", key, serialization.BestAvailableEncryption(b"correct horse"))
    with pytest.raises(SignerError, match="passphrase-env"):
        signer_from_uri(f"file:{path}")
    with pytest.raises(SignerError, match="not set"):
        signer_from_uri(f"file:{path}?passphrase-env=CCDEPLOY_TEST_PASSPHRASE")
    monkeypatch.setenv("CCDEPLOY_TEST_PASSPHRASE", "badpass-123")
    with pytest.raises(SignerError) as wrong:
        signer_from_uri(f"file:{path}?passphrase-env=CCDEPLOY_TEST_PASSPHRASE")
    assert "badpass-123" not in wrong.value.message
    monkeypatch.setenv("CCDEPLOY_TEST_PASSPHRASE", "correct horse")
    signer = signer_from_uri(f"file:{path}?passphrase-env=CCDEPLOY_TEST_PASSPHRASE")
    assert "correct horse" not in json.dumps(signer.describe())
    assert _sign_rc(model_dir, "--signer", f"file:{path}?passphrase-env=CCDEPLOY_TEST_PASSPHRASE") == 0


def test_file_uri_forms(p256: KeyFiles) -> None:
    for uri in (f"file:{p256.private}", f"file://{p256.private}", f"FILE:{quote(str(p256.private))}"):
        assert (
            signer_from_uri(uri).describe()["public_key_hint"]
            == signer_from_uri(p256.uri).describe()["public_key_hint"]
        )


@given(path=st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1))
def test_file_uri_parser_roundtrips_any_percent_encoded_path(path: str) -> None:
    parsed, attributes = parse_file_uri("file:" + quote(path, safe="/"))
    assert attributes == {}
    if not path.startswith("//"):
        assert str(parsed) == str(Path(path))


def test_x509_leaf_of_another_key_is_refused(pki: Pki, tmp_path: Path, model_dir: Path) -> None:
    other = write_key(tmp_path, "other", ec.SECP384R1())
    with pytest.raises(SignerError, match="not the signing key"):
        signer_from_uri(f"x509:{other.private}?chain={pki.chain}")
    assert _sign_rc(model_dir, "--signer", other.uri, "--certificate-chain", str(pki.chain)) == 2


def test_x509_needs_exactly_one_chain(pki: Pki) -> None:
    with pytest.raises(SignerError, match="need a chain"):
        signer_from_uri(f"x509:{pki.leaf_key.private}")
    with pytest.raises(SignerError, match="once"):
        signer_from_uri(f"x509:{pki.leaf_key.private}?chain={pki.chain}", SignerOptions(certificate_chain=pki.chain))
    described = signer_from_uri(f"x509:{pki.leaf_key.private}", SignerOptions(certificate_chain=pki.chain)).describe()
    assert described["kind"] == "x509"
    assert described["certificate_subject"] == "CN=release signer"


def test_describe_never_holds_key_material(p384: KeyFiles) -> None:
    described = json.dumps(signer_from_uri(p384.uri).describe())
    secret = p384.key.private_numbers().private_value
    assert format(secret, "x") not in described
    assert str(secret) not in described


def test_x509_leaf_without_code_signing_is_refused_at_signing(pki: Pki, tmp_path: Path) -> None:
    """What `ccdeploy verify --cert-root` would refuse is refused when signing (docs review finding)."""
    root_key = ec.generate_private_key(ec.SECP384R1())
    leaf = certificate(
        "no code signing", pki.leaf_key.key.public_key(), "ccdeploy test root", root_key, ca=False, eku=False
    )
    chain = tmp_path / "no-eku.pem"
    chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(SignerError, match="code-signing"):
        signer_from_uri(f"x509:{pki.leaf_key.private}?chain={chain}")
