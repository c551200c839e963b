"""The enclave runtime's error tree."""

from __future__ import annotations


class EnclaveError(Exception):
    """Root of every error the enclave runtime raises on purpose."""

    exit_code = 1


class RuntimeUnavailable(EnclaveError):
    """ONNX Runtime, or the execution provider asked for, is not usable here (could not run: exit 3)."""

    exit_code = 3


class ModelRejected(EnclaveError):
    """ONNX Runtime refused the model bytes (malformed, unsupported IR or opset)."""


class AttesterUnavailable(EnclaveError):
    """No attestation device is usable here, or the chosen one cannot produce acceptable evidence (exit 3)."""

    exit_code = 3


class AttestationFailed(EnclaveError):
    """The attestation device answered, but with an error or evidence that does not hold what was asked (exit 1)."""


class ReleaseFailed(EnclaveError):
    """A granted release is unusable: the key does not open here or does not belong to the artifact (exit 1).

    Either the sealed key does not open with this enclave's HPKE key and release context, or the
    artifact's header MAC rejects the key.
    """


class ServerUnavailable(EnclaveError):
    """The inference server cannot start: its address is in use or cannot be bound (exit 3)."""

    exit_code = 3
