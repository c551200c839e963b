"""The key-encryption-key (KEK) interface and its registry keyed by URI scheme.

A :class:`KeyWrapper` wraps and unwraps a data-encryption key (DEK) under one KEK. Backends are
looked up by the scheme of a KEK URI (``file:``, ``pkcs11:``, later ``awskms:`` and ``azurekv:``);
a backend's module is imported only when its scheme is used, so a missing optional dependency
surfaces as :class:`~ccdeploy.errors.DependencyMissing` for that scheme alone.

A wrap returns a :class:`WrappedKey`: the opaque blob, the backend's key id, the wrap algorithm
and the encryption context the backend bound into the blob (KMS backends authenticate it; local
backends record it). All of it is stored in the sealed header, which the header MAC binds to the DEK.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field

from ccdeploy._lazy import load_target
from ccdeploy.errors import DependencyMissing, KekError

__all__ = [
    "KEK_FOR_URI_SCHEME",
    "KeyWrapper",
    "WrappedKey",
    "kek_from_uri",
    "uri_scheme",
]


@dataclass(frozen=True)
class WrappedKey:
    """A DEK wrapped under one KEK, as recorded in a sealed artifact's header."""

    kek: str
    """The KEK's public URI: enough to find the key again, never a secret (no PIN, no key)."""
    key_id: str
    """The backend's stable identifier of the KEK (a fingerprint, a key ARN, a token object id)."""
    algorithm: str
    """The wrap algorithm, e.g. ``AES-KWP`` (RFC 5649)."""
    blob: bytes
    """The wrapped DEK, opaque to everything but the backend."""
    context: Mapping[str, str] = field(default_factory=dict)
    """The encryption context bound into the wrap (empty where the algorithm binds none)."""


class KeyWrapper(abc.ABC):
    """One key-encryption key, able to wrap and unwrap data-encryption keys."""

    scheme: str = ""

    @property
    @abc.abstractmethod
    def uri(self) -> str:
        """The KEK's public URI (secrets such as PINs removed)."""

    @property
    @abc.abstractmethod
    def key_id(self) -> str:
        """The backend's stable identifier of this KEK."""

    @abc.abstractmethod
    def wrap(self, dek: bytes, context: Mapping[str, str]) -> WrappedKey:
        """Wrap ``dek`` under this KEK, binding ``context`` where the backend can."""

    @abc.abstractmethod
    def unwrap(self, wrapped: WrappedKey) -> bytes:
        """Unwrap a DEK this KEK wrapped.

        Raises:
            WrongKek: ``wrapped`` was not made by this KEK or fails to unwrap.
            KekUnavailable: the backend cannot be reached.
        """

    def matches(self, wrapped: WrappedKey) -> bool:
        """Whether ``wrapped`` names this KEK (same scheme and key id), so unwrap is worth trying."""
        return uri_scheme(wrapped.kek) == self.scheme and wrapped.key_id == self.key_id

    @classmethod
    @abc.abstractmethod
    def from_uri(cls, uri: str) -> KeyWrapper:
        """Open the KEK named by ``uri``."""


KEK_FOR_URI_SCHEME: dict[str, str] = {
    "file": "ccdeploy.kek.file:FileKek",
    "pkcs11": "ccdeploy.kek.pkcs11:Pkcs11Kek",
}
"""Scheme -> ``module:Class`` of its backend, imported lazily. Later issues add ``awskms``/``azurekv``."""


def uri_scheme(uri: str) -> str:
    """The scheme of a KEK URI (the part before the first ``:``), lower-cased."""
    scheme, sep, _ = uri.partition(":")
    if not sep or not scheme:
        raise KekError("not a KEK URI (expected SCHEME:..., e.g. file:PATH or pkcs11:...)")
    return scheme.lower()


def kek_from_uri(uri: str) -> KeyWrapper:
    """Open the KEK named by ``uri`` with the backend registered for its scheme."""
    scheme = uri_scheme(uri)
    target = KEK_FOR_URI_SCHEME.get(scheme)
    if target is None:
        known = ", ".join(sorted(KEK_FOR_URI_SCHEME))
        raise KekError(f"unknown KEK scheme {scheme!r} (known: {known})")
    try:
        backend: type[KeyWrapper] = load_target(target)
    except ImportError as exc:
        raise DependencyMissing(
            f"the {scheme!r} KEK backend needs an optional dependency: {exc.name or exc}; install ccdeploy[{scheme}]"
        ) from None
    return backend.from_uri(uri)
