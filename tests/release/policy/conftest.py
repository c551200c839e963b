"""Fixtures of the release-policy tests: a Nitro simulator, policies built around it, a sealed and signed model."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.simulator.nitro import NitroSimulator, default_pcrs
from ccdeploy._cli import main
from ccdeploy.seal.digest import sealed_head_and_parts
from tests.conftest import MakeKek

SIM_AT = datetime(2030, 1, 1, tzinfo=UTC)
"""The simulator's CA certificates are valid around this time."""
ISSUED = datetime(2030, 1, 1, 0, 10, 0, 123_000, tzinfo=UTC)
"""When simulated documents say they were made."""
NOW = datetime(2030, 1, 1, 0, 11, 0, tzinfo=UTC)
"""The decision time: a minute after ISSUED."""

BOM = b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1}\n'


def pem(key: ec.EllipticCurvePrivateKey) -> str:
    """The public half of ``key`` as PEM text."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="session")
def simulator() -> NitroSimulator:
    return NitroSimulator.create(at=SIM_AT)


PolicyDoc = dict[str, Any]


@pytest.fixture
def base_policy(simulator: NitroSimulator) -> PolicyDoc:
    """A policy document accepting the simulator's default PCR0-2 under its root."""
    pcrs = default_pcrs()
    return {
        "version": 1,
        "platforms": {"nitro": {"pcrs": {i: pcrs[i].hex() for i in (0, 1, 2)}}},
        "trust_roots": {"nitro": [simulator.root_pem().decode()]},
        "unsafe_accept_simulator_roots": True,
    }


def dump(document: PolicyDoc) -> bytes:
    """A policy document as YAML bytes."""
    return yaml.safe_dump(document, sort_keys=False).encode()


@dataclass(frozen=True)
class SignedModel:
    """A sealed artifact, its head and stream digests, its provenance bundle and the key that signed it."""

    sealed: Path
    head: bytes
    parts: tuple[str, ...]
    provenance: bytes
    key: ec.EllipticCurvePrivateKey
    bom_sha256: str


def _write_key(directory: Path, name: str) -> tuple[Path, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    path = directory / f"{name}.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)
    return path, key


MakeSigned = Callable[[str], SignedModel]


@pytest.fixture
def make_signed(tmp_path: Path, make_kek: MakeKek) -> MakeSigned:
    """Seal a tiny model with ``--bom`` and sign it with a fresh ``file:`` key, through the CLI."""

    def make(name: str) -> SignedModel:
        model = tmp_path / f"{name}-model"
        model.mkdir()
        (model / "model.onnx").write_bytes(b"\x08\x07" + bytes(range(256)) * 20)
        bom = tmp_path / f"{name}.cdx.json"
        bom.write_bytes(BOM)
        out = tmp_path / f"{name}-out"
        out.mkdir()
        sealed = out / f"{name}.ccseal"
        kek = make_kek(name)
        assert main(["seal", str(model), "--kek", kek.uri, "-o", str(sealed), "--bom", str(bom)]) == 0
        key_path, key = _write_key(tmp_path, f"{name}-signer")
        assert main(["sign", str(sealed), "--signer", f"file:{key_path}"]) == 0
        head, parts = sealed_head_and_parts(sealed)
        provenance = (out / f"{name}.provenance.sigstore.json").read_bytes()
        return SignedModel(sealed, head, parts, provenance, key, hashlib.sha256(BOM).hexdigest())

    return make


@pytest.fixture
def signed(make_signed: MakeSigned) -> SignedModel:
    return make_signed("tiny")
