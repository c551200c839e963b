"""The signer interface and the registry of signers keyed by URI scheme.

A signer turns a DSSE payload into a complete Sigstore bundle (v0.3 JSON): key signers produce a
bundle whose verification material is a public-key hint or an X.509 chain (as OpenSSF model_signing
does); the Sigstore keyless signer produces a Fulcio certificate and a transparency-log entry.
Backends are imported lazily, so an optional dependency is needed only when its scheme is used.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from ccdeploy._lazy import load_target
from ccdeploy.errors import SignerError, SignerUnavailable
from ccdeploy.provenance.bundle import certificate_bundle, ecdsa_hash, key_bundle, public_key_hint
from ccdeploy.provenance.dsse import sign_envelope

__all__ = [
    "SIGNER_FOR_URI_SCHEME",
    "EcdsaKeySigner",
    "SignerOptions",
    "StatementSigner",
    "load_certificate_chain",
    "signer_from_uri",
]

SIGNER_FOR_URI_SCHEME: dict[str, str] = {
    "file": "ccdeploy.provenance.signers.file:FileSigner",
    "pkcs11": "ccdeploy.provenance.signers.pkcs11:Pkcs11Signer",
    "sigstore": "ccdeploy.provenance.signers.sigstore:SigstoreSigner",
    "x509": "ccdeploy.provenance.signers.x509:CertificateSigner",
}
"""URI scheme -> ``module:Class`` of the signer; the class is imported only when its scheme is used."""


@dataclass(frozen=True)
class SignerOptions:
    """Inputs some signers need beyond their URI."""

    certificate_chain: Path | None = None
    """PEM file: the signing certificate first, then intermediates (private PKI)."""
    identity_token: str | None = None
    """An OIDC identity token for Sigstore keyless signing (default: detect ambient CI credentials)."""
    trust_config: Path | None = None
    """A Sigstore ClientTrustConfig JSON (private Sigstore deployments, tests)."""


class StatementSigner(abc.ABC):
    """Signs DSSE payloads into Sigstore bundles."""

    scheme: ClassVar[str]

    @classmethod
    @abc.abstractmethod
    def from_uri(cls, uri: str, options: SignerOptions) -> StatementSigner:
        """Build the signer a URI of this scheme names.

        Raises:
            SignerError: the URI or the key/certificate it names is malformed or unusable (exit 2).
            SignerUnavailable: the backend cannot be reached or is not installed (exit 3).
        """

    @abc.abstractmethod
    def sign_dsse(self, payload: bytes, payload_type: str) -> dict[str, Any]:
        """Sign ``payload`` as a DSSE envelope; return the Sigstore bundle v0.3 as a JSON document."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """Who signs, for output and audit: ``{"kind": ..., ...}``, never secret material."""

    def close(self) -> None:  # noqa: B027 - most signers hold nothing to release
        """Release sessions or handles the signer holds."""


def signer_from_uri(uri: str, options: SignerOptions | None = None) -> StatementSigner:
    """The signer a URI names (``file:KEY.pem``, ``pkcs11:...``, ``sigstore:``, ``x509:KEY.pem?chain=CHAIN.pem``).

    Raises:
        SignerError: unknown scheme or unusable URI (exit 2).
        SignerUnavailable: the backend is not installed or cannot be reached (exit 3).
    """
    scheme, colon, _ = uri.partition(":")
    if not colon or not scheme:
        raise SignerError(f"signer {uri!r} is not a URI (expected one of: {', '.join(sorted(SIGNER_FOR_URI_SCHEME))})")
    target = SIGNER_FOR_URI_SCHEME.get(scheme.lower())
    if target is None:
        known = ", ".join(f"{name}:" for name in sorted(SIGNER_FOR_URI_SCHEME))
        raise SignerError(f"unknown signer scheme {scheme!r}: known schemes are {known}")
    try:
        signer_class: type[StatementSigner] = load_target(target)
    except ImportError as exc:
        raise SignerUnavailable(
            f"the {scheme.lower()}: signer needs {exc.name or 'a package'}, which is not installed"
        ) from None
    return signer_class.from_uri(uri, options or SignerOptions())


def load_certificate_chain(path: Path) -> tuple[x509.Certificate, ...]:
    """Read a PEM chain file: the signing certificate first, then intermediates.

    Raises:
        SignerError: the file cannot be read or holds no PEM certificate.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SignerError(f"cannot read the certificate chain {path}: {exc.strerror}") from None
    try:
        chain = tuple(x509.load_pem_x509_certificates(data))
    except ValueError:
        raise SignerError(f"{path} holds no readable PEM certificate") from None
    return chain


def _check_signing_certificate(leaf: x509.Certificate, public_key: ec.EllipticCurvePublicKey) -> None:
    if leaf.public_key() != public_key:
        raise SignerError("the signing certificate's public key is not the signing key's public key")
    # `ccdeploy verify --cert-root` requires the code-signing EKU (and digitalSignature when a KeyUsage
    # extension is present); refuse here what it would refuse, so a bad certificate fails at signing
    # rather than at every verification.
    try:
        usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = None
    if usages is None or ExtendedKeyUsageOID.CODE_SIGNING not in usages:
        raise SignerError("the signing certificate lacks the code-signing extended key usage (1.3.6.1.5.5.7.3.3)")
    try:
        key_usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not key_usage.digital_signature:
        raise SignerError("the signing certificate's key usage does not allow digitalSignature")


class EcdsaKeySigner(StatementSigner):
    """A signer holding one ECDSA key (P-256/384/521): bare-key bundles, or certificate bundles with a chain.

    Subclasses supply the public key and :meth:`_sign`, ECDSA over a message with the curve's hash.
    Every signature is checked against the public key before it is put in a bundle, so a token or a
    key file that does not match its public half fails here, not at verification.
    """

    def __init__(self, public_key: ec.EllipticCurvePublicKey, chain: Sequence[x509.Certificate] | None = None) -> None:
        self._hash = ecdsa_hash(public_key)
        self._public_key = public_key
        self._chain = tuple(chain or ())
        if chain is not None:
            if not self._chain:
                raise SignerError("the certificate chain is empty")
            _check_signing_certificate(self._chain[0], public_key)

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half of the signing key."""
        return self._public_key

    @property
    def certificate_chain(self) -> tuple[x509.Certificate, ...]:
        """The signing certificate and intermediates (empty for a bare key)."""
        return self._chain

    @abc.abstractmethod
    def _sign(self, message: bytes) -> bytes:
        """ECDSA-sign ``message`` with the curve's hash; return a DER signature."""

    def sign_dsse(self, payload: bytes, payload_type: str) -> dict[str, Any]:
        """Sign ``payload`` into a DSSE envelope inside a key or certificate bundle."""

        def sign_checked(message: bytes) -> bytes:
            signature = self._sign(message)
            try:
                self._public_key.verify(signature, message, ec.ECDSA(self._hash))
            except InvalidSignature:
                raise SignerError("the signing key made a signature its public key does not verify") from None
            return signature

        envelope = sign_envelope(payload, payload_type, sign_checked)
        if self._chain:
            return certificate_bundle(envelope, self._chain)
        return key_bundle(envelope, self._public_key)

    def _describe_key(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "algorithm": f"ecdsa-{self._public_key.curve.name}-{self._hash.name}",
            "public_key_hint": public_key_hint(self._public_key),
        }
        if self._chain:
            described["certificate_subject"] = self._chain[0].subject.rfc4514_string()
            described["certificate_sha256"] = self._chain[0].fingerprint(hashes.SHA256()).hex()
        return described
