"""AWS Nitro Enclaves attestation documents.

A document is a COSE_Sign1 (RFC 9052; untagged as the Nitro Secure Module emits it, or with tag 18) whose payload
is a CBOR map. A leaf certificate in the payload signs it with ECDSA P-384/SHA-384; the payload's ``cabundle``
chains that leaf to the AWS Nitro Enclaves root, root first. :class:`NitroVerifier` checks, in this order:

1. strict CBOR structure and field types (:mod:`attestation._cbor`, size limits included);
2. the protected header: ``alg`` is ES384 and is read from the protected header only; no unknown critical headers;
3. the signature, with the leaf's P-384 key, over ``["Signature1", protected, h'', payload]``;
4. the chain: ``cabundle[0]`` is a trusted root (by DER equality), the bundle runs root → … → the leaf's issuer,
   every certificate is valid at the instant of the check, and cryptography's path validation accepts it;
5. whether the anchor is a simulator root, which is refused unless explicitly allowed.

Only then are claims built. See AWS's "Verifying the root of trust" for the document format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store, VerificationError

from attestation import _cbor
from attestation._x509 import (
    check_anchor_allowed,
    check_validity,
    fingerprint,
    is_simulator_certificate,
    load_certificate_der,
    p384_key,
    subject,
)
from attestation.claims import Claims, SignerChain, Tee, VendorValue
from attestation.collateral import Collateral
from attestation.errors import BadChain, BadSignature, MalformedEvidence
from attestation.fetch import Fetcher

PLATFORM = "aws-nitro-enclaves"
#: The CBOR tag of a tagged COSE_Sign1 (RFC 9052 §4.2); Nitro itself emits the untagged form.
COSE_SIGN1_TAG = 18
#: COSE algorithm identifier of ECDSA P-384 with SHA-384.
ES384 = -35
#: The largest nonce, user_data and public_key the Nitro Secure Module accepts.
MAX_FIELD_BYTES = 1024
#: AWS's certificates are under 1 KiB; a bundle of 4; generous bounds that still stop abuse.
MAX_CERTIFICATE_BYTES = 4096
MAX_CABUNDLE = 8
#: PCR indices 0..31; the Nitro digest is SHA-384, so every PCR is 48 bytes.
PCR_SLOTS = 32
PCR_BYTES = 48
REVOCATION = "not checked (Nitro certificates carry no revocation information)"

_HEADER_ALG = 1
_HEADER_CRIT = 2
_UNDERSTOOD_CRITICAL = frozenset({_HEADER_ALG})
_SIGNATURE_BYTES = 96
_COORDINATE_BYTES = 48
_REQUIRED = ("module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle")
_OPTIONAL = ("public_key", "user_data", "nonce")
_DEBUG_PCRS = (0, 1, 2)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TIMESTAMP_MS = int((datetime(9999, 12, 31, tzinfo=UTC) - _EPOCH).total_seconds()) * 1000


@dataclass(frozen=True, slots=True)
class _Envelope:
    """The four parts of a COSE_Sign1, structurally checked but not verified."""

    tagged: bool
    protected_bytes: bytes
    protected: dict[_cbor.CborKey, _cbor.CborValue]
    unprotected: dict[_cbor.CborKey, _cbor.CborValue]
    payload: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class NitroPayload:
    """The fields of a Nitro attestation payload, with their types checked (nothing verified).

    Attributes:
        module_id: The enclave's identifier (instance id and enclave id).
        digest: The PCR hash algorithm; always ``"SHA384"``.
        timestamp: When the document was made, in milliseconds since the Unix epoch.
        pcrs: PCR index to its 48-byte value.
        certificate: The DER signing certificate.
        cabundle: DER CA certificates, root first, ending with the signing certificate's issuer.
        public_key: Optional enclave key (the KMS recipient key).
        user_data: Optional caller data.
        nonce: Optional caller nonce.
    """

    module_id: str
    digest: str
    timestamp: int
    pcrs: Mapping[int, bytes]
    certificate: bytes
    cabundle: tuple[bytes, ...]
    public_key: bytes | None
    user_data: bytes | None
    nonce: bytes | None

    @property
    def issued_at(self) -> datetime:
        """The timestamp as an aware UTC datetime (millisecond precision)."""
        return _EPOCH + timedelta(milliseconds=self.timestamp)

    @property
    def debug(self) -> bool:
        """Whether PCR0, PCR1 and PCR2 are all zero, which is how a debug-mode enclave reports them."""
        return all(not any(self.pcrs[index]) for index in _DEBUG_PCRS)

    def vendor_fields(self) -> dict[str, VendorValue]:
        """The fields as claims' ``vendor`` mapping (certificates left out: the signer summary covers them)."""
        return {
            "module_id": self.module_id,
            "digest": self.digest,
            "timestamp": self.timestamp,
            "pcrs": {str(index): value for index, value in self.pcrs.items()},
            "nonce": self.nonce,
            "user_data": self.user_data,
            "public_key": self.public_key,
        }


class NitroVerifier:
    """Verifier of AWS Nitro Enclaves attestation documents (the :class:`attestation.verify.Verifier` protocol).

    ``collateral`` and ``fetcher`` are accepted for the protocol and ignored: a Nitro document carries its whole
    chain, and Nitro certificates carry no revocation information.
    """

    tee: ClassVar[Tee] = Tee.NITRO

    def verify(
        self,
        evidence: bytes,
        *,
        at: datetime | None,
        roots: Sequence[x509.Certificate],
        collateral: Collateral,
        fetcher: Fetcher | None,
        allow_simulator: bool,
    ) -> Claims:
        """Verify a Nitro attestation document and return its claims.

        Args:
            evidence: The raw CBOR document (untagged or tag-18 COSE_Sign1).
            at: The instant to check every certificate against; ``None`` for the document's own timestamp.
            roots: Trusted roots; ``cabundle[0]`` must equal one of them byte for byte.
            collateral: Ignored (Nitro documents carry their chain).
            fetcher: Ignored (nothing to fetch).
            allow_simulator: Accept a chain ending in an :mod:`attestation.simulator` root.

        Returns:
            The document's claims; built only after the signature and the chain have been verified.

        Raises:
            attestation.errors.MalformedEvidence: Not a well-formed Nitro document.
            attestation.errors.CertificateMismatch: The signing certificate does not hold a P-384 key.
            attestation.errors.BadSignature: The COSE signature does not verify with the signing certificate.
            attestation.errors.Expired: A certificate expired before the instant of the check.
            attestation.errors.NotYetValid: A certificate is not yet valid at the instant of the check.
            attestation.errors.UntrustedSimulatorRoot: The root is a simulator root and that was not allowed.
            attestation.errors.BadChain: The chain does not lead to a trusted root.
        """
        envelope = _parse_envelope(evidence)
        _check_headers(envelope)
        payload = parse_payload(envelope.payload)
        leaf = load_certificate_der(payload.certificate, "the signing certificate")
        _check_signature(envelope, p384_key(leaf, "Nitro documents are signed with ES384"))
        bundle = tuple(load_certificate_der(der, f"cabundle[{i}]") for i, der in enumerate(payload.cabundle))
        anchor = _check_chain(leaf, bundle, roots, at if at is not None else payload.issued_at)
        check_anchor_allowed(anchor, allow_simulator=allow_simulator)
        return _claims(payload, leaf, bundle, anchor)

    def decode(self, evidence: bytes) -> Mapping[str, VendorValue]:
        """Decode every field of the document **without verifying anything** (for ``ccdeploy attest inspect``).

        Raises:
            attestation.errors.MalformedEvidence: The bytes are not a well-formed Nitro document.
        """
        envelope = _parse_envelope(evidence)
        payload = parse_payload(envelope.payload)
        fields = payload.vendor_fields()
        fields["certificate"] = payload.certificate
        fields["cabundle"] = payload.cabundle
        fields["cose"] = {
            "tagged": envelope.tagged,
            "protected": _labelled(envelope.protected),
            "unprotected": _labelled(envelope.unprotected),
            "signature": envelope.signature,
        }
        return fields

    def looks_like(self, evidence: bytes) -> bool:
        """Whether ``evidence`` decodes as a COSE_Sign1 whose payload is a map with a ``module_id``."""
        try:
            payload = _cbor.decode(_parse_envelope(evidence).payload, what="Nitro attestation payload")
        except MalformedEvidence:
            return False
        return isinstance(payload, dict) and "module_id" in payload


def parse_payload(payload: bytes) -> NitroPayload:
    """Decode a Nitro attestation payload and check every field's type and size (no signature, no chain).

    Raises:
        attestation.errors.MalformedEvidence: A field is missing, unknown, of the wrong type or out of bounds.
    """
    fields = _cbor.decode(payload, what="Nitro attestation payload")
    if not isinstance(fields, dict):
        raise MalformedEvidence("the Nitro attestation payload is not a CBOR map")
    unknown = [key for key in fields if key not in _REQUIRED + _OPTIONAL]
    if unknown:
        raise MalformedEvidence(f"the Nitro attestation payload has unknown fields {unknown!r}")
    missing = [key for key in _REQUIRED if key not in fields]
    if missing:
        raise MalformedEvidence(f"the Nitro attestation payload lacks the required fields {missing}")
    return NitroPayload(
        module_id=_module_id(fields["module_id"]),
        digest=_digest(fields["digest"]),
        timestamp=_timestamp(fields["timestamp"]),
        pcrs=_pcrs(fields["pcrs"]),
        certificate=_der(fields["certificate"], "certificate"),
        cabundle=_cabundle(fields["cabundle"]),
        public_key=_optional_bytes(fields.get("public_key"), "public_key"),
        user_data=_optional_bytes(fields.get("user_data"), "user_data"),
        nonce=_optional_bytes(fields.get("nonce"), "nonce"),
    )


# --- COSE_Sign1 ---------------------------------------------------------------------------------------------


def _parse_envelope(evidence: bytes) -> _Envelope:
    value = _cbor.decode(evidence, what="Nitro attestation document", allowed_tag=COSE_SIGN1_TAG)
    tagged = isinstance(value, _cbor.Tagged)
    if isinstance(value, _cbor.Tagged):
        value = value.value
    if not isinstance(value, list) or len(value) != 4:
        raise MalformedEvidence("the Nitro attestation document is not a COSE_Sign1 (an array of four items)")
    protected_bytes, unprotected, payload, signature = value
    if not isinstance(protected_bytes, bytes):
        raise MalformedEvidence("the COSE protected header is not a byte string wrapping a map")
    if not isinstance(unprotected, dict):
        raise MalformedEvidence("the COSE unprotected header is not a map")
    if not isinstance(payload, bytes):
        raise MalformedEvidence("the COSE payload is not an attached byte string")
    if not isinstance(signature, bytes):
        raise MalformedEvidence("the COSE signature is not a byte string")
    return _Envelope(tagged, protected_bytes, _protected_map(protected_bytes), unprotected, payload, signature)


def _protected_map(protected_bytes: bytes) -> dict[_cbor.CborKey, _cbor.CborValue]:
    if not protected_bytes:  # RFC 9052 §3: an empty byte string stands for an empty protected map
        return {}
    protected = _cbor.decode(protected_bytes, what="COSE protected header")
    if not isinstance(protected, dict):
        raise MalformedEvidence("the COSE protected header is not a byte string wrapping a map")
    return protected


def _check_headers(envelope: _Envelope) -> None:
    protected, unprotected = envelope.protected, envelope.unprotected
    if _HEADER_ALG not in protected:
        if _HEADER_ALG in unprotected:
            raise MalformedEvidence(
                "the COSE algorithm (alg) is only in the unprotected header, where the signature does not cover it; "
                "it must be in the protected header"
            )
        raise MalformedEvidence("the COSE protected header has no algorithm (alg)")
    both = sorted(map(repr, protected.keys() & unprotected.keys()))
    if both:
        raise MalformedEvidence(f"COSE header parameters {', '.join(both)} are both protected and unprotected")
    alg = protected[_HEADER_ALG]
    if isinstance(alg, bool) or alg != ES384:
        raise MalformedEvidence(f"the COSE algorithm is {alg!r}; Nitro documents are signed with ES384 ({ES384})")
    if _HEADER_CRIT in unprotected:
        raise MalformedEvidence("the COSE critical-headers list (crit) must be in the protected header")
    _check_critical(protected.get(_HEADER_CRIT, []))
    if len(envelope.signature) != _SIGNATURE_BYTES:
        raise MalformedEvidence(
            f"the COSE signature is {len(envelope.signature)} bytes; ES384 signatures are {_SIGNATURE_BYTES} (r||s)"
        )


def _check_critical(critical: _cbor.CborValue) -> None:
    if not isinstance(critical, list):
        raise MalformedEvidence("the COSE critical-headers list (crit) is not an array")
    unknown = [
        label
        for label in critical
        if isinstance(label, bool) or not isinstance(label, int | str) or label not in _UNDERSTOOD_CRITICAL
    ]
    if unknown:
        raise MalformedEvidence(
            f"the COSE header marks parameters {unknown!r} critical, which this verifier does not know"
        )


def _sig_structure(envelope: _Envelope) -> bytes:
    # RFC 9052 §4.4: ["Signature1", body_protected, external_aad = h'', payload], in the deterministic encoding.
    return _cbor.encode(["Signature1", envelope.protected_bytes, b"", envelope.payload])


def _check_signature(envelope: _Envelope, key: ec.EllipticCurvePublicKey) -> None:
    r = int.from_bytes(envelope.signature[:_COORDINATE_BYTES], "big")
    s = int.from_bytes(envelope.signature[_COORDINATE_BYTES:], "big")
    try:
        key.verify(encode_dss_signature(r, s), _sig_structure(envelope), ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise BadSignature("the COSE_Sign1 signature does not verify with the document's signing certificate") from None


# --- payload fields -----------------------------------------------------------------------------------------


def _module_id(value: _cbor.CborValue) -> str:
    if not isinstance(value, str) or not value:
        raise MalformedEvidence("module_id is not a non-empty text string")
    return value


def _digest(value: _cbor.CborValue) -> str:
    if value != "SHA384":
        raise MalformedEvidence(f"digest is {value!r}; Nitro attestation documents use 'SHA384'")
    return "SHA384"


def _timestamp(value: _cbor.CborValue) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_TIMESTAMP_MS:
        raise MalformedEvidence("timestamp is not a positive count of milliseconds since 1970 before year 10000")
    return value


def _pcrs(value: _cbor.CborValue) -> dict[int, bytes]:
    if not isinstance(value, dict) or not 0 < len(value) <= PCR_SLOTS:
        raise MalformedEvidence(f"pcrs is not a map of 1 to {PCR_SLOTS} entries")
    pcrs: dict[int, bytes] = {}
    for index, pcr in value.items():
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < PCR_SLOTS:
            raise MalformedEvidence(f"pcrs has the index {index!r}; PCR indices are 0 to {PCR_SLOTS - 1}")
        if not isinstance(pcr, bytes) or len(pcr) != PCR_BYTES:
            raise MalformedEvidence(f"PCR{index} is not a {PCR_BYTES}-byte string (digest SHA384)")
        pcrs[index] = pcr
    absent = [index for index in _DEBUG_PCRS if index not in pcrs]
    if absent:
        raise MalformedEvidence(f"pcrs lacks PCR{absent[0]}; PCR0 to PCR2 are needed to tell a debug enclave apart")
    return dict(sorted(pcrs.items()))


def _der(value: _cbor.CborValue, name: str) -> bytes:
    if not isinstance(value, bytes) or not 0 < len(value) <= MAX_CERTIFICATE_BYTES:
        raise MalformedEvidence(f"{name} is not a DER certificate of 1 to {MAX_CERTIFICATE_BYTES} bytes")
    return value


def _cabundle(value: _cbor.CborValue) -> tuple[bytes, ...]:
    if not isinstance(value, list) or not 0 < len(value) <= MAX_CABUNDLE:
        raise MalformedEvidence(f"cabundle is not an array of 1 to {MAX_CABUNDLE} certificates")
    return tuple(_der(item, f"cabundle[{i}]") for i, item in enumerate(value))


def _optional_bytes(value: _cbor.CborValue, name: str) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, bytes) or len(value) > MAX_FIELD_BYTES:
        raise MalformedEvidence(f"{name} is neither null nor a byte string of at most {MAX_FIELD_BYTES} bytes")
    return value


def _labelled(header: Mapping[_cbor.CborKey, _cbor.CborValue]) -> dict[str, Any]:
    return {str(label): value for label, value in header.items()}


# --- certificates -------------------------------------------------------------------------------------------


def _check_chain(
    leaf: x509.Certificate,
    bundle: tuple[x509.Certificate, ...],
    roots: Sequence[x509.Certificate],
    at: datetime,
) -> x509.Certificate:
    """Check leaf ← cabundle[-1] ← … ← cabundle[0] = a trusted root at ``at``; return the root."""
    _check_root_first(bundle, roots)
    _check_order(leaf, bundle)
    check_validity((leaf, *reversed(bundle)), at)
    _validate_path(leaf, bundle, roots, at)
    return bundle[0]


def _check_root_first(bundle: tuple[x509.Certificate, ...], roots: Sequence[x509.Certificate]) -> None:
    trusted = set(roots)  # certificates compare and hash by their DER encoding
    if bundle[0] in trusted:
        return
    positions = [i for i, cert in enumerate(bundle) if cert in trusted]
    if positions:
        raise BadChain(
            f"cabundle is out of order: the trusted root is at position {positions[0]}, but Nitro documents list "
            "it first (root → … → issuer of the signing certificate)"
        )
    raise BadChain(
        f"cabundle[0] ({subject(bundle[0])}, SHA-256 {fingerprint(bundle[0])}) is not one of the "
        f"{len(roots)} trusted root(s)"
    )


def _check_order(leaf: x509.Certificate, bundle: tuple[x509.Certificate, ...]) -> None:
    for i, (issuer, cert) in enumerate(zip(bundle, (*bundle[1:], leaf), strict=True), start=1):
        if cert.issuer != issuer.subject:
            what = "the signing certificate" if i == len(bundle) else f"cabundle[{i}]"
            raise BadChain(
                f"cabundle is not in the order root → … → issuer of the signing certificate: {what} "
                f"({subject(cert)}) is issued by {cert.issuer.rfc4514_string()}, not by cabundle[{i - 1}] "
                f"({subject(issuer)})"
            )


def _leaf_policy() -> ExtensionPolicy:
    # The Nitro leaf has no authorityKeyIdentifier, so the WebPKI end-entity policy cannot be used as is.
    def not_a_ca(_policy: object, _cert: object, constraints: x509.BasicConstraints) -> None:
        if constraints.ca:
            raise ValueError("the signing certificate is a CA certificate")

    def signs(_policy: object, _cert: object, usage: x509.KeyUsage) -> None:
        if not usage.digital_signature:
            raise ValueError("the signing certificate's key usage lacks digitalSignature")

    return (
        ExtensionPolicy.permit_all()
        .require_present(x509.BasicConstraints, Criticality.AGNOSTIC, not_a_ca)
        .require_present(x509.KeyUsage, Criticality.AGNOSTIC, signs)
    )


def _validate_path(
    leaf: x509.Certificate,
    bundle: tuple[x509.Certificate, ...],
    roots: Sequence[x509.Certificate],
    at: datetime,
) -> None:
    try:
        verifier = (
            PolicyBuilder()
            .store(Store(list(roots)))
            .time(at)
            .max_chain_depth(MAX_CABUNDLE)
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=_leaf_policy())
            .build_client_verifier()
        )
        chain = verifier.verify(leaf, list(bundle[1:])).chain
    except (VerificationError, ValueError) as exc:
        raise BadChain(f"the certificate chain does not validate: {exc}") from None
    if list(chain) != [leaf, *reversed(bundle)]:
        raise BadChain("the validated path is not the document's cabundle (it holds certificates off the path)")


# --- claims -------------------------------------------------------------------------------------------------


def _claims(
    payload: NitroPayload,
    leaf: x509.Certificate,
    bundle: tuple[x509.Certificate, ...],
    anchor: x509.Certificate,
) -> Claims:
    signer = SignerChain(
        subjects=tuple(subject(cert) for cert in (leaf, *reversed(bundle))),
        root_sha256=fingerprint(anchor),
        simulated=is_simulator_certificate(anchor),
        revocation=REVOCATION,
    )
    return Claims(
        tee=Tee.NITRO,
        platform=PLATFORM,
        measurements={f"pcr{index}": value for index, value in payload.pcrs.items()},
        report_data=payload.user_data or None,
        nonce=payload.nonce or None,
        tcb={},
        debug=payload.debug,
        hardware_id=payload.module_id,
        signer=signer,
        issued_at=payload.issued_at,
        vendor=payload.vendor_fields(),
    )
