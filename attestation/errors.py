"""The one error tree of the attestation package.

Two branches, because callers must tell them apart:

* :class:`EvidenceInvalid` — a decision: the evidence is malformed, badly signed, outside its validity, revoked,
  not bound to the expected nonce, or violates the reference values. A key must not be released (exit 1).
* :class:`CouldNotVerify` — no decision: collateral (a VCEK, a CRL, a time to check against) is missing or could
  not be fetched. Also fails closed, but retrying with the collateral may succeed (exit 3).

Every error names the ``check`` that failed, so results can be reported check by check.
"""

from __future__ import annotations

from typing import ClassVar


class AttestationError(Exception):
    """Base of every error raised by :mod:`attestation`."""

    check: ClassVar[str] = "attestation"
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def diagnostics(self) -> str:
        """A one-paragraph explanation for people (no evidence secrets, no key material)."""
        return f"{type(self).__name__}: {self.message}"


class EvidenceInvalid(AttestationError):
    """The evidence was checked and is not acceptable."""


class MalformedEvidence(EvidenceInvalid):
    """The evidence cannot be decoded, is over a size limit, has wrong types, or is an unsupported version."""

    check = "format"


class BadSignature(EvidenceInvalid):
    """The signature over the evidence does not verify with the signing key."""

    check = "signature"


class BadChain(EvidenceInvalid):
    """The signing certificate does not chain to a trusted root."""

    check = "chain"


class UntrustedSimulatorRoot(BadChain):
    """The chain ends in an evidence-simulator root, and simulator roots were not explicitly trusted."""


class CertificateMismatch(BadChain):
    """The signing certificate chains correctly but does not belong to this evidence (TCB, chip id, key type)."""

    check = "signing-key-binding"


class OutsideValidity(EvidenceInvalid):
    """A certificate or collateral is not valid at the time of the check."""

    check = "validity"


class Expired(OutsideValidity):
    """A certificate or collateral expired before the time of the check."""


class NotYetValid(OutsideValidity):
    """A certificate or collateral only becomes valid after the time of the check."""


class Revoked(EvidenceInvalid):
    """A certificate of the chain is listed in the given revocation list."""

    check = "revocation"


class NonceMismatch(EvidenceInvalid):
    """The evidence is not bound to the expected nonce (stale or replayed)."""

    check = "nonce"


class ReferenceValueViolation(EvidenceInvalid):
    """Verified claims do not match the reference values."""

    check = "reference-values"


class DebugNotAllowed(ReferenceValueViolation):
    """The TEE runs in debug mode (its memory is readable by the host) and debug was not allowed."""

    check = "debug"


class CouldNotVerify(AttestationError):
    """Verification could not reach a decision."""

    exit_code = 3


class CollateralMissing(CouldNotVerify):
    """Collateral needed for the decision (signing certificate, CRL, time) was not given."""

    check = "collateral"


class FetchFailed(CouldNotVerify):
    """Collateral could not be fetched (network error, rate limit, unexpected answer)."""

    check = "collateral"
