"""The signer interface and the registry of signers keyed by URI scheme.

A signer turns a DSSE payload into a complete Sigstore bundle (v0.3 JSON): key signers produce a
bundle whose verification material is a public-key hint or an X.509 chain (as OpenSSF model_signing
does); the Sigstore keyless signer produces a Fulcio certificate and a transparency-log entry.
Backends are imported lazily, so an optional dependency is needed only when its scheme is used.
"""

from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ccdeploy.errors import SignerError

__all__ = ["SIGNER_FOR_URI_SCHEME", "SignerOptions", "StatementSigner", "signer_from_uri"]

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
    module_name, _, class_name = target.partition(":")
    signer_class: type[StatementSigner] = getattr(importlib.import_module(module_name), class_name)
    return signer_class.from_uri(uri, options or SignerOptions())
