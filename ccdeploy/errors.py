"""The ccdeploy error tree.

Every failure the library reports is a :class:`CcdError`. Each carries the process exit code the CLI
uses for it and a message fit to show a user: it never contains key material, plaintext or secrets.

Exit codes: 1 = a decision (invalid, denied, tampered), 2 = usage, 3 = could not check (missing
collateral, unreachable service, environment).
"""

from __future__ import annotations

__all__ = [
    "ArtifactCorrupt",
    "ArtifactTampered",
    "AuditChainBroken",
    "BrokerConfigError",
    "BrokerUnavailable",
    "BundleMalformed",
    "CcdError",
    "CouldNotCheck",
    "DecisionError",
    "DependencyMissing",
    "EnclaveRejected",
    "InferenceRejected",
    "KekError",
    "KekUnavailable",
    "LayoutInvalid",
    "ModelInputError",
    "PolicyInvalid",
    "ReleaseDenied",
    "SignatureInvalid",
    "SignerError",
    "SignerUnavailable",
    "SubjectMismatch",
    "TrustRootInvalid",
    "UnsupportedFormat",
    "UntrustedSigner",
    "UsageError",
    "WrongKek",
]

EXIT_DECISION = 1
EXIT_USAGE = 2
EXIT_COULD_NOT_CHECK = 3


class CcdError(Exception):
    """Root of every error ccdeploy raises on purpose."""

    exit_code: int = EXIT_DECISION

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def diagnostics(self) -> str:
        """Return the message to show a user."""
        return self.message


class DecisionError(CcdError):
    """A security decision went against the input: invalid, tampered, denied (exit 1)."""

    exit_code = EXIT_DECISION


class UsageError(CcdError):
    """The caller asked for something that cannot be done as asked (exit 2)."""

    exit_code = EXIT_USAGE


class CouldNotCheck(CcdError):
    """The check could not be carried out: environment, service or collateral missing (exit 3)."""

    exit_code = EXIT_COULD_NOT_CHECK


class ArtifactCorrupt(DecisionError):
    """A sealed artifact is malformed: bad magic, truncated, trailing bytes, unparsable header."""


class ArtifactTampered(DecisionError):
    """A sealed artifact failed authentication: header MAC, segment tag or plaintext digest."""


class UnsupportedFormat(DecisionError):
    """A sealed artifact uses a format version or algorithm this build does not implement."""


class WrongKek(DecisionError):
    """No recipient of the artifact could be opened with the key-encryption key given."""


class KekError(UsageError):
    """A key-encryption-key URI or key file is malformed or unusable."""


class KekUnavailable(CouldNotCheck):
    """The key-encryption-key backend could not be reached or is not installed."""


class DependencyMissing(CouldNotCheck):
    """An optional dependency needed for this operation is not installed."""


class ModelInputError(UsageError):
    """The model path to seal is unusable: missing, empty, a symlink, or changed while sealing."""


class BundleMalformed(DecisionError):
    """A signature bundle or envelope cannot be parsed, or uses a version or media type this build refuses."""


class SignatureInvalid(DecisionError):
    """A signature, certificate chain, transparency-log proof or timestamp did not verify."""


class SubjectMismatch(DecisionError):
    """The digests recomputed from the files differ from the subjects the statement signs."""


class UntrustedSigner(DecisionError):
    """The signature verifies, but its signer is not the one required (identity, issuer, key, builder, source)."""


class LayoutInvalid(DecisionError):
    """An in-toto layout or its links failed verification: signature, expiry, threshold, rules or inspections."""


class TrustRootInvalid(UsageError):
    """A trust root given to verify with (trusted_root.json, key, CA certificate) is malformed or unusable."""


class SignerError(UsageError):
    """A signer URI, key or certificate is malformed or unusable."""


class SignerUnavailable(CouldNotCheck):
    """The signer could not be reached: HSM, Sigstore services, identity provider, or a missing dependency."""


class PolicyInvalid(UsageError):
    """A release policy is empty, unknown, unparsable or inconsistent (it fails closed)."""


class ReleaseDenied(DecisionError):
    """The broker refused to release a key; ``reason`` is the typed reason of its problem document."""

    def __init__(self, message: str, reason: str = "denied", status: int = 403) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


class BrokerUnavailable(CouldNotCheck):
    """The key broker, or its database, could not be reached or answered something unusable."""


class BrokerConfigError(UsageError):
    """The broker's configuration (database URL, keys, token) is malformed or unusable."""


class AuditChainBroken(DecisionError):
    """The audit log's hash chain, or the transparency log, does not verify: it has been altered."""


class EnclaveRejected(DecisionError):
    """A client refused the serving enclave: its evidence, binding or TLS key did not check out."""


class InferenceRejected(UsageError):
    """The inference server refused a request (4xx): wrong input name, dtype, shape or size."""
