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
