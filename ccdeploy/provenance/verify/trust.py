"""Load the trust inputs of a verification from files: the pinned Sigstore root, keys, CA roots.

These are the only file reads of ``ccdeploy.provenance.verify``; the CLI calls them and hands the results to
:func:`~ccdeploy.provenance.verify.verify_document`. Nothing here touches the network: the default trusted root
is the one pinned as package data (``ccdeploy/provenance/trust/``), never refreshed through TUF.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from cryptography import x509
from sigstore.errors import Error as SigstoreError
from sigstore.models import TrustedRoot
from sigstore_models.trustroot.v1 import TrustedRoot as RawTrustedRoot

from ccdeploy.errors import TrustRootInvalid
from ccdeploy.provenance.verify._keys import TrustedKey, load_trusted_key

__all__ = [
    "PINNED_TRUSTED_ROOT_SHA256",
    "load_cert_roots",
    "load_key",
    "load_trusted_root",
    "pinned_trusted_root",
]

PINNED_TRUSTED_ROOT_SHA256 = "6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66"
"""SHA-256 of the pinned Sigstore production ``trusted_root.json`` (see ``provenance/trust/README.md``)."""


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TrustRootInvalid(f"cannot read {what} {path}: {exc.strerror}") from None


def _trusted_root_from_bytes(raw: bytes, where: str) -> TrustedRoot:
    try:
        # TrustedRoot.from_file reads a path; the pinned root is package data, so parse the bytes the same way.
        root = TrustedRoot(RawTrustedRoot.from_json(raw))
        # Touch what verification needs, so a malformed root fails here (usage) and not mid-verification.
        root.get_fulcio_certs()
        root.get_timestamp_authorities()
    except (SigstoreError, ValueError, UnicodeDecodeError) as exc:
        raise TrustRootInvalid(f"trusted root {where} is unusable: {type(exc).__name__}: {exc}") from None
    return root


def pinned_trusted_root() -> TrustedRoot:
    """The pinned Sigstore production trusted root (package data; its SHA-256 is checked).

    Raises:
        TrustRootInvalid: the packaged file is missing or was altered.
    """
    raw = resources.files("ccdeploy.provenance").joinpath("trust/trusted_root.production.json").read_bytes()
    if hashlib.sha256(raw).hexdigest() != PINNED_TRUSTED_ROOT_SHA256:
        raise TrustRootInvalid("the pinned trusted_root.production.json does not match its recorded SHA-256")
    return _trusted_root_from_bytes(raw, "(pinned production)")


def load_trusted_root(path: Path | None) -> TrustedRoot:
    """A ``trusted_root.json`` from ``path``, or the pinned production root when ``path`` is ``None``.

    Raises:
        TrustRootInvalid: unreadable or malformed.
    """
    if path is None:
        return pinned_trusted_root()
    return _trusted_root_from_bytes(_read(path, "trusted root"), str(path))


def load_key(path: Path) -> TrustedKey:
    """A PEM public key (ECDSA P-256/P-384/P-521) to verify key-signed bundles with.

    Raises:
        TrustRootInvalid: unreadable, not PEM, or an unsupported key type.
    """
    return load_trusted_key(_read(path, "key"))


def load_cert_roots(path: Path) -> tuple[x509.Certificate, ...]:
    """The CA certificates (PEM, one or more) a private-PKI signing chain must lead to.

    Raises:
        TrustRootInvalid: unreadable or no PEM certificate.
    """
    try:
        certificates = x509.load_pem_x509_certificates(_read(path, "CA certificate"))
    except ValueError:
        raise TrustRootInvalid(f"{path} holds no PEM certificate") from None
    return tuple(certificates)
