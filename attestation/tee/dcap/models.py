"""Intel's signed TCB Info (v2 SGX, v3 TDX) and QE Identity (v2) documents, parsed into typed values.

Parsing happens once, when collateral is loaded; a document that does not have the shape Intel's PCS API v4
specifies raises :class:`~attestation.tee.dcap.errors.MalformedCollateral`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from attestation.reference import TcbStatus
from attestation.tee.dcap.errors import MalformedCollateral

#: Every TCB status Intel's TCB Info and QE Identity levels use: those reference values may accept, and Revoked.
TCB_STATUSES = (*get_args(TcbStatus), "Revoked")


@dataclass(frozen=True, slots=True)
class IsvTcbLevel:
    """A QE Identity or TDX module TCB level: an ISVSVN threshold and its status."""

    isv_svn: int
    tcb_date: str
    tcb_status: str
    advisory_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TcbLevel:
    """A platform TCB level of a TCB Info document."""

    sgx_components: tuple[int, ...]
    pce_svn: int
    tdx_components: tuple[int, ...] | None
    tcb_date: str
    tcb_status: str
    advisory_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TdxModuleIdentity:
    """Expected identity of a TDX module (``tdxModule`` has no id and no levels; ``tdxModuleIdentities`` do)."""

    id: str
    mrsigner: bytes
    attributes: bytes
    attributes_mask: bytes
    tcb_levels: tuple[IsvTcbLevel, ...]


@dataclass(frozen=True, slots=True)
class TcbInfo:
    """A TCB Info document (``id`` "SGX" or "TDX")."""

    id: str
    version: int
    issue_date: datetime
    next_update: datetime
    fmspc: bytes
    pce_id: bytes
    tcb_evaluation_data_number: int
    tcb_levels: tuple[TcbLevel, ...]
    tdx_module: TdxModuleIdentity | None
    tdx_module_identities: tuple[TdxModuleIdentity, ...]


@dataclass(frozen=True, slots=True)
class QeIdentity:
    """A QE Identity document (``id`` "QE" for SGX, "TD_QE" for TDX)."""

    id: str
    version: int
    issue_date: datetime
    next_update: datetime
    miscselect: int
    miscselect_mask: int
    attributes: bytes
    attributes_mask: bytes
    mrsigner: bytes
    isv_prod_id: int
    tcb_levels: tuple[IsvTcbLevel, ...]


class _Object:
    """Typed access to one JSON object; every shape error is MalformedCollateral naming the path."""

    def __init__(self, value: object, path: str) -> None:
        if not isinstance(value, dict):
            raise MalformedCollateral(f"{path} must be a JSON object")
        self._value: dict[str, Any] = value
        self._path = path

    def has(self, key: str) -> bool:
        return key in self._value

    def obj(self, key: str) -> _Object:
        return _Object(self._get(key), f"{self._path}.{key}")

    def objects(self, key: str) -> list[_Object]:
        items = self._get(key)
        if not isinstance(items, list):
            raise MalformedCollateral(f"{self._path}.{key} must be a list")
        return [_Object(item, f"{self._path}.{key}[{index}]") for index, item in enumerate(items)]

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise MalformedCollateral(f"{self._path}.{key} must be a string")
        return value

    def integer(self, key: str, maximum: int) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
            raise MalformedCollateral(f"{self._path}.{key} must be an integer from 0 to {maximum}")
        return value

    def hex(self, key: str, size: int) -> bytes:
        text = self.text(key)
        try:
            value = bytes.fromhex(text)
        except ValueError:
            raise MalformedCollateral(f"{self._path}.{key} is not hex") from None
        if len(value) != size or len(text) != 2 * size:
            raise MalformedCollateral(f"{self._path}.{key} must be {size} bytes of hex")
        return value

    def time(self, key: str) -> datetime:
        text = self.text(key)
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise MalformedCollateral(f"{self._path}.{key} is not an RFC 3339 time: {text!r}") from None
        if value.utcoffset() is None:
            raise MalformedCollateral(f"{self._path}.{key} has no time zone: {text!r}")
        return value

    def status(self, key: str) -> str:
        value = self.text(key)
        if value not in TCB_STATUSES:
            raise MalformedCollateral(f"{self._path}.{key} is not a known TCB status: {value!r}")
        return value

    def advisories(self) -> tuple[str, ...]:
        if not self.has("advisoryIDs"):
            return ()
        items = self._get("advisoryIDs")
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise MalformedCollateral(f"{self._path}.advisoryIDs must be a list of strings")
        return tuple(items)

    def _get(self, key: str) -> object:
        if key not in self._value:
            raise MalformedCollateral(f"{self._path} has no {key!r}")
        return self._value[key]


def load_json_object(data: bytes, what: str) -> Mapping[str, Any]:
    """Parse ``data`` as one JSON object."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise MalformedCollateral(f"{what} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise MalformedCollateral(f"{what} must be a JSON object")
    return value


def parse_tcb_info(data: bytes) -> TcbInfo:
    """Parse the exact signed bytes of a TCB Info document."""
    root = _Object(load_json_object(data, "TCB Info"), "tcbInfo")
    tee_id = root.text("id") if root.has("id") else "SGX"
    version = root.integer("version", 255)
    is_tdx = tee_id == "TDX"
    if tee_id not in ("SGX", "TDX") or version not in (2, 3) or (is_tdx and version != 3):
        raise MalformedCollateral(f"TCB Info id {tee_id!r} version {version} is not supported (SGX v2/v3, TDX v3)")
    levels = tuple(_tcb_level(level, tdx=is_tdx) for level in root.objects("tcbLevels"))
    module = _module(root.obj("tdxModule"), with_levels=False) if root.has("tdxModule") else None
    identities = (
        tuple(_module(entry, with_levels=True) for entry in root.objects("tdxModuleIdentities"))
        if root.has("tdxModuleIdentities")
        else ()
    )
    return TcbInfo(
        id=tee_id,
        version=version,
        issue_date=root.time("issueDate"),
        next_update=root.time("nextUpdate"),
        fmspc=root.hex("fmspc", 6),
        pce_id=root.hex("pceId", 2),
        tcb_evaluation_data_number=root.integer("tcbEvaluationDataNumber", 2**32 - 1),
        tcb_levels=levels,
        tdx_module=module,
        tdx_module_identities=identities,
    )


def parse_qe_identity(data: bytes) -> QeIdentity:
    """Parse the exact signed bytes of a QE Identity (enclave identity) document."""
    root = _Object(load_json_object(data, "QE Identity"), "enclaveIdentity")
    return QeIdentity(
        id=root.text("id"),
        version=root.integer("version", 255),
        issue_date=root.time("issueDate"),
        next_update=root.time("nextUpdate"),
        miscselect=int.from_bytes(root.hex("miscselect", 4), "little"),
        miscselect_mask=int.from_bytes(root.hex("miscselectMask", 4), "little"),
        attributes=root.hex("attributes", 16),
        attributes_mask=root.hex("attributesMask", 16),
        mrsigner=root.hex("mrsigner", 32),
        isv_prod_id=root.integer("isvprodid", 0xFFFF),
        tcb_levels=tuple(_isv_level(level) for level in root.objects("tcbLevels")),
    )


def _components(level: _Object, key: str) -> tuple[int, ...]:
    components = level.objects(key)
    if len(components) != 16:
        raise MalformedCollateral(f"a TCB level must have 16 {key}, not {len(components)}")
    return tuple(component.integer("svn", 0xFF) for component in components)


def _tcb_level(level: _Object, *, tdx: bool) -> TcbLevel:
    tcb = level.obj("tcb")
    return TcbLevel(
        sgx_components=_components(tcb, "sgxtcbcomponents"),
        pce_svn=tcb.integer("pcesvn", 0xFFFF),
        tdx_components=_components(tcb, "tdxtcbcomponents") if tdx else None,
        tcb_date=level.text("tcbDate"),
        tcb_status=level.status("tcbStatus"),
        advisory_ids=level.advisories(),
    )


def _isv_level(level: _Object) -> IsvTcbLevel:
    return IsvTcbLevel(
        isv_svn=level.obj("tcb").integer("isvsvn", 0xFFFF),
        tcb_date=level.text("tcbDate"),
        tcb_status=level.status("tcbStatus"),
        advisory_ids=level.advisories(),
    )


def _module(entry: _Object, *, with_levels: bool) -> TdxModuleIdentity:
    return TdxModuleIdentity(
        id=entry.text("id") if with_levels else "",
        mrsigner=entry.hex("mrsigner", 48),
        attributes=entry.hex("attributes", 8),
        attributes_mask=entry.hex("attributesMask", 8),
        tcb_levels=tuple(_isv_level(level) for level in entry.objects("tcbLevels")) if with_levels else (),
    )
