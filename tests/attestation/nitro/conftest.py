"""Fixtures of the Nitro tests: the real documents, the AWS root, and a simulator with the fixture keys."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from attestation import _cbor
from attestation._x509 import load_certificates
from attestation.simulator.nitro import NitroSimulator, NitroSimulatorKeys
from tests.tools import make_forgeries_nitro

REAL = "aws-nitro/blocky-nitrite-2024-09-07.cbor"
REAL_DEBUG = "aws-nitro/blocky-nitrite-debug-2024-09-07.cbor"
#: The real sample's timestamp and its leaf's validity (MANIFEST §1).
REAL_TIMESTAMP = datetime(2024, 9, 7, 14, 37, 39, 545_000, tzinfo=UTC)
REAL_NOT_BEFORE = datetime(2024, 9, 7, 14, 37, 36, tzinfo=UTC)
REAL_NOT_AFTER = datetime(2024, 9, 7, 17, 37, 39, tzinfo=UTC)
SIM_AT = datetime(2030, 1, 1, tzinfo=UTC)
SIM_TIMESTAMP = datetime(2030, 1, 1, 0, 10, 0, 123_000, tzinfo=UTC)


@pytest.fixture(scope="session")
def real_doc(vectors: Path) -> bytes:
    return (vectors / REAL).read_bytes()


@pytest.fixture(scope="session")
def debug_doc(vectors: Path) -> bytes:
    return (vectors / REAL_DEBUG).read_bytes()


@pytest.fixture(scope="session")
def aws_root(vectors: Path) -> x509.Certificate:
    (root,) = load_certificates((vectors / "aws-nitro/aws-nitro-enclaves-root-g1.pem").read_bytes(), "AWS root")
    return root


@pytest.fixture(scope="session")
def sim() -> NitroSimulator:
    """A simulator built from the committed fixture keys (no key generation per test)."""
    return NitroSimulator.from_keys(NitroSimulatorKeys.from_pem(make_forgeries_nitro.load_keys()), at=SIM_AT)


def envelope(document: bytes) -> list[Any]:
    """The four COSE_Sign1 items of a document (test helper; no checks)."""
    value = _cbor.decode(document, what="test document", allowed_tag=18)
    if isinstance(value, _cbor.Tagged):
        value = value.value
    assert isinstance(value, list)
    return value


def payload_of(document: bytes) -> dict[str, Any]:
    """The payload map of a document, keys as text, in encoded order."""
    value = _cbor.decode(envelope(document)[2], what="test payload")
    assert isinstance(value, dict)
    return {str(key): item for key, item in value.items()}


def sign_raw(key: ec.EllipticCurvePrivateKey, protected: bytes, unprotected: Any, payload: bytes) -> bytes:
    """A COSE_Sign1 with any protected header, signed ES384 by ``key``: reaches checks past the signature."""
    to_be_signed = _cbor.encode(["Signature1", protected, b"", payload])
    r, s = decode_dss_signature(key.sign(to_be_signed, ec.ECDSA(hashes.SHA384(), deterministic_signing=True)))
    return _cbor.encode([protected, unprotected, payload, r.to_bytes(48, "big") + s.to_bytes(48, "big")])
