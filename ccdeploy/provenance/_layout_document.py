"""Read a signed in-toto layout (DSSE envelope or metablock) keeping the exact bytes its signatures cover.

in-toto-python re-serializes a metablock's ``signed`` object from its parsed model before checking a
signature, so fields it does not model (in-toto-golang's ``rootcas``, ``intermediatecas``,
``cert_constraints``) vanish and a valid signature reads as invalid. Here the signed bytes are
computed from the object as received: canonical JSON of the raw ``signed`` value for a metablock,
DSSE's pre-authentication encoding of the raw payload for an envelope.
"""

from __future__ import annotations

import json
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from in_toto.models.layout import Layout
from securesystemslib.dsse import Envelope as DsseEnvelope
from securesystemslib.exceptions import FormatError
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import Signature  # type: ignore[attr-defined]  # no __all__ there

from ccdeploy.errors import LayoutInvalid, UsageError

__all__ = ["LayoutDocument", "document_from_metadata", "parse_layout", "read_layout_file"]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
_MAX_LAYOUT_FILE = 16 * 1024 * 1024

# Fields in-toto-python models. Anything else in a signed layout fails closed, except the
# in-toto-golang extensions below.
_LAYOUT_FIELDS = frozenset({"_type", "steps", "inspect", "keys", "expires", "readme"})
_STEP_FIELDS = frozenset(
    {"_type", "name", "pubkeys", "threshold", "expected_command", "expected_materials", "expected_products"}
)
_INSPECTION_FIELDS = frozenset({"_type", "name", "run", "expected_materials", "expected_products"})
# in-toto-golang's X.509 functionaries: certificates under ``rootcas``/``intermediatecas`` that meet a
# step's ``cert_constraints`` may sign its links *in addition to* the keys in ``pubkeys``. Dropping
# them only removes ways to be authorized, so ignoring them fails closed.
_GOLANG_LAYOUT_FIELDS = frozenset({"rootcas", "intermediatecas"})
_GOLANG_STEP_FIELDS = frozenset({"cert_constraints"})


@dataclass(frozen=True)
class LayoutDocument:
    """A signed layout as received.

    Attributes:
        kind: ``"dsse"`` or ``"metablock"``.
        signatures: The signatures, each with the keyid it claims (a label, not trusted).
        signed_bytes: The exact bytes the signatures are over.
        payload: The layout JSON for a DSSE envelope (parsed only once a signature verifies);
            the raw ``signed`` object for a metablock.
    """

    kind: Literal["dsse", "metablock"]
    signatures: tuple[Signature, ...]
    signed_bytes: bytes
    payload: bytes | dict[str, Any]


def read_layout_file(path: Path) -> LayoutDocument:
    """Read ``path`` as a DSSE-enveloped or metablock in-toto layout.

    Raises:
        UsageError: The file is unreadable, not JSON, or not an in-toto DSSE envelope or metablock.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_LAYOUT_FILE + 1)
    except OSError as exc:
        raise UsageError(f"cannot read layout {path.name}: {exc.strerror or type(exc).__name__}") from exc
    if len(raw) > _MAX_LAYOUT_FILE:
        raise UsageError(f"layout {path.name} is larger than {_MAX_LAYOUT_FILE} bytes")
    try:
        data = json.loads(raw, object_pairs_hook=_no_duplicate_keys)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"layout {path.name} is not JSON without duplicate keys: {exc}") from exc
    return _document(data, path.name)


def document_from_metadata(metadata: Any, name: str) -> LayoutDocument:
    """The document of a sublayout that in-toto's link loader already parsed.

    A metablock sublayout has been re-serialized by in-toto-python at this point (only modelled
    fields survive); a DSSE sublayout keeps its exact payload.

    Raises:
        LayoutInvalid: The sublayout cannot be read as a signed layout.
    """
    try:
        return _document(deepcopy(metadata.to_dict()), name)
    except UsageError as exc:
        raise LayoutInvalid(f"sublayout: {exc.message}") from exc


def parse_layout(document: LayoutDocument, name: str) -> tuple[Any, tuple[str, ...]]:
    """Build in-toto's ``Layout`` from a document whose signature has been verified.

    Returns:
        The layout, and the in-toto-golang extension fields that were present and ignored.

    Raises:
        LayoutInvalid: The signed content is not a well-formed layout or has fields this verifier
            does not understand.
    """
    signed: Any = document.payload
    if isinstance(signed, bytes):
        try:
            signed = json.loads(signed, object_pairs_hook=_no_duplicate_keys)
        except (ValueError, UnicodeDecodeError) as exc:
            raise LayoutInvalid(f"{name}: the signed payload is not JSON: {exc}") from exc
    if not isinstance(signed, dict) or signed.get("_type") != "layout":
        raise LayoutInvalid(f"{name}: the signed payload is not an in-toto layout")
    if not isinstance(signed.get("expires"), str) or not signed["expires"]:
        # in-toto would fill a missing expiry in from the clock (now + 1 month): never accept that.
        raise LayoutInvalid(f"{name}: the signed layout has no 'expires'")
    data, ignored = _strip_golang_extensions(signed, name)
    try:
        return Layout.read(data), ignored
    except (FormatError, TypeError, ValueError, KeyError, AttributeError) as exc:
        raise LayoutInvalid(f"{name}: malformed layout: {exc}") from exc


def _document(data: Any, name: str) -> LayoutDocument:
    if not isinstance(data, dict):
        raise UsageError(f"{name} is not an in-toto metadata object")
    if "payload" in data:
        return _dsse_document(data, name)
    if "signed" in data:
        return _metablock_document(data, name)
    raise UsageError(f"{name} is neither a DSSE envelope nor an in-toto metablock")


def _dsse_document(data: dict[str, Any], name: str) -> LayoutDocument:
    if data.get("payloadType") != PAYLOAD_TYPE:
        raise UsageError(f"{name}: DSSE payloadType is not {PAYLOAD_TYPE}")
    try:
        envelope = DsseEnvelope.from_dict(deepcopy(data))
    except (KeyError, TypeError, ValueError, FormatError) as exc:
        raise UsageError(f"{name}: malformed DSSE envelope: {type(exc).__name__}") from exc
    return LayoutDocument("dsse", tuple(envelope.signatures.values()), envelope.pae(), envelope.payload)


def _metablock_document(data: dict[str, Any], name: str) -> LayoutDocument:
    signed, raw_signatures = data.get("signed"), data.get("signatures")
    if not isinstance(signed, dict) or not isinstance(raw_signatures, list):
        raise UsageError(f"{name}: a metablock needs a 'signed' object and a 'signatures' list")
    try:
        signatures = tuple(Signature.from_dict(dict(item)) for item in raw_signatures)
        canonical = encode_canonical(signed)
    except (KeyError, TypeError, ValueError, FormatError) as exc:
        raise UsageError(f"{name}: malformed metablock: {type(exc).__name__}") from exc
    if not isinstance(canonical, str):  # None only when encode_canonical is given an output function
        raise UsageError(f"{name}: the signed object cannot be canonicalized")
    return LayoutDocument("metablock", signatures, canonical.encode("utf-8"), signed)


def _strip_golang_extensions(signed: dict[str, Any], name: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    ignored: set[str] = set()
    data = _known_fields(signed, _LAYOUT_FIELDS, _GOLANG_LAYOUT_FIELDS, ignored, f"{name}")
    for field, allowed, golang in (("steps", _STEP_FIELDS, _GOLANG_STEP_FIELDS), ("inspect", _INSPECTION_FIELDS, ())):
        items = data.get(field, [])
        if not isinstance(items, list):
            raise LayoutInvalid(f"{name}: '{field}' is not a list")
        data[field] = [_known_fields(item, allowed, frozenset(golang), ignored, f"{name} {field}") for item in items]
    return data, tuple(sorted(ignored))


def _known_fields(
    item: Any, allowed: frozenset[str], golang: frozenset[str], ignored: set[str], where: str
) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise LayoutInvalid(f"{where}: an entry is not an object")
    unknown = set(item) - allowed - golang
    if unknown:
        raise LayoutInvalid(f"{where}: unsupported layout fields {sorted(unknown)} (refusing what is not understood)")
    ignored.update(set(item) & golang)
    return {key: value for key, value in item.items() if key in allowed}


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result
