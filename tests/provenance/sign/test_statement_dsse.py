"""Statements as canonical JSON, the DSSE PAE, and the bundle shapes."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from ccdeploy.errors import SignerError, UsageError
from ccdeploy.provenance.bundle import BUNDLE_MEDIA_TYPE, ecdsa_hash, key_bundle, public_key_hint
from ccdeploy.provenance.dsse import envelope, pae, sign_envelope
from ccdeploy.provenance.statement import PAYLOAD_TYPE, STATEMENT_TYPE, Statement, Subject


def test_pae_known_answer_from_the_dsse_spec() -> None:
    # protocol.md of secure-systems-lab/dsse v1.0.0, "Test vectors".
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("t\u00e9", "\u00e9".encode()) == b"DSSEv1 3 t\xc3\xa9 2 \xc3\xa9"


def test_pae_matches_model_signing() -> None:
    from model_signing._signing.sign_sigstore_pb import pae as ms_pae

    body = b'{"_type":"x"}'
    assert pae(PAYLOAD_TYPE, body) == ms_pae(body)


def test_statement_bytes_are_canonical_and_stable() -> None:
    statement = Statement(
        (Subject("m", {"sha256": "ab" * 32, "ccseal.v1.blake3": "cd" * 32}),),
        "https://example.com/p/v1",
        {"z": 1, "a": [3, {"y": "\u00e9", "b": 1048576}]},
    )
    expected = (
        b'{"_type":"https://in-toto.io/Statement/v1","predicate":{"a":[3,{"b":1048576,"y":"\xc3\xa9"}],"z":1},'
        b'"predicateType":"https://example.com/p/v1","subject":[{"digest":{"ccseal.v1.blake3":"'
        + b"cd" * 32
        + b'","sha256":"'
        + b"ab" * 32
        + b'"},"name":"m"}]}'
    )
    assert statement.to_bytes() == expected
    assert statement.to_json()["_type"] == STATEMENT_TYPE


def test_statement_refuses_non_json_numbers() -> None:
    statement = Statement((Subject("m", {"sha256": "00"}),), "t", {"big": 2**60})
    with pytest.raises(UsageError, match="canonical JSON"):
        statement.to_bytes()


@pytest.mark.parametrize(
    ("name", "digest"),
    [("", {"sha256": "00"}), ("m", {}), ("m", {"SHA256": "00"}), ("m", {"sha256": "XYZ"}), ("m", {"sha256": ""})],
)
def test_subject_refuses_malformed_descriptors(name: str, digest: dict[str, str]) -> None:
    with pytest.raises(UsageError):
        Subject(name, digest)


def test_statement_needs_subjects_and_type() -> None:
    with pytest.raises(UsageError):
        Statement((), "t", {})
    with pytest.raises(UsageError):
        Statement((Subject("m", {"sha256": "00"}),), "", {})


_json_leaf = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=20)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(predicate=st.dictionaries(st.text(max_size=8), _json, max_size=5))
def test_statement_roundtrips_and_keeps_integers(predicate: dict[str, Any]) -> None:
    statement = Statement((Subject("m", {"sha256": "0a"}),), "t", predicate)
    payload = statement.to_bytes()
    # json.dumps writes 1 and 1.0 differently, so this also checks no integer became a float.
    assert json.dumps(json.loads(payload), sort_keys=True) == json.dumps(statement.to_json(), sort_keys=True)
    assert statement.to_bytes() == payload


def test_envelope_shape_and_signature() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    document = sign_envelope(b"body", PAYLOAD_TYPE, lambda m: key.sign(m, ec.ECDSA(hashes.SHA384())))
    assert set(document) == {"payload", "payloadType", "signatures"}
    assert base64.b64decode(document["payload"]) == b"body"
    assert document["signatures"][0]["keyid"] == ""
    signature = base64.b64decode(document["signatures"][0]["sig"])
    key.public_key().verify(signature, pae(PAYLOAD_TYPE, b"body"), ec.ECDSA(hashes.SHA384()))
    assert envelope(b"x", "t", [])["signatures"] == []


def test_key_bundle_hint_is_sha256_of_pem_spki(vectors: Path) -> None:
    public = serialization.load_pem_public_key((vectors / "model-signing/keys/signing-key-pub.pem").read_bytes())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    real = json.loads((vectors / "model-signing/v1.1.0-elliptic-key/model.sig").read_bytes())
    assert public_key_hint(public) == real["verificationMaterial"]["publicKey"]["hint"]
    ours = key_bundle({"payload": "", "payloadType": PAYLOAD_TYPE, "signatures": []}, public)
    assert ours["mediaType"] == BUNDLE_MEDIA_TYPE == real["mediaType"]
    assert ours["verificationMaterial"] == real["verificationMaterial"]
    assert set(ours) == set(real)
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert public_key_hint(public) == hashlib.sha256(pem).hexdigest()


@pytest.mark.parametrize(
    ("curve", "hash_name"), [(ec.SECP256R1(), "sha256"), (ec.SECP384R1(), "sha384"), (ec.SECP521R1(), "sha512")]
)
def test_hash_follows_the_curve(curve: ec.EllipticCurve, hash_name: str) -> None:
    assert ecdsa_hash(ec.generate_private_key(curve).public_key()).name == hash_name


def test_other_curves_and_key_types_are_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    with pytest.raises(SignerError, match="P-256"):
        ecdsa_hash(ec.generate_private_key(ec.SECP256K1()).public_key())
    with pytest.raises(SignerError, match="ECDSA"):
        ecdsa_hash(ed25519.Ed25519PrivateKey.generate().public_key())
