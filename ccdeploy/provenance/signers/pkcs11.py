"""``pkcs11:`` signers: an ECDSA private key inside a PKCS#11 token (HSM, SoftHSM2, YubiHSM ...).

The key is named by an RFC 7512 URI, parsed and opened with the helpers of the ``pkcs11:`` KEK
backend (:mod:`ccdeploy.kek.pkcs11`): the same token selection, ``module-path`` (or ``PKCS11_MODULE``),
``pin-value`` / ``pin-source`` (or ``CCDEPLOY_PKCS11_PIN``). For example::

    pkcs11:token=signing;object=release-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/run/pin

``object`` (CKA_LABEL) and/or ``id`` (CKA_ID) select an EC private key (``type``, if given, must be
``private``). Its public half is read from the token's public-key object with the same label/id, or
else from the leaf of ``--certificate-chain``. The token signs with ``CKM_ECDSA`` over a digest computed
in software with the curve's hash (P-256 SHA-256, P-384 SHA-384, P-521 SHA-512), which every token
implements (``CKM_ECDSA_SHA384`` is optional); its raw ``r || s`` is encoded as DER. The key never
leaves the token; a session is opened per signature and closed after.

Failures map to the error tree: a malformed URI, a missing or non-EC key, or a wrong PIN raise
:class:`~ccdeploy.errors.SignerError` (exit 2); a missing module or token, or a token that fails,
:class:`~ccdeploy.errors.SignerUnavailable` (exit 3). No message contains the PIN.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pkcs11.exceptions as p11
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11.constants import Attribute, ObjectClass
from pkcs11.mechanisms import KeyType, Mechanism
from pkcs11.types import Key, PublicKey, Session, SignMixin
from pkcs11.util.ec import encode_ec_public_key

from ccdeploy.errors import KekError, KekUnavailable, SignerError, SignerUnavailable
from ccdeploy.kek import pkcs11 as backend
from ccdeploy.kek.pkcs11 import Pkcs11Uri
from ccdeploy.provenance.signers.base import EcdsaKeySigner, SignerOptions, load_certificate_chain

__all__ = ["Pkcs11Signer"]


@contextmanager
def _as_signer_errors() -> Iterator[None]:
    """Report the KEK helpers' errors as signer errors (same exit codes, signer wording)."""
    try:
        yield
    except KekUnavailable as exc:
        raise SignerUnavailable(exc.message) from None
    except KekError as exc:
        raise SignerError(exc.message) from None


@dataclass(frozen=True)
class _Location:
    uri: Pkcs11Uri
    module: Path
    pin: str | None
    serial: str


def _key_template(uri: Pkcs11Uri, object_class: Any) -> dict[Any, Any]:
    template: dict[Any, Any] = {Attribute.CLASS: object_class}
    if uri.text("object") is not None:
        template[Attribute.LABEL] = uri.text("object")
    if uri.id is not None:
        template[Attribute.ID] = uri.id
    return template


def _find_one(session: Session, uri: Pkcs11Uri, object_class: Any, what: str) -> Key | None:
    try:
        found = list(session.get_objects(_key_template(uri, object_class)))
    except p11.PKCS11Error as exc:
        raise SignerUnavailable(f"cannot look up the {what} on the PKCS#11 token: {type(exc).__name__}") from None
    if len(found) > 1:
        raise SignerError(f"{len(found)} {what}s match the pkcs11: URI; make it name one (object= and id=)")
    return cast(Key, found[0]) if found else None


def _private_key(session: Session, uri: Pkcs11Uri, pin: str | None) -> Key:
    key = _find_one(session, uri, ObjectClass.PRIVATE_KEY, "private key")
    if key is None:
        hint = "" if pin is not None else " (no PIN given: set pin-value, pin-source or CCDEPLOY_PKCS11_PIN)"
        raise SignerError(f"no private key matching the pkcs11: URI on token {session.token.label.strip()!r}{hint}")
    if key[Attribute.KEY_TYPE] != KeyType.EC:
        raise SignerError("the PKCS#11 private key is not an EC key; signing keys must be ECDSA")
    return key


def _public_key(session: Session, uri: Pkcs11Uri) -> ec.EllipticCurvePublicKey | None:
    key = _find_one(session, uri, ObjectClass.PUBLIC_KEY, "public key")
    if key is None:
        return None
    public = serialization.load_der_public_key(encode_ec_public_key(cast(PublicKey, key)))
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise SignerError("the PKCS#11 public key is not an EC key")
    return public


class Pkcs11Signer(EcdsaKeySigner):
    """Signs with an EC private key that stays inside a PKCS#11 token."""

    scheme = "pkcs11"

    def __init__(self, location: _Location, public_key: ec.EllipticCurvePublicKey, options: SignerOptions) -> None:
        chain = load_certificate_chain(options.certificate_chain) if options.certificate_chain else None
        super().__init__(public_key, chain)
        self._location = location

    def __repr__(self) -> str:
        return f"Pkcs11Signer({self._location.uri.public!r})"

    @classmethod
    def from_uri(cls, uri: str, options: SignerOptions) -> Pkcs11Signer:
        """Find the token key a ``pkcs11:`` URI names and read its public key.

        Raises:
            SignerError: malformed URI, wrong PIN, key missing, ambiguous or not EC, no public key.
            SignerUnavailable: python-pkcs11, the module or the token is missing or failing.
        """
        with _as_signer_errors():
            parsed = backend.parse_pkcs11_uri(uri)
            if parsed.text("type") not in (None, "private"):
                raise SignerError("pkcs11: signer URIs name a private key (type=private)")
            if parsed.text("object") is None and parsed.id is None:
                raise SignerError("pkcs11: URI names no key: add object=LABEL and/or id=%XX...")
            module = backend._module_path(parsed)
            pin = backend._read_pin(parsed)
            token = backend._find_token(backend._load(module), parsed)
            with backend._session(token, pin) as session:
                _private_key(session, parsed, pin)
                public = _public_key(session, parsed)
        if public is None:
            if options.certificate_chain is None:
                raise SignerError("the token has no public key matching the pkcs11: URI; give --certificate-chain")
            public_from_leaf = load_certificate_chain(options.certificate_chain)[0].public_key()
            if not isinstance(public_from_leaf, ec.EllipticCurvePublicKey):
                raise SignerError("the signing certificate's key is not an EC key")
            public = public_from_leaf
        return cls(_Location(parsed, module, pin, backend._serial(token)), public, options)

    def _sign(self, message: bytes) -> bytes:
        digest = hashes.Hash(self._hash)
        digest.update(message)
        location = self._location
        with _as_signer_errors():
            token = backend._find_token(backend._load(location.module), location.uri, location.serial)
            with backend._session(token, location.pin) as session:
                key = _private_key(session, location.uri, location.pin)
                try:
                    raw = bytes(cast(SignMixin, key).sign(digest.finalize(), mechanism=Mechanism.ECDSA))
                except p11.PKCS11Error as exc:
                    raise SignerUnavailable(f"the PKCS#11 token failed to sign: {type(exc).__name__}") from None
        half = len(raw) // 2
        if not raw or len(raw) % 2:
            raise SignerUnavailable("the PKCS#11 token returned a malformed ECDSA signature")
        return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))

    def describe(self) -> dict[str, Any]:
        """``{"kind": "pkcs11", "uri": public URI (no PIN), "token_serial": ..., ...}``."""
        return {
            "kind": self.scheme,
            "uri": self._location.uri.public,
            "token_serial": self._location.serial,
        } | self._describe_key()
