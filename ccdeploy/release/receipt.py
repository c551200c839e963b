"""Release receipts: the broker's signed statement that it released a model key, and where that is logged.

A receipt is an in-toto Statement v1 in a DSSE envelope inside a Sigstore bundle (v0.3 JSON), signed
by the broker's ECDSA key through the same :class:`~ccdeploy.provenance.signers.base.StatementSigner`
code that signs provenance. Its subject is the sealed artifact (``ccseal.v1.blake3`` digest) and its
predicate (``https://ccdeploy.dev/release-receipt/v1``) is::

    {"model", "artifactId", "headerSha256", "policyDigest", "evidenceDigest", "evidenceType",
     "appraisal": {"verdict": "release", "checks": [{"name", "ok", "detail"}]},
     "enclave": {"hpkeSuite", "hpkePublicKeySha256", "tlsPublicKeySha256"},
     "releasedAt", "broker": {"id"},
     "log": {"index", "treeSize", "leafHash", "inclusionProof", "checkpoint",
             "seq", "time", "entryHash", "prevHash"}}

Everything but ``log`` is the body of the release event's audit entry, whose canonical JSON is the
transparency-log leaf (see ``docs/transparency.md``). ``log.seq``, ``log.time``, ``log.entryHash`` and
``log.prevHash`` are that audit entry's other fields, so a verifier rebuilds the leaf exactly as the
store wrote it (``audit_leaf_data``) and checks that it hashes to ``log.leafHash``: the logged leaf *is*
this release, and its entry hash recomputes. ``log.inclusionProof`` (hex hashes) proves the leaf in the
tree the signed ``log.checkpoint`` commits to, so a receipt verifies offline with two public keys: the
broker's and the log's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, NoReturn, Protocol

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ccdeploy._checks import Check
from ccdeploy.errors import (
    AuditChainBroken,
    BundleMalformed,
    SignatureInvalid,
    SignerError,
    TrustRootInvalid,
    UsageError,
)
from ccdeploy.provenance.bundle import BUNDLE_MEDIA_TYPE, ecdsa_hash
from ccdeploy.provenance.dsse import pae
from ccdeploy.provenance.signers.base import StatementSigner
from ccdeploy.provenance.statement import PAYLOAD_TYPE, STATEMENT_TYPE, Statement, Subject
from ccdeploy.transparency.checkpoint import Checkpoint, NoteVerifier
from ccdeploy.transparency.log import LogEntry
from ccdeploy.transparency.merkle import leaf_hash

__all__ = [
    "ARTIFACT_DIGEST_ALGORITHM",
    "RECEIPT_PREDICATE_TYPE",
    "AuditEntryLike",
    "Receipt",
    "ReceiptCheck",
    "load_broker_key",
    "receipt_statement",
    "release_body",
    "sign_receipt",
    "verify_receipt",
]

RECEIPT_PREDICATE_TYPE: Final = "https://ccdeploy.dev/release-receipt/v1"
ARTIFACT_DIGEST_ALGORITHM: Final = "ccseal.v1.blake3"
"""The in-toto digest name of a sealed artifact (``ccdeploy.seal.digest.DIGEST_ALGORITHM``)."""
RELEASE_KIND: Final = "release"
_MEDIA_TYPES: Final = frozenset({BUNDLE_MEDIA_TYPE, "application/vnd.dev.sigstore.bundle+json;version=0.3"})
_BODY_FIELDS: Final = (
    "model",
    "artifactId",
    "headerSha256",
    "policyDigest",
    "evidenceDigest",
    "evidenceType",
    "appraisal",
    "enclave",
    "releasedAt",
    "broker",
)


class CheckLike(Protocol):
    """What an appraisal check offers (``ccdeploy.release.decide.PolicyCheck`` does)."""

    @property
    def name(self) -> str: ...
    @property
    def ok(self) -> bool: ...
    @property
    def detail(self) -> str: ...


class AuditEntryLike(Protocol):
    """The audit entry a release was appended as (``ccdeploy.broker.store.AuditEntry`` is one)."""

    @property
    def seq(self) -> int: ...
    @property
    def time(self) -> datetime: ...
    @property
    def kind(self) -> str: ...
    @property
    def body(self) -> Mapping[str, Any]: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def entry_hash(self) -> str: ...


_HEX64 = frozenset("0123456789abcdef")


def _is_hash_hex(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX64


def _entry_content(seq: int, time: str, kind: str, body: Mapping[str, Any]) -> bytes:
    """JCS of an audit entry's hashed fields, as ``ccdeploy.broker.store.audit.audit_entry_hash`` hashes them."""
    return rfc8785.dumps({"seq": seq, "time": time, "kind": kind, "body": dict(body)})


def _leaf_data(seq: int, time: str, kind: str, body: Mapping[str, Any], entry_hash: str) -> bytes:
    """An audit entry's transparency-log leaf, exactly as ``ccdeploy.broker.store.audit.audit_leaf_data`` writes it."""
    return rfc8785.dumps({"seq": seq, "time": time, "kind": kind, "body": dict(body), "entry_hash": entry_hash})


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _rfc3339(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("releasedAt needs a time zone")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def release_body(
    *,
    model: str,
    artifact_id: str,
    header_sha256: str,
    policy_digest: str,
    evidence: bytes,
    evidence_type: str,
    checks: Iterable[CheckLike],
    hpke_suite: str,
    hpke_public_key: bytes,
    tls_public_key: bytes,
    released_at: datetime,
    broker_id: str,
) -> dict[str, Any]:
    """The release event: the audit entry's body, and the receipt predicate without ``log``.

    Args:
        model: the model name.
        artifact_id: the sealed artifact's id (hex, from its header).
        header_sha256: hex SHA-256 of the sealed header.
        policy_digest: ``sha256:<hex>`` of the release policy bytes.
        evidence: the raw evidence the enclave presented (only its digest is kept).
        evidence_type: the attestation type it was verified as.
        checks: the appraisal's checks, all of which passed.
        hpke_suite: the HPKE suite the key was sealed with.
        hpke_public_key: the enclave's HPKE public key (only its digest is kept).
        tls_public_key: DER SubjectPublicKeyInfo of the enclave's TLS key (only its digest is kept).
        released_at: when (time zone aware).
        broker_id: the broker's identity.

    Raises:
        ValueError: a naive ``released_at``.
    """
    return {
        "model": model,
        "artifactId": artifact_id,
        "headerSha256": header_sha256,
        "policyDigest": policy_digest,
        "evidenceDigest": "sha256:" + _sha256_hex(evidence),
        "evidenceType": evidence_type,
        "appraisal": {
            "verdict": "release",
            "checks": [{"name": c.name, "ok": bool(c.ok), "detail": c.detail} for c in checks],
        },
        "enclave": {
            "hpkeSuite": str(hpke_suite),
            "hpkePublicKeySha256": _sha256_hex(hpke_public_key),
            "tlsPublicKeySha256": _sha256_hex(tls_public_key),
        },
        "releasedAt": _rfc3339(released_at),
        "broker": {"id": broker_id},
    }


def receipt_statement(
    body: Mapping[str, Any],
    artifact_digest: str,
    log_entry: LogEntry,
    audit_entry: AuditEntryLike | None = None,
) -> Statement:
    """The receipt statement for a release event and its log entry.

    Args:
        body: :func:`release_body`'s result (the audit entry's body).
        artifact_digest: hex ``ccseal.v1.blake3`` digest of the sealed artifact.
        log_entry: the audit entry's leaf in the transparency log.
        audit_entry: the appended audit entry; its ``seq``, ``time``, ``entry_hash`` and ``prev_hash`` go into
            ``log`` so the receipt alone ties the leaf to this release. Without it the receipt verifies only
            together with the leaf data (``verify_receipt(leaf_data=...)``).

    Raises:
        UsageError: the body has no model name, the digest is not hex, or ``audit_entry`` is not the release
            ``body`` logged as ``log_entry`` (the broker would sign a receipt no verifier accepts).
    """
    log: dict[str, Any] = {
        "index": log_entry.index,
        "treeSize": log_entry.tree_size,
        "leafHash": log_entry.leaf_hash.hex(),
        "inclusionProof": [p.hex() for p in log_entry.inclusion_proof],
        "checkpoint": log_entry.checkpoint,
    }
    if audit_entry is not None:
        time = _rfc3339(audit_entry.time)
        if audit_entry.kind != RELEASE_KIND or rfc8785.dumps(dict(audit_entry.body)) != rfc8785.dumps(dict(body)):
            raise UsageError("the audit entry given is not this release event")
        leaf = _leaf_data(audit_entry.seq, time, RELEASE_KIND, body, audit_entry.entry_hash)
        if leaf_hash(leaf) != log_entry.leaf_hash:
            raise UsageError("the audit entry given is not the leaf of this log entry")
        log |= {
            "seq": audit_entry.seq,
            "time": time,
            "entryHash": audit_entry.entry_hash,
            "prevHash": audit_entry.prev_hash,
        }
    subject = Subject(str(body.get("model", "")), {ARTIFACT_DIGEST_ALGORITHM: artifact_digest})
    return Statement((subject,), RECEIPT_PREDICATE_TYPE, {**body, "log": log})


def sign_receipt(statement: Statement, signer: StatementSigner) -> dict[str, Any]:
    """Sign a receipt statement into a Sigstore bundle (v0.3 JSON) with the broker's signer.

    Raises:
        SignerError, SignerUnavailable: the signer failed.
    """
    return signer.sign_dsse(statement.to_bytes(), PAYLOAD_TYPE)


ReceiptCheck = Check
"""One step of receipt verification: its name, whether it held, and why (the shared :class:`ccdeploy._checks.Check`)."""


@dataclass(frozen=True)
class Receipt:
    """A verified receipt."""

    model: str
    artifact_digest: str
    released_at: str
    log_index: int
    tree_size: int
    leaf_hash: bytes
    checkpoint: Checkpoint
    predicate: dict[str, Any]
    checks: tuple[ReceiptCheck, ...]
    leaf_checked: bool
    """Whether the logged leaf was shown to be this release (rebuilt from the predicate, or given and matched)."""
    audit_seq: int | None = None
    """The release's audit-log sequence number, when the receipt carries it."""

    def log_entry(self) -> LogEntry:
        """The receipt's log entry (with its checkpoint note and inclusion proof)."""
        log = self.predicate["log"]
        proof = tuple(bytes.fromhex(p) for p in log["inclusionProof"])
        return LogEntry(self.log_index, self.tree_size, self.leaf_hash, proof, log["checkpoint"])


def load_broker_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    """Load the broker's PEM public key (ECDSA P-256, P-384 or P-521).

    Raises:
        TrustRootInvalid: not a PEM public key, or not one of those curves.
    """
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise TrustRootInvalid("the broker key is not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise TrustRootInvalid("the broker key must be an ECDSA P-256, P-384 or P-521 public key")
    try:
        ecdsa_hash(key)
    except SignerError as exc:
        raise TrustRootInvalid(f"the broker key is unusable: {exc.message}") from None
    return key


class _Run:
    """Records each verification step, so a failure still shows what passed before it."""

    def __init__(self, sink: list[ReceiptCheck] | None) -> None:
        self.checks: list[ReceiptCheck] = sink if sink is not None else []

    def passed(self, name: str, detail: str) -> None:
        self.checks.append(ReceiptCheck(name, True, detail))

    def fail(self, name: str, error: BundleMalformed | SignatureInvalid | AuditChainBroken) -> NoReturn:
        self.checks.append(ReceiptCheck(name, False, error.message))
        raise error


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise BundleMalformed("duplicate JSON member")
    return dict(pairs)


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError):
        raise BundleMalformed(f"{what} is not JSON") from None


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise BundleMalformed(f"{what} is not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BundleMalformed(f"{what} is not base64") from None


def _envelope(bundle_bytes: bytes) -> tuple[bytes, bytes]:
    """The DSSE payload and its one signature, from a v0.3 bundle."""
    bundle = _json(bundle_bytes, "the receipt")
    if not isinstance(bundle, dict) or bundle.get("mediaType") not in _MEDIA_TYPES:
        raise BundleMalformed("the receipt is not a Sigstore bundle v0.3")
    envelope = bundle.get("dsseEnvelope")
    if not isinstance(envelope, dict) or envelope.get("payloadType") != PAYLOAD_TYPE:
        raise BundleMalformed(f"the receipt does not carry a DSSE envelope of {PAYLOAD_TYPE}")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1 or not isinstance(signatures[0], dict):
        raise BundleMalformed("the receipt's envelope must carry exactly one signature")
    return _b64(envelope.get("payload"), "the DSSE payload"), _b64(signatures[0].get("sig"), "the DSSE signature")


def _field(mapping: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = mapping.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise BundleMalformed(f"receipt predicate member {name!r} is missing or malformed")
    return value


def _statement(payload: bytes) -> tuple[str, str, dict[str, Any]]:
    """``(subject name, artifact digest, predicate)`` of a receipt statement."""
    document = _json(payload, "the DSSE payload")
    if not isinstance(document, dict) or document.get("_type") != STATEMENT_TYPE:
        raise BundleMalformed("the receipt payload is not an in-toto Statement v1")
    if document.get("predicateType") != RECEIPT_PREDICATE_TYPE:
        raise BundleMalformed(f"the statement's predicate type is not {RECEIPT_PREDICATE_TYPE}")
    subjects = document.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise BundleMalformed("a receipt names exactly one subject")
    digest = subjects[0].get("digest")
    name = subjects[0].get("name")
    if not isinstance(digest, dict) or not isinstance(digest.get(ARTIFACT_DIGEST_ALGORITHM), str):
        raise BundleMalformed(f"the receipt subject has no {ARTIFACT_DIGEST_ALGORITHM} digest")
    predicate = document.get("predicate")
    if not isinstance(predicate, dict) or not isinstance(name, str):
        raise BundleMalformed("the receipt has no predicate or subject name")
    for member in _BODY_FIELDS:
        if member not in predicate:
            raise BundleMalformed(f"receipt predicate member {member!r} is missing")
    if _field(predicate, "model", str) != name:
        raise BundleMalformed("the receipt subject is not the model named in the predicate")
    appraisal = _field(predicate, "appraisal", dict)
    if appraisal.get("verdict") != "release":
        raise BundleMalformed("the receipt's appraisal verdict is not 'release'")
    _field(predicate, "releasedAt", str)
    return name, digest[ARTIFACT_DIGEST_ALGORITHM], predicate


def _log_entry(predicate: Mapping[str, Any]) -> LogEntry:
    log = _field(predicate, "log", dict)
    return LogEntry.from_dict(
        {
            "index": _field(log, "index", int),
            "tree_size": _field(log, "treeSize", int),
            "leaf_hash": _field(log, "leafHash", str),
            "inclusion_proof": _field(log, "inclusionProof", list),
            "checkpoint": _field(log, "checkpoint", str),
        }
    )


@dataclass(frozen=True)
class _EntryFields:
    seq: int
    time: str
    entry_hash: str
    prev_hash: str


_ENTRY_MEMBERS: Final = ("seq", "time", "entryHash", "prevHash")


def _entry_fields(predicate: Mapping[str, Any]) -> _EntryFields | None:
    """The audit entry's fields from ``log`` (all four, or none for a receipt from an older broker)."""
    log = predicate["log"]
    present = [m for m in _ENTRY_MEMBERS if m in log]
    if not present:
        return None
    if len(present) != len(_ENTRY_MEMBERS):
        raise BundleMalformed(f"the receipt's log section has only some audit entry fields: {present}")
    seq = _field(log, "seq", int)
    time = _field(log, "time", str)
    if seq < 1 or not _is_hash_hex(log["entryHash"]) or not _is_hash_hex(log["prevHash"]):
        raise BundleMalformed("the receipt's audit entry fields are malformed (seq >= 1, 64 hex digit hashes)")
    return _EntryFields(seq, time, log["entryHash"], log["prevHash"])


def _check_rebuilt_leaf(fields: _EntryFields, entry: LogEntry, predicate: Mapping[str, Any], run: _Run) -> None:
    """The leaf rebuilt from the signed predicate is the logged leaf, and its entry hash recomputes."""
    body = {k: v for k, v in predicate.items() if k != "log"}
    try:
        leaf = _leaf_data(fields.seq, fields.time, RELEASE_KIND, body, fields.entry_hash)
        content = _entry_content(fields.seq, fields.time, RELEASE_KIND, body)
    except (ValueError, TypeError):  # rfc8785.CanonicalizationError is a ValueError
        run.fail("entry", AuditChainBroken("the receipt's release event cannot be canonicalized"))
    if leaf_hash(leaf) != entry.leaf_hash:
        run.fail(
            "entry",
            AuditChainBroken(
                "the logged leaf is not this release: the audit entry rebuilt from the receipt does not hash to "
                "its log leaf"
            ),
        )
    if hashlib.sha256(bytes.fromhex(fields.prev_hash) + content).hexdigest() != fields.entry_hash:
        run.fail("entry", AuditChainBroken("the release's audit entry hash does not recompute from prevHash"))
    run.passed(
        "entry",
        f"the logged leaf is this release (audit seq {fields.seq}, rebuilt from the receipt); its entry hash "
        "recomputes from prevHash",
    )


def _check_leaf(leaf_data: bytes, entry: LogEntry, predicate: Mapping[str, Any], run: _Run) -> None:
    if leaf_hash(leaf_data) != entry.leaf_hash:
        run.fail("leaf", AuditChainBroken("the audit entry given does not hash to the receipt's log leaf"))
    try:
        leaf = _json(leaf_data, "the audit entry")
    except BundleMalformed as exc:
        run.fail("leaf", AuditChainBroken(exc.message))
    body = leaf.get("body") if isinstance(leaf, dict) else None
    if not isinstance(leaf, dict) or leaf.get("kind") != RELEASE_KIND or not isinstance(body, dict):
        run.fail("leaf", AuditChainBroken("the logged audit entry is not a release event"))
    expected = {k: v for k, v in predicate.items() if k != "log"}
    if rfc8785.dumps(body) != rfc8785.dumps(expected):
        differing = sorted(k for k in set(body) | set(expected) if body.get(k) != expected.get(k))
        run.fail("leaf", AuditChainBroken(f"the logged release event differs from the receipt in {differing}"))
    run.passed("leaf", f"audit entry seq {leaf.get('seq')} is the logged leaf and matches the receipt")


def verify_receipt(
    bundle_bytes: bytes,
    broker_public_key_pem: bytes,
    log_verifier_key: str | Sequence[str],
    *,
    leaf_data: bytes | None = None,
    checks: list[ReceiptCheck] | None = None,
) -> Receipt:
    """Verify a release receipt offline.

    Checks, in order: the bundle and envelope shape; the broker's ECDSA signature over the DSSE PAE; the
    statement type, predicate type and subject; the checkpoint's signature by the log key; the inclusion
    proof of the leaf hash in the checkpoint's tree; that the leaf is this release: the audit entry rebuilt
    from the predicate (``log.seq``, ``log.time``, ``log.entryHash``, the predicate without ``log``) hashes to
    ``log.leafHash`` and its entry hash recomputes from ``log.prevHash``; and, with ``leaf_data`` (the audit
    entry's canonical JSON), that it is that leaf and its body equals the predicate without ``log``.
    A receipt without the audit entry fields (from an older broker) is refused unless ``leaf_data`` is given.

    Args:
        bundle_bytes: the receipt (Sigstore bundle JSON).
        broker_public_key_pem: the broker's signing public key (PEM).
        log_verifier_key: the log's note verifier key (or several).
        leaf_data: the release event's audit entry, as logged.
        checks: a list that receives each step as it completes (also on failure).

    Raises:
        TrustRootInvalid: a key given is malformed.
        BundleMalformed: not a receipt bundle, or a malformed statement or predicate.
        SignatureInvalid: the broker's signature does not verify.
        AuditChainBroken: the checkpoint, the inclusion proof or the leaf data does not verify.
    """
    key = load_broker_key(broker_public_key_pem)
    vkeys = [log_verifier_key] if isinstance(log_verifier_key, str) else list(log_verifier_key)
    verifiers = [NoteVerifier.from_key(vkey) for vkey in vkeys]
    run = _Run(checks)
    try:
        payload, signature = _envelope(bundle_bytes)
    except BundleMalformed as exc:
        run.fail("bundle", exc)
    try:
        key.verify(signature, pae(PAYLOAD_TYPE, payload), ec.ECDSA(ecdsa_hash(key)))
    except InvalidSignature:
        run.fail("signature", SignatureInvalid("the receipt's signature does not verify with the broker key"))
    run.passed("signature", f"ECDSA {key.curve.name} signature by the broker key verifies")
    try:
        name, artifact_digest, predicate = _statement(payload)
        entry = _log_entry(predicate)
        fields = _entry_fields(predicate)
    except BundleMalformed as exc:
        run.fail("statement", exc)
    run.passed("statement", f"{RECEIPT_PREDICATE_TYPE} for {name} ({ARTIFACT_DIGEST_ALGORITHM}:{artifact_digest})")
    try:
        checkpoint = entry.verify(verifiers)
    except AuditChainBroken as exc:
        run.fail("log", exc)
    run.passed(
        "log",
        f"checkpoint of {checkpoint.origin} at size {checkpoint.size} is signed by the log key; "
        f"leaf {entry.index} is included",
    )
    if fields is not None:
        _check_rebuilt_leaf(fields, entry, predicate, run)
    elif leaf_data is None:
        run.fail(
            "entry",
            BundleMalformed(
                "the receipt does not tie its log leaf to this release (no log.seq/time/entryHash): "
                "give the audit entry (leaf data) to check it"
            ),
        )
    if leaf_data is not None:
        _check_leaf(leaf_data, entry, predicate, run)
    return Receipt(
        model=name,
        artifact_digest=artifact_digest,
        released_at=predicate["releasedAt"],
        log_index=entry.index,
        tree_size=entry.tree_size,
        leaf_hash=entry.leaf_hash,
        checkpoint=checkpoint,
        predicate=predicate,
        checks=tuple(run.checks),
        leaf_checked=True,
        audit_seq=fields.seq if fields is not None else None,
    )
