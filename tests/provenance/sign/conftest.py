"""Fixtures for signing tests: EC keys, a private CA, a model, a sealed artifact, SoftHSM2 signing keys."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ccdeploy._cli import main
from tests.conftest import MakeKek
from tests.softhsm import SoftHsm

NOT_BEFORE = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
NOT_AFTER = datetime.datetime(2036, 1, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class KeyFiles:
    """A private key file (mode 600) and its public key PEM."""

    private: Path
    public: Path
    key: ec.EllipticCurvePrivateKey

    @property
    def uri(self) -> str:
        return f"file:{self.private}"


def write_key(directory: Path, name: str, curve: ec.EllipticCurve) -> KeyFiles:
    """Generate an EC key; write it (PKCS#8, mode 600) and its public half."""
    key = ec.generate_private_key(curve)
    private = directory / f"{name}.pem"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    private.chmod(0o600)
    public = directory / f"{name}.pub.pem"
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return KeyFiles(private, public, key)


@pytest.fixture
def p256(tmp_path: Path) -> KeyFiles:
    return write_key(tmp_path, "p256", ec.SECP256R1())


@pytest.fixture
def p384(tmp_path: Path) -> KeyFiles:
    return write_key(tmp_path, "p384", ec.SECP384R1())


def certificate(
    subject: str,
    public_key: ec.EllipticCurvePublicKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    eku: bool = False,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    return builder.sign(issuer_key, hashes.SHA384())


@dataclass(frozen=True)
class Pki:
    """A P-384 root, an intermediate and a code-signing leaf for ``leaf_key``."""

    root: Path
    chain: Path
    """Leaf then intermediate (PEM)."""
    leaf_key: KeyFiles


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    root_key = ec.generate_private_key(ec.SECP384R1())
    root = certificate("ccdeploy test root", root_key.public_key(), "ccdeploy test root", root_key, ca=True)
    inter_key = ec.generate_private_key(ec.SECP384R1())
    inter = certificate("ccdeploy test intermediate", inter_key.public_key(), "ccdeploy test root", root_key, ca=True)
    leaf_key = write_key(tmp_path, "leaf", ec.SECP384R1())
    leaf = certificate(
        "release signer", leaf_key.key.public_key(), "ccdeploy test intermediate", inter_key, ca=False, eku=True
    )
    pem = serialization.Encoding.PEM
    (tmp_path / "root.pem").write_bytes(root.public_bytes(pem))
    (tmp_path / "chain.pem").write_bytes(leaf.public_bytes(pem) + inter.public_bytes(pem))
    return Pki(tmp_path / "root.pem", tmp_path / "chain.pem", leaf_key)


def make_model(directory: Path) -> Path:
    """A small two-level model directory."""
    model = directory / "tiny-model"
    (model / "weights").mkdir(parents=True)
    (model / "model.onnx").write_bytes(b"\x08\x07" + bytes(range(256)) * 40)
    (model / "weights" / "w0.bin").write_bytes(b"\x00\x01" * 5000)
    (model / "config.json").write_text('{"layers": 3}\n')
    return model


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return make_model(tmp_path)


BOM = (
    b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, '
    b'"components": [{"type": "machine-learning-model", "name": "tiny-model"}]}\n'
)


@pytest.fixture
def bom_file(tmp_path: Path) -> Path:
    path = tmp_path / "bom.cdx.json"
    path.write_bytes(BOM)
    return path


@pytest.fixture
def sealed(tmp_path: Path, model_dir: Path, make_kek: MakeKek, bom_file: Path) -> Path:
    """``tiny-model.ccseal`` sealed with ``ccdeploy seal --bom`` (digest record beside it)."""
    kek = make_kek("seal")
    output = tmp_path / "out" / "tiny-model.ccseal"
    output.parent.mkdir()
    assert main(["seal", str(model_dir), "--kek", kek.uri, "-o", str(output), "--bom", str(bom_file)]) == 0
    return output


@dataclass(frozen=True)
class TokenKey:
    """An EC key pair generated on the SoftHSM2 token."""

    uri: str
    """Full URI, PIN included."""
    public: Path
    """The public key, PEM, for verifiers."""


@pytest.fixture
def token_key(softhsm: SoftHsm, tmp_path: Path) -> Callable[[str], TokenKey]:
    """Generate an EC key pair (``secp256r1`` or ``secp384r1``) on the test token."""
    from pkcs11.constants import Attribute, ObjectClass
    from pkcs11.mechanisms import KeyType
    from pkcs11.types import PublicKey
    from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

    from ccdeploy.kek.pkcs11 import _find_token, _load, parse_pkcs11_uri

    def make(curve: str) -> TokenKey:
        name = f"sign-{uuid.uuid4().hex[:10]}"
        uri = softhsm.uri(object=name)
        token = _find_token(_load(softhsm.module), parse_pkcs11_uri(uri))
        with token.open(rw=True, user_pin=softhsm.pin) as session:
            params = session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(curve)}, local=True
            )
            public, _ = params.generate_keypair(store=True, label=name, id=name.encode())
            der = encode_ec_public_key(public)
            assert isinstance(public, PublicKey)
            assert session.get_key(ObjectClass.PRIVATE_KEY, KeyType.EC, label=name)
        pem = serialization.load_der_public_key(der).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        path = tmp_path / f"{name}.pub.pem"
        path.write_bytes(pem)
        return TokenKey(uri, path)

    return make
