"""Bundles signed with a key or a private-PKI certificate rather than a Fulcio certificate.

sigstore-python 4.5.1 only verifies Fulcio-certificate bundles, so these paths are written here:

* **Managed key with a transparency-log entry** (``verificationMaterial.publicKey`` + ``tlogEntries``, as
  cosign ``--key`` makes them): the signature must verify with a key the caller passed (``--key``); the entry's
  inclusion proof, checkpoint and SET are verified against the trusted root (sigstore-python's own code); at
  least one trusted time (SET-backed integrated time or RFC 3161 timestamp) must verify; and the entry body must
  describe exactly this signature, key and artifact digest (hashedrekord 0.0.1/0.0.2, dsse 0.0.1).
* **Key without a log entry** (OpenSSF model_signing ``key`` mode, ``publicKey.hint`` = hex SHA-256 of the PEM
  SPKI): ECDSA over DSSE PAE with the curve's hash (P-256/SHA-256, P-384/SHA-384, P-521/SHA-512), as
  model_signing's key verifier accepts. The hint names a key; it proves nothing and is only reported.
* **Certificate without a log entry** (model_signing ``certificate`` mode, ``x509CertificateChain``): the
  chain is validated with cryptography's X.509 path validation to a ``--cert-root`` CA, the leaf must carry the
  code-signing EKU (and digitalSignature when it has a KeyUsage). **Validation time:** the caller's ``at``
  (the CLI passes the current time). model_signing validates at the leaf's own notBefore, which never enforces
  expiry; without a trusted timestamp ccdeploy cannot know when the signature was made, so it requires every
  certificate of the chain to be valid *now* (an expired or not-yet-valid chain fails).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store
from cryptography.x509.verification import VerificationError as X509VerificationError
from rfc3161_client import TimeStampResponse, decode_timestamp_response
from sigstore.errors import Error as SigstoreError
from sigstore.models import TransparencyLogEntry, TrustedRoot
from sigstore_models.bundle.v1 import Bundle as RawBundle

from ccdeploy.errors import BundleMalformed, SignatureInvalid, UntrustedSigner
from ccdeploy.provenance.verify._keys import TrustedKey, verify_ecdsa, verify_ecdsa_prehashed
from ccdeploy.provenance.verify._report import Report
from ccdeploy.provenance.verify._sigstore import (
    check_log_index,
    entry_b64,
    entry_field,
    establish_times,
    verify_log_entry,
)
from ccdeploy.provenance.verify._statement import pae

__all__ = ["Signed", "verify_certificate_chain", "verify_key_signature", "verify_managed_key_entry"]

_CODE_SIGNING = ExtendedKeyUsageOID.CODE_SIGNING


class Signed:
    """What a signature covers: a DSSE envelope, or a message digest (SHA-256)."""

    def __init__(self, raw: RawBundle, artifact_sha256: bytes | None) -> None:
        self.envelope = raw.dsse_envelope
        self.message = raw.message_signature
        if self.envelope is not None:
            if len(self.envelope.signatures) != 1:
                raise BundleMalformed("DSSE envelope must carry exactly one signature")
            self.signature = self.envelope.signatures[0].sig
        elif self.message is not None:
            self.signature = self.message.signature
            if artifact_sha256 is None:
                raise BundleMalformed("a message signature covers a single file; the target is not one")
            declared = self.message.message_digest
            if declared is not None and (declared.algorithm.value != "SHA2_256" or declared.digest != artifact_sha256):
                raise SignatureInvalid("bundle message digest does not match the artifact")
        else:
            raise BundleMalformed("bundle has neither a DSSE envelope nor a message signature")
        self.artifact_sha256 = artifact_sha256

    def verify_with(self, key: ec.EllipticCurvePublicKey) -> None:
        """Verify the signature with ``key``; raises SignatureInvalid."""
        if self.envelope is not None:
            verify_ecdsa(key, self.signature, pae(self.envelope.payload_type, self.envelope.payload))
        else:
            assert self.artifact_sha256 is not None
            verify_ecdsa_prehashed(key, self.signature, self.artifact_sha256)


def verify_key_signature(signed: Signed, keys: Sequence[TrustedKey], hint: str | None, report: Report) -> TrustedKey:
    """Verify the signature with one of the caller's keys; return that key.

    Raises:
        UntrustedSigner: no key was given.
        SignatureInvalid: the signature verifies with none of the keys.
    """
    if not keys:
        raise UntrustedSigner("the bundle is signed by a key (no certificate); give the signer's public key with --key")
    for key in keys:
        try:
            signed.verify_with(key.key)
        except SignatureInvalid:
            continue
        report.passed("signature", f"ECDSA {key.key.curve.name} signature verifies with key sha256:{key.sha256}")
        report.signer.update(
            {"kind": "key", "key_sha256": key.sha256, "key_hint": hint, "model_signing_hint": key.hint}
        )
        return key
    report.failed("signature", "the signature verifies with none of the given keys")
    raise SignatureInvalid("the signature does not verify with any given --key")


def _times(raw: RawBundle, entry: TransparencyLogEntry, trusted_root: TrustedRoot, signature: bytes) -> list[datetime]:
    data = raw.verification_material.timestamp_verification_data
    responses: list[TimeStampResponse] = []
    for item in data.rfc3161_timestamps if data else []:
        try:
            responses.append(decode_timestamp_response(item.signed_timestamp))
        except ValueError:
            raise BundleMalformed("bundle carries an unparsable RFC 3161 timestamp") from None
    return [t.time for t in establish_times(trusted_root, entry, responses, signature)]


def verify_managed_key_entry(
    raw: RawBundle, signed: Signed, key: TrustedKey, trusted_root: TrustedRoot, version: str, report: Report
) -> None:
    """Verify the transparency-log entry of a managed-key bundle (see the module docstring).

    Raises:
        BundleMalformed: not exactly one entry, or an entry without its proof material.
        SignatureInvalid: the entry, its proofs or its times do not verify, or it describes something else.
    """
    entries = raw.verification_material.tlog_entries
    if len(entries) != 1:
        raise BundleMalformed("expected exactly one transparency log entry")
    try:
        entry = TransparencyLogEntry(entries[0])
    except SigstoreError as exc:
        raise BundleMalformed(f"transparency log entry malformed: {exc}") from None
    inner = entry._inner
    has_timestamps = bool(raw.verification_material.timestamp_verification_data)
    if version == "0.1" and inner.inclusion_promise is None:
        raise BundleMalformed("a v0.1 bundle must carry an inclusion promise")
    if version != "0.1" and inner.inclusion_promise is None and not has_timestamps:
        raise BundleMalformed("bundle must carry an inclusion promise or signed timestamps")
    verify_log_entry(trusted_root, entry)
    check_log_index(entry)
    report.passed("tlog.entry", f"inclusion proof, checkpoint and SET verify (log index {inner.log_index})")
    times = _times(raw, entry, trusted_root, signed.signature)
    if not times:
        raise SignatureInvalid("no verified source of time (SET or RFC 3161 timestamp)")
    report.passed("time", ", ".join(t.isoformat() for t in times))
    _check_key_entry_body(inner.canonicalized_body, inner.kind_version.kind, inner.kind_version.version, signed, key)
    report.passed("tlog.body", f"{inner.kind_version.kind} {inner.kind_version.version} entry matches the bundle")
    report.signer["tlog"] = [{"log_index": inner.log_index, "integrated_time": inner.integrated_time}]


def _same_key(pem_or_der: bytes, key: TrustedKey) -> bool:
    try:
        loaded = (
            serialization.load_pem_public_key(pem_or_der)
            if pem_or_der.startswith(b"-----")
            else serialization.load_der_public_key(pem_or_der)
        )
    except ValueError:
        return False
    der = loaded.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der == key.spki_der


def _check_key_entry_body(body: bytes, kind: str, version: str, signed: Signed, key: TrustedKey) -> None:
    try:
        document = json.loads(body)
    except ValueError:
        raise SignatureInvalid("log entry body is not JSON") from None
    if entry_field(document, "kind") != kind or entry_field(document, "apiVersion") != version:
        raise SignatureInvalid("log entry body kind/version differ from the bundle's")
    spec = entry_field(document, "spec")
    if signed.envelope is not None:
        message_digest = hashlib.sha256(pae(signed.envelope.payload_type, signed.envelope.payload)).digest()
    else:
        assert signed.artifact_sha256 is not None
        message_digest = signed.artifact_sha256
    if (kind, version) == ("hashedrekord", "0.0.1") and signed.envelope is None:
        ok = (
            entry_field(spec, "data", "hash", "algorithm") == "sha256"
            and entry_field(spec, "data", "hash", "value") == message_digest.hex()
            and entry_b64(entry_field(spec, "signature", "content")) == signed.signature
            and _same_key(entry_b64(entry_field(spec, "signature", "publicKey", "content")), key)
        )
    elif (kind, version) == ("hashedrekord", "0.0.2"):
        inner = entry_field(spec, "hashedRekordV002")
        ok = (
            entry_field(inner, "data", "algorithm") == "SHA2_256"
            and entry_b64(entry_field(inner, "data", "digest")) == message_digest
            and entry_b64(entry_field(inner, "signature", "content")) == signed.signature
            and _same_key(entry_b64(entry_field(inner, "signature", "verifier", "publicKey", "rawBytes")), key)
        )
    elif (kind, version) == ("dsse", "0.0.1") and signed.envelope is not None:
        logged = entry_field(spec, "signatures")
        ok = (
            entry_field(spec, "payloadHash", "algorithm") == "sha256"
            and entry_field(spec, "payloadHash", "value") == hashlib.sha256(signed.envelope.payload).hexdigest()
            and isinstance(logged, list)
            and len(logged) == 1
            and entry_b64(entry_field(logged[0], "signature")) == signed.signature
            and _same_key(entry_b64(entry_field(logged[0], "verifier")), key)
        )
    else:
        raise SignatureInvalid(f"unsupported log entry type {kind} {version} for this bundle")
    if not ok:
        raise SignatureInvalid("transparency log entry is inconsistent with the bundle")


def _code_signing_ee(_policy: object, certificate: x509.Certificate, extension: x509.ExtendedKeyUsage | None) -> None:
    if extension is None or _CODE_SIGNING not in extension:
        raise ValueError("leaf certificate lacks the code-signing extended key usage")
    del certificate


def verify_certificate_chain(
    leaf: x509.Certificate, intermediates: Sequence[x509.Certificate], roots: Sequence[x509.Certificate], at: datetime
) -> list[x509.Certificate]:
    """Validate ``leaf`` to one of ``roots`` at ``at``; return the chain (leaf first).

    Raises:
        UntrustedSigner: no --cert-root given, or the chain does not validate (expired, wrong CA, no code-signing EKU).
    """
    if not roots:
        raise UntrustedSigner(
            "the bundle is signed by a certificate without a transparency log entry; give --cert-root"
        )
    # The web-PKI defaults demand a SAN, serverAuth/clientAuth and no cA flag in the leaf; private code-signing
    # PKIs issue leaves without a SAN (model_signing's own test PKI even sets cA=TRUE in its signing leaf), so
    # the end-entity policy is relaxed on those points and requires the code-signing EKU instead. The chain
    # itself (signatures, validity at `at`, CA constraints of the issuers) is still fully validated.
    ee_policy = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
        .may_be_present(x509.BasicConstraints, Criticality.AGNOSTIC, None)
        .require_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _code_signing_ee)
    )
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
    verifier = (
        PolicyBuilder()
        .store(Store(list(roots)))
        .time(at)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        chain = verifier.verify(leaf, list(intermediates)).chain
    except X509VerificationError as exc:
        raise UntrustedSigner(
            f"certificate chain does not validate to --cert-root at {at.isoformat()}: {exc}"
        ) from None
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.digital_signature:
        raise UntrustedSigner("signing certificate's key usage does not allow digital signatures")
    return chain
