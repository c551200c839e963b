"""Appraisal: compare verified claims with reference values. Pure: no I/O, no clock, no crypto.

:func:`appraise` returns one :class:`CheckResult` per check (with its reason) rather than stopping at the first
failure, so that auditors and CI see everything that is wrong; :meth:`Appraisal.raise_for_failure` turns a failed
appraisal into the typed error of its first failing check.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from attestation.claims import Claims, Tee
from attestation.errors import (
    AttestationError,
    CollateralMissing,
    DebugNotAllowed,
    EvidenceInvalid,
    NonceMismatch,
    ReferenceValueViolation,
)
from attestation.reference import (
    MaaReference,
    NitroReference,
    NvidiaGpuReference,
    ReferenceValues,
    SgxReference,
    SnpPolicy,
    SnpReference,
    TcbAcceptance,
    TdxReference,
)

#: The TCB status every Intel platform may have without the reference values saying anything.
UP_TO_DATE = "UpToDate"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one appraisal check.

    Attributes:
        name: Dotted check name, e.g. ``"debug"``, ``"nitro.pcr0"``, ``"sev-snp.minimum-tcb.snp"``.
        ok: Whether the claims satisfy the check.
        detail: The reason, in words (expected and actual values on failure).
        error: The error type :meth:`Appraisal.raise_for_failure` raises when this check failed: an
            :class:`~attestation.errors.EvidenceInvalid` for a decision, a
            :class:`~attestation.errors.CouldNotVerify` for a check that could not be made.
    """

    name: str
    ok: bool
    detail: str
    error: type[AttestationError] = ReferenceValueViolation


@dataclass(frozen=True, slots=True)
class Appraisal:
    """All check results of one appraisal."""

    claims: Claims
    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(result.ok for result in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        """The checks that failed, in order."""
        return tuple(result for result in self.results if not result.ok)

    def error(self) -> AttestationError | None:
        """The typed error of the first failed check, its message listing every failure; ``None`` if all passed.

        A decision outranks a check that could not be made: when any failure is an
        :class:`~attestation.errors.EvidenceInvalid`, the first such is raised (exit 1), otherwise the first
        :class:`~attestation.errors.CouldNotVerify` (exit 3).
        """
        failures = self.failures
        if not failures:
            return None
        decisive = [f for f in failures if issubclass(f.error, EvidenceInvalid)]
        first = decisive[0] if decisive else failures[0]
        return first.error("; ".join(f"{f.name}: {f.detail}" for f in failures))

    def raise_for_failure(self) -> None:
        """Raise :meth:`error` if any check failed; return otherwise."""
        error = self.error()
        if error is not None:
            raise error


def appraise(
    claims: Claims,
    reference_values: ReferenceValues | None = None,
    *,
    nonce: bytes | None = None,
    allow_debug: bool = False,
) -> Appraisal:
    """Compare ``claims`` with ``reference_values`` and an expected ``nonce``.

    Args:
        claims: Claims returned by :func:`attestation.verify`.
        reference_values: Expected values. ``None`` checks only debug mode and the nonce. Values that are given
            but name nothing for the claims' TEE fail closed.
        nonce: The freshness value the evidence must be bound to (Nitro ``nonce``; otherwise REPORT_DATA must be
            the nonce followed by zero bytes).
        allow_debug: Accept a debug-mode TEE (its memory is readable by the host). Also allowed by
            ``reference_values.allow_debug``.
    """
    if nonce is not None and not nonce:
        raise ValueError("an empty nonce binds nothing; pass None to skip the nonce check")
    refs = reference_values
    debug_allowed = allow_debug or (refs is not None and refs.allow_debug)
    results = list(_device(claims, refs, debug_allowed, section_required=True, nonce=nonce))
    for index, device in enumerate(claims.devices):
        prefix = f"{_device_name(device, index)}."
        for result in _device(device, refs, debug_allowed, section_required=False):
            results.append(CheckResult(prefix + result.name, result.ok, result.detail, result.error))
    return Appraisal(claims, tuple(results))


def _device_name(device: Claims, index: int) -> str:
    name = device.vendor.get("device")
    return name if isinstance(name, str) and name else f"gpus[{index}]"


def _device(
    claims: Claims,
    refs: ReferenceValues | None,
    debug_allowed: bool,
    *,
    section_required: bool,
    nonce: bytes | None = None,
) -> Iterator[CheckResult]:
    """The checks of one device.

    A GPU of composite evidence needs no section of its own: its measurements were compared with NVIDIA's signed
    RIMs during verification, and a section, when given, adds to that.
    """
    yield _debug(claims, debug_allowed)
    if nonce is not None:
        yield _nonce(claims, nonce)
    yield from _unchecked(claims, refs)
    yield from _defaults(claims, refs)
    if refs is not None and (section_required or _section(claims.tee, refs) is not None):
        yield from _reference(claims, refs)


def _unchecked(claims: Claims, refs: ReferenceValues | None) -> Iterator[CheckResult]:
    waived = () if refs is None else refs.waive
    for name, reason in claims.unchecked.items():
        if name in waived:
            yield CheckResult(name, True, f"not checked ({reason}); waived by the reference values")
        else:
            yield CheckResult(name, False, f"could not check: {reason}", CollateralMissing)


def _defaults(claims: Claims, refs: ReferenceValues | None) -> Iterator[CheckResult]:
    """Checks made even without reference values: Intel TCB status (UpToDate only unless named)."""
    if claims.tee in (Tee.TDX, Tee.SGX) and f"{claims.tee.value}.collateral" not in claims.unchecked:
        section = None if refs is None else (refs.tdx if claims.tee is Tee.TDX else refs.sgx)
        yield _tcb_status(claims, None if section is None else section.tcb)


def _debug(claims: Claims, allowed: bool) -> CheckResult:
    if not claims.debug:
        return CheckResult("debug", True, "the TEE is not in debug mode")
    if allowed:
        return CheckResult("debug", True, "the TEE is in debug mode, which was explicitly allowed")
    return CheckResult(
        "debug", False, "the TEE is in debug mode: the host can read its memory (allow it explicitly)", DebugNotAllowed
    )


def _nonce(claims: Claims, nonce: bytes) -> CheckResult:
    if claims.tee is Tee.NITRO and claims.nonce is None:
        return CheckResult("nonce", False, "the document carries no nonce", NonceMismatch)
    # An Azure Attestation token's `nonce` claim echoes whatever its requester sent, so it proves the token fresh,
    # not the TEE: the report data the TEE itself bound is compared whenever the token carries it.
    hardware_bound = claims.tee is Tee.MAA and claims.report_data is not None
    if claims.nonce is not None and not hardware_bound:
        ok = claims.nonce == nonce
        where = "the nonce field"
        actual = claims.nonce
    elif claims.report_data is not None:
        expected = nonce.ljust(len(claims.report_data), b"\0")
        ok = len(nonce) <= len(claims.report_data) and claims.report_data == expected
        where = "report data (nonce followed by zero bytes)"
        actual = claims.report_data
    else:
        return CheckResult("nonce", False, "the evidence carries neither a nonce nor report data", NonceMismatch)
    detail = f"{where} is {actual.hex()}" + ("" if ok else f", expected {nonce.hex()}")
    return CheckResult("nonce", ok, detail, NonceMismatch)


_Section = NitroReference | SnpReference | TdxReference | SgxReference | MaaReference | NvidiaGpuReference


def _section(tee: Tee, refs: ReferenceValues) -> _Section | None:
    sections: dict[Tee, _Section | None] = {
        Tee.NITRO: refs.nitro,
        Tee.SEV_SNP: refs.sev_snp,
        Tee.TDX: refs.tdx,
        Tee.SGX: refs.sgx,
        Tee.MAA: refs.maa,
        Tee.NVIDIA_GPU: refs.nvidia_gpu,
    }
    return sections.get(tee)


def _reference(claims: Claims, refs: ReferenceValues) -> Iterator[CheckResult]:
    section = _section(claims.tee, refs)
    if section is None:
        yield CheckResult(
            "reference-values", False, f"the reference values name no expected values for {claims.tee.value}"
        )
    elif isinstance(section, NitroReference):
        yield from _nitro(claims, section)
    elif isinstance(section, SnpReference):
        yield from _snp(claims, section)
    elif isinstance(section, TdxReference):
        yield from _tdx(claims, section)
    elif isinstance(section, SgxReference):
        yield from _sgx(claims, section)
    elif isinstance(section, MaaReference):
        yield from _maa(claims, section)
    else:
        yield from _nvidia_gpu(claims, section)


def _tcb_status(claims: Claims, acceptance: TcbAcceptance | None) -> CheckResult:
    name = f"{claims.tee.value}.tcb-status"
    status = claims.vendor.get("tcb_status")
    raw_advisories = claims.vendor.get("advisory_ids")
    advisories = tuple(a for a in raw_advisories if isinstance(a, str)) if isinstance(raw_advisories, tuple) else ()
    listed = f" (advisories: {', '.join(advisories)})" if advisories else ""
    if not isinstance(status, str):
        return CheckResult(name, False, "the verifier reported no TCB status")
    if status == UP_TO_DATE:
        return CheckResult(name, True, f"TCB status {status}{listed}")
    if acceptance is None or status not in acceptance.statuses:
        return CheckResult(
            name,
            False,
            f"TCB status {status}{listed} is not accepted (only {UP_TO_DATE} unless the reference "
            "values name the status and its advisories)",
        )
    unnamed = [a for a in advisories if a not in acceptance.advisories]
    if unnamed:
        return CheckResult(
            name, False, f"TCB status {status} is accepted, but advisories {', '.join(unnamed)} are not named"
        )
    return CheckResult(name, True, f"TCB status {status}{listed} is accepted by the reference values")


def _measurements(
    claims: Claims, prefix: str, expected: Mapping[str, tuple[bytes, ...] | None]
) -> Iterator[CheckResult]:
    for name, accepted in expected.items():
        if accepted is not None:
            yield _one_of(f"{prefix}.{name}", claims.measurements.get(name), accepted)


def _report_data(claims: Claims, prefix: str, expected: bytes | None) -> Iterator[CheckResult]:
    if expected is not None:
        yield _one_of(f"{prefix}.report-data", claims.report_data, (expected,))


def _tdx(claims: Claims, refs: TdxReference) -> Iterator[CheckResult]:
    names = ("mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "mrconfigid", "mrowner", "mrownerconfig", "mrseam")
    yield from _measurements(claims, "tdx", {name: getattr(refs, name) for name in names})
    yield from _report_data(claims, "tdx", refs.report_data)


def _sgx(claims: Claims, refs: SgxReference) -> Iterator[CheckResult]:
    yield from _measurements(claims, "sgx", {"mrenclave": refs.mrenclave, "mrsigner": refs.mrsigner})
    yield from _report_data(claims, "sgx", refs.report_data)
    vendor = claims.vendor
    if refs.isv_prodid is not None:
        prodid = _int(vendor.get("isv_prodid"))
        yield CheckResult(
            "sgx.isv-prodid", prodid == refs.isv_prodid, f"ISV product id {prodid}, {refs.isv_prodid} required"
        )
    if refs.minimum_isv_svn is not None:
        svn = _int(vendor.get("isv_svn"))
        ok = svn is not None and svn >= refs.minimum_isv_svn
        yield CheckResult("sgx.isv-svn", ok, f"ISV SVN {svn}, at least {refs.minimum_isv_svn} required")


def _maa(claims: Claims, refs: MaaReference) -> Iterator[CheckResult]:
    vendor = claims.vendor
    if refs.attestation_types is not None:
        kind = vendor.get("x-ms-attestation-type")
        ok = isinstance(kind, str) and kind in refs.attestation_types
        yield CheckResult(
            "maa.attestation-type",
            ok,
            f"attestation type {_shown(kind)}, one of {', '.join(refs.attestation_types)} required",
        )
    yield from _measurements(
        claims,
        "maa",
        {
            "mrenclave": refs.mrenclave,
            "mrsigner": refs.mrsigner,
            "measurement": refs.launch_measurement,
            "mrtd": refs.mrtd,
        },
    )
    if refs.product_id is not None:
        product = _int(vendor.get("x-ms-sgx-product-id"))
        yield CheckResult(
            "maa.product-id", product == refs.product_id, f"product id {product}, {refs.product_id} required"
        )
    if refs.minimum_svn is not None:
        svn = _int(vendor.get("x-ms-sgx-svn"))
        ok = svn is not None and svn >= refs.minimum_svn
        yield CheckResult("maa.svn", ok, f"SVN {svn}, at least {refs.minimum_svn} required")
    if refs.policy_hashes is not None:
        policy = vendor.get("x-ms-policy-hash")
        ok = isinstance(policy, str) and policy in refs.policy_hashes
        yield CheckResult(
            "maa.policy-hash",
            ok,
            f"attestation policy hash {_shown(policy)}, one of {', '.join(refs.policy_hashes)} required",
        )
    if refs.compliance_status is not None:
        status = vendor.get("x-ms-compliance-status")
        ok = status == refs.compliance_status
        yield CheckResult(
            "maa.compliance-status", ok, f"compliance status {_shown(status)}, {refs.compliance_status} required"
        )


def _nvidia_gpu(claims: Claims, refs: NvidiaGpuReference) -> Iterator[CheckResult]:
    vendor = claims.vendor
    for check, field, accepted in (("driver", "driver_version", refs.drivers), ("vbios", "vbios_version", refs.vbios)):
        if accepted is not None:
            actual = vendor.get(field)
            ok = isinstance(actual, str) and actual in accepted
            yield CheckResult(
                f"nvidia-gpu.{check}", ok, f"{check} version {_shown(actual)}, one of {', '.join(accepted)} required"
            )
    if refs.require_ocsp:
        checked = vendor.get("ocsp") == "good"
        yield CheckResult(
            "nvidia-gpu.revocation",
            checked,
            f"certificate status by OCSP: {claims.signer.revocation}"
            + ("" if checked else " (an OCSP check is required)"),
        )


def _one_of(name: str, actual: bytes | None, accepted: tuple[bytes, ...]) -> CheckResult:
    if actual is None:
        return CheckResult(name, False, "absent from the evidence")
    if actual in accepted:
        return CheckResult(name, True, f"{actual.hex()} is an accepted value")
    choices = ", ".join(value.hex() for value in accepted)
    return CheckResult(name, False, f"{actual.hex()} is not an accepted value ({choices})")


def _nitro(claims: Claims, refs: NitroReference) -> Iterator[CheckResult]:
    for index, accepted in sorted(refs.pcrs.items()):
        yield _one_of(f"nitro.pcr{index}", claims.measurements.get(f"pcr{index}"), accepted)


def _snp(claims: Claims, refs: SnpReference) -> Iterator[CheckResult]:
    vendor = claims.vendor
    if refs.measurement is not None:
        yield _one_of("sev-snp.measurement", claims.measurements.get("measurement"), refs.measurement)
    if refs.minimum_tcb is not None:
        yield from _minimum_tcb(claims.tcb, refs.minimum_tcb.model_dump(exclude_none=True))
    if refs.policy is not None:
        yield from _policy(_mapping(vendor.get("policy_flags")), refs.policy)
    if refs.maximum_vmpl is not None:
        vmpl = _int(vendor.get("vmpl"))
        ok = vmpl is not None and vmpl <= refs.maximum_vmpl
        yield CheckResult("sev-snp.vmpl", ok, f"VMPL {vmpl}, at most {refs.maximum_vmpl} accepted")
    if refs.chip_ids is not None:
        chip = None if claims.hardware_id is None else bytes.fromhex(claims.hardware_id)
        yield _one_of("sev-snp.chip-id", chip, refs.chip_ids)
    if refs.minimum_guest_svn is not None:
        svn = _int(vendor.get("guest_svn"))
        ok = svn is not None and svn >= refs.minimum_guest_svn
        yield CheckResult("sev-snp.guest-svn", ok, f"guest SVN {svn}, at least {refs.minimum_guest_svn} required")
    exact: tuple[tuple[str, str, Any], ...] = (
        ("host-data", "host_data", None if refs.host_data is None else (refs.host_data,)),
        ("id-key-digest", "id_key_digest", refs.id_key_digests),
        ("author-key-digest", "author_key_digest", refs.author_key_digests),
        ("family-id", "family_id", None if refs.family_id is None else (refs.family_id,)),
        ("image-id", "image_id", None if refs.image_id is None else (refs.image_id,)),
    )
    for check, field, accepted in exact:
        if accepted is not None:
            actual = vendor.get(field)
            yield _one_of(f"sev-snp.{check}", actual if isinstance(actual, bytes) else None, accepted)


def _minimum_tcb(tcb: Mapping[str, int], minimum: Mapping[str, int]) -> Iterator[CheckResult]:
    for component, least in minimum.items():
        actual = tcb.get(component)
        name = f"sev-snp.minimum-tcb.{component}"
        if actual is None:
            yield CheckResult(name, False, f"the report has no {component} TCB component")
        else:
            yield CheckResult(name, actual >= least, f"{component} SVN {actual}, at least {least} required")


def _policy(flags: Mapping[str, Any], policy: SnpPolicy) -> Iterator[CheckResult]:
    expected = policy.model_dump(exclude_none=True)
    minimum_abi = expected.pop("minimum_abi", None)
    for bit, want in expected.items():
        actual = flags.get(bit)
        yield CheckResult(f"sev-snp.policy.{bit}", actual is want, f"policy {bit} is {actual}, {want} required")
    if minimum_abi is not None:
        actual_abi = (flags.get("abi_major"), flags.get("abi_minor"))
        ok = all(isinstance(v, int) for v in actual_abi) and actual_abi >= tuple(minimum_abi)
        yield CheckResult(
            "sev-snp.policy.minimum-abi",
            ok,
            f"policy requires ABI {actual_abi[0]}.{actual_abi[1]}, at least {minimum_abi[0]}.{minimum_abi[1]} required",
        )


def _shown(value: object) -> str:
    """A vendor value in a check's detail: bytes as hex, the rest as text."""
    return value.hex() if isinstance(value, bytes) else str(value)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
