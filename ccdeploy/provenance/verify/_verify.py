"""The verification entry point: a bundle (or a container of bundles), a target on disk, trust inputs, a policy.

Dispatch by the bundle's verification material:

* a certificate **with** a transparency-log entry → Sigstore keyless (Fulcio) through sigstore-python
  (``_sigstore``), then the signer policy against the certificate;
* a public key → the caller's ``--key`` (``_keyed``), with the log entry verified when there is one;
* a certificate **without** a log entry → private PKI to ``--cert-root`` (``_keyed``).

Then the subjects are recomputed from the target (``_subjects``). Nothing here reads the clock, the
environment or the network: the trusted root, keys, CA roots and the time come in as :class:`TrustInputs`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError
from sigstore.errors import Error as SigstoreError
from sigstore.hashes import Hashed
from sigstore.models import Bundle, TrustedRoot
from sigstore_models.bundle.v1 import Bundle as RawBundle
from sigstore_models.common.v1 import HashAlgorithm

from ccdeploy.errors import BundleMalformed, SignatureInvalid, TrustRootInvalid, UntrustedSigner, UsageError
from ccdeploy.provenance.verify._fulcio import certificate_claims, subject_identity
from ccdeploy.provenance.verify._keyed import (
    Signed,
    verify_certificate_chain,
    verify_key_signature,
    verify_managed_key_entry,
)
from ccdeploy.provenance.verify._keys import TrustedKey, verify_ecdsa
from ccdeploy.provenance.verify._report import Report, SubjectMatch, VerificationResult
from ccdeploy.provenance.verify._sigstore import CcdVerifier, check_intoto_v002_entry, check_log_index
from ccdeploy.provenance.verify._statement import Statement, pae, parse_statement
from ccdeploy.provenance.verify._subjects import Target, file_digest, match_subjects
from ccdeploy.provenance.verify.policy import SignerPolicy, check_fulcio_certificate

__all__ = ["BUNDLE_MEDIA_TYPES", "TrustInputs", "verify_bundle", "verify_document"]

BUNDLE_MEDIA_TYPES: dict[str, str] = {
    "application/vnd.dev.sigstore.bundle+json;version=0.1": "0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2": "0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3": "0.3",
    "application/vnd.dev.sigstore.bundle.v0.3+json": "0.3",
}
"""Accepted bundle media types → bundle version. Anything else is refused."""


@dataclass(frozen=True)
class TrustInputs:
    """Everything verification trusts, given by the caller (never looked up, never fetched)."""

    trusted_root: TrustedRoot
    """Sigstore trusted root (Fulcio CAs, Rekor, CT and TSA keys) for keyless and logged bundles."""
    at: datetime
    """Validation time for private-PKI chains, which carry no trusted timestamp (see ``_keyed``)."""
    keys: tuple[TrustedKey, ...] = ()
    cert_roots: tuple[x509.Certificate, ...] = ()


class _CapturePolicy:
    """A sigstore ``VerificationPolicy`` that accepts and remembers the certificate.

    The real policy runs after every cryptographic check, so a policy mismatch is reported as
    UntrustedSigner (the signature is valid, the signer is not the one wanted) rather than as a bad signature.
    """

    def __init__(self) -> None:
        self.certificate: x509.Certificate | None = None

    def verify(self, cert: x509.Certificate) -> None:
        self.certificate = cert


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise BundleMalformed("bundle has duplicate JSON keys")
    return dict(pairs)


def _load_json(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw, object_pairs_hook=_reject_duplicates)
    except (ValueError, RecursionError):
        raise BundleMalformed(f"{what} is not valid JSON") from None


def _parse(raw: bytes) -> tuple[str, RawBundle]:
    document = _load_json(raw, "bundle")
    if not isinstance(document, dict):
        raise BundleMalformed("bundle is not a JSON object")
    version = BUNDLE_MEDIA_TYPES.get(str(document.get("mediaType")))
    if version is None:
        raise BundleMalformed(f"unsupported bundle media type {document.get('mediaType')!r}")
    try:
        return version, RawBundle.from_json(raw)
    except (ValueError, ValidationError) as exc:
        raise BundleMalformed(f"bundle does not parse: {type(exc).__name__}") from None


_SIGNER_FIELDS = ("identity", "issuer", "source_repository", "source_ref", "builder_id", "workflow")
_GITHUB_FIELDS = ("source_repository", "source_ref", "builder_id", "workflow")


def _given(policy: SignerPolicy, names: tuple[str, ...]) -> list[str]:
    return [name for name in names if getattr(policy, name) is not None]


def _refuse(report: Report, given: list[str], why: str) -> None:
    if given:
        detail = f"{', '.join(given)} cannot be checked: {why}"
        report.failed("signer.policy", detail)
        raise UsageError(detail)


def _keyless(
    raw_bytes: bytes, raw: RawBundle, trust: TrustInputs, policy: SignerPolicy, sha256: bytes | None, report: Report
) -> tuple[str, bytes] | None:
    try:
        bundle = Bundle.from_json(raw_bytes)
    except (SigstoreError, ValueError) as exc:  # ValueError: a certificate that is not DER
        raise BundleMalformed(f"bundle rejected: {exc}") from None
    try:
        verifier = CcdVerifier(trusted_root=trust.trusted_root)
    except SigstoreError as exc:
        raise TrustRootInvalid(f"trusted root unusable: {exc}") from None
    capture = _CapturePolicy()
    kind = bundle.log_entry._inner.kind_version
    payload: tuple[str, bytes] | None = None
    try:
        if raw.dsse_envelope is not None and (kind.kind, kind.version) == ("intoto", "0.0.2"):
            verifier._verify_common_signing_cert(bundle, capture)
            envelope = raw.dsse_envelope
            if len(envelope.signatures) != 1:
                raise SignatureInvalid("DSSE envelope must carry exactly one signature")
            key = bundle.signing_certificate.public_key()
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise SignatureInvalid("signing certificate key is not ECDSA")
            verify_ecdsa(key, envelope.signatures[0].sig, pae(envelope.payload_type, envelope.payload))
            check_intoto_v002_entry(
                bundle.log_entry._inner.canonicalized_body,
                envelope.payload_type,
                envelope.payload,
                [s.sig for s in envelope.signatures],
                bundle.signing_certificate,
            )
            payload = (envelope.payload_type, envelope.payload)
        elif raw.dsse_envelope is not None:
            payload = verifier.verify_dsse(bundle, capture)
        else:
            if sha256 is None:
                raise BundleMalformed("a message signature covers a single file; the target is not one")
            verifier.verify_artifact(Hashed(algorithm=HashAlgorithm.SHA2_256, digest=sha256), bundle, capture)
        check_log_index(bundle.log_entry)
    except (SigstoreError, ValueError) as exc:  # VerificationError, InvalidEnvelope, malformed DER
        report.failed("sigstore", str(exc))
        raise SignatureInvalid(f"Sigstore verification failed: {exc}") from None
    except SignatureInvalid as exc:
        report.failed("sigstore", exc.message)
        raise
    entry = bundle.log_entry._inner
    report.passed(
        "sigstore",
        "Fulcio chain and SCT at the signed time, Sigstore X.509 profile, transparency log entry "
        f"({kind.kind} {kind.version}) with inclusion proof/SET, signature and entry consistency",
    )
    certificate = bundle.signing_certificate
    report.signer.update(
        {
            "kind": "fulcio",
            "identity": subject_identity(certificate),
            "issuer": certificate_claims(certificate).get("issuer") or certificate_claims(certificate).get("issuer_v1"),
            "certificate": {
                "sha256": hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest(),
                "not_before": certificate.not_valid_before_utc.isoformat(),
                "not_after": certificate.not_valid_after_utc.isoformat(),
                "extensions": certificate_claims(certificate),
            },
            "tlog": [
                {
                    "log_index": entry.log_index,
                    "integrated_time": entry.integrated_time,
                    "kind": f"{kind.kind}/{kind.version}",
                }
            ],
            "timestamps": len(bundle.verification_material.timestamp_verification_data.rfc3161_timestamps)
            if bundle.verification_material.timestamp_verification_data
            else 0,
        }
    )
    check_fulcio_certificate(certificate, policy, report)
    return payload


def _private_pki(raw: RawBundle, signed: Signed, trust: TrustInputs, policy: SignerPolicy, report: Report) -> None:
    material = raw.verification_material
    if material.certificate is not None:
        der = [material.certificate.raw_bytes]
    elif material.x509_certificate_chain is not None:
        der = [c.raw_bytes for c in material.x509_certificate_chain.certificates]
    else:
        der = []
    if not der:
        raise BundleMalformed("bundle has an empty certificate chain")
    _refuse(
        report,
        _given(policy, _GITHUB_FIELDS),
        "the bundle is signed by a private-PKI certificate, which carries no CI build identity "
        "(only --identity, and --issuer where the certificate names an OIDC issuer, can be checked)",
    )
    try:
        leaf, *intermediates = (x509.load_der_x509_certificate(d) for d in der)
    except ValueError:
        raise BundleMalformed("bundle certificate does not parse") from None
    verify_certificate_chain(leaf, intermediates, trust.cert_roots, trust.at)
    report.passed("certificate.chain", f"chain validates to --cert-root at {trust.at.isoformat()} (code-signing EKU)")
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SignatureInvalid("signing certificate key is not ECDSA")
    signed.verify_with(key)
    report.passed("signature", "ECDSA signature verifies with the signing certificate")
    identity = subject_identity(leaf)
    report.signer.update(
        {
            "kind": "certificate",
            "identity": identity,
            "subject": leaf.subject.rfc4514_string(),
            "issuer": leaf.issuer.rfc4514_string(),
            "certificate": {
                "sha256": hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest(),
                "not_before": leaf.not_valid_before_utc.isoformat(),
                "not_after": leaf.not_valid_after_utc.isoformat(),
            },
        }
    )
    if policy.identity is not None:
        if identity != policy.identity:
            report.failed("signer.identity", f"identity {identity!r}, required {policy.identity!r}")
            raise UntrustedSigner(f"certificate identity {identity!r} is not {policy.identity!r}")
        report.passed("signer.identity", f"certificate identity {identity!r}")
    if policy.issuer is not None:
        claims = certificate_claims(leaf)
        issuer = claims.get("issuer") or claims.get("issuer_v1")
        if issuer is None:
            _refuse(report, ["issuer"], "the bundle's certificate carries no OIDC issuer extension")
        if issuer != policy.issuer:
            report.failed("signer.issuer", f"OIDC issuer {issuer!r}, required {policy.issuer!r}")
            raise UntrustedSigner(f"certificate OIDC issuer {issuer!r} is not {policy.issuer!r}")
        report.passed("signer.issuer", f"certificate OIDC issuer {issuer!r}")


def verify_bundle(
    bundle: bytes,
    target: Target,
    trust: TrustInputs,
    policy: SignerPolicy,
    report: Report | None = None,
) -> VerificationResult:
    """Verify one Sigstore bundle over ``target``.

    Args:
        bundle: the bundle JSON (v0.1, v0.2 or v0.3).
        target: what was signed (see :func:`open_target`); its digests are recomputed from disk.
        trust: trusted root, keys, CA roots and validation time.
        policy: who may have signed (checked against the certificate, never the predicate).
        report: optional recorder that keeps the checks that ran even when verification fails.

    Returns:
        The verified signer, subjects and checks.

    Raises:
        BundleMalformed, SignatureInvalid, SubjectMismatch, UntrustedSigner: the decision (exit 1).
        TrustRootInvalid: the trust inputs cannot be used as given (exit 2).
        UsageError: ``policy`` constrains what the bundle cannot show: any signer field for a key-signed
            bundle; for a private-PKI certificate, a CI field, or an issuer the certificate does not carry.
    """
    report = report if report is not None else Report()
    version, raw = _parse(bundle)
    report.passed("bundle.format", f"Sigstore bundle v{version}")
    material = raw.verification_material
    sha256: bytes | None = None
    if raw.message_signature is not None and target.sealed is not None:
        raise BundleMalformed("a message signature covers a file's bytes; this sealed artifact is known by digest")
    if raw.message_signature is not None and target.kind != "directory":
        sha256 = bytes.fromhex(file_digest(target.path, "sha256"))
    payload: tuple[str, bytes] | None
    if material.public_key is not None:
        signed = Signed(raw, sha256)
        key = verify_key_signature(signed, trust.keys, material.public_key.hint, report)
        _refuse(
            report,
            _given(policy, _SIGNER_FIELDS),
            "the bundle is key-signed and carries no signer identity (the --key is what is trusted)",
        )
        if material.tlog_entries:
            verify_managed_key_entry(raw, signed, key, trust.trusted_root, version, report)
        else:
            report.passed("tlog.entry", "none (key-signed bundle without a transparency log, as model_signing makes)")
        payload = (signed.envelope.payload_type, signed.envelope.payload) if signed.envelope else None
    elif material.tlog_entries:
        payload = _keyless(bundle, raw, trust, policy, sha256, report)
    else:
        signed = Signed(raw, sha256)
        _private_pki(raw, signed, trust, policy, report)
        payload = (signed.envelope.payload_type, signed.envelope.payload) if signed.envelope else None
    statement: Statement | None = None
    if payload is not None:
        statement = parse_statement(*payload)
        if policy.predicate_type is not None and statement.predicate_type != policy.predicate_type:
            report.failed("statement.predicate_type", statement.predicate_type)
            raise UntrustedSigner(f"predicate type {statement.predicate_type!r} is not {policy.predicate_type!r}")
        report.passed("statement", f"in-toto statement, predicate {statement.predicate_type}")
        subjects = match_subjects(statement, target, report)
    else:
        if sha256 is None:
            raise BundleMalformed("a message signature covers a single file; the target is not one")
        subjects = [SubjectMatch(target.path.name, {"sha256": sha256.hex()}, True)]
        report.subjects.extend(subjects)
        report.passed("subject", f"message signature covers the SHA-256 of {target.path.name}")
    return VerificationResult(
        signer=dict(report.signer),
        subjects=tuple(subjects),
        checks=tuple(report.checks),
        payload_type=payload[0] if payload else None,
        statement=statement.raw if statement else None,
    )


@dataclass
class _Entry:
    index: int | None
    predicate_type: str | None
    raw: bytes
    key_signed: bool = field(default=False)


def _is_key_signed(bundle: Any) -> bool:
    material = bundle.get("verificationMaterial") if isinstance(bundle, dict) else None
    return isinstance(material, dict) and "publicKey" in material


def _entries(document: bytes) -> list[_Entry]:
    parsed = None
    try:
        # Duplicate keys are refused in containers too: re-serialising an entry would otherwise
        # silently keep one of the values.
        parsed = json.loads(document, object_pairs_hook=_reject_duplicates)
    except (ValueError, RecursionError):
        lines = [line for line in document.splitlines() if line.strip()]
        if len(lines) > 1:  # JSON Lines: one bundle per line (.intoto.jsonl)
            return [
                _Entry(i, None, line, _is_key_signed(_load_json(line, f"line {i + 1}"))) for i, line in enumerate(lines)
            ]
    if isinstance(parsed, dict) and isinstance(parsed.get("attestations"), list):
        entries = []
        for index, item in enumerate(parsed["attestations"]):
            if not isinstance(item, dict) or not isinstance(item.get("bundle"), dict):
                raise BundleMalformed(f"attestations[{index}] has no bundle")
            bundle = item["bundle"]
            raw = json.dumps(bundle).encode()
            entries.append(_Entry(index, item.get("predicateType"), raw, _is_key_signed(bundle)))
        if not entries:
            raise BundleMalformed("attestations container is empty")
        return entries
    return [_Entry(None, None, document)]


def verify_document(
    document: bytes,
    target: Target,
    trust: TrustInputs,
    policy: SignerPolicy,
    report: Report | None = None,
) -> VerificationResult:
    """Verify a bundle file: one bundle, JSON Lines of bundles, or an npm ``{"attestations": [...]}`` container.

    Every bundle in it must verify, except that in a container an attestation signed by a key the caller did
    not give (the npm registry's publish attestation) is reported under ``signer["not_verified"]`` and skipped;
    at least one bundle must verify.

    Raises:
        The errors of :func:`verify_bundle`.
    """
    report = report if report is not None else Report()
    entries = _entries(document)
    if len(entries) == 1 and entries[0].index is None:
        return verify_bundle(entries[0].raw, target, trust, policy, report)
    results: list[VerificationResult] = []
    not_verified: list[dict[str, Any]] = []
    # In a container the signer constraints are checked on the certificate-signed attestations; a key-signed
    # one (npm's publish attestation) has no identity to check, so it is held to the key alone. At least one
    # attestation must then have carried the constraints (see the check after the loop).
    key_policy = policy.model_copy(update=dict.fromkeys(_SIGNER_FIELDS))
    constrained = 0
    for entry in entries:
        if entry.key_signed and not trust.keys:
            not_verified.append(
                {
                    "index": entry.index,
                    "predicate_type": entry.predicate_type,
                    "reason": "signed by a key that was not given (--key); not verified",
                }
            )
            continue
        results.append(verify_bundle(entry.raw, target, trust, key_policy if entry.key_signed else policy, report))
        constrained += not entry.key_signed
    if not results:
        raise UntrustedSigner("no attestation in the container could be verified with the given trust inputs")
    if not constrained:
        _refuse(
            report,
            _given(policy, _SIGNER_FIELDS),
            "every attestation in the container is key-signed and carries no signer identity",
        )
    signer = dict(results[-1].signer)
    if not_verified:
        signer["not_verified"] = not_verified
    subjects = tuple(s for r in results for s in r.subjects)
    return VerificationResult(signer, subjects, tuple(report.checks), results[-1].payload_type, results[-1].statement)
