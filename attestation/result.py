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
    Tee.TDX: (
        ("format", "Intel DCAP quote v4 or v5 (TD 1.0 or TD 1.5 body), ECDSA P-256 attestation key"),
        ("signature", "quote signature by the attestation key; QE report signature by the PCK key"),
        ("qe-binding", "QE report data = SHA-256(attestation key || QE authentication data)"),
        ("chain", "PCK certificate <- Intel SGX PCK CA <- trusted Intel SGX Root CA"),
    ),
    Tee.SGX: (
        ("format", "Intel DCAP SGX ECDSA quote v3, ECDSA P-256 attestation key"),
        ("signature", "quote signature by the attestation key; QE report signature by the PCK key"),
        ("qe-binding", "QE report data = SHA-256(attestation key || QE authentication data)"),
        ("chain", "PCK certificate <- Intel SGX PCK CA <- trusted Intel SGX Root CA"),
    ),
    Tee.MAA: (
        ("format", "compact JWS with a pinned algorithm and a key id"),
        ("issuer", "iss is the expected attestation provider, and jku is that provider's /certs"),
        ("signature", "signature by the JWKS key named by kid, whose x5c certificate holds that key"),
        ("time", "nbf <= time and time < exp, within the stated clock skew"),
    ),
    Tee.NVIDIA_GPU: (
        ("format", "SPDM GET_MEASUREMENTS request and response, parsed by lengths"),
        ("signature", "ECDSA P-384 signature over request || response by the attestation key"),
        ("chain", "attestation key certificate chains to a trusted NVIDIA Device Identity root"),
        ("fwid", "the leaf certificate's TCG DICE FWID equals the report's FWID"),
    ),
    Tee.COMPOSITE: (
        ("format", "ccdeploy-composite/v1: one CPU evidence and at least one GPU evidence"),
        ("cpu", "the CPU evidence verifies as its own type"),
        ("gpus", "every GPU evidence verifies (SPDM signature, device chain, FWID, RIMs)"),
        ("gpu-nonce", "every GPU answered SHA-256('ccdeploy/gpu-nonce/v1' || the CPU's report data)"),
        ("distinct-devices", "no GPU appears twice"),
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
    checks = _verifier_checks(tee, claims, at) + appraisal.results
    violation = appraisal.error()
    verdict: Verdict = (
        "verified" if violation is None else "unverifiable" if isinstance(violation, CouldNotVerify) else "invalid"
    )
    return VerificationResult(verdict, tee, claims, checks, violation, appraisal)


def _verifier_checks(tee: Tee, claims: Claims, at: datetime | None) -> tuple[CheckResult, ...]:
    steps = [CheckResult(name, True, detail) for name, detail in VERIFIER_STEPS.get(tee, ())]
    if tee is Tee.COMPOSITE:
        steps += [CheckResult(f"cpu.{name}", True, detail) for name, detail in VERIFIER_STEPS.get(claims.tee, ())]
        for device in claims.devices:
            label = str(device.vendor.get("device"))
            steps += [
                CheckResult(f"{label}.{name}", True, detail) for name, detail in VERIFIER_STEPS.get(device.tee, ())
            ]
    when = at if at is not None else claims.issued_at
    moment = "the evidence's own time" if at is None else "the time given"
    stamp = "" if when is None else f" {rfc3339(when)}"
    steps.append(CheckResult("validity", True, f"every certificate is valid at {moment}{stamp}"))
    if not claims.signer.revocation.startswith("not checked"):
        steps.append(CheckResult("revocation", True, claims.signer.revocation))
    return tuple(steps)
