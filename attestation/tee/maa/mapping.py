"""Map the verified payload of an Azure Attestation token to TEE-neutral claims.

Claim names follow Microsoft's "Claim sets" page and its EAT profiles: SGX / Open Enclave (``x-ms-sgx-*``), SEV-SNP
CVM (``x-ms-sevsnpvm-*``, top level or under ``x-ms-isolation-tee`` in Azure VM guest attestation), TDX CVM
(``tdx_*``), vTPM (``x-ms-azurevm-*``) and runtime data (``x-ms-runtime``). Only called with a payload whose
signature, issuer and times have been verified.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from attestation._jwt import numeric_date
from attestation.claims import Claims, SignerChain, Tee, VendorValue
from attestation.errors import MalformedEvidence

_SGX_TYPES = frozenset({"sgx", "openenclave", "sgxenclave"})
_SNP_TYPES = frozenset({"sevsnpvm"})
_TDX_TYPES = frozenset({"tdxvm"})
_TDX_MEASUREMENTS = {
    "tdx_mrtd": "mrtd",
    "tdx_rtmr0": "rtmr0",
    "tdx_rtmr1": "rtmr1",
    "tdx_rtmr2": "rtmr2",
    "tdx_rtmr3": "rtmr3",
    "tdx_mrconfigid": "mrconfigid",
    "tdx_mrowner": "mrowner",
    "tdx_mrownerconfig": "mrownerconfig",
    "tdx_mrseam": "mrseam",
    "tdx_mrsignerseam": "mrsignerseam",
}
_SNP_TCB = {
    "x-ms-sevsnpvm-bootloader-svn": "bootloader",
    "x-ms-sevsnpvm-tee-svn": "tee",
    "x-ms-sevsnpvm-snpfw-svn": "snp",
    "x-ms-sevsnpvm-microcode-svn": "microcode",
}
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


def to_claims(payload: Mapping[str, Any], signer: SignerChain) -> Claims:
    """The claims of a verified token (see the module docstring for the claim names)."""
    kind = payload.get("x-ms-attestation-type")
    tee_claims = payload.get("x-ms-isolation-tee")
    isolation: Mapping[str, Any] = tee_claims if isinstance(tee_claims, Mapping) else payload
    tee_kind = isolation.get("x-ms-attestation-type", kind)
    measurements: dict[str, bytes] = {}
    report_data: bytes | None = None
    tcb: dict[str, int] = {}
    hardware_id: str | None = None
    if tee_kind in _SGX_TYPES:
        measurements = _measurements(isolation, {"x-ms-sgx-mrenclave": "mrenclave", "x-ms-sgx-mrsigner": "mrsigner"})
        report_data = _hex(isolation, "x-ms-sgx-report-data")
    elif tee_kind in _SNP_TYPES:
        measurements = _measurements(isolation, {"x-ms-sevsnpvm-launchmeasurement": "measurement"})
        report_data = _hex(isolation, "x-ms-sevsnpvm-reportdata")
        tcb = {name: value for claim, name in _SNP_TCB.items() if (value := _int(isolation, claim)) is not None}
        hardware_id = _text(isolation, "x-ms-sevsnpvm-chipid")
    elif tee_kind in _TDX_TYPES:
        measurements = _measurements(isolation, _TDX_MEASUREMENTS)
        report_data = _hex(isolation, "tdx_report_data")
    if hardware_id is None:
        hardware_id = _text(payload, "x-ms-azurevm-vmid")
    return Claims(
        tee=Tee.MAA,
        platform=f"azure-attestation/{kind if isinstance(kind, str) else 'unknown'}",
        measurements=measurements,
        report_data=report_data,
        nonce=nonce_bytes(payload.get("nonce")),
        tcb=tcb,
        debug=is_debuggable(payload, isolation),
        hardware_id=hardware_id,
        signer=signer,
        issued_at=numeric_date(payload, "iat"),
        vendor=_vendor(payload),
    )


def nonce_bytes(value: object) -> bytes | None:
    """MAA's ``nonce`` claim as bytes: hex text decodes as hex, any other text as its UTF-8 bytes.

    The caller chose the nonce string it sent to Azure Attestation; ``ccdeploy attest verify --nonce HEX`` compares
    the hex of these bytes, so a hex nonce is given as itself and a text nonce as the hex of its UTF-8 encoding.
    """
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise MalformedEvidence("the token's 'nonce' claim is not a non-empty string")
    if _HEX.fullmatch(value):
        return bytes.fromhex(value)
    return value.encode("utf-8")


def is_debuggable(payload: Mapping[str, Any], isolation: Mapping[str, Any]) -> bool:
    """Whether any debug claim of the token says the TEE is debuggable (an absent claim says nothing)."""
    flags = [
        _bool(isolation, "x-ms-sgx-is-debuggable"),
        _bool(isolation, "x-ms-sevsnpvm-is-debuggable"),
        _bool(isolation, "tdx_td_attributes_debug"),
        _bool(payload, "is-debuggable"),
    ]
    attributes = _hex(isolation, "tdx_td_attributes")
    if attributes:
        flags.append(bool(attributes[0] & 0x01))  # TD_ATTRIBUTES bit 0 is DEBUG
    if isinstance(isolation.get("dbgstat"), str):
        flags.append(
            not isolation["dbgstat"].startswith("disabled")
        )  # EAT: enabled, disabled, disabled-since-boot, ...
    return any(flag is True for flag in flags)


def _vendor(payload: Mapping[str, Any]) -> dict[str, VendorValue]:
    vendor: dict[str, VendorValue] = {name: _raw(value) for name, value in payload.items()}
    runtime = payload.get("x-ms-runtime")
    if isinstance(runtime, Mapping):
        if "keys" in runtime:
            vendor["runtime_keys"] = _raw(runtime["keys"])
        if "user-data" in runtime:
            vendor["runtime_user_data"] = _raw(runtime["user-data"])
    return vendor


def _raw(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_raw(item) for item in value)
    if isinstance(value, dict):
        return {str(key): _raw(item) for key, item in value.items()}
    return value


def _measurements(claims: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, bytes]:
    found = {name: _hex(claims, claim) for claim, name in names.items()}
    return {name: value for name, value in found.items() if value is not None}


def _hex(claims: Mapping[str, Any], name: str) -> bytes | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not (value == "" or _HEX.fullmatch(value)):
        raise MalformedEvidence(f"the token's {name!r} is not hex text")
    return bytes.fromhex(value)


def _text(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) else None


def _int(claims: Mapping[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedEvidence(f"the token's {name!r} is not an integer")
    return value


def _bool(claims: Mapping[str, Any], name: str) -> bool | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise MalformedEvidence(f"the token's {name!r} is not a boolean")
    return value
