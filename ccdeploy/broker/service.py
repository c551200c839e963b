"""The key broker's decisions, free of HTTP: challenges, releases and model registration.

A release runs the pipeline of the design contract, in this order, and stops at the first failure:

1. the model is registered and the HPKE suite and key are usable;
2. the nonce is checked: its MAC (NONCE_UNKNOWN), its expiry (NONCE_EXPIRED), and a read of the used nonces
   (NONCE_REPLAYED early; the exclusive check is step 8's);
3. the evidence is verified at the broker's clock and appraised against the model's policy;
4. the binding: the evidence's nonce (where the format carries one) and its report data must be those of
   this nonce and these enclave keys; checked right after verification, before any appraisal result counts;
5. the sealed artifact's provenance and BOM against the policy;
6. the DEK is unwrapped with the broker's KEKs and the header MAC checked with it;
7. the DEK is HPKE-sealed to the enclave key, bound to the model and nonce;
8. the release is appended to the audit log and the transparency log and the nonce is used up, in one
   transaction (one commit); if another release or denial used the nonce first, nothing is appended and the
   request is denied NONCE_REPLAYED.

Challenges are stateless (a MAC-authenticated expiry, :class:`~ccdeploy.broker.keys.NonceKey`): issuing one
writes nothing. Steps 3-7 are pure, so the database's write lock is held only for the append. Every refusal is a
:class:`~ccdeploy.broker.problems.Denied` and is appended to the audit log before it is raised, so no answer
leaves without its audit entry; a denial after step 2 uses the nonce up in the same transaction (a nonce is
single use whatever the decision). Audit bodies carry digests, never keys, the DEK or a nonce.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from attestation import Collateral, Fetcher
from attestation.claims import Claims
from attestation.errors import AttestationError
from attestation.tee.dcap.collateral import DcapCollateral
from ccdeploy.broker.keys import NONCE_SIZE, NonceKey, NonceStatus
from ccdeploy.broker.problems import Denied
from ccdeploy.broker.store import BrokerStore, ModelRecord, NonceReplayed, NonceUse
from ccdeploy.errors import (
    ArtifactCorrupt,
    ArtifactTampered,
    BrokerUnavailable,
    CcdError,
    KekError,
    KekUnavailable,
    PolicyInvalid,
    WrongKek,
)
from ccdeploy.kek.base import KeyWrapper
from ccdeploy.provenance.signers.base import StatementSigner
from ccdeploy.release import decide, receipt
from ccdeploy.release.binding import report_data_matches
from ccdeploy.release.hpke import HpkeError, HpkeSuite, release_info, seal_to
from ccdeploy.release.policy import ReleasePolicy, load_policy, policy_digest
from ccdeploy.release.protocol import Challenge, DenialReason, ReleaseGrant, ReleaseRequest, RequestCollateral
from ccdeploy.seal import _header
from ccdeploy.seal.digest import sealed_digest_from_parts
from ccdeploy.seal.keys import KekKeyProvider
from ccdeploy.transparency import TransparencyLog

__all__ = [
    "LOGGED_KINDS",
    "NONCE_EXPIRY_SKEW",
    "NONCE_SIZE",
    "ParsedHead",
    "RegisteredModel",
    "Registration",
    "ReleaseService",
    "merge_collateral",
    "parse_head",
]

NONCE_EXPIRY_SKEW = timedelta(seconds=5)
"""How far a nonce's expiry may lie beyond now + the nonce TTL (clocks of replicas that disagree) before the nonce
is refused as not this broker's: a broker never issues one, so it was minted by a holder of the nonce key with
another TTL (a replica configured differently, or a leaked key)."""
LOGGED_KINDS = frozenset({"release", "model-registered"})
"""Audit entry kinds that are also transparency-log leaves (denials are audited, not logged)."""
_REPLAYED = "the nonce was already used"
_KEY_UNAVAILABLE = "the model's data key is not available to the broker now"
_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ParsedHead:
    """A sealed artifact's head part, parsed (not yet authenticated)."""

    header: _header.SealedHeader
    authenticated: bytes
    """Preamble and header JSON: what the header MAC covers."""
    mac: bytes

    @property
    def header_sha256(self) -> str:
        """SHA-256 (hex) of the canonical header JSON."""
        return _sha256(self.authenticated[_header.PREAMBLE_SIZE :])


def parse_head(head: bytes) -> ParsedHead:
    """Parse the head part of a sealed artifact (preamble ‖ header ‖ MAC) given alone.

    Raises:
        ArtifactCorrupt: not exactly one head part.
        UnsupportedFormat: a format version or algorithm this build does not read.
    """
    length = _header.decode_preamble(head[: _header.PREAMBLE_SIZE])
    if len(head) != _header.PREAMBLE_SIZE + length + _header.MAC_SIZE:
        raise ArtifactCorrupt("the head part's length does not match the length its preamble announces")
    split = _header.PREAMBLE_SIZE + length
    header = _header.parse_header(head[_header.PREAMBLE_SIZE : split])
    return ParsedHead(header, head[:split], head[split:])


@dataclass(frozen=True)
class Registration:
    """A model to register: what ``POST /v1/models`` carries."""

    name: str
    head: bytes
    part_digests: tuple[str, ...]
    policy: bytes
    provenance: bytes | None


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model, as the admin API reports it."""

    name: str
    artifact_id: str
    artifact_digest: str
    header_sha256: str
    policy_digest: str
    provenance_sha256: str | None
    registered_at: datetime
    registered_by: str
    audit_seq: int | None = None
    log_index: int | None = None

    @classmethod
    def of(cls, record: ModelRecord) -> RegisteredModel:
        """Describe a stored record."""
        return cls(
            name=record.name,
            artifact_id=record.artifact_id,
            artifact_digest=sealed_digest_from_parts(record.head, record.part_digests).value,
            header_sha256=parse_head(record.head).header_sha256,
            policy_digest=policy_digest(record.policy),
            provenance_sha256=None if record.provenance is None else _sha256(record.provenance),
            registered_at=record.registered_at,
            registered_by=record.registered_by,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        document: dict[str, Any] = {
            "name": self.name,
            "artifact_id": self.artifact_id,
            "artifact_digest": {"ccseal.v1.blake3": self.artifact_digest},
            "header_sha256": self.header_sha256,
            "policy_digest": self.policy_digest,
            "provenance_sha256": self.provenance_sha256,
            "registered_at": self.registered_at.isoformat(),
            "registered_by": self.registered_by,
        }
        if self.audit_seq is not None:
            document["audit_seq"] = self.audit_seq
        if self.log_index is not None:
            document["log_index"] = self.log_index
        return document


class _Dek:
    """The unwrapped DEK in a bytearray that is zeroed when the release is done with it."""

    def __init__(self, value: bytes) -> None:
        self.value = bytearray(value)

    def view(self) -> bytearray:
        # HPKE and HKDF take any buffer; handing over the bytearray itself leaves no immutable copy to outlive wipe().
        return self.value

    def wipe(self) -> None:
        for index in range(len(self.value)):
            self.value[index] = 0


class ReleaseService:
    """Issues challenges, decides releases and registers models.

    Args:
        store: the broker's state (used nonces, models, audit and transparency logs).
        keks: the KEKs data keys are unwrapped with.
        signer: signs release receipts (the broker's ECDSA P-256 key).
        log: the transparency log over ``store.log_leaves``.
        clock: the current time (timezone-aware); evidence is verified at this time.
        nonce_ttl: how long a challenge nonce is usable.
        broker_id: the broker's name in receipts.
        nonce_key: makes and checks challenge nonces (shared by every replica).
        suites: the HPKE suites the broker seals to.
        fetcher: fetches attestation collateral where a platform needs it (None: offline).
        model_check_ttl: how long a provenance/BOM decision is reused for the same policy, header and bundle.
        collateral: the broker's own attestation collateral (NVIDIA RIMs and OCSP responses, Intel DCAP
            collateral), merged with what a request brings (:func:`merge_collateral`).
    """

    def __init__(
        self,
        store: BrokerStore,
        keks: Sequence[KeyWrapper],
        signer: StatementSigner,
        log: TransparencyLog,
        clock: Callable[[], datetime],
        nonce_ttl: timedelta = timedelta(seconds=60),
        *,
        broker_id: str,
        nonce_key: NonceKey,
        suites: Sequence[HpkeSuite] = (HpkeSuite.XWING, HpkeSuite.X25519),
        fetcher: Fetcher | None = None,
        model_check_ttl: timedelta = timedelta(minutes=5),
        collateral: Collateral | None = None,
    ) -> None:
        self._store = store
        self._keys = KekKeyProvider(keks)
        self._signer = signer
        self._log = log
        self._clock = clock
        self._nonce_ttl = nonce_ttl
        self.broker_id = broker_id
        self._nonce_key = nonce_key
        self.suites = tuple(suites)
        self._fetcher = fetcher
        self._model_check_ttl = model_check_ttl
        self._collateral = collateral
        self._policies: dict[str, ReleasePolicy] = {}
        self._heads: dict[tuple[bytes, tuple[str, ...]], tuple[ParsedHead, str]] = {}
        self._model_checks: dict[tuple[str, str, str, str], tuple[datetime, decide.ModelDecision]] = {}
        self._lock = threading.Lock()

    # --- challenges -------------------------------------------------------------------------------

    def challenge(self) -> Challenge:
        """A fresh single-use nonce, usable until the TTL runs out (stateless: nothing is written)."""
        nonce, expires = self._nonce_key.mint(self._clock() + self._nonce_ttl)
        return Challenge(nonce=nonce, expires_at=expires)

    # --- releases ---------------------------------------------------------------------------------

    def release(self, request: ReleaseRequest, client: str) -> ReleaseGrant:
        """Decide on a release request; return the grant or raise the denial (audited either way).

        Raises:
            Denied: the typed reason and HTTP status; the denial is in the audit log.
            BrokerUnavailable: the store could not be reached (nothing was released).
        """
        now = self._clock()
        context = _Context.start(request, client, now)
        try:
            return self._release(request, context, now)
        except Denied as denied:
            self.audit_denial(denied, context.body(), now, nonce=context.nonce)
            raise
        except BrokerUnavailable:
            raise
        except Exception as exc:
            # Fail closed, and audited like any denial; the type name only (a message could carry anything).
            internal = Denied(DenialReason.INTERNAL, f"internal error ({type(exc).__name__})", status=500)
            self.audit_denial(internal, context.body(), now, nonce=context.nonce)
            raise internal from None

    def audit_denial(
        self, denied: Denied, body: Mapping[str, Any], now: datetime | None = None, *, nonce: NonceUse | None = None
    ) -> None:
        """Append a denial to the audit log (not to the transparency log).

        Args:
            denied: the denial.
            body: what the request revealed (digests, model, client).
            now: the decision time (default: the clock's).
            nonce: a checked nonce the denial uses up in the same transaction (never exclusive: a denial is
                recorded whether or not the nonce was used before).

        Raises:
            BrokerUnavailable: the store could not be reached.
        """
        when = now or self._clock()
        entry = {"time": when.isoformat(), **body}
        entry.update({"reason": denied.denial.value, "status": denied.status, "detail": denied.detail})
        use = None if nonce is None else NonceUse(nonce.nonce, nonce.expires_at, exclusive=False)
        self._store.append_event("denial", entry, when, logged=False, nonce=use)

    def _release(self, request: ReleaseRequest, context: _Context, now: datetime) -> ReleaseGrant:
        record = self._store.get_model(request.model)
        if record is None:
            raise Denied(DenialReason.MODEL_UNKNOWN, f"no model named {request.model!r} is registered")
        head, artifact_digest = self._head(record)
        context.model(record, head, artifact_digest)
        self._check_suite(request)
        collateral = merge_collateral(self._collateral, request.collateral)
        context.nonce = self._check_nonce(request.nonce, now)
        policy = self._policy(record.policy)
        evidence = decide.appraise_evidence(
            policy,
            request.evidence,
            request.evidence_type,
            now=now,
            fetcher=self._fetcher,
            collateral=collateral,
            model={"name": record.name, "artifact_id": record.artifact_id},
        )
        checks = list(evidence.checks)
        if evidence.claims is None:
            raise Denied(evidence.denial or DenialReason.EVIDENCE_INVALID, evidence.detail or "evidence rejected")
        checks.extend(self._check_binding(request, evidence.claims))
        if evidence.denial is not None:
            raise Denied(evidence.denial, evidence.detail)
        model = self._check_model(policy, record, head, artifact_digest, now)
        if model.denial is not None:
            raise Denied(model.denial, model.detail)
        checks.extend(model.checks)
        dek = self._unwrap(head)
        try:
            sealed = seal_to(
                request.hpke_suite, request.hpke_public_key, dek.view(), release_info(record.name, request.nonce)
            )
        except HpkeError as exc:
            raise Denied(DenialReason.SUITE_UNSUPPORTED, str(exc)) from None
        finally:
            dek.wipe()
        return self._grant(request, record, head, context, checks, sealed, now)

    def _head(self, record: ModelRecord) -> tuple[ParsedHead, str]:
        """The parsed head and artifact digest of a record (cached: parsing is most of a denial's cost)."""
        key = (record.head, record.part_digests)
        with self._lock:
            cached = self._heads.get(key)
        if cached is not None:
            return cached
        parsed = (parse_head(record.head), sealed_digest_from_parts(record.head, record.part_digests).value)
        with self._lock:
            if len(self._heads) > 256:
                self._heads.clear()
            self._heads[key] = parsed
        return parsed

    def _check_suite(self, request: ReleaseRequest) -> None:
        suite = request.hpke_suite
        if suite not in self.suites:
            raise Denied(DenialReason.SUITE_UNSUPPORTED, f"this broker does not seal to {suite.value}")
        if len(request.hpke_public_key) != suite.public_key_size:
            raise Denied(
                DenialReason.SUITE_UNSUPPORTED,
                f"a {suite.value} public key is {suite.public_key_size} bytes, got {len(request.hpke_public_key)}",
            )

    def _check_nonce(self, nonce: bytes, now: datetime) -> NonceUse:
        status, expires = self._nonce_key.check(nonce, now)
        if status is NonceStatus.UNKNOWN or expires is None:
            raise Denied(DenialReason.NONCE_UNKNOWN, "the nonce was not issued by this broker")
        if status is NonceStatus.EXPIRED:
            raise Denied(DenialReason.NONCE_EXPIRED, "the nonce expired; take a fresh challenge")
        if expires > now + self._nonce_ttl + NONCE_EXPIRY_SKEW:
            raise Denied(DenialReason.NONCE_UNKNOWN, "the nonce's expiry is later than this broker's nonce TTL allows")
        if self._store.nonce_used(nonce):
            raise Denied(DenialReason.NONCE_REPLAYED, _REPLAYED)
        return NonceUse(nonce, expires)

    def _policy(self, data: bytes) -> ReleasePolicy:
        digest = policy_digest(data)
        with self._lock:
            cached = self._policies.get(digest)
        if cached is not None:
            return cached
        try:
            policy = load_policy(data)
        except PolicyInvalid as exc:
            # Registration refuses an invalid policy; one here means the store was edited. Fail closed.
            raise Denied(
                DenialReason.INTERNAL,
                f"the model's stored policy is invalid: {exc.message}",
                public_detail="the broker cannot decide on this model now",
            ) from None
        with self._lock:
            self._policies[digest] = policy
        return policy

    @staticmethod
    def _check_binding(request: ReleaseRequest, claims: Claims) -> list[decide.PolicyCheck]:
        nonce = claims.nonce
        if nonce is not None and not secrets.compare_digest(nonce, request.nonce):
            raise Denied(DenialReason.NONCE_MISMATCH, "the evidence carries another nonce than the one presented")
        if not report_data_matches(claims.report_data, request.nonce, request.hpke_public_key, request.tls_public_key):
            raise Denied(
                DenialReason.BINDING_MISMATCH,
                "the evidence's report data is not the binding of this nonce and these enclave keys",
            )
        found = [decide.PolicyCheck("binding", True, "report data binds the challenge nonce and the enclave keys")]
        if nonce is not None:
            found.insert(0, decide.PolicyCheck("nonce", True, "the evidence carries the challenge nonce"))
        return found

    def _check_model(
        self, policy: ReleasePolicy, record: ModelRecord, head: ParsedHead, artifact_digest: str, now: datetime
    ) -> decide.ModelDecision:
        bundle = "" if record.provenance is None else _sha256(record.provenance)
        # The artifact digest covers the head and every stream's digest: what the provenance subject must match.
        key = (policy_digest(record.policy), head.header_sha256, bundle, artifact_digest)
        with self._lock:
            cached = self._model_checks.get(key)
        if cached is not None and timedelta(0) <= now - cached[0] < self._model_check_ttl:
            return cached[1]
        decision = decide.check_model(
            policy,
            head=record.head,
            part_digests=record.part_digests,
            provenance=record.provenance,
            now=now,
            name=record.name,
        )
        with self._lock:
            if len(self._model_checks) > 1024:
                self._model_checks.clear()
            self._model_checks[key] = (now, decision)
        return decision

    def _unwrap(self, head: ParsedHead) -> _Dek:
        try:
            dek = _Dek(self._keys.data_key(head.header))
        except (WrongKek, KekUnavailable, KekError) as exc:
            raise Denied(
                DenialReason.KEY_UNAVAILABLE,
                f"the data key could not be unwrapped: {exc.message}",
                public_detail=_KEY_UNAVAILABLE,
            ) from None
        try:
            if len(dek.value) != 32:
                raise ArtifactTampered("the unwrapped data key has the wrong length")
            _header.check_header_mac(dek.view(), head.header.artifact_id_bytes, head.authenticated, head.mac)
        except ArtifactTampered as exc:
            dek.wipe()
            raise Denied(DenialReason.KEY_UNAVAILABLE, exc.message, public_detail=_KEY_UNAVAILABLE) from None
        return dek

    def _grant(
        self,
        request: ReleaseRequest,
        record: ModelRecord,
        head: ParsedHead,
        context: _Context,
        checks: list[decide.PolicyCheck],
        sealed: bytes,
        now: datetime,
    ) -> ReleaseGrant:
        body = receipt.release_body(
            model=record.name,
            artifact_id=record.artifact_id,
            header_sha256=head.header_sha256,
            policy_digest=policy_digest(record.policy),
            evidence=request.evidence,
            evidence_type=request.evidence_type,
            checks=checks,
            hpke_suite=request.hpke_suite.value,
            hpke_public_key=request.hpke_public_key,
            tls_public_key=request.tls_public_key,
            released_at=now,
            broker_id=self.broker_id,
        )
        # The audit body is the receipt predicate less "log"; the client is kept in both (receipts tolerate extras).
        body["client"] = context.client
        if context.nonce is None:  # pragma: no cover - _release checks the nonce before anything is sealed
            raise Denied(DenialReason.INTERNAL, "the nonce was not checked")
        try:
            appended = self._store.append_event("release", body, now, logged=True, nonce=context.nonce)
        except NonceReplayed:
            raise Denied(DenialReason.NONCE_REPLAYED, _REPLAYED) from None
        if appended.log_index is None:
            raise Denied(DenialReason.INTERNAL, "the release was not logged")
        entry = self._log.entry(appended.log_index)
        statement = receipt.receipt_statement(body, context.artifact_digest, entry, appended.entry)
        signed = receipt.sign_receipt(statement, self._signer)
        return ReleaseGrant(
            model=record.name,
            suite=request.hpke_suite,
            suite_name=request.hpke_suite.rfc9180,
            sealed_key=sealed,
            receipt=signed,
            log_entry=entry.to_dict(),
        )

    # --- registration -----------------------------------------------------------------------------

    def register(self, registration: Registration, registered_by: str) -> RegisteredModel:
        """Validate and register a model; log the registration in the audit and transparency logs.

        Raises:
            Denied: MALFORMED_REQUEST (400) for an invalid policy, head or part digests;
                KEY_UNAVAILABLE (422) when the broker cannot unwrap the DEK or the header MAC fails.
            BrokerUnavailable: the store could not be reached.
        """
        now = self._clock()
        name = registration.name
        if not name or len(name) > 200 or any(not char.isprintable() for char in name):
            raise Denied(DenialReason.MALFORMED_REQUEST, "the model name must be 1-200 printable characters")
        try:
            load_policy(registration.policy)
        except PolicyInvalid as exc:
            raise Denied(DenialReason.MALFORMED_REQUEST, f"the policy is invalid: {exc.message}") from None
        try:
            head = parse_head(registration.head)
        except CcdError as exc:
            raise Denied(
                DenialReason.MALFORMED_REQUEST, f"the head is not a sealed artifact's head: {exc.message}"
            ) from None
        parts = tuple(part.lower() for part in registration.part_digests)
        if not all(_HEX64.match(part) for part in parts):
            raise Denied(DenialReason.MALFORMED_REQUEST, "part digests are hex BLAKE3 digests of the streams")
        try:
            sealed_digest_from_parts(registration.head, parts)
        except CcdError as exc:
            raise Denied(
                DenialReason.MALFORMED_REQUEST, f"the part digests do not fit the head: {exc.message}"
            ) from None
        try:
            self._unwrap(head).wipe()
        except Denied as denied:
            raise Denied(denied.denial, denied.detail, status=422) from None
        record = ModelRecord(
            name=name,
            artifact_id=head.header.artifact_id,
            head=registration.head,
            part_digests=parts,
            policy=registration.policy,
            provenance=registration.provenance,
            registered_at=now,
            registered_by=registered_by,
        )
        described = RegisteredModel.of(record)
        body = described.to_dict()
        body.pop("registered_at")
        # One transaction: a model is registered exactly when its audit entry and log leaf are.
        appended = self._store.append_event("model-registered", body, now, logged=True, model=record)
        return RegisteredModel(
            **{**described.__dict__, "audit_seq": appended.entry.seq, "log_index": appended.log_index}
        )

    def models(self) -> list[RegisteredModel]:
        """Every registered model."""
        found = []
        for name in self._store.model_names():
            record = self._store.get_model(name)
            if record is not None:
                found.append(RegisteredModel.of(record))
        return found


def merge_collateral(own: Collateral | None, sent: RequestCollateral | None) -> Collateral | None:
    """The broker's collateral with a request's added (duplicates dropped).

    RIMs and OCSP responses from both are offered to the verifier, which uses those that verify and fit; for
    DCAP collateral the broker's own, when it has any, wins over the request's (both must verify to Intel's root,
    the broker's is what its operator chose to trust as current).

    Raises:
        Denied: MALFORMED_REQUEST (400) when the request's DCAP collateral is not dcap-qvl collateral JSON.
    """
    if sent is None:
        return own
    base = own if own is not None else Collateral()
    dcap = base.dcap
    if dcap is None and sent.dcap is not None:
        try:
            dcap = DcapCollateral.from_dcap_qvl_json(sent.dcap.encode("utf-8", "surrogatepass"))
        except (AttestationError, UnicodeError) as exc:
            detail = exc.message if isinstance(exc, AttestationError) else "not UTF-8"
            raise Denied(
                DenialReason.MALFORMED_REQUEST, f"collateral.dcap is not dcap-qvl collateral JSON: {detail}", status=400
            ) from None
    return replace(
        base,
        rims=tuple(dict.fromkeys((*base.rims, *sent.rims))),
        ocsp=tuple(dict.fromkeys((*base.ocsp, *sent.ocsp))),
        dcap=dcap,
    )


class _Context:
    """What a release request has revealed so far: the audit body of a denial at any step."""

    def __init__(self, client: str, fields: dict[str, Any]) -> None:
        self.client = client
        self._fields = fields
        self.evidence_digest: str = fields["evidence_digest"]
        self.hpke_sha256: str = fields["hpke_public_key_sha256"]
        self.tls_sha256: str = fields["tls_public_key_sha256"]
        self.artifact_digest = ""
        self.nonce: NonceUse | None = None
        """The request's nonce once checked: what the decision uses up."""

    @classmethod
    def start(cls, request: ReleaseRequest, client: str, now: datetime) -> _Context:
        return cls(
            client,
            {
                "model": request.model,
                "client": client,
                "evidence_type": request.evidence_type,
                "evidence_digest": "sha256:" + _sha256(request.evidence),
                "hpke_suite": request.hpke_suite.value,
                "hpke_public_key_sha256": _sha256(request.hpke_public_key),
                "tls_public_key_sha256": _sha256(request.tls_public_key),
                "nonce_sha256": _sha256(request.nonce),
                "time": now.isoformat(),
            },
        )

    def model(self, record: ModelRecord, head: ParsedHead, artifact_digest: str) -> None:
        self.artifact_digest = artifact_digest
        self._fields.update(
            {
                "artifact_id": record.artifact_id,
                "header_sha256": head.header_sha256,
                "policy_digest": policy_digest(record.policy),
            }
        )

    def body(self) -> dict[str, Any]:
        return dict(self._fields)
