"""Release receipts: sign with the provenance signer, verify offline, tampering, and ``ccdeploy receipt verify``."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ccdeploy._cli import main
from ccdeploy.broker.store import AuditEntry
from ccdeploy.broker.store.audit import GENESIS_HASH, audit_entry_hash, audit_leaf_data
from ccdeploy.errors import AuditChainBroken, BundleMalformed, SignatureInvalid, TrustRootInvalid, UsageError
from ccdeploy.provenance.signers import SignerOptions
from ccdeploy.provenance.signers.file import FileSigner
from ccdeploy.provenance.statement import Statement, Subject
from ccdeploy.release.receipt import (
    ARTIFACT_DIGEST_ALGORITHM,
    RECEIPT_PREDICATE_TYPE,
    ReceiptCheck,
    receipt_statement,
    release_body,
    sign_receipt,
    verify_receipt,
)
from ccdeploy.seal.digest import DIGEST_ALGORITHM
from ccdeploy.transparency import LogEntry, NoteSigner, TransparencyLog

ORIGIN = "broker.test/log"
ARTIFACT_DIGEST = "ab" * 32


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Issued:
    bundle: bytes
    broker_pem: bytes
    log_key: str
    leaf: bytes
    body: dict[str, Any]
    signer: FileSigner
    legacy_bundle: bytes
    """The same release signed as an older broker did: no audit entry fields in ``log``."""
    entry: AuditEntry
    log: TransparencyLog


T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _chain(events: list[tuple[str, dict[str, Any]]]) -> list[AuditEntry]:
    """A real hash-chained audit log (the store's own hashing) of ``(kind, body)`` events."""
    entries: list[AuditEntry] = []
    prev = GENESIS_HASH
    for seq, (kind, body) in enumerate(events, start=1):
        entry_hash = audit_entry_hash(prev, seq, T0, kind, body)
        entries.append(AuditEntry(seq, T0, kind, body, prev, entry_hash))
        prev = entry_hash
    return entries


def _leaf(seq: int, body: dict[str, Any], kind: str = "release") -> bytes:
    """An audit entry's leaf data, shaped as ccdeploy.broker.store.audit_leaf_data writes it."""
    return rfc8785.dumps(
        {"seq": seq, "time": "2026-03-01T12:00:00.000000Z", "kind": kind, "body": body, "entry_hash": "cd" * 32}
    )


@pytest.fixture
def issued(tmp_path: Path) -> Issued:
    key_path = tmp_path / "broker.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    signer = FileSigner.from_uri(f"file:{key_path}", SignerOptions())
    broker_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    leaves: list[bytes] = []
    log = TransparencyLog(lambda start: leaves[start:], NoteSigner(ORIGIN, Ed25519PrivateKey.generate()), ORIGIN)
    body = release_body(
        model="resnet",
        artifact_id="0f" * 16,
        header_sha256="12" * 32,
        policy_digest="sha256:" + "34" * 32,
        evidence=b"evidence bytes",
        evidence_type="nitro",
        checks=[Check("platform", True, "nitro accepted"), Check("measurement", True, "PCR0 matches")],
        hpke_suite="xwing",
        hpke_public_key=b"h" * 1216,
        tls_public_key=b"t" * 91,
        released_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        broker_id="broker-1",
    )
    events = [("model-registered", {"other": i}) for i in range(5)] + [("release", body)]
    events += [("model-registered", {"later": i}) for i in range(3)]
    entries = _chain(events)
    leaves.extend(audit_leaf_data(e) for e in entries)
    entry = log.entry(5)
    bundle = sign_receipt(receipt_statement(body, ARTIFACT_DIGEST, entry, entries[5]), signer)
    legacy = sign_receipt(receipt_statement(body, ARTIFACT_DIGEST, entry), signer)
    return Issued(
        json.dumps(bundle).encode(),
        broker_pem,
        log.verifier_key(),
        leaves[5],
        body,
        signer,
        json.dumps(legacy).encode(),
        entries[5],
        log,
    )


def test_round_trip(issued: Issued) -> None:
    assert ARTIFACT_DIGEST_ALGORITHM == DIGEST_ALGORITHM
    checks: list[ReceiptCheck] = []
    receipt = verify_receipt(issued.bundle, issued.broker_pem, issued.log_key, leaf_data=issued.leaf, checks=checks)
    assert (receipt.model, receipt.artifact_digest, receipt.log_index) == ("resnet", ARTIFACT_DIGEST, 5)
    assert receipt.released_at == "2026-03-01T12:00:00.000000Z" and receipt.tree_size == 9
    assert receipt.checkpoint.origin == ORIGIN and receipt.leaf_checked
    assert [c.name for c in checks] == ["signature", "statement", "log", "entry", "leaf"]
    assert all(c.ok for c in checks)
    assert receipt.log_entry().verify([issued.log_key], leaf_data=issued.leaf).size == 9
    predicate = receipt.predicate
    assert predicate["evidenceDigest"].startswith("sha256:") and predicate["enclave"]["hpkeSuite"] == "xwing"
    assert predicate["appraisal"]["checks"][1] == {"name": "measurement", "ok": True, "detail": "PCR0 matches"}
    assert set(predicate) - set(issued.body) == {"log"}
    assert predicate["log"]["seq"] == 6 and predicate["log"]["entryHash"] == issued.entry.entry_hash
    assert predicate["log"]["prevHash"] == issued.entry.prev_hash and receipt.audit_seq == 6
    bundle = json.loads(issued.bundle)
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["verificationMaterial"]["publicKey"]["hint"]
    checks = []
    without_leaf = verify_receipt(issued.bundle, issued.broker_pem, [issued.log_key], checks=checks)
    assert without_leaf.leaf_checked and [c.name for c in checks][-1] == "entry"


def test_a_receipt_for_another_logged_event_is_refused_without_the_leaf(issued: Issued) -> None:
    """The review's case: a receipt signed over the log entry of a different (model-registered) event."""
    other = issued.log.entry(2)
    for audit_entry in (None, issued.entry):  # old-style receipt, or new-style with the release's own entry
        try:
            statement = receipt_statement(issued.body, ARTIFACT_DIGEST, other, audit_entry)
        except UsageError:
            assert audit_entry is not None  # the signing side refuses to build it at all
            continue
        bundle = json.dumps(sign_receipt(statement, issued.signer)).encode()
        with pytest.raises(BundleMalformed, match="does not tie"):
            verify_receipt(bundle, issued.broker_pem, issued.log_key)


def test_forged_entry_fields_pointing_at_another_leaf(issued: Issued) -> None:
    """A (compromised or buggy) signer that puts the release's entry fields over another leaf's proof."""

    def relabel(statement: dict[str, Any]) -> None:
        log = statement["predicate"]["log"]
        other = issued.log.entry(2)
        log.update(
            index=2,
            leafHash=other.leaf_hash.hex(),
            inclusionProof=[h.hex() for h in other.inclusion_proof],
            checkpoint=other.checkpoint,
        )

    with pytest.raises(AuditChainBroken, match="not this release"):
        verify_receipt(_mutate_payload(issued, relabel), issued.broker_pem, issued.log_key)


def test_legacy_receipt_needs_the_leaf(issued: Issued) -> None:
    with pytest.raises(BundleMalformed, match="does not tie its log leaf"):
        verify_receipt(issued.legacy_bundle, issued.broker_pem, issued.log_key)
    receipt = verify_receipt(issued.legacy_bundle, issued.broker_pem, issued.log_key, leaf_data=issued.leaf)
    assert receipt.leaf_checked and receipt.audit_seq is None


@pytest.mark.parametrize(
    ("change", "error", "says"),
    [
        ({"seq": 7}, AuditChainBroken, "not this release"),
        ({"time": "2026-03-01T12:00:00.000001Z"}, AuditChainBroken, "not this release"),
        ({"entryHash": "00" * 32}, AuditChainBroken, "not this release"),
        ({"prevHash": "00" * 32}, AuditChainBroken, "does not recompute"),
        ({"prevHash": "zz" * 32}, BundleMalformed, "malformed"),
        ({"seq": 0}, BundleMalformed, "malformed"),
        ({"seq": True}, BundleMalformed, "seq"),
        ({"entryHash": None}, BundleMalformed, "malformed"),
    ],
)
def test_entry_fields_tampering(issued: Issued, change: dict[str, Any], error: type[Exception], says: str) -> None:
    def apply(statement: dict[str, Any]) -> None:
        statement["predicate"]["log"].update(change)

    with pytest.raises(error, match=says):
        verify_receipt(_mutate_payload(issued, apply), issued.broker_pem, issued.log_key)


def test_partial_entry_fields_are_malformed(issued: Issued) -> None:
    with pytest.raises(BundleMalformed, match="only some"):
        verify_receipt(
            _mutate_payload(issued, lambda s: s["predicate"]["log"].pop("prevHash")), issued.broker_pem, issued.log_key
        )


def test_rebuilt_leaf_equals_the_store_leaf(tmp_path: Path, issued: Issued) -> None:
    """Against a real SQLite store: the leaf the verifier rebuilds is byte-for-byte what the store logged."""
    from ccdeploy.broker.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "b.db")
    try:
        store.append_event("model-registered", {"name": "x"}, T0, logged=True)
        appended = store.append_event("release", issued.body, T0, logged=True)
        assert appended.log_index is not None
        leaves = store.log_leaves()
        log = TransparencyLog(lambda start: leaves[start:], NoteSigner(ORIGIN, Ed25519PrivateKey.generate()), ORIGIN)
        statement = receipt_statement(issued.body, ARTIFACT_DIGEST, log.entry(appended.log_index), appended.entry)
        bundle = json.dumps(sign_receipt(statement, issued.signer)).encode()
        receipt = verify_receipt(bundle, issued.broker_pem, log.verifier_key())
        assert receipt.leaf_checked and receipt.audit_seq == appended.entry.seq
    finally:
        store.close()


def _mutate_payload(issued: Issued, change: Callable[[dict[str, Any]], None]) -> bytes:
    """Change the statement and re-sign it with the broker's own key (so only the content check can catch it)."""
    bundle = json.loads(issued.bundle)
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    change(statement)
    resigned = issued.signer.sign_dsse(rfc8785.dumps(statement), "application/vnd.in-toto+json")
    return json.dumps(resigned).encode()


def _tamper_envelope(issued: Issued, change: Callable[[dict[str, Any]], None]) -> bytes:
    bundle = json.loads(issued.bundle)
    change(bundle)
    return json.dumps(bundle).encode()


def _flip_sig(bundle: dict[str, Any]) -> None:
    raw = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    raw[-1] ^= 1
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()


def _edit_payload_unsigned(bundle: dict[str, Any]) -> None:
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["model"] = "other"
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(rfc8785.dumps(statement)).decode()


def _set(path: list[str], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(statement: dict[str, Any]) -> None:
        target = statement
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _flip_proof(statement: dict[str, Any]) -> None:
    proof = statement["predicate"]["log"]["inclusionProof"]
    proof[0] = ("0" if proof[0][0] != "0" else "1") + proof[0][1:]


ENVELOPE_TAMPERING: list[tuple[str, Callable[[dict[str, Any]], None], type[Exception]]] = [
    ("flipped signature", _flip_sig, SignatureInvalid),
    ("payload edited", _edit_payload_unsigned, SignatureInvalid),
    ("media type", _set(["mediaType"], "application/json"), BundleMalformed),
    ("payload type", _set(["dsseEnvelope", "payloadType"], "text/plain"), BundleMalformed),
    ("two signatures", lambda b: b["dsseEnvelope"]["signatures"].append({"sig": "AA==", "keyid": ""}), BundleMalformed),
]
PAYLOAD_TAMPERING: list[tuple[str, Callable[[dict[str, Any]], None], type[Exception]]] = [
    ("predicate type", _set(["predicateType"], "https://slsa.dev/provenance/v1"), BundleMalformed),
    ("statement type", _set(["_type"], "https://in-toto.io/Statement/v0.1"), BundleMalformed),
    ("subject name", lambda s: s["subject"][0].update(name="other"), BundleMalformed),
    ("subject digest", lambda s: s["subject"][0].update(digest={"sha256": "00" * 32}), BundleMalformed),
    ("verdict", _set(["predicate", "appraisal", "verdict"], "deny"), BundleMalformed),
    ("missing member", lambda s: s["predicate"].pop("policyDigest"), BundleMalformed),
    ("log index", _set(["predicate", "log", "index"], 6), AuditChainBroken),
    ("tree size", _set(["predicate", "log", "treeSize"], 8), AuditChainBroken),
    ("leaf hash", _set(["predicate", "log", "leafHash"], "00" * 32), AuditChainBroken),
    ("inclusion proof", _flip_proof, AuditChainBroken),
    (
        "checkpoint line",
        lambda s: s["predicate"]["log"].update(
            checkpoint=s["predicate"]["log"]["checkpoint"].replace("\n9\n", "\n10\n")
        ),
        AuditChainBroken,
    ),
    ("log index type", _set(["predicate", "log", "index"], "5"), BundleMalformed),
]


@pytest.mark.parametrize(("what", "change", "error"), ENVELOPE_TAMPERING, ids=[t[0] for t in ENVELOPE_TAMPERING])
def test_envelope_tampering_fails(
    issued: Issued, what: str, change: Callable[[dict[str, Any]], None], error: type[Exception]
) -> None:
    with pytest.raises(error):
        verify_receipt(_tamper_envelope(issued, change), issued.broker_pem, issued.log_key)


@pytest.mark.parametrize(("what", "change", "error"), PAYLOAD_TAMPERING, ids=[t[0] for t in PAYLOAD_TAMPERING])
def test_content_tampering_fails_even_when_resigned(
    issued: Issued, what: str, change: Callable[[dict[str, Any]], None], error: type[Exception]
) -> None:
    with pytest.raises(error):
        verify_receipt(_mutate_payload(issued, change), issued.broker_pem, issued.log_key)


def test_leaf_data_must_match(issued: Issued) -> None:
    # A predicate field changed and re-signed: the log proof still holds, but the logged event disagrees.
    changed = _mutate_payload(issued, _set(["predicate", "policyDigest"], "sha256:" + "00" * 32))
    with pytest.raises(AuditChainBroken, match="not this release"):  # the rebuilt leaf catches it on its own
        verify_receipt(changed, issued.broker_pem, issued.log_key)
    legacy = dataclasses.replace(issued, bundle=issued.legacy_bundle)
    changed = _mutate_payload(legacy, _set(["predicate", "policyDigest"], "sha256:" + "00" * 32))
    with pytest.raises(AuditChainBroken, match="policyDigest"):
        verify_receipt(changed, issued.broker_pem, issued.log_key, leaf_data=issued.leaf)
    with pytest.raises(AuditChainBroken, match="does not hash"):
        verify_receipt(issued.bundle, issued.broker_pem, issued.log_key, leaf_data=_leaf(5, {"other": 1}))


def test_wrong_keys(issued: Issued) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    other_pem = other.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(SignatureInvalid):
        verify_receipt(issued.bundle, other_pem, issued.log_key)
    with pytest.raises(AuditChainBroken):
        verify_receipt(
            issued.bundle, issued.broker_pem, NoteSigner(ORIGIN, Ed25519PrivateKey.generate()).verifier_key()
        )
    ed_pem = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for bad_key in [b"not pem", ed_pem]:
        with pytest.raises(TrustRootInvalid):
            verify_receipt(issued.bundle, bad_key, issued.log_key)
    with pytest.raises(TrustRootInvalid):
        verify_receipt(issued.bundle, issued.broker_pem, "garbage")
    for garbage in [b"", b"{", b"[]", json.dumps({"mediaType": "x"}).encode()]:
        with pytest.raises(BundleMalformed):
            verify_receipt(garbage, issued.broker_pem, issued.log_key)


def test_statement_needs_a_model_and_hex_digest(issued: Issued) -> None:
    with pytest.raises(UsageError):  # a subject needs a name
        receipt_statement({}, ARTIFACT_DIGEST, json_entry(issued))
    statement = receipt_statement(issued.body, ARTIFACT_DIGEST, json_entry(issued))
    assert isinstance(statement, Statement) and statement.predicate_type == RECEIPT_PREDICATE_TYPE
    assert statement.subjects == (Subject("resnet", {ARTIFACT_DIGEST_ALGORITHM: ARTIFACT_DIGEST}),)
    with pytest.raises(ValueError):
        release_body(**{**_body_args(), "released_at": datetime(2026, 1, 1)})


def json_entry(issued: Issued) -> LogEntry:
    predicate = json.loads(base64.b64decode(json.loads(issued.bundle)["dsseEnvelope"]["payload"]))["predicate"]
    log = predicate["log"]
    return LogEntry(log["index"], log["treeSize"], bytes.fromhex(log["leafHash"]), (), log["checkpoint"])


def _body_args() -> dict[str, Any]:
    return {
        "model": "m",
        "artifact_id": "00",
        "header_sha256": "00",
        "policy_digest": "sha256:00",
        "evidence": b"",
        "evidence_type": "nitro",
        "checks": [],
        "hpke_suite": "x25519",
        "hpke_public_key": b"",
        "tls_public_key": b"",
        "released_at": datetime(2026, 1, 1, tzinfo=UTC),
        "broker_id": "b",
    }


# -- ccdeploy receipt verify ------------------------------------------------------------------------------------------


def _files(issued: Issued, tmp_path: Path, bundle: bytes | None = None) -> tuple[Path, Path, Path]:
    receipt, key, leaf = tmp_path / "receipt.json", tmp_path / "broker.pub", tmp_path / "leaf.json"
    receipt.write_bytes(bundle if bundle is not None else issued.bundle)
    key.write_bytes(issued.broker_pem)
    leaf.write_bytes(issued.leaf)
    return receipt, key, leaf


def test_cli_valid(issued: Issued, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    receipt, key, leaf = _files(issued, tmp_path)
    args = ["receipt", "verify", str(receipt), "--broker-key", str(key), "--log-key", issued.log_key]
    assert main([*args, "--leaf", str(leaf), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["verdict"] == "valid" and document["error"] is None
    assert (document["model"], document["log_index"]) == ("resnet", 5)
    assert document["released_at"] == "2026-03-01T12:00:00.000000Z"
    assert [c["name"] for c in document["checks"]] == ["signature", "statement", "log", "entry", "leaf"]
    assert document["audit_seq"] == 6
    assert main(args) == 0
    assert "entry: the logged leaf is this release (audit seq 6" in capsys.readouterr().out
    legacy = tmp_path / "legacy.json"
    legacy.write_bytes(issued.legacy_bundle)
    legacy_args = ["receipt", "verify", str(legacy), "--broker-key", str(key), "--log-key", issued.log_key]
    assert main([*legacy_args, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["checks"][-1]["name"] == "entry"
    assert main([*legacy_args, "--leaf", str(leaf)]) == 0
    capsys.readouterr()
    # A saved ReleaseGrant response works too, and the log key may come from a file.
    grant = tmp_path / "grant.json"
    grant.write_text(json.dumps({"model": "resnet", "receipt": json.loads(issued.bundle), "log_entry": {}}))
    (tmp_path / "log.vkey").write_text(issued.log_key + "\n")
    assert (
        main(["receipt", "verify", str(grant), "--broker-key", str(key), "--log-key", f"@{tmp_path / 'log.vkey'}"]) == 0
    )


def test_cli_invalid_and_usage(issued: Issued, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    forged = _tamper_envelope(issued, _flip_sig)
    receipt, key, _ = _files(issued, tmp_path, forged)
    args = ["receipt", "verify", str(receipt), "--broker-key", str(key), "--log-key", issued.log_key]
    assert main([*args, "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["verdict"] == "invalid" and document["error"]["type"] == "SignatureInvalid"
    assert document["checks"] == [{"name": "signature", "ok": False, "detail": document["error"]["message"]}]
    assert main(args) == 1
    assert "does not verify" in capsys.readouterr().err
    bad_leaf = tmp_path / "bad-leaf.json"
    bad_leaf.write_bytes(_leaf(5, {"x": 1}))
    _files(issued, tmp_path)
    assert main([*args, "--leaf", str(bad_leaf), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["checks"][-1]["name"] == "leaf"
    assert main([*args[:-1], "nonsense", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["verdict"] == "error"
    assert main(["receipt", "verify", str(tmp_path / "missing.json"), "--broker-key", str(key), "--log-key", "x"]) == 2
    assert main(["receipt", "verify", str(receipt)]) == 2
