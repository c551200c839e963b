"""Pure verification of TEE attestation evidence into TEE-neutral claims, and their appraisal.

Verification and appraisal are separate steps, as in go-sev-guest (``verify`` vs ``validate``) and trustee::

    from attestation import ReferenceValues, appraise, verify

    claims = verify(document, tee="nitro", at=None)              # signature, chain, validity -> Claims
    appraise(claims, ReferenceValues.load("refs.yaml"), nonce=n).raise_for_failure()

Verifiers never read the clock, the network, environment variables or files: time, trust roots, collateral and
a fetcher are arguments. This package imports nothing from the other ccdeploy packages.
"""

from attestation.appraise import Appraisal, CheckResult, appraise
from attestation.claims import Claims, SignerChain, Tee
from attestation.collateral import Collateral
from attestation.errors import (
    AttestationError,
    BadChain,
    BadSignature,
    CertificateMismatch,
    CollateralMissing,
    CouldNotVerify,
    DebugNotAllowed,
    EvidenceInvalid,
    Expired,
    FetchFailed,
    MalformedEvidence,
    NonceMismatch,
    NotYetValid,
    OutsideValidity,
    ReferenceValueViolation,
    Revoked,
    UntrustedSimulatorRoot,
)
from attestation.evidence import decode_evidence, detect_tee
from attestation.fetch import CachingFetcher, Fetcher, HttpFetcher
from attestation.reference import ReferenceValues, ReferenceValuesInvalid
from attestation.result import VerificationResult, verify_and_appraise
from attestation.roots import pinned_intermediates, pinned_roots
from attestation.verify import VERIFIER_FOR_TEE, verifier_for, verify

__all__ = [
    "VERIFIER_FOR_TEE",
    "Appraisal",
    "AttestationError",
    "BadChain",
    "BadSignature",
    "CachingFetcher",
    "CertificateMismatch",
    "CheckResult",
    "Claims",
    "Collateral",
    "CollateralMissing",
    "CouldNotVerify",
    "DebugNotAllowed",
    "EvidenceInvalid",
    "Expired",
    "FetchFailed",
    "Fetcher",
    "HttpFetcher",
    "MalformedEvidence",
    "NonceMismatch",
    "NotYetValid",
    "OutsideValidity",
    "ReferenceValueViolation",
    "ReferenceValues",
    "ReferenceValuesInvalid",
    "Revoked",
    "SignerChain",
    "Tee",
    "UntrustedSimulatorRoot",
    "VerificationResult",
    "appraise",
    "decode_evidence",
    "detect_tee",
    "pinned_intermediates",
    "pinned_roots",
    "verifier_for",
    "verify",
    "verify_and_appraise",
]
