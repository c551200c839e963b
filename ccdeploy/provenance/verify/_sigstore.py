"""Sigstore verification on top of sigstore-python 4.5.1, with the three gaps it leaves filled by hand.

sigstore-python's public ``Verifier`` does the Fulcio path: trusted time (Rekor SET, RFC 3161), chain to the
Fulcio CA at that time, SCT, Sigstore X.509 profile, inclusion proof + checkpoint, SET, and the entry body
against the bundle. ccdeploy adds, each as small as it can be:

1. **Closed TSA validity interval.** The trusted root's ``TimeRange`` is closed (``start <= t <= end``), but
   sigstore-python 4.5.1 tests ``gen_time < end`` for timestamp authorities. :class:`CcdVerifier` overrides the
   one method that decides it (``_verify_signed_timestamp``) with :func:`timestamp_time`.
2. **Rekor ``intoto`` v0.0.2 entries** (npm provenance, older cosign). sigstore-python refuses them in
   ``_establish_time`` and in ``verify_dsse``. ccdeploy verifies them as follows, and no other way:

   * trusted time: the Rekor integrated time only when an inclusion promise (SET) is present, plus every
     verified RFC 3161 timestamp (at least one source is required);
   * the Fulcio chain is validated at each of those times, the SCT is checked against the CT keys of the
     trusted root, the certificate must carry digitalSignature and the code-signing EKU, and it must have been
     valid at each trusted time (sigstore-python's ``_verify_common_signing_cert``, reused as is);
   * the entry: Merkle inclusion proof against its signed checkpoint when present (required for bundles
     v0.2+), and the SET over the canonical entry ``{body, integratedTime, logID, logIndex}`` with the log key
     the trusted root names for that ``logID`` (reused ``TransparencyLogEntry._verify``);
   * the DSSE signature over PAE(payloadType, payload) with the certificate's key;
   * the entry body must describe this envelope: ``kind``/``apiVersion`` ``intoto``/``0.0.2``; its
     ``payloadHash`` is SHA-256 and equals SHA-256 of the bundle's payload; its envelope's ``payloadType``
     equals the bundle's; its envelope's ``payload``, when present, equals the bundle's payload; and its
     signature list equals the bundle's, each with the bundle's signing certificate as the verifier.
     The entry's ``content.hash`` (Rekor's hash of the envelope as it was submitted) is not checked: it is a
     hash of non-canonical JSON that cannot be recomputed from the bundle, and everything it could bind (payload,
     type, signatures) is compared directly above.
3. **Managed-key bundles with a transparency-log entry** (``verificationMaterial.publicKey``):
   see :func:`verify_managed_key_entry`.

Internal sigstore-python pieces are used where writing them again would only add risk (Merkle proof,
checkpoint and SET verification, SCT, trusted-root keyrings); they are pinned by ``requirements/dev.lock``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from rfc3161_client import TimeStampResponse, VerifierBuilder
from rfc3161_client import VerificationError as Rfc3161Error
from sigstore._internal.timestamp import TimestampSource, TimestampVerificationResult
from sigstore._internal.trust import KeyringPurpose
from sigstore.errors import VerificationError
from sigstore.models import Bundle, TransparencyLogEntry, TrustedRoot
from sigstore.verify import Verifier

from ccdeploy.errors import BundleMalformed, SignatureInvalid

__all__ = [
    "CcdVerifier",
    "check_intoto_v002_entry",
    "check_log_index",
    "entry_b64",
    "entry_field",
    "establish_times",
    "timestamp_time",
    "verify_log_entry",
]

MAX_TIMESTAMPS = 32


def timestamp_time(trusted_root: TrustedRoot, response: TimeStampResponse, message: bytes) -> datetime | None:
    """The time an RFC 3161 timestamp over ``message`` vouches for, if a TSA of the trusted root signed it.

    The TSA's validity period in the trusted root is a closed interval: a timestamp exactly at its end holds.
    """
    for authority in trusted_root.get_timestamp_authorities():
        chain = authority.certificates(allow_expired=True)
        if len(chain) < 2:
            continue
        builder = VerifierBuilder().tsa_certificate(chain[0]).add_root_certificate(chain[-1])
        for intermediate in chain[1:-1]:
            builder = builder.add_intermediate_certificate(intermediate)
        try:
            builder.build().verify_message(response, message)
        except Rfc3161Error:
            continue
        when = response.tst_info.gen_time
        end = authority.validity_period_end
        if authority.validity_period_start <= when and (end is None or when <= end):
            return when
    return None


def establish_times(
    trusted_root: TrustedRoot,
    entry: TransparencyLogEntry,
    timestamps: list[TimeStampResponse],
    signature: bytes,
) -> list[TimestampVerificationResult]:
    """Every trusted time for a signature: verified RFC 3161 timestamps, and the integrated time under a SET.

    Raises:
        SignatureInvalid: too many or duplicate timestamps, or timestamps with no TSA in the trusted root.
    """
    if len(timestamps) > MAX_TIMESTAMPS:
        raise SignatureInvalid(f"too many signed timestamps ({len(timestamps)})")
    if len({t.as_bytes() for t in timestamps}) != len(timestamps):
        raise SignatureInvalid("duplicate signed timestamp")
    if timestamps and not trusted_root.get_timestamp_authorities():
        raise SignatureInvalid("bundle carries signed timestamps but the trusted root has no timestamp authority")
    times = [
        TimestampVerificationResult(source=TimestampSource.TIMESTAMP_AUTHORITY, time=when)
        for response in timestamps
        if (when := timestamp_time(trusted_root, response, signature)) is not None
    ]
    inner = entry._inner
    if inner.integrated_time and inner.inclusion_promise:
        integrated = datetime.fromtimestamp(inner.integrated_time, tz=UTC)
        times.append(TimestampVerificationResult(source=TimestampSource.TRANSPARENCY_SERVICE, time=integrated))
    return times


class CcdVerifier(Verifier):
    """sigstore-python's ``Verifier`` with a closed TSA interval and Rekor ``intoto`` v0.0.2 time sources."""

    def _verify_signed_timestamp(
        self, timestamp_response: TimeStampResponse, message: bytes
    ) -> TimestampVerificationResult | None:
        when = timestamp_time(self._trusted_root, timestamp_response, message)
        if when is None:
            return None
        return TimestampVerificationResult(source=TimestampSource.TIMESTAMP_AUTHORITY, time=when)

    def _establish_time(self, bundle: Bundle) -> list[TimestampVerificationResult]:
        kind = bundle.log_entry._inner.kind_version
        if (kind.kind, kind.version) != ("intoto", "0.0.2"):
            return super()._establish_time(bundle)
        # sigstore-python only takes the integrated time of dsse/hashedrekord 0.0.1 entries; an intoto 0.0.2
        # entry's SET signs its integrated time just the same (checked in TransparencyLogEntry._verify).
        data = bundle.verification_material.timestamp_verification_data
        responses = data.rfc3161_timestamps if data else []
        try:
            return establish_times(self._trusted_root, bundle.log_entry, responses, bundle.signature)
        except SignatureInvalid as exc:
            raise VerificationError(exc.message) from None


def verify_log_entry(trusted_root: TrustedRoot, entry: TransparencyLogEntry) -> None:
    """Inclusion proof + signed checkpoint, and the SET when present, against the trusted root's log keys.

    Raises:
        SignatureInvalid: any of them does not verify.
    """
    try:
        entry._verify(trusted_root.rekor_keyring(KeyringPurpose.VERIFY))
    except (VerificationError, ValueError) as exc:
        raise SignatureInvalid(f"transparency log entry does not verify: {exc}") from None


def check_log_index(entry: TransparencyLogEntry) -> None:
    """Without a SET, nothing signs the entry's ``logIndex`` but the inclusion proof: they must agree.

    (With a SET the two differ legitimately on sharded Rekor v1 logs, and the SET signs ``logIndex``.)

    Raises:
        SignatureInvalid: the entry claims an index its proof does not cover.
    """
    inner = entry._inner
    if inner.inclusion_promise is None and inner.inclusion_proof.log_index != inner.log_index:
        raise SignatureInvalid("log entry index differs from its inclusion proof's index")


def entry_b64(value: object, what: str = "field") -> bytes:
    """A base64 field of a log entry body, decoded (SignatureInvalid when missing or malformed)."""
    if not isinstance(value, str):
        raise SignatureInvalid(f"log entry {what} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureInvalid(f"log entry {what} is not base64") from None


def _decodings(value: object, what: str) -> list[bytes]:
    once = entry_b64(value, what)
    try:
        return [once, base64.b64decode(once, validate=True)]
    except (binascii.Error, ValueError):
        return [once]


def entry_field(document: Any, *path: str) -> Any:
    """The value at ``path`` in a log entry body (SignatureInvalid when absent)."""
    for key in path:
        if not isinstance(document, dict) or key not in document:
            raise SignatureInvalid(f"log entry body has no {'.'.join(path)}")
        document = document[key]
    return document


def check_intoto_v002_entry(
    body: bytes, payload_type: str, payload: bytes, signatures: list[bytes], cert: x509.Certificate
) -> None:
    """Check that a Rekor ``intoto`` v0.0.2 entry body describes this DSSE envelope (see the module docstring).

    Raises:
        SignatureInvalid: the entry describes something else.
    """
    try:
        document = json.loads(body)
    except ValueError:
        raise BundleMalformed("log entry body is not JSON") from None
    if entry_field(document, "kind") != "intoto" or entry_field(document, "apiVersion") != "0.0.2":
        raise SignatureInvalid("log entry is not an intoto 0.0.2 entry")
    content = entry_field(document, "spec", "content")
    payload_hash = entry_field(content, "payloadHash")
    if entry_field(payload_hash, "algorithm") != "sha256":
        raise SignatureInvalid("log entry payload hash is not SHA-256")
    if entry_field(payload_hash, "value") != hashlib.sha256(payload).hexdigest():
        raise SignatureInvalid("log entry payload hash does not match the bundle's DSSE payload")
    envelope = entry_field(content, "envelope")
    if entry_field(envelope, "payloadType") != payload_type:
        raise SignatureInvalid("log entry payload type does not match the bundle's DSSE envelope")
    # Rekor has logged these byte fields base64-encoded once or twice (the bytes of the base64 text) depending
    # on the client that submitted them; either encoding of the same bytes is accepted.
    if "payload" in envelope and payload not in _decodings(envelope["payload"], "payload"):
        raise SignatureInvalid("log entry payload does not match the bundle's DSSE payload")
    entry_signatures = entry_field(envelope, "signatures")
    if not isinstance(entry_signatures, list):
        raise SignatureInvalid("log entry signatures malformed")
    cert_der = cert.public_bytes(serialization.Encoding.DER)
    logged: list[bytes] = []
    for item in entry_signatures:
        verifier_pem = entry_b64(entry_field(item, "publicKey"), "verifier")
        try:
            verifier = x509.load_pem_x509_certificate(verifier_pem)
        except ValueError:
            raise SignatureInvalid("log entry verifier is not a PEM certificate") from None
        if verifier.public_bytes(serialization.Encoding.DER) != cert_der:
            raise SignatureInvalid("log entry verifier is not the bundle's signing certificate")
        candidates = _decodings(entry_field(item, "sig"), "signature")
        logged.append(next((c for c in candidates if c in signatures), candidates[0]))
    if sorted(logged) != sorted(signatures):
        raise SignatureInvalid("log entry signatures do not match the bundle's DSSE signatures")
