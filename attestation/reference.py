"""Reference values: what verified claims are expected to say, loaded from YAML and validated once.

Example (every section optional; a section that is present is enforced in full; quote hex values, since YAML
reads an unquoted run of digits as a number)::

    allow_debug: false
    nitro:
      pcrs:
        0: 'e72a46ca…'   # one value, or a list of accepted values
        1: ['0343b056…', '1234…']
    sev_snp:
      measurement: ['b07af962…']
      minimum_tcb: {bootloader: 2, tee: 0, snp: 5, microcode: 68}
      policy: {smt: false, migrate_ma: false}
      maximum_vmpl: 0
      chip_ids: ['3ac3fe21…']
      host_data: '0000…'
    tdx:
      mrtd: '91eb2b44…'
      rtmr0: ['44c0197b…']
      tcb: {statuses: [SWHardeningNeeded], advisories: [INTEL-SA-00615]}
    sgx:
      mrenclave: '33d8736d…'
      tcb: {statuses: [ConfigurationAndSWHardeningNeeded], advisories: [INTEL-SA-00289, INTEL-SA-00615]}
    maa:
      attestation_types: [sgx]
      mrsigner: '4aea5f9a…'
    nvidia-gpu:
      drivers: ['550.90.07']
      require_ocsp: true
    waive: [nvidia-gpu.measurements]   # only when RIMs cannot be had; see docs/attestation.md
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from attestation.errors import AttestationError


class ReferenceValuesInvalid(AttestationError):
    """A reference-values file cannot be read or does not match the schema (a usage error, exit 2)."""

    check = "reference-values"
    exit_code = 2


def _hex_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a hex string")
    text = value.strip().lower().removeprefix("0x")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError("not a hex string") from None


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str | bytes) else value


Hex = Annotated[bytes, BeforeValidator(_hex_bytes)]
HexChoices = Annotated[tuple[Hex, ...], BeforeValidator(_one_or_many), Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class _NotEmpty(_Strict):
    """A section that, when present, must set something: an empty section would check nothing (fail closed)."""

    @model_validator(mode="after")
    def _sets_something(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("this section is empty: it would check nothing; remove it or set an expected value")
        return self


def _unique_indices(value: Any) -> Any:
    if isinstance(value, dict):
        indices = [str(key).strip() for key in value]
        if len(set(indices)) != len(indices):
            raise ValueError("a PCR index is given twice")
    return value


class NitroReference(_Strict):
    """Expected Nitro PCRs (index → accepted 48-byte SHA-384 values)."""

    pcrs: Annotated[
        Mapping[Annotated[int, Field(ge=0, le=31)], HexChoices], BeforeValidator(_unique_indices), Field(min_length=1)
    ]


class SnpTcb(_NotEmpty):
    """Minimum security-version numbers of an SEV-SNP TCB (``fmc`` applies to Turin only)."""

    bootloader: int = Field(0, ge=0, le=255)
    tee: int = Field(0, ge=0, le=255)
    snp: int = Field(0, ge=0, le=255)
    microcode: int = Field(0, ge=0, le=255)
    fmc: int | None = Field(None, ge=0, le=255)


class SnpPolicy(_NotEmpty):
    """Guest-policy bits that must have the given value (unset: not checked). Debug is governed by allow_debug."""

    smt: bool | None = None
    migrate_ma: bool | None = None
    single_socket: bool | None = None
    cxl_allow: bool | None = None
    mem_aes_256_xts: bool | None = None
    rapl_dis: bool | None = None
    ciphertext_hiding: bool | None = None
    page_swap_disable: bool | None = None
    minimum_abi: tuple[int, int] | None = Field(None, description="(major, minor) the policy must at least require")


class SnpReference(_NotEmpty):
    """Expected values of an AMD SEV-SNP report."""

    measurement: HexChoices | None = None
    minimum_tcb: SnpTcb | None = None
    policy: SnpPolicy | None = None
    maximum_vmpl: int | None = Field(None, ge=0, le=3)
    chip_ids: HexChoices | None = None
    host_data: Hex | None = None
    id_key_digests: HexChoices | None = None
    author_key_digests: HexChoices | None = None
    family_id: Hex | None = None
    image_id: Hex | None = None
    minimum_guest_svn: int | None = Field(None, ge=0)


#: Intel TCB statuses (TCB Info and QE Identity levels). ``Revoked`` is never accepted: verification refuses it.
TcbStatus = Literal[
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
]


class TcbAcceptance(_Strict):
    """TCB statuses accepted besides ``UpToDate``, and the advisories that may come with them.

    A status other than ``UpToDate`` is accepted only when it is named here **and** every advisory id the
    platform reports is named in ``advisories``: accepting a status means accepting its known weaknesses.
    """

    statuses: tuple[TcbStatus, ...] = Field(min_length=1)
    advisories: tuple[Annotated[str, Field(pattern=r"^INTEL-(SA|DOC)-\d{5}$")], ...] = ()


class TdxReference(_NotEmpty):
    """Expected values of an Intel TDX quote (TD report measurements; hex, one value or a list)."""

    mrtd: HexChoices | None = None
    rtmr0: HexChoices | None = None
    rtmr1: HexChoices | None = None
    rtmr2: HexChoices | None = None
    rtmr3: HexChoices | None = None
    mrconfigid: HexChoices | None = None
    mrowner: HexChoices | None = None
    mrownerconfig: HexChoices | None = None
    mrseam: HexChoices | None = None
    report_data: Hex | None = None
    tcb: TcbAcceptance | None = None


class SgxReference(_NotEmpty):
    """Expected values of an Intel SGX enclave quote."""

    mrenclave: HexChoices | None = None
    mrsigner: HexChoices | None = None
    isv_prodid: int | None = Field(None, ge=0, le=0xFFFF)
    minimum_isv_svn: int | None = Field(None, ge=0, le=0xFFFF)
    report_data: Hex | None = None
    tcb: TcbAcceptance | None = None


class MaaReference(_NotEmpty):
    """Expected claims of an Azure Attestation token (SGX/Open Enclave, SEV-SNP CVM, TDX CVM)."""

    attestation_types: tuple[Annotated[str, Field(min_length=1)], ...] | None = Field(None, min_length=1)
    mrenclave: HexChoices | None = None
    mrsigner: HexChoices | None = None
    product_id: int | None = Field(None, ge=0)
    minimum_svn: int | None = Field(None, ge=0)
    policy_hashes: tuple[Annotated[str, Field(min_length=1)], ...] | None = Field(None, min_length=1)
    launch_measurement: HexChoices | None = None
    mrtd: HexChoices | None = None
    compliance_status: Annotated[str, Field(min_length=1)] | None = None


class NvidiaGpuReference(_NotEmpty):
    """Expected values of NVIDIA GPU evidence (measurements are checked against the RIMs at verification)."""

    drivers: tuple[Annotated[str, Field(min_length=1)], ...] | None = Field(None, min_length=1)
    vbios: tuple[Annotated[str, Field(min_length=1)], ...] | None = Field(None, min_length=1)
    require_ocsp: bool = Field(False, strict=True)


#: Checks that verification may leave undone for want of collateral, and that reference values may waive.
WaivableCheck = Literal["tdx.collateral", "sgx.collateral", "nvidia-gpu.measurements"]


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing duplicate mapping keys (it keeps the last one silently)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [loader.construct_object(key_node) for key_node, _ in node.value]
    duplicates = sorted({repr(key) for key in keys if keys.count(key) > 1})
    if duplicates:
        raise yaml.constructor.ConstructorError(
            None, None, f"duplicate key(s) {', '.join(duplicates)}", node.start_mark
        )
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


class ReferenceValues(_Strict):
    """Expected values per platform, and whether a debug-mode TEE is acceptable (never by default)."""

    allow_debug: bool = False
    nitro: NitroReference | None = None
    sev_snp: SnpReference | None = Field(None, alias="sev-snp")
    tdx: TdxReference | None = None
    sgx: SgxReference | None = None
    maa: MaaReference | None = None
    nvidia_gpu: NvidiaGpuReference | None = Field(None, alias="nvidia-gpu")
    waive: tuple[WaivableCheck, ...] = ()
    """Checks that could not be made (no collateral, no RIMs) and are accepted anyway, by name. Each one
    weakens the verdict: a waived ``tdx.collateral`` accepts a TDX platform whose TCB status nobody checked."""

    @classmethod
    def from_yaml(cls, text: str | bytes) -> ReferenceValues:
        """Parse YAML text; raise :class:`ReferenceValuesInvalid` with every problem listed."""
        try:
            data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506  (a SafeLoader subclass)
        except yaml.YAMLError as exc:
            raise ReferenceValuesInvalid(f"reference values are not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ReferenceValuesInvalid("reference values must be a YAML mapping")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
            )
            raise ReferenceValuesInvalid(f"reference values do not match the schema: {problems}") from None

    @classmethod
    def load(cls, path: str | Path) -> ReferenceValues:
        """Read and parse a YAML file (this is the only file access of the appraisal path)."""
        try:
            text = Path(path).read_bytes()
        except OSError as exc:
            raise ReferenceValuesInvalid(f"cannot read reference values {path}: {exc.strerror}") from None
        return cls.from_yaml(text)
