"""``pkcs11:`` KEKs: an AES key inside a PKCS#11 token (an HSM, SoftHSM2, a YubiHSM, CloudHSM ...).

The KEK never leaves the token. A DEK is wrapped and unwrapped inside the token with
``CKM_AES_KEY_WRAP_PAD`` (AES key wrap with padding, RFC 5649), so a blob is byte-identical to what
:func:`cryptography.hazmat.primitives.keywrap.aes_key_wrap_with_padding` makes under the same key and
carries the same algorithm name as the ``file:`` backend, ``AES-KWP``.

The KEK is named by an RFC 7512 PKCS#11 URI, for example::

    pkcs11:token=prod-hsm;object=ccdeploy-kek;id=%01%02;type=secret-key
        ?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/hsm-pin

(one line; broken here for width).

- The token is chosen by the path attributes ``token`` (label), ``serial``, ``manufacturer``,
  ``model``, ``slot-id``, ``slot-description``, ``slot-manufacturer``; the module by
  ``library-manufacturer``, ``library-description``, ``library-version``. Only initialised tokens
  count; exactly one must match.
- The key is chosen by ``object`` (CKA_LABEL) and/or ``id`` (CKA_ID, percent-encoded bytes). It must
  be a non-extractable AES secret key (``type``, if given, must be ``secret-key``).
- The PKCS#11 module (the ``.so``) is ``module-path``, or else the environment variable
  ``PKCS11_MODULE``. ``module-name`` is resolved only inside a ``module-path`` directory.
- The user PIN is ``pin-value``, or the first line of the file named by ``pin-source``
  (``file:/path`` or ``/path``), or else the environment variable ``CCDEPLOY_PKCS11_PIN``. Without a
  PIN the session is not logged in, and private keys are invisible.

:attr:`Pkcs11Kek.uri` is the *public* URI: the URI as given, less ``pin-value`` and ``pin-source``, so
no PIN ever reaches a sealed header. No message this module raises contains a PIN.

The key id is ``"<token serial>:id=<hex CKA_ID>"``, or ``"<token serial>:label=<CKA_LABEL,
percent-encoded>"`` for a key without a CKA_ID, read from the token's object, not the URI. It is stable
for the life of the key, not secret, and names the token object rather than the key material: a key
deleted and re-created under the same label and id keeps its key id (and unwrapping then fails with
:class:`~ccdeploy.errors.WrongKek`).

SoftHSM 2.6 pads a key whose length is not a multiple of 8 with zero bytes *before* applying RFC 5649,
so its output then differs from the RFC (and from ``cryptography``). DEK lengths are therefore
limited to non-zero multiples of 8 bytes, for which the token's output is the RFC's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import quote, unquote_to_bytes

import pkcs11
from pkcs11 import exceptions as p11
from pkcs11.constants import Attribute, MechanismFlag, ObjectClass, TokenFlag
from pkcs11.mechanisms import KeyType, Mechanism
from pkcs11.types import Key, Object, Session, Token, UnwrapMixin, WrapMixin

from ccdeploy.errors import KekError, KekUnavailable, WrongKek
from ccdeploy.kek.base import KeyWrapper, WrappedKey

if TYPE_CHECKING:
    from pkcs11 import _pkcs11

__all__ = [
    "MODULE_ENV",
    "PIN_ENV",
    "Pkcs11Kek",
    "Pkcs11Uri",
    "create_pkcs11_kek",
    "parse_pkcs11_uri",
]

ALGORITHM = "AES-KWP"
MODULE_ENV: Final = "PKCS11_MODULE"
"""Environment variable naming the PKCS#11 module when the URI has no ``module-path``."""
PIN_ENV: Final = "CCDEPLOY_PKCS11_PIN"
"""Environment variable holding the user PIN when the URI has neither ``pin-value`` nor ``pin-source``."""

# --- RFC 7512 URIs -------------------------------------------------------------------------------
# Parsed by hand: no maintained Python library parses RFC 7512 (urllib.parse knows nothing of its
# ';'-separated path attributes, and the few PyPI packages are abandoned or pull in a whole toolkit).

_SCHEME = "pkcs11:"
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_RES_AVAIL = frozenset(":[]@!$'()*+,=")
_PATH_CHARS = _UNRESERVED | _RES_AVAIL | {"&", "%"}
_QUERY_CHARS = _UNRESERVED | _RES_AVAIL | {"/", "?", "|", "%"}
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")

_PATH_ATTRS: Final = frozenset(
    {
        "token",
        "manufacturer",
        "serial",
        "model",
        "library-manufacturer",
        "library-description",
        "library-version",
        "object",
        "type",
        "id",
        "slot-manufacturer",
        "slot-description",
        "slot-id",
    }
)
_QUERY_ATTRS: Final = frozenset({"pin-source", "pin-value", "module-name", "module-path"})
_SECRET_QUERY_ATTRS: Final = frozenset({"pin-source", "pin-value"})
_OBJECT_TYPES: Final = frozenset({"cert", "data", "private", "public", "secret-key"})


@dataclass(frozen=True)
class Pkcs11Uri:
    """A parsed RFC 7512 PKCS#11 URI.

    ``path`` holds every path attribute (unknown ones included), ``query`` the standard query
    attributes; values are percent-decoded bytes. Vendor query attributes stay only in ``raw``.
    """

    raw: str = field(repr=False)
    path: Mapping[str, bytes]
    query: Mapping[str, bytes] = field(repr=False)

    def text(self, name: str) -> str | None:
        """A path or standard query attribute as text (the parser checked it is UTF-8), or None."""
        value = self.path.get(name, self.query.get(name))
        return None if value is None else value.decode()

    @property
    def id(self) -> bytes | None:
        """The ``id`` attribute (CKA_ID) as bytes, or None."""
        return self.path.get("id")

    @property
    def public(self) -> str:
        """The URI as given, less ``pin-value`` and ``pin-source``."""
        path, sep, query = self.raw.partition("?")
        if not sep:
            return self.raw
        kept = [part for part in query.split("&") if _attr_name(part) not in _SECRET_QUERY_ATTRS]
        return f"{path}?{'&'.join(kept)}" if kept else path


def _attr_name(component: str) -> str:
    return component.partition("=")[0].lower()


def _parse_component(component: str, where: str, index: int, allowed: frozenset[str]) -> tuple[str, bytes]:
    # Messages name the attribute at most, never its value: the value may be a PIN.
    name, sep, value = component.partition("=")
    if not sep:
        raise KekError(f"pkcs11: URI {where} attribute #{index} has no '=' (expected NAME=VALUE)")
    if not _NAME.fullmatch(name):
        raise KekError(f"pkcs11: URI {where} attribute #{index} has an empty or malformed name")
    name = name.lower()
    if any(char not in allowed for char in value):
        raise KekError(f"pkcs11: URI {where} attribute {name!r} has a character that must be percent-encoded")
    if _BAD_PERCENT.search(value):
        raise KekError(f"pkcs11: URI {where} attribute {name!r} has a malformed percent-encoding")
    return name, unquote_to_bytes(value)


def _parse_attributes(part: str, where: str) -> dict[str, bytes]:
    """The attributes of the path (``;``-separated) or of the query (``&``-separated).

    Vendor query attributes are checked but left out: they stay in the URI text, uninterpreted.
    """
    separator, allowed, own, other = (
        (";", _PATH_CHARS, _PATH_ATTRS, _QUERY_ATTRS)
        if where == "path"
        else ("&", _QUERY_CHARS, _QUERY_ATTRS, _PATH_ATTRS)
    )
    attrs: dict[str, bytes] = {}
    for index, component in enumerate(part.split(separator), 1):
        name, value = _parse_component(component, where, index, allowed)
        if name in other:
            place = "query (after '?')" if where == "path" else "path (before '?')"
            raise KekError(f"pkcs11: URI attribute {name!r} belongs in the {place}")
        if where == "query" and name not in own:
            continue
        if name in attrs:
            raise KekError(f"pkcs11: URI {where} attribute {name!r} appears more than once")
        if name in own and name != "id":
            try:
                value.decode()
            except UnicodeDecodeError:
                raise KekError(f"pkcs11: URI attribute {name!r} is not valid UTF-8") from None
        attrs[name] = value
    return attrs


def _check_values(parsed: Pkcs11Uri) -> None:
    object_type = parsed.text("type")
    if object_type is not None and object_type not in _OBJECT_TYPES:
        raise KekError(f"pkcs11: URI type must be one of {', '.join(sorted(_OBJECT_TYPES))}")
    for name, pattern in (("slot-id", r"[0-9]+"), ("library-version", r"[0-9]+(\.[0-9]+)?")):
        value = parsed.text(name)
        if value is not None and not re.fullmatch(pattern, value, flags=re.ASCII):
            raise KekError(f"pkcs11: URI attribute {name!r} is malformed")


def parse_pkcs11_uri(uri: str) -> Pkcs11Uri:
    """Parse an RFC 7512 ``pkcs11:`` URI.

    Raises:
        KekError: ``uri`` is not a well-formed PKCS#11 URI. The message never echoes a value.
    """
    if uri[: len(_SCHEME)].lower() != _SCHEME:
        raise KekError("not a pkcs11: URI (expected pkcs11:ATTR=VALUE;...?QUERY)")
    rest = uri[len(_SCHEME) :]
    if "#" in rest:
        raise KekError("pkcs11: URIs have no fragment ('#' must be percent-encoded as %23)")
    path_part, has_query, query_part = rest.partition("?")
    path = _parse_attributes(path_part, "path") if path_part else {}
    query = _parse_attributes(query_part, "query") if has_query else {}
    parsed = Pkcs11Uri(uri, path, query)
    _check_values(parsed)
    return parsed


# --- module, PIN, token, key ---------------------------------------------------------------------


def _module_path(uri: Pkcs11Uri) -> Path:
    module = uri.text("module-path") or os.environ.get(MODULE_ENV)
    if not module:
        raise KekError(f"pkcs11: URI names no PKCS#11 module: add ?module-path=... or set {MODULE_ENV}")
    path = Path(module)
    name = uri.text("module-name")
    if path.is_dir():
        if not name:
            raise KekError(f"PKCS#11 module-path {path} is a directory and the URI has no module-name")
        for candidate in (name, f"{name}.so", f"lib{name}.so"):
            if (path / candidate).is_file():
                return path / candidate
        raise KekUnavailable(f"no PKCS#11 module {name!r} in {path}")
    return path


def _read_pin(uri: Pkcs11Uri) -> str | None:
    value = uri.text("pin-value")
    source = uri.text("pin-source")
    if value is not None and source is not None:
        raise KekError("pkcs11: URI has both pin-value and pin-source; give one")
    if value is not None:
        return value
    if source is not None:
        if source.startswith("file:"):
            source = source[len("file:") :]
            if source.startswith("//"):  # file:///path or file://localhost/path
                authority, _, rest = source[2:].partition("/")
                if authority not in ("", "localhost"):
                    raise KekError("pkcs11: URI pin-source names a remote host")
                source = "/" + rest
        elif not source.startswith("/"):
            raise KekError("pkcs11: URI pin-source must be file:/PATH or an absolute path")
        try:
            raw = Path(source).read_bytes()
        except OSError as exc:
            raise KekError(f"cannot read the pin-source file {source}: {exc.strerror}") from None
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            raise KekError(f"the pin-source file {source} is not UTF-8 text") from None
        return text.removesuffix("\n").removesuffix("\r")
    return os.environ.get(PIN_ENV)


def _load(module: Path) -> _pkcs11.lib:
    if not module.is_file():
        raise KekUnavailable(f"PKCS#11 module {module} does not exist (set by module-path or {MODULE_ENV})")
    try:
        return pkcs11.lib(str(module))
    except p11.PKCS11Error as exc:
        raise KekUnavailable(f"cannot load PKCS#11 module {module}: {exc}") from None


def _version(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def _serial(token: Token) -> str:
    return token.serial.decode("ascii", "replace").strip()


def _find_token(lib: _pkcs11.lib, uri: Pkcs11Uri, serial: str | None = None) -> Token:
    for name, actual in (
        ("library-manufacturer", lib.manufacturer_id),
        ("library-description", lib.library_description),
    ):
        wanted = uri.text(name)
        if wanted is not None and wanted != actual.strip():
            raise KekUnavailable(f"the PKCS#11 module's {name} is {actual.strip()!r}, not {wanted!r}")
    wanted_version = uri.text("library-version")
    if wanted_version is not None and _version(wanted_version) != tuple(lib.library_version):
        raise KekUnavailable(f"the PKCS#11 module is not library-version {wanted_version}")

    def matches(token: Token) -> bool:
        slot = token.slot
        actual: dict[str, str] = {
            "token": token.label.strip(),
            "serial": _serial(token),
            "manufacturer": token.manufacturer_id.strip(),
            "model": token.model.strip(),
            "slot-description": slot.slot_description.strip(),
            "slot-manufacturer": slot.manufacturer_id.strip(),
        }
        if serial is not None and actual["serial"] != serial:
            return False
        wanted_slot = uri.text("slot-id")
        if wanted_slot is not None and int(wanted_slot) != slot.slot_id:
            return False
        return all(uri.text(name) in (None, value) for name, value in actual.items())

    try:
        tokens = [token for token in lib.get_tokens() if token.flags & TokenFlag.TOKEN_INITIALIZED and matches(token)]
    except p11.PKCS11Error as exc:
        raise KekUnavailable(f"cannot list PKCS#11 tokens: {type(exc).__name__}") from None
    wanted = uri.text("token") or uri.text("serial") or "(any)"
    if not tokens:
        raise KekUnavailable(f"no initialised PKCS#11 token matches {wanted!r}")
    if len(tokens) > 1:
        raise KekError(f"{len(tokens)} PKCS#11 tokens match {wanted!r}; add token= or serial= to the URI")
    return tokens[0]


_UNAVAILABLE_ERRORS: Final = (
    p11.DeviceError,
    p11.DeviceMemory,
    p11.DeviceRemoved,
    p11.HostMemory,
    p11.SessionClosed,
    p11.SessionCount,
    p11.SessionHandleInvalid,
    p11.TokenNotPresent,
    p11.TokenNotRecognised,
    p11.UserNotLoggedIn,
)


@contextmanager
def _session(token: Token, pin: str | None, *, rw: bool = False) -> Iterator[Session]:
    """A session on ``token``, logged in as the user when a PIN is given, closed (and logged out) after.

    One session per operation, not thread-safe. If another session of this process is already logged in
    to the token, PKCS#11 refuses a second login (and would accept the new session with *any* PIN,
    since login state is per token): that is reported rather than worked around.
    """
    try:
        session = token.open(rw=rw, user_pin=pin)
    except p11.UserAlreadyLoggedIn:
        raise KekUnavailable(
            f"another session of this process is already logged in to PKCS#11 token {token.label!r}; "
            "ccdeploy logs in per operation, so close that session first"
        ) from None
    except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange):
        raise KekError(f"PKCS#11 token {token.label!r} rejected the user PIN") from None
    except (p11.PinLocked, p11.PinExpired, p11.UserPinNotInitialized) as exc:
        raise KekUnavailable(f"PKCS#11 token {token.label!r} cannot log the user in: {type(exc).__name__}") from None
    except p11.PKCS11Error as exc:
        raise KekUnavailable(f"cannot open a session on PKCS#11 token {token.label!r}: {type(exc).__name__}") from None
    with session:
        yield session


def _describe(uri: Pkcs11Uri) -> str:
    parts = []
    if uri.text("object") is not None:
        parts.append(f"object={uri.text('object')!r}")
    if uri.id is not None:
        parts.append(f"id={uri.id.hex()}")
    return " ".join(parts)


def _find_kek(session: Session, uri: Pkcs11Uri, pin: str | None) -> Key:
    label = uri.text("object")
    key_id = uri.id
    if label is None and key_id is None:
        raise KekError("pkcs11: URI names no key: add object=LABEL and/or id=%XX...")
    if uri.text("type") not in (None, "secret-key"):
        raise KekError("pkcs11: KEK URIs name a secret key (type=secret-key)")
    template: dict[Attribute, Any] = {Attribute.CLASS: ObjectClass.SECRET_KEY}
    if label is not None:
        template[Attribute.LABEL] = label
    if key_id is not None:
        template[Attribute.ID] = key_id
    try:
        found = list(session.get_objects(template))
        if not found:
            hint = "" if pin is not None else f" (no PIN given: set pin-value, pin-source or {PIN_ENV})"
            raise KekError(f"no secret key {_describe(uri)} on PKCS#11 token {session.token.label!r}{hint}")
        if len(found) > 1:
            raise KekError(f"{len(found)} secret keys match {_describe(uri)}; make the URI name one")
        key = cast(Key, found[0])
        attrs = key.get_attributes([Attribute.KEY_TYPE, Attribute.EXTRACTABLE])
    except p11.PKCS11Error as exc:
        raise KekUnavailable(f"cannot look up the KEK on the PKCS#11 token: {type(exc).__name__}") from None
    if attrs.get(Attribute.KEY_TYPE) != KeyType.AES:
        raise KekError(f"the PKCS#11 key {_describe(uri)} is not an AES key")
    if attrs.get(Attribute.EXTRACTABLE) is not False:
        raise KekError(f"the PKCS#11 key {_describe(uri)} is extractable; a KEK must never leave the token")
    return key


def _key_id(token: Token, key: Key) -> str:
    serial = _serial(token) or quote(token.label.strip(), safe="")
    attrs = key.get_attributes([Attribute.ID, Attribute.LABEL])
    cka_id = attrs.get(Attribute.ID) or b""
    if cka_id:
        return f"{serial}:id={bytes(cka_id).hex()}"
    return f"{serial}:label={quote(str(attrs.get(Attribute.LABEL) or ''), safe='')}"


def _supports_kwp(token: Token) -> bool:
    """Whether the token implements CKM_AES_KEY_WRAP_PAD (RFC 5649)."""
    try:
        return Mechanism.AES_KEY_WRAP_PAD in token.slot.get_mechanisms()
    except p11.PKCS11Error:
        return False


def _require_kwp(token: Token) -> None:
    if not _supports_kwp(token):
        raise KekUnavailable(
            f"PKCS#11 token {token.label!r} lacks CKM_AES_KEY_WRAP_PAD (RFC 5649), which pkcs11: KEKs need"
        )


def _has_attr(key: Key, attribute: Attribute) -> bool:
    try:
        return bool(key[attribute])
    except p11.PKCS11Error:
        return False


# --- the backend ---------------------------------------------------------------------------------


class Pkcs11Kek(KeyWrapper):
    """A non-extractable AES KEK inside a PKCS#11 token; wraps DEKs in the token with RFC 5649."""

    scheme = "pkcs11"

    def __init__(self, uri: Pkcs11Uri, module: Path, pin: str | None, serial: str, key_id: str) -> None:
        self._parsed = uri
        self._module = module
        self._pin = pin
        self._serial = serial
        self._key_id = key_id

    def __repr__(self) -> str:
        return f"Pkcs11Kek({self.uri!r})"

    @classmethod
    def from_uri(cls, uri: str) -> Pkcs11Kek:
        """Open the token key named by a ``pkcs11:`` URI and check it is a usable KEK.

        Raises:
            KekError: the URI is malformed, the PIN is wrong, or the key is missing or unfit.
            KekUnavailable: the module, the token or the RFC 5649 mechanism is missing.
        """
        parsed = parse_pkcs11_uri(uri)
        module = _module_path(parsed)
        pin = _read_pin(parsed)
        token = _find_token(_load(module), parsed)
        _require_kwp(token)
        with _session(token, pin) as session:
            key = _find_kek(session, parsed, pin)
            try:
                key_id = _key_id(token, key)
            except p11.PKCS11Error as exc:
                raise KekUnavailable(f"cannot read the KEK's attributes: {type(exc).__name__}") from None
        return cls(parsed, module, pin, _serial(token), key_id)

    @property
    def uri(self) -> str:
        """The public URI: as given, less ``pin-value`` and ``pin-source``."""
        return self._parsed.public

    @property
    def key_id(self) -> str:
        """``<token serial>:id=<hex CKA_ID>`` or ``<token serial>:label=<CKA_LABEL>``."""
        return self._key_id

    @contextmanager
    def _kek(self) -> Iterator[tuple[Session, Key]]:
        token = _find_token(_load(self._module), self._parsed, self._serial)
        with _session(token, self._pin) as session:
            yield session, _find_kek(session, self._parsed, self._pin)

    def wrap(self, dek: bytes, context: Mapping[str, str]) -> WrappedKey:
        """Wrap ``dek`` inside the token with CKM_AES_KEY_WRAP_PAD; ``context`` is recorded, not bound."""
        if not dek or len(dek) % 8:
            raise KekError(f"pkcs11: KEKs wrap DEKs of a non-zero multiple of 8 bytes, not {len(dek)}")
        with self._kek() as (session, kek):
            if not _has_attr(kek, Attribute.WRAP):
                raise KekError(f"the PKCS#11 key {_describe(self._parsed)} may not wrap (CKA_WRAP is false)")
            try:
                dek_object = session.create_object(
                    {
                        Attribute.CLASS: ObjectClass.SECRET_KEY,
                        Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
                        Attribute.VALUE: dek,
                        Attribute.TOKEN: False,
                        Attribute.PRIVATE: True,
                        Attribute.EXTRACTABLE: True,
                        Attribute.SENSITIVE: False,
                    }
                )
                try:
                    blob = cast(WrapMixin, kek).wrap_key(cast(Key, dek_object), mechanism=Mechanism.AES_KEY_WRAP_PAD)
                finally:
                    dek_object.destroy()
            except p11.PKCS11Error as exc:
                raise KekUnavailable(f"the PKCS#11 token failed to wrap the DEK: {type(exc).__name__}") from None
        return WrappedKey(self.uri, self._key_id, ALGORITHM, bytes(blob), dict(context))

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        """Unwrap a DEK inside the token and read it out as a session object.

        Raises:
            WrongKek: the blob is not an AES-KWP wrap under this KEK (or was altered).
            KekUnavailable: the token cannot be reached.
        """
        if wrapped.algorithm != ALGORITHM:
            raise WrongKek(f"pkcs11: KEKs unwrap {ALGORITHM}, not {wrapped.algorithm!r}")
        with self._kek() as (_, kek):
            if not _has_attr(kek, Attribute.UNWRAP):
                raise KekError(f"the PKCS#11 key {_describe(self._parsed)} may not unwrap (CKA_UNWRAP is false)")
            try:
                dek_object: Object = cast(UnwrapMixin, kek).unwrap_key(
                    ObjectClass.SECRET_KEY,
                    KeyType.GENERIC_SECRET,
                    wrapped.blob,
                    mechanism=Mechanism.AES_KEY_WRAP_PAD,
                    store=False,
                    template={Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: False},
                )
            except _UNAVAILABLE_ERRORS as exc:
                raise KekUnavailable(f"the PKCS#11 token failed to unwrap: {type(exc).__name__}") from None
            except p11.PKCS11Error:
                raise WrongKek("the wrapped key does not unwrap under this KEK") from None
            try:
                return bytes(dek_object[Attribute.VALUE])
            except p11.PKCS11Error as exc:
                raise KekUnavailable(f"cannot read the unwrapped DEK: {type(exc).__name__}") from None
            finally:
                with suppress(p11.PKCS11Error):  # a session object: it goes with the session anyway
                    dek_object.destroy()


def create_pkcs11_kek(uri: str) -> str:
    """Generate a non-extractable AES-256 KEK on the token, labelled and identified as ``uri`` says.

    The key is a token object with CKA_WRAP and CKA_UNWRAP and no other capability. Returns the
    public URI (no PIN) to seal with.

    Raises:
        KekError: the URI names no object/id, or a secret key with that label or id already exists.
        KekUnavailable: the module, the token or the RFC 5649 mechanism is missing.
    """
    parsed = parse_pkcs11_uri(uri)
    label = parsed.text("object")
    key_id = parsed.id
    if label is None and key_id is None:
        raise KekError("pkcs11: URI names no key to create: add object=LABEL and/or id=%XX...")
    if parsed.text("type") not in (None, "secret-key"):
        raise KekError("pkcs11: KEK URIs name a secret key (type=secret-key)")
    pin = _read_pin(parsed)
    token = _find_token(_load(_module_path(parsed)), parsed)
    _require_kwp(token)
    with _session(token, pin, rw=True) as session:
        try:
            for attribute, value in ((Attribute.LABEL, label), (Attribute.ID, key_id)):
                if value is not None and any(
                    session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, attribute: value})
                ):
                    raise KekError(
                        f"a secret key with that {'label' if attribute == Attribute.LABEL else 'id'} "
                        f"already exists on PKCS#11 token {token.label!r}; refusing to create another"
                    )
            session.generate_key(
                KeyType.AES,
                256,
                id=key_id,
                label=label,
                store=True,
                capabilities=MechanismFlag.WRAP | MechanismFlag.UNWRAP,
                template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                },
            )
        except p11.PKCS11Error as exc:
            raise KekUnavailable(f"the PKCS#11 token failed to create the KEK: {type(exc).__name__}") from None
    return Pkcs11Kek.from_uri(uri).uri
