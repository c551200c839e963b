"""C2SP signed notes and checkpoints: Go's published note vectors, real Rekor v2 checkpoints, forgeries."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any
from urllib.parse import urlparse

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_der_public_key
from hypothesis import given, settings
from hypothesis import strategies as st

from ccdeploy.errors import AuditChainBroken, TrustRootInvalid
from ccdeploy.transparency.checkpoint import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    parse_note,
    sign_checkpoint,
    sign_note,
)
from ccdeploy.transparency.merkle import leaf_hash, verify_inclusion
from tests.conftest import SHARED

# Published test constants of golang.org/x/mod, sumdb/note/note_test.go (TestNewVerifier, TestSign, TestOpen).
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)

CONFORMANCE = SHARED / "vectors" / "sigstore" / "conformance"


def test_go_note_vectors_open() -> None:
    note = open_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG, [PETER_VKEY])
    assert note.text == GO_TEXT
    assert [(s.name, s.key_id) for s in note.signatures] == [("PeterNeumann", 0xC74F20A3)]
    both = open_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG, [PETER_VKEY, ENOCH_VKEY])
    assert [s.name for s in both.signatures] == ["PeterNeumann", "EnochRoot"]
    with pytest.raises(AuditChainBroken, match="no signature by a trusted key"):
        open_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG, [])
    assert NoteVerifier.from_key(PETER_VKEY).verifier_key() == PETER_VKEY


def test_go_note_vectors_reject() -> None:
    encoded = (GO_TEXT + "\n" + PETER_SIG).encode()
    split = len(GO_TEXT.encode()) + 1
    bad_signature = encoded[: split + 60] + b"ABCD" + encoded[split + 60 :]
    with pytest.raises(AuditChainBroken, match="invalid note signature"):
        open_note(bad_signature, [PETER_VKEY])
    bad_messages: list[str | bytes] = [
        GO_TEXT,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + GO_TEXT + "\n" + PETER_SIG,
        b"\xff" + (GO_TEXT + "\n" + PETER_SIG).encode(),
        GO_TEXT
        + "\n"
        + "\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
        GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        GO_TEXT + "\n" + PETER_SIG * 101,
    ]
    for message in bad_messages:
        with pytest.raises(AuditChainBroken, match="malformed note"):
            open_note(message, [PETER_VKEY])


def test_go_verifier_key_manglings_are_refused() -> None:
    """As Go's TestNewVerifier: every substring and every single-byte change of the key is refused."""
    raw = PETER_VKEY.encode()
    candidates = {raw[i:j] for i in range(len(raw) + 1) for j in range(i + 1, len(raw) + 1)} - {raw}
    candidates |= {raw[:i] + bytes([raw[i] + 1]) + raw[i + 1 :] for i in range(len(raw))}
    candidates |= {
        b"PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        b"PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    }
    for candidate in candidates:
        with pytest.raises(TrustRootInvalid):
            NoteVerifier.from_key(candidate.decode("latin-1"))


def test_sign_and_open_round_trip() -> None:
    signer = NoteSigner("ccdeploy.test/log", Ed25519PrivateKey.generate())
    vkey = signer.verifier_key()
    name, key_id_hex, _ = vkey.split("+", 2)
    assert name == "ccdeploy.test/log" and int(key_id_hex, 16) == signer.key_id
    checkpoint = Checkpoint("ccdeploy.test/log", 42, leaf_hash(b"r"), ("ext one",))
    note = sign_checkpoint(checkpoint, signer)
    assert note.startswith("ccdeploy.test/log\n42\n") and "\n\n\u2014 ccdeploy.test/log " in note
    assert open_checkpoint(note, [vkey]) == checkpoint
    assert open_checkpoint(note, [vkey], origin="ccdeploy.test/log") == checkpoint
    with pytest.raises(AuditChainBroken, match="not 'other'"):
        open_checkpoint(note, [vkey], origin="other")
    # A cosignature by an unknown witness is ignored; one by a given key must verify.
    witness = NoteSigner("witness.example", Ed25519PrivateKey.generate())
    cosigned = sign_note(checkpoint.body(), [signer, witness])
    assert open_checkpoint(cosigned, [vkey]) == checkpoint
    assert len(open_note(cosigned, [vkey, witness.verifier_key()]).signatures) == 2


def test_forged_checkpoints_fail() -> None:
    signer = NoteSigner("log", Ed25519PrivateKey.generate())
    stranger = NoteSigner("log", Ed25519PrivateKey.generate())
    note = sign_checkpoint(Checkpoint("log", 7, leaf_hash(b"root")), signer)
    with pytest.raises(AuditChainBroken, match="no signature by a trusted key"):
        open_checkpoint(note, [stranger.verifier_key()])
    for old, new in [("\n7\n", "\n8\n"), ("log\n", "log2\n")]:
        with pytest.raises(AuditChainBroken, match="invalid note signature"):
            open_checkpoint(note.replace(old, new, 1), [signer.verifier_key()])
    body, _, sig_line = note.partition("\n\n")
    raw = bytearray(base64.b64decode(sig_line.split(" ")[2]))
    raw[10] ^= 1
    forged = body + "\n\n\u2014 log " + base64.b64encode(bytes(raw)).decode() + "\n"
    with pytest.raises(AuditChainBroken, match="invalid note signature"):
        open_checkpoint(forged, [signer.verifier_key()])
    with pytest.raises(TrustRootInvalid):
        open_checkpoint(note, ["not a key"])
    with pytest.raises(TrustRootInvalid, match="share name and id"):
        conflicting = NoteVerifier("log", stranger.verifier().public_key)
        object.__setattr__(conflicting, "key_id", signer.key_id)
        open_checkpoint(note, [signer.verifier(), conflicting])


@pytest.mark.parametrize(
    "body",
    [
        "log\n7\n",
        "log\n7\nAAAA\n",
        "log\n07\n" + base64.b64encode(b"\x00" * 32).decode() + "\n",
        "log\n-7\n" + base64.b64encode(b"\x00" * 32).decode() + "\n",
        "\n7\n" + base64.b64encode(b"\x00" * 32).decode() + "\n",
        "log\n7\n" + base64.b64encode(b"\x00" * 32).decode() + "\n\n",
        "log\n7\n" + base64.b64encode(b"\x00" * 32).decode(),
        "log\n7\n" + base64.b64encode(b"\x00" * 32).decode()[:-1] + "\n",
    ],
)
def test_malformed_checkpoint_bodies(body: str) -> None:
    with pytest.raises(AuditChainBroken):
        parse_checkpoint(body)


@settings(max_examples=150, deadline=None)
@given(
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=30),
    st.integers(0, 2**63),
    st.binary(min_size=32, max_size=32),
    st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20), max_size=3),
)
def test_property_checkpoint_round_trip(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    checkpoint = Checkpoint(origin, size, root, tuple(extensions))
    assert parse_checkpoint(checkpoint.body()) == checkpoint


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_property_parsers_fail_only_with_typed_errors(data: bytes | str) -> None:
    try:
        note = parse_note(data)
    except AuditChainBroken:
        return
    with contextlib.suppress(AuditChainBroken):
        parse_checkpoint(note.text)


# -- Real checkpoints: Sigstore conformance bundles (Rekor v1 ECDSA-signed and Rekor v2 Ed25519-signed) --------------


def _entry(case: str) -> dict[str, Any]:
    bundle = json.loads((CONFORMANCE / case / "bundle.sigstore.json").read_text())
    entry: dict[str, Any] = bundle["verificationMaterial"]["tlogEntries"][0]
    return entry


def _ed25519_log_keys(case: str) -> list[str]:
    """Note verifier keys for the Ed25519 logs of the case's trusted root (name = the log's host)."""
    path = CONFORMANCE / case / "trusted_root.json"
    root = json.loads((path if path.exists() else CONFORMANCE.parent / "trusted_root.production.json").read_text())
    keys = []
    for log in root["tlogs"]:
        if log["publicKey"].get("keyDetails") == "PKIX_ED25519":
            public_key = load_der_public_key(base64.b64decode(log["publicKey"]["rawBytes"]))
            keys.append(NoteVerifier(urlparse(log["baseUrl"]).hostname or "", public_key).verifier_key())  # type: ignore[arg-type]
    return keys


def _check_inclusion(entry: dict[str, Any], checkpoint: Checkpoint) -> None:
    proof = entry["inclusionProof"]
    assert int(proof["treeSize"]) == checkpoint.size
    assert base64.b64decode(proof["rootHash"]) == checkpoint.root_hash
    verify_inclusion(
        leaf_hash(base64.b64decode(entry["canonicalizedBody"])),
        int(proof["logIndex"]),
        checkpoint.size,
        [base64.b64decode(h) for h in proof["hashes"]],
        checkpoint.root_hash,
    )


REKOR_V1_PASS = ["happy-path-v0.1", "happy-path-v0.3", "happy-path-intoto-in-dsse-v3", "managed-key-happy-path"]
REKOR_V2_PASS = [
    "rekor2-happy-path",
    "rekor2-dsse-happy-path",
    "rekor2-checkpoint-cosigned",
    "rekor2-checkpoint-multiple-cosigs",
    "rekor2-checkpoint-two-sigs-cosigned",
    "rekor2-checkpoint-two-sigs-from-origin",
    "rekor2-checkpoint-origin-not-first",
]


@pytest.mark.parametrize("case", REKOR_V1_PASS)
def test_rekor_v1_checkpoint_body_parses_and_proof_verifies(case: str) -> None:
    """Rekor v1 signs notes with ECDSA (not supported for opening here); the body and the Merkle proof still check."""
    entry = _entry(case)
    note = parse_note(entry["inclusionProof"]["checkpoint"]["envelope"])
    checkpoint = parse_checkpoint(note.text)
    assert checkpoint.origin.startswith("rekor.sigstore.dev - ")
    _check_inclusion(entry, checkpoint)


@pytest.mark.parametrize("case", REKOR_V2_PASS)
def test_rekor_v2_signed_checkpoint_opens_and_proof_verifies(case: str) -> None:
    entry = _entry(case)
    keys = _ed25519_log_keys(case)
    checkpoint = open_checkpoint(entry["inclusionProof"]["checkpoint"]["envelope"], keys)
    assert checkpoint.origin.startswith("log2025-")
    _check_inclusion(entry, checkpoint)


@pytest.mark.parametrize(
    "case",
    [
        "rekor2-checkpoint-missing-log-signature_fail",
        "rekor2-checkpoint-missing-origin_fail",
        "rekor2-checkpoint-missing-root-hash_fail",
        "rekor2-checkpoint-missing-size_fail",
        "rekor2-checkpoint-no-matching-signature_fail",
    ],
)
def test_rekor_v2_bad_checkpoints_fail(case: str) -> None:
    with pytest.raises(AuditChainBroken):
        open_checkpoint(_entry(case)["inclusionProof"]["checkpoint"]["envelope"], _ed25519_log_keys(case))


@pytest.mark.parametrize("case", ["inclusion-proof-corrupted-hash_fail", "checkpoint-wrong-roothash_fail"])
def test_conformance_bad_proofs_fail(case: str) -> None:
    entry = _entry(case)
    checkpoint = parse_checkpoint(parse_note(entry["inclusionProof"]["checkpoint"]["envelope"]).text)
    with pytest.raises(AuditChainBroken):
        verify_inclusion(
            leaf_hash(base64.b64decode(entry["canonicalizedBody"])),
            int(entry["inclusionProof"]["logIndex"]),
            checkpoint.size,
            [base64.b64decode(h) for h in entry["inclusionProof"]["hashes"]],
            checkpoint.root_hash,
        )


def test_signed_note_is_text_go_would_accept() -> None:
    """Our verifier key and signature line formats match Go's exactly: re-sign Go's text with a key of ours and
    check the shape (name, space, base64 of 4 + 64 bytes) that note.Open parses."""
    signer = NoteSigner("PeterNeumann", Ed25519PrivateKey.generate())
    note = sign_note(GO_TEXT, [signer])
    line = note.split("\n\n", 1)[1]
    assert line.startswith("\u2014 PeterNeumann ") and line.endswith("\n")
    assert len(base64.b64decode(line.split(" ")[2])) == 68
    with pytest.raises(ValueError):
        sign_note("no final newline", [signer])
    with pytest.raises(ValueError):
        sign_note("blank\n\nline\n", [signer])
