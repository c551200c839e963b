"""One verification run end to end (verify, then appraise) as a typed result with a stable JSON shape.

The JSON shape is a contract other tools read (``ccdeploy attest verify --json``)::

    {"verdict": "verified" | "invalid" | "unverifiable", "tee": "...", "claims": {...} | null,
     "checks": [{"name": ..., "ok": ..., "detail": ...}], "error": {"type": ..., "message": ...} | null}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from cryptography import x509

from attestation.appraise import Appraisal, CheckResult, appraise
from attestation.claims import Claims, Tee, rfc3339
from attestation.collateral import Collateral
from attestation.errors import AttestationError, CouldNotVerify
from attestation.fetch import Fetcher
from attestation.reference import ReferenceValues
from attestation.verify import Verifier, verify

Verdict = Literal["verified", "invalid", "unverifiable"]

#: What each verifier checked when it returned claims (the checks it raises for otherwise), in order.
VERIFIER_STEPS: dict[Tee, tuple[tuple[str, str], ...]] = {
    Tee.NITRO: (
        ("format", "untagged or tag-18 COSE_Sign1 with ES384 in the protected header; strict CBOR payload"),
        ("signature", "ES384 signature by the document's certificate"),
        ("chain", "cabundle, root first, chains the certificate to a trusted AWS Nitro Enclaves root"),
    ),
    Tee.SEV_SNP: (
        ("format", "1184-byte ATTESTATION_REPORT of a supported version, ECDSA P-384 signature algorithm"),
        ("signature", "ECDSA P-384/SHA-384 signature by the VCEK or VLEK"),
        ("chain", "VCEK/VLEK <- ASK/ASVK <- ARK (RSASSA-PSS), ARK a trusted root for the product"),
        (
            "signing-key-binding",
            "the certificate's key type and TCB match the report, and its hwID the chip id unless masked",
        ),
    ),
}


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """The verdict of one verification with everything that led to it."""

    verdict: Verdict
    tee: Tee
    claims: Claims | None
    checks: tuple[CheckResult, ...]
    error: AttestationError | None
    appraisal: Appraisal | None

    @classmethod
    def failed(cls, tee: Tee, error: AttestationError) -> VerificationResult:
        """The result of a verification that stopped at ``error`` (invalid, or unverifiable for CouldNotVerify)."""
        verdict: Verdict = "unverifiable" if isinstance(error, CouldNotVerify) else "invalid"
        return cls(verdict, tee, None, (CheckResult(error.check, False, error.message),), error, None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of ``ccdeploy attest verify --json``."""
        return {
            "verdict": self.verdict,
            "tee": self.tee.value,
            "claims": None if self.claims is None else self.claims.to_dict(),
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "error": None
            if self.error is None
            else {"type": type(self.error).__name__, "message": self.error.diagnostics()},
        }


def verify_and_appraise(
    evidence: bytes,
    *,
    tee: Tee,
    at: datetime | None,
    roots: Sequence[x509.Certificate] | None = None,
    collateral: Collateral | None = None,
    fetcher: Fetcher | None = None,
    unsafe_allow_simulator_roots: bool = False,
    reference_values: ReferenceValues | None = None,
    nonce: bytes | None = None,
    allow_debug: bool = False,
    verifier: Verifier | None = None,
) -> VerificationResult:
    """Run :func:`attestation.verify` then :func:`attestation.appraise` and collect a result.

    Only :class:`~attestation.errors.AttestationError` is turned into a verdict; anything else is a bug and
    propagates. See :func:`attestation.verify` and :func:`attestation.appraise` for the arguments.
    """
    try:
        claims = verify(
            evidence,
            tee=tee,
            at=at,
            roots=roots,
            collateral=collateral,
            fetcher=fetcher,
            unsafe_allow_simulator_roots=unsafe_allow_simulator_roots,
            verifier=verifier,
        )
    except AttestationError as failure:
        return VerificationResult.failed(tee, failure)
    appraisal = appraise(claims, reference_values, nonce=nonce, allow_debug=allow_debug)
    checks = _verifier_checks(claims, at) + appraisal.results
    violation = appraisal.error()
    verdict: Verdict = "verified" if violation is None else "invalid"
    return VerificationResult(verdict, tee, claims, checks, violation, appraisal)


def _verifier_checks(claims: Claims, at: datetime | None) -> tuple[CheckResult, ...]:
    steps = [CheckResult(name, True, detail) for name, detail in VERIFIER_STEPS.get(claims.tee, ())]
    when = at if at is not None else claims.issued_at
    moment = "the evidence's own time" if at is None else "the time given"
    stamp = "" if when is None else f" {rfc3339(when)}"
    steps.append(CheckResult("validity", True, f"every certificate is valid at {moment}{stamp}"))
    if not claims.signer.revocation.startswith("not checked"):
        steps.append(CheckResult("revocation", True, claims.signer.revocation))
    return tuple(steps)
