"""Release policies: what an enclave must prove before the broker releases a model's key (see docs/policy.md).

A policy is YAML, validated once at load into a frozen :class:`ReleasePolicy`; anything the schema does not know
is refused, and every problem is listed in one :class:`~ccdeploy.errors.PolicyInvalid`. An empty, unknown or
unparsable policy therefore never reaches a decision: it fails closed at load. Trust roots and signer keys are
parsed into certificate and key objects, and CEL expressions compiled, at load too.

Sketch (``version`` and ``platforms`` are required)::

    version: 1
    platforms:
      nitro: {pcrs: {0: 'e72a46ca…', 1: '0343b056…'}}
    max_evidence_age: 300
    provenance: {key: "-----BEGIN PUBLIC KEY-----…"}
    bom: {required: true}
    cel: ['claims.measurements.pcr4 == "45706d7b…"']
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from cryptography import x509
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from attestation._x509 import SIMULATOR_ORGANIZATION
from attestation.claims import Tee
from attestation.reference import MaaReference, NitroReference, ReferenceValues, SnpReference, TdxReference
from attestation.reference import _UniqueKeyLoader as _ReferenceLoader
from ccdeploy.errors import PolicyInvalid, TrustRootInvalid
from ccdeploy.provenance.verify._keys import TrustedKey, load_trusted_key
from ccdeploy.release.cel import CelError, CelExpression, compile_expression

__all__ = [
    "MAX_POLICY_BYTES",
    "BomRequirement",
    "Finding",
    "GpuRequirement",
    "MaaPolicy",
    "Platforms",
    "ProvenanceRequirement",
    "ReleasePolicy",
    "TrustRoots",
    "lint",
    "load_policy",
    "load_policy_file",
    "policy_digest",
]

MAX_POLICY_BYTES = 1 << 20
"""A policy is a short document people review; anything larger is refused before parsing."""
LONG_EVIDENCE_AGE = 3600
"""``max_evidence_age`` above this (seconds) draws a lint warning."""
SHA384_BYTES = 48
"""Nitro PCRs and the SEV-SNP launch measurement (and ID/author key digests) are SHA-384 values."""
NITRO_CODE_PCR = 0
"""Nitro PCR0 is the hash of the whole enclave image file (kernel, bootstrap and application): the code identity.
PCR1 (kernel and bootstrap) and PCR2 (application) are parts of it; PCR3 (IAM role), PCR4 (instance ID) and PCR8
(signing certificate) say nothing about the code that runs."""
_SNP_LENGTHS = {
    "measurement": SHA384_BYTES,
    "id_key_digests": SHA384_BYTES,
    "author_key_digests": SHA384_BYTES,
    "chip_ids": 64,
    "host_data": 32,
    "family_id": 16,
    "image_id": 16,
}
"""Byte lengths of the SEV-SNP report fields a policy may pin (AMD SEV-SNP ABI, ATTESTATION_REPORT)."""
_TDX_LENGTHS = {
    **{
        name: SHA384_BYTES
        for name in ("mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "mrconfigid", "mrowner", "mrownerconfig", "mrseam")
    },
    "report_data": 64,
}
"""Byte lengths of the TD report fields a policy may pin (Intel TDX DCAP quote, TD report body)."""
_MAA_LENGTHS = {"mrenclave": 32, "mrsigner": 32, "launch_measurement": SHA384_BYTES, "mrtd": SHA384_BYTES}
"""Byte lengths of the measurements an Azure Attestation token states (SGX, SEV-SNP CVM, TDX CVM)."""
_MAA_CODE_IDENTITY = ("mrenclave", "mrsigner", "launch_measurement", "mrtd")


class _UniqueKeyLoader(_ReferenceLoader):
    """The attestation library's safe loader that refuses duplicate mapping keys."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, arbitrary_types_allowed=True)


def _certificates(value: Any) -> Any:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("expected a non-empty list of PEM certificates")
    certificates: list[x509.Certificate] = []
    for item in value:
        if isinstance(item, x509.Certificate):
            certificates.append(item)
            continue
        if not isinstance(item, str):
            raise ValueError("each trust root must be PEM text")
        try:
            certificates.extend(x509.load_pem_x509_certificates(item.encode("utf-8", "surrogatepass")))
        except (ValueError, UnicodeError):
            raise ValueError("a trust root is not a PEM certificate") from None
    return tuple(certificates)


def _public_key(value: Any) -> Any:
    if isinstance(value, TrustedKey):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a PEM public key")
    try:
        return load_trusted_key(value.encode("utf-8", "surrogatepass"))
    except (TrustRootInvalid, UnicodeError):
        raise ValueError("not a PEM ECDSA P-256, P-384 or P-521 public key") from None


def _expressions(value: Any) -> Any:
    if not isinstance(value, list | tuple):
        raise ValueError("expected a list of CEL expressions")
    compiled: list[CelExpression] = []
    for item in value:
        if isinstance(item, CelExpression):
            compiled.append(item)
            continue
        if not isinstance(item, str):
            raise ValueError("each CEL expression must be text")
        try:
            compiled.append(compile_expression(item))
        except CelError as exc:
            raise ValueError(str(exc)) from None
    return tuple(compiled)


Certificates = Annotated[tuple[x509.Certificate, ...], BeforeValidator(_certificates)]
PublicKey = Annotated[TrustedKey, BeforeValidator(_public_key)]
Expressions = Annotated[tuple[CelExpression, ...], BeforeValidator(_expressions)]
Text = Annotated[str, Field(min_length=1, max_length=1024, strict=True)]


def _wrong_lengths(name: str, values: tuple[bytes, ...], length: int) -> list[str]:
    return [
        f"{name}: a {len(value)}-byte value (expected {length} bytes, {2 * length} hex digits)"
        for value in values
        if len(value) != length
    ]


def _issuer(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("the issuer must be the attestation provider's URL")
    text = value.rstrip("/")
    if not _ISSUER.match(text):
        raise ValueError(f"the issuer must be an https URL with a host and no query or fragment, not {value[:80]!r}")
    return text


_ISSUER = re.compile(r"\Ahttps://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?\Z")
IssuerUrl = Annotated[str, BeforeValidator(_issuer)]


class MaaPolicy(MaaReference):
    """The ``maa`` platform: an Azure Attestation token's expected claims and the provider it must come from.

    ``issuer`` is required: one regional signing key serves several attestation providers, so a token's valid
    signature says nothing about which provider (and which attestation policy) issued it.
    """

    issuer: IssuerUrl

    @model_validator(mode="after")
    def _expects_a_claim(self) -> Self:
        if not self.model_fields_set - {"issuer"}:
            raise ValueError("maa names only its issuer: it would check no claim of the token")
        return self

    def reference(self) -> MaaReference:
        """The attestation library's reference values (without the issuer, which the verifier pins)."""
        return MaaReference.model_validate(self.model_dump(exclude={"issuer"}, exclude_unset=True))


def _values(value: object) -> tuple[bytes, ...]:
    if isinstance(value, bytes):
        return (value,)
    if isinstance(value, tuple):
        return tuple(item for item in value if isinstance(item, bytes))
    return ()


class Platforms(_Strict):
    """The accepted platforms and their reference values (the attestation library's sections); at least one."""

    nitro: NitroReference | None = None
    sev_snp: SnpReference | None = Field(None, alias="sev-snp")
    tdx: TdxReference | None = None
    maa: MaaPolicy | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Self:
        if not self.names():
            raise ValueError("no platform is accepted: name nitro, sev-snp, tdx and/or maa with its reference values")
        return self

    @model_validator(mode="after")
    def _reference_lengths(self) -> Self:
        # A value of the wrong length can never equal a real measurement: the policy would deny everything while
        # looking like it pins something (or, for a typo, silently pin nothing useful).
        problems: list[str] = []
        if self.nitro is not None:
            for index, values in sorted(self.nitro.pcrs.items()):
                problems += _wrong_lengths(f"nitro.pcrs.{index}", values, SHA384_BYTES)
        for section, name, lengths in (
            (self.sev_snp, "sev-snp", _SNP_LENGTHS),
            (self.tdx, "tdx", _TDX_LENGTHS),
            (self.maa, "maa", _MAA_LENGTHS),
        ):
            if section is not None:
                for field, length in lengths.items():
                    problems += _wrong_lengths(f"{name}.{field}", _values(getattr(section, field)), length)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def code_identity_gaps(self) -> list[str]:
        """The accepted platforms whose reference values pin no code identity.

        The code identity is Nitro PCR0, the SNP ``measurement``, the TDX ``mrtd``, or an MAA token's
        ``mrenclave``, ``mrsigner``, ``launch_measurement`` or ``mrtd``.
        """
        gaps: list[str] = []
        if self.nitro is not None and NITRO_CODE_PCR not in self.nitro.pcrs:
            gaps.append(f"nitro pins no PCR{NITRO_CODE_PCR} (the enclave image hash)")
        if self.sev_snp is not None and self.sev_snp.measurement is None:
            gaps.append("sev-snp pins no measurement (the launch digest)")
        if self.tdx is not None and self.tdx.mrtd is None:
            gaps.append("tdx pins no mrtd (the TD's build-time measurement)")
        if self.maa is not None and all(getattr(self.maa, name) is None for name in _MAA_CODE_IDENTITY):
            gaps.append("maa pins none of " + ", ".join(_MAA_CODE_IDENTITY))
        return gaps

    def section(self, tee: Tee) -> BaseModel | None:
        """The reference values given for ``tee`` (``None``: not accepted)."""
        sections: dict[Tee, BaseModel | None] = {
            Tee.NITRO: self.nitro,
            Tee.SEV_SNP: self.sev_snp,
            Tee.TDX: self.tdx,
            Tee.MAA: self.maa,
        }
        return sections.get(tee)

    def accepts(self, tee: Tee) -> bool:
        """Whether evidence of ``tee`` may be appraised under this policy (composite: see its CPU type)."""
        return self.section(tee) is not None

    def names(self) -> list[str]:
        """The accepted platforms' names."""
        return [tee.value for tee in Tee if self.accepts(tee)]


class TrustRoots(_Strict):
    """Per-platform trust anchors (inline PEM) that replace the pinned vendor roots.

    ``nvidia-gpu`` anchors GPU device-identity chains; ``nvidia-rim`` anchors the chains of the RIMs (NVIDIA's
    signed reference measurements) and nothing else.
    """

    nitro: Certificates | None = None
    sev_snp: Certificates | None = Field(None, alias="sev-snp")
    tdx: Certificates | None = None
    nvidia_gpu: Certificates | None = Field(None, alias="nvidia-gpu")
    nvidia_rim: Certificates | None = Field(None, alias="nvidia-rim")

    def for_tee(self, tee: Tee) -> tuple[x509.Certificate, ...] | None:
        """The roots given for ``tee``, or ``None`` (use the pinned ones)."""
        roots: dict[Tee, tuple[x509.Certificate, ...] | None] = {
            Tee.NITRO: self.nitro,
            Tee.SEV_SNP: self.sev_snp,
            Tee.TDX: self.tdx,
            Tee.NVIDIA_GPU: self.nvidia_gpu,
        }
        return roots.get(tee)

    def named(self) -> dict[str, tuple[x509.Certificate, ...]]:
        """Every section given, by its policy name."""
        found = {
            "nitro": self.nitro,
            "sev-snp": self.sev_snp,
            "tdx": self.tdx,
            "nvidia-gpu": self.nvidia_gpu,
            "nvidia-rim": self.nvidia_rim,
        }
        return {name: roots for name, roots in found.items() if roots is not None}


class GpuRequirement(_Strict):
    """Whether confidential GPUs are required (composite evidence), how many, and their accepted versions.

    With ``required: true`` the evidence must be composite (CPU plus GPUs bound to one nonce) with at least
    ``count`` GPUs (default 1), each GPU's driver and VBIOS among ``drivers`` / ``vbios`` when those are given,
    and each GPU's certificates shown good by OCSP when ``require_ocsp`` is true. Every GPU's measurements are
    always compared with NVIDIA's signed RIMs, whatever this section says.
    """

    required: bool = Field(False, strict=True)
    count: int | None = Field(None, ge=1, le=64, strict=True)
    drivers: tuple[Text, ...] = ()
    vbios: tuple[Text, ...] = ()
    require_ocsp: bool = Field(False, strict=True)

    @model_validator(mode="after")
    def _checks_when_required(self) -> Self:
        if not self.required and (self.drivers or self.vbios or self.count is not None or self.require_ocsp):
            raise ValueError(
                "count/drivers/vbios/require_ocsp are only checked when required is true: as written they would "
                "check nothing (set required: true, or remove them)"
            )
        return self

    @property
    def minimum_count(self) -> int:
        """How many GPUs the evidence must carry (0 when none is required)."""
        if not self.required:
            return 0
        return 1 if self.count is None else self.count


class ProvenanceRequirement(_Strict):
    """Who must have signed the sealed artifact's provenance: a key, or a Sigstore identity and issuer."""

    key: PublicKey | None = None
    identity: Text | None = None
    issuer: Text | None = None
    builder_id: Text | None = None

    @model_validator(mode="after")
    def _one_signer(self) -> Self:
        keyless = self.identity is not None or self.issuer is not None
        if self.key is not None and keyless:
            raise ValueError("give either key or identity and issuer, not both")
        if self.key is None and not keyless:
            raise ValueError("name the signer: key, or identity and issuer")
        if keyless and (self.identity is None or self.issuer is None):
            raise ValueError("identity and issuer go together (the issuer vouches for the identity)")
        return self


class BomRequirement(_Strict):
    """The sealed header must record a BOM digest (``required``), equal to ``digest`` when that is given."""

    required: bool = Field(False, strict=True)
    digest: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$", strict=True)] | None = None

    @model_validator(mode="after")
    def _checks_something(self) -> Self:
        if not self.required and self.digest is None:
            raise ValueError("this section checks nothing: set required: true and/or digest")
        return self

    @property
    def expected_hex(self) -> str | None:
        """The required BOM SHA-256 as bare hex (the sealed header's form), if one is pinned."""
        return None if self.digest is None else self.digest.removeprefix("sha256:")


class ReleasePolicy(_Strict):
    """A validated release policy (see docs/policy.md for every field)."""

    version: Literal[1]
    platforms: Platforms
    trust_roots: TrustRoots | None = None
    unsafe_accept_simulator_roots: bool = Field(False, strict=True)
    unsafe_no_code_identity: bool = Field(False, strict=True)
    allow_debug: bool = Field(False, strict=True)
    max_evidence_age: int = Field(300, gt=0, le=366 * 86400, strict=True)
    gpu: GpuRequirement = GpuRequirement()
    provenance: ProvenanceRequirement | None = None
    bom: BomRequirement | None = None
    cel: Expressions = ()

    @field_validator("version", mode="before")
    @classmethod
    def _integer_version(cls, value: Any) -> Any:
        if type(value) is not int:  # YAML `true` is a bool, and bool is an int subclass equal to 1
            raise ValueError(f"version must be the integer 1, not {type(value).__name__}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        gaps = self.platforms.code_identity_gaps()
        if gaps and not self.unsafe_no_code_identity:
            raise ValueError(
                "no code identity is pinned: "
                + "; ".join(gaps)
                + " (any code on that platform would qualify; set unsafe_no_code_identity: true to accept this)"
            )
        if self.trust_roots is not None:
            for tee in Tee:
                if tee is Tee.NVIDIA_GPU:  # GPUs come with any accepted CPU platform (composite evidence)
                    continue
                if self.trust_roots.for_tee(tee) is not None and not self.platforms.accepts(tee):
                    raise ValueError(f"trust_roots names {tee.value}, which platforms does not accept")
        return self

    def reference_values(self) -> ReferenceValues:
        """The attestation library's reference values this policy appraises claims against.

        These are the CPU sections; GPU versions and OCSP are checked by the release decision from ``gpu``.
        """
        maa = self.platforms.maa
        return ReferenceValues(
            allow_debug=self.allow_debug,
            nitro=self.platforms.nitro,
            sev_snp=self.platforms.sev_snp,
            tdx=self.platforms.tdx,
            maa=None if maa is None else maa.reference(),
        )


def policy_digest(data: bytes) -> str:
    """``sha256:<hex>`` of the policy's raw bytes (what receipts and sealed headers name it by)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<root>"


def load_policy(data: bytes) -> ReleasePolicy:
    """Parse and validate a release policy.

    Raises:
        PolicyInvalid: empty, too large, not YAML, not a mapping, duplicate or unknown keys, an unknown
            ``version``, or values that do not validate (every problem listed).
    """
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyInvalid(f"the release policy is larger than {MAX_POLICY_BYTES} bytes")
    try:
        document = yaml.load(data, Loader=_UniqueKeyLoader)  # noqa: S506  (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise PolicyInvalid(f"the release policy is not valid YAML: {exc}") from None
    except RecursionError:
        raise PolicyInvalid("the release policy is nested too deeply") from None
    if document is None:
        raise PolicyInvalid("the release policy is empty (an empty policy releases nothing)")
    if not isinstance(document, dict):
        raise PolicyInvalid(f"the release policy must be a YAML mapping, not {type(document).__name__}")
    strange = [repr(key) for key in document if not isinstance(key, str)]
    if strange:
        raise PolicyInvalid(f"the release policy has keys that are not names: {', '.join(strange)}")
    if "version" in document and (type(document["version"]) is not int or document["version"] != 1):
        raise PolicyInvalid(f"unknown release policy version {document['version']!r} (this build reads version 1)")
    try:
        return ReleasePolicy.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(f"{_location(e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False))
        raise PolicyInvalid(f"the release policy is invalid: {problems}") from None
    except (RecursionError, TypeError, ValueError) as exc:  # cyclic aliases and other shapes pydantic cannot walk
        raise PolicyInvalid(f"the release policy cannot be validated: {type(exc).__name__}") from None


def load_policy_file(path: str | Path) -> ReleasePolicy:
    """Read and parse a policy file.

    Raises:
        PolicyInvalid: unreadable, or as :func:`load_policy`.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PolicyInvalid(f"cannot read the release policy {path}: {exc.strerror}") from None
    return load_policy(data)


@dataclass(frozen=True)
class Finding:
    """A lint finding: ``level`` is ``"warn"`` (valid, but weaker than it looks) or ``"info"``."""

    level: Literal["warn", "info"]
    message: str

    def to_dict(self) -> dict[str, str]:
        """``{level, message}``."""
        return {"level": self.level, "message": self.message}


def _is_simulator_root(certificate: x509.Certificate) -> bool:
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    return any(name.value == SIMULATOR_ORGANIZATION for name in names)


def lint(policy: ReleasePolicy) -> list[Finding]:
    """What a valid policy leaves weaker than a reviewer may expect (it never changes a decision)."""
    findings: list[Finding] = []
    if policy.unsafe_accept_simulator_roots:
        findings.append(
            Finding(
                "warn",
                "unsafe_accept_simulator_roots is true: evidence from the simulator is accepted, which proves "
                "nothing about hardware (demos and tests only)",
            )
        )
    roots = policy.trust_roots
    named = {} if roots is None else roots.named()
    simulated = [name for name, certificates in named.items() if any(_is_simulator_root(c) for c in certificates)]
    if simulated and not policy.unsafe_accept_simulator_roots:
        findings.append(
            Finding(
                "warn",
                f"trust_roots for {', '.join(simulated)} hold an evidence-simulator root, but "
                "unsafe_accept_simulator_roots is false: evidence under it will be refused",
            )
        )
    if policy.unsafe_no_code_identity:
        gaps = policy.platforms.code_identity_gaps()
        findings.append(
            Finding(
                "warn",
                "unsafe_no_code_identity is true: "
                + ("; ".join(gaps) if gaps else "(every platform pins its code identity, so the flag is unneeded)")
                + " - any code on that platform may receive the key",
            )
        )
    if policy.allow_debug:
        findings.append(Finding("warn", "allow_debug is true: a debug enclave's memory is readable by its host"))
    if policy.provenance is None:
        findings.append(
            Finding("warn", "no provenance requirement: an artifact signed by anyone (or no one) qualifies")
        )
    if policy.bom is None:
        findings.append(Finding("warn", "no bom requirement: the artifact need not record an AI BOM"))
    if policy.max_evidence_age > LONG_EVIDENCE_AGE:
        findings.append(
            Finding(
                "warn",
                f"max_evidence_age is {policy.max_evidence_age} s: evidence that old may no longer describe the "
                f"enclave (at most {LONG_EVIDENCE_AGE} s is advised)",
            )
        )
    if policy.gpu.required:
        findings.append(
            Finding(
                "info",
                "gpu.required is true: composite evidence needs NVIDIA's driver and VBIOS RIMs (sent by the enclave "
                "as collateral or configured at the broker), otherwise every GPU is unverifiable",
            )
        )
        if policy.gpu.require_ocsp:
            findings.append(
                Finding(
                    "info",
                    "gpu.require_ocsp is true: the enclave or the broker must supply fresh OCSP responses for every "
                    "GPU certificate",
                )
            )
    if policy.platforms.sev_snp is not None:
        findings.append(
            Finding(
                "info",
                "sev-snp evidence needs its VCEK/VLEK: the broker must be given collateral or a fetcher, "
                "otherwise it is unverifiable",
            )
        )
    if policy.platforms.tdx is not None:
        findings.append(
            Finding(
                "info",
                "tdx evidence needs Intel's DCAP collateral (TCB Info, QE Identity, CRLs): sent by the enclave or "
                "fetched by the broker, otherwise it is unverifiable",
            )
        )
    if policy.platforms.maa is not None:
        findings.append(
            Finding(
                "info",
                f"maa tokens are verified with {policy.platforms.maa.issuer}/certs (fetched by the broker): tokens of "
                "any other attestation provider are refused",
            )
        )
    return findings
