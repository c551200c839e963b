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
from attestation.errors import DebugNotAllowed, EvidenceInvalid, NonceMismatch, ReferenceValueViolation
from attestation.reference import NitroReference, ReferenceValues, SnpPolicy, SnpReference


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one appraisal check.

    Attributes:
        name: Dotted check name, e.g. ``"debug"``, ``"nitro.pcr0"``, ``"sev-snp.minimum-tcb.snp"``.
        ok: Whether the claims satisfy the check.
        detail: The reason, in words (expected and actual values on failure).
        error: The error type :meth:`Appraisal.raise_for_failure` raises when this check failed.
    """

    name: str
    ok: bool
    detail: str
    error: type[EvidenceInvalid] = ReferenceValueViolation


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

    def error(self) -> EvidenceInvalid | None:
        """The typed error of the first failed check, its message listing every failure; ``None`` if all passed."""
        failures = self.failures
        if not failures:
            return None
        return failures[0].error("; ".join(f"{f.name}: {f.detail}" for f in failures))

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
    results = [_debug(claims, allow_debug or (refs is not None and refs.allow_debug))]
    if nonce is not None:
        results.append(_nonce(claims, nonce))
    if refs is not None:
        results.extend(_reference(claims, refs))
    return Appraisal(claims, tuple(results))


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
    if claims.nonce is not None:
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


def _reference(claims: Claims, refs: ReferenceValues) -> Iterator[CheckResult]:
    section: NitroReference | SnpReference | None = {Tee.NITRO: refs.nitro, Tee.SEV_SNP: refs.sev_snp}.get(claims.tee)
    if section is None:
        yield CheckResult(
            "reference-values", False, f"the reference values name no expected values for {claims.tee.value}"
        )
    elif isinstance(section, NitroReference):
        yield from _nitro(claims, section)
    else:
        yield from _snp(claims, section)


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


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
