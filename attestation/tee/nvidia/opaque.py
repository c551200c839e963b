"""NVIDIA's opaque data in an SPDM MEASUREMENTS response: little-endian ``u16 type, u16 length, value`` records.

The field ids are NVIDIA's (as listed by the nvtrust local GPU verifier). Known fields are decoded into typed
values under short names; fields of unknown id are kept raw under ``"field_<id>"``. Nothing here is trusted: the
whole opaque data is covered by the report signature, which the verifier checks before using any of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from attestation.errors import MalformedEvidence

_RECORD_HEADER = 4
_MSR_COUNT_BYTES = 4
_PDI_BYTES = 8
_VBIOS_VERSION_BYTES = 8

#: NVIDIA opaque field id -> short name.
FIELD_NAMES: Mapping[int, str] = MappingProxyType(
    {
        1: "cert_issuer_name",
        2: "cert_authority_key_identifier",
        3: "driver_version",
        4: "gpu_info",
        5: "sku",
        6: "vbios_version",
        7: "manufacturer_id",
        8: "tamper_detection",
        9: "smc",
        10: "vpr",
        11: "nvdec0_status",
        12: "msrscnt",
        13: "cpr_info",
        14: "board_id",
        15: "chip_sku",
        16: "chip_sku_mod",
        17: "project",
        18: "project_sku",
        19: "project_sku_mod",
        20: "fwid",
        21: "protected_pcie_status",
        22: "switch_pdi",
        23: "floorswept_ports",
        24: "position_id",
        25: "lock_switch_status",
        32: "gpu_link_conn",
        33: "sys_enable_status",
        34: "opaque_data_version",
        35: "chip_info",
        36: "feature_flag",
        255: "invalid",
    }
)

#: Values of the feature-flag field (opaque data version >= 1): single-GPU, multi-GPU and protected-PCIe modes.
FEATURE_FLAGS: Mapping[int, str] = MappingProxyType({0: "SPT", 1: "MPT", 2: "PPCIE"})


class OpaqueDataMalformed(MalformedEvidence):
    """The opaque data of the MEASUREMENTS response does not decode."""


def _text(value: bytes) -> str:
    """ASCII text padded with NULs and blanks (driver version, SKUs, project)."""
    try:
        return value.decode("ascii").strip().strip("\x00").strip()
    except UnicodeDecodeError:
        raise ValueError("not ASCII text") from None


def _le_int(value: bytes) -> int:
    if not 1 <= len(value) <= 8:
        raise ValueError(f"integer field of {len(value)} bytes")
    return int.from_bytes(value, "little")


def vbios_version(value: bytes) -> str:
    """The VBIOS version as NVIDIA writes it (``96.00.5E.00.01``) from the 8-byte little-endian field.

    The field is a little-endian u64: its low four bytes (most significant first) and then byte 4 give the five
    version components (this is how NVIDIA's RIM service names VBIOS versions).
    """
    if len(value) != _VBIOS_VERSION_BYTES:
        raise ValueError(f"VBIOS version field of {len(value)} bytes, expected {_VBIOS_VERSION_BYTES}")
    number = int.from_bytes(value, "little")
    parts = [(number >> shift) & 0xFF for shift in (24, 16, 8, 0, 32)]
    return ".".join(f"{part:02X}" for part in parts)


def _msr_counts(value: bytes) -> tuple[int, ...]:
    if len(value) % _MSR_COUNT_BYTES:
        raise ValueError("measurement-count field is not a whole number of u32")
    return tuple(
        int.from_bytes(value[i : i + _MSR_COUNT_BYTES], "little") for i in range(0, len(value), _MSR_COUNT_BYTES)
    )


def _pdis(value: bytes) -> tuple[bytes, ...]:
    if len(value) % _PDI_BYTES:
        raise ValueError("switch PDI field is not a whole number of 8-byte ids")
    return tuple(value[i : i + _PDI_BYTES] for i in range(0, len(value), _PDI_BYTES))


def _feature_flag(value: bytes) -> str:
    flag = _le_int(value)
    if flag not in FEATURE_FLAGS:
        raise ValueError(f"unknown feature flag {flag}")
    return FEATURE_FLAGS[flag]


def _chip_info(value: bytes) -> str:
    try:
        return value.split(b"\x00", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("chip info is not UTF-8") from None


_DECODERS: Mapping[str, Callable[[bytes], Any]] = MappingProxyType(
    {
        "driver_version": _text,
        "vbios_version": vbios_version,
        "chip_sku": _text,
        "chip_sku_mod": _text,
        "project": _text,
        "project_sku": _text,
        "msrscnt": _msr_counts,
        "switch_pdi": _pdis,
        "feature_flag": _feature_flag,
        "chip_info": _chip_info,
        "opaque_data_version": _le_int,
        "nvdec0_status": _text,
        "protected_pcie_status": _text,
    }
)


@dataclass(frozen=True, slots=True)
class OpaqueData:
    """The decoded opaque fields, by short name (see :data:`FIELD_NAMES`), in report order."""

    fields: Mapping[str, Any]

    def text(self, name: str) -> str | None:
        """A decoded text field, or ``None`` when the report does not carry it."""
        value = self.fields.get(name)
        return value if isinstance(value, str) else None

    @property
    def fwid(self) -> bytes | None:
        """The firmware id (field 20): the digest that the leaf certificate's DICE extension must carry."""
        value = self.fields.get("fwid")
        return value if isinstance(value, bytes) else None


def parse_opaque_data(data: bytes, *, base_offset: int = 0) -> OpaqueData:
    """Decode NVIDIA opaque data; ``base_offset`` is where it starts in the evidence (for error messages)."""
    fields: dict[str, Any] = {}
    offset = 0
    while offset < len(data):
        at = base_offset + offset
        if len(data) - offset < _RECORD_HEADER:
            raise OpaqueDataMalformed(f"opaque data: truncated field header at offset {at}")
        field_id = int.from_bytes(data[offset : offset + 2], "little")
        size = int.from_bytes(data[offset + 2 : offset + 4], "little")
        offset += _RECORD_HEADER
        if size > len(data) - offset:
            raise OpaqueDataMalformed(f"opaque data: field {field_id} at offset {at} claims {size} bytes past the end")
        value = data[offset : offset + size]
        offset += size
        name = FIELD_NAMES.get(field_id, f"field_{field_id}")
        if name in fields:
            raise OpaqueDataMalformed(f"opaque data: field {field_id} ({name}) repeated at offset {at}")
        decoder = _DECODERS.get(name)
        try:
            fields[name] = decoder(value) if decoder is not None else value
        except ValueError as exc:
            raise OpaqueDataMalformed(f"opaque data: field {field_id} ({name}) at offset {at}: {exc}") from None
    return OpaqueData(MappingProxyType(fields))
