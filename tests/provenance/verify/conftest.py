"""Shared helpers for the verify tests: run the CLI in-process, forge bundles with throwaway keys."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ccdeploy._cli import main

PT = "application/vnd.in-toto+json"
MEDIA_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"

RunCli = Callable[..., tuple[int, dict[str, Any]]]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    """Run ``ccdeploy verify ARGS --json``; return (exit code, JSON document)."""

    def run(*args: str | Path) -> tuple[int, dict[str, Any]]:
        capsys.readouterr()
        rc = main(["verify", *map(str, args), "--json"])
        out = capsys.readouterr().out
        return rc, json.loads(out) if out.strip() else {}

    return run


def pae(body: bytes, payload_type: str = PT) -> bytes:
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(body), body)


def statement(subjects: list[dict[str, Any]], predicate_type: str, predicate: dict[str, Any]) -> bytes:
    document: dict[str, Any] = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subjects,
        "predicateType": predicate_type,
        "predicate": predicate,
    }
    return json.dumps(document).encode()


def pem_public(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_bundle(key: ec.EllipticCurvePrivateKey, body: bytes) -> dict[str, Any]:
    """A model_signing-style key bundle (publicKey hint, no tlog) signing ``body``."""
    digest = hashes.SHA384() if key.curve.key_size == 384 else hashes.SHA256()
    signature = key.sign(pae(body), ec.ECDSA(digest))
    return {
        "mediaType": MEDIA_V03,
        "verificationMaterial": {"publicKey": {"hint": hashlib.sha256(pem_public(key)).hexdigest()}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(body).decode(),
            "payloadType": PT,
            "signatures": [{"sig": base64.b64encode(signature).decode()}],
        },
    }


@dataclass
class Pki:
    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate


def make_pki(not_before: datetime, not_after: datetime, *, code_signing: bool = True) -> Pki:
    """A root CA and a code-signing leaf (P-256), both valid over [not_before, not_after]."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-root")])
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    eku = [ExtendedKeyUsageOID.CODE_SIGNING if code_signing else ExtendedKeyUsageOID.SERVER_AUTH]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signer")]))
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    return Pki(root_key, root, leaf_key, leaf)


def cert_bundle(pki: Pki, body: bytes) -> dict[str, Any]:
    """A model_signing-style certificate bundle (x509CertificateChain, no tlog) signing ``body``."""
    signature = pki.leaf_key.sign(pae(body), ec.ECDSA(hashes.SHA256()))
    der = pki.leaf.public_bytes(serialization.Encoding.DER)
    return {
        "mediaType": MEDIA_V03,
        "verificationMaterial": {
            "x509CertificateChain": {"certificates": [{"rawBytes": base64.b64encode(der).decode()}]},
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": base64.b64encode(body).decode(),
            "payloadType": PT,
            "signatures": [{"sig": base64.b64encode(signature).decode()}],
        },
    }


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def days(n: int) -> timedelta:
    return timedelta(days=n)
