"""TEE-neutral claims: what verified evidence says, in the same shape for every TEE."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any


class Tee(enum.StrEnum):
    """The TEE types evidence can come from; the values are the CLI's ``--type`` names."""

    NITRO = "nitro"
    SEV_SNP = "sev-snp"
    TDX = "tdx"
    SGX = "sgx"
    MAA = "maa"
    NVIDIA_GPU = "nvidia-gpu"
    COMPOSITE = "composite"
    """CPU evidence plus GPU evidences bound to one nonce: verified as a whole, with claims per device."""


#: A vendor field value kept raw: numbers, text, bytes, flags, or nested fields.
VendorValue = int | str | bytes | bool | None | Mapping[str, Any] | tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class SignerChain:
    """Summary of who signed the evidence.

    Attributes:
        subjects: Certificate subjects (RFC 4514), signing certificate first, trust anchor last.
        root_sha256: SHA-256 of the trust anchor's DER encoding, lower-case hex.
        simulated: The anchor is an evidence-simulator root (trusted only on explicit request).
        revocation: What was checked for revocation, in words ("not checked" when no CRL was given).
    """

    subjects: tuple[str, ...]
    root_sha256: str
    simulated: bool = False
    revocation: str = "not checked"


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class Claims:
    """What verified evidence states, independent of the TEE that produced it.

    Verifiers build claims only after the signature and chain have been checked; nothing here is read from
    unverified bytes.

    Attributes:
        tee: The TEE type.
        platform: Human-readable platform name, e.g. ``"aws-nitro-enclaves"`` or ``"amd-sev-snp/Milan"``.
        measurements: Named measurements (``"pcr0"``..``"pcr15"`` for Nitro, ``"measurement"`` for SNP).
        report_data: Caller-chosen data bound into the evidence (SNP REPORT_DATA, Nitro ``user_data``).
        nonce: A freshness value carried separately from report data (Nitro ``nonce``), if the format has one.
        tcb: Named security-version numbers of the trusted computing base (empty where the TEE has none).
        debug: The TEE runs in a debug mode whose memory the host can read.
        hardware_id: An identifier of the hardware or instance (SNP CHIP_ID hex, Nitro module id).
        signer: Summary of the certificate chain that signed the evidence.
        issued_at: When the evidence says it was produced, if it says.
        vendor: Every field of the evidence, decoded but otherwise raw, keyed by the vendor's names.
        unchecked: Checks the verifier could not make for want of collateral, by check name (``"tdx.collateral"``,
            ``"nvidia-gpu.measurements"``), each with the reason. Appraisal turns each into a "could not check"
            failure (exit 3) unless the reference values waive it by name.
        devices: Claims of further devices bound to this evidence (the GPUs of composite evidence), in order.
    """

    tee: Tee
    platform: str
    measurements: Mapping[str, bytes]
    report_data: bytes | None
    nonce: bytes | None
    tcb: Mapping[str, int]
    debug: bool
    hardware_id: str | None
    signer: SignerChain
    issued_at: datetime | None = None
    vendor: Mapping[str, VendorValue] = field(default_factory=dict)
    unchecked: Mapping[str, str] = field(default_factory=dict)
    devices: tuple[Claims, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "measurements", _frozen(self.measurements))
        object.__setattr__(self, "tcb", _frozen(self.tcb))
        object.__setattr__(self, "vendor", _frozen(self.vendor))
        object.__setattr__(self, "unchecked", _frozen(self.unchecked))
        object.__setattr__(self, "devices", tuple(self.devices))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary: bytes as lower-case hex, times as RFC 3339."""
        return {
            "tee": self.tee.value,
            "platform": self.platform,
            "measurements": {name: value.hex() for name, value in self.measurements.items()},
            "report_data": None if self.report_data is None else self.report_data.hex(),
            "nonce": None if self.nonce is None else self.nonce.hex(),
            "tcb": dict(self.tcb),
            "debug": self.debug,
            "hardware_id": self.hardware_id,
            "signer": {
                "subjects": list(self.signer.subjects),
                "root_sha256": self.signer.root_sha256,
                "simulated": self.signer.simulated,
                "revocation": self.signer.revocation,
            },
            "issued_at": None if self.issued_at is None else rfc3339(self.issued_at),
            "vendor": {name: jsonable(value) for name, value in self.vendor.items()},
            "unchecked": dict(self.unchecked),
            "devices": [device.to_dict() for device in self.devices],
        }


def rfc3339(when: datetime) -> str:
    """Format an aware datetime as RFC 3339 in UTC with a ``Z`` suffix (milliseconds kept when present)."""
    when = when.astimezone(UTC)
    text = when.isoformat(timespec="milliseconds" if when.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def jsonable(value: Any) -> Any:
    """Turn a raw vendor value into JSON: bytes to hex, mappings and sequences recursively."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return rfc3339(value)
    return value
