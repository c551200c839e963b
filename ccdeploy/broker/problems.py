"""Typed denials and their RFC 9457 problem+json responses.

Everything the broker refuses is a :class:`Denied`: a :class:`~ccdeploy.release.protocol.DenialReason`,
the HTTP status it maps to, and a detail (never key material, never a nonce). A detail that describes the
broker's own infrastructure goes to the audit and server logs only; the caller gets the denial's public detail.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from ccdeploy.errors import ReleaseDenied
from ccdeploy.release.protocol import PROBLEM_MEDIA_TYPE, DenialReason, Problem

__all__ = ["STATUS_FOR_REASON", "TITLES", "Denied", "problem_document", "problem_response"]

TITLES: dict[DenialReason, str] = {
    DenialReason.MALFORMED_REQUEST: "Malformed request",
    DenialReason.UNAUTHORIZED: "Unauthorized",
    DenialReason.RATE_LIMITED: "Too many requests",
    DenialReason.MODEL_UNKNOWN: "Unknown model",
    DenialReason.SUITE_UNSUPPORTED: "HPKE suite or key not supported",
    DenialReason.NONCE_UNKNOWN: "Unknown nonce",
    DenialReason.NONCE_REPLAYED: "Nonce already used",
    DenialReason.NONCE_EXPIRED: "Nonce expired",
    DenialReason.NONCE_MISMATCH: "Evidence is for another nonce",
    DenialReason.BINDING_MISMATCH: "Evidence does not bind these enclave keys",
    DenialReason.EVIDENCE_INVALID: "Evidence invalid",
    DenialReason.EVIDENCE_UNVERIFIABLE: "Evidence could not be verified",
    DenialReason.EVIDENCE_STALE: "Evidence too old",
    DenialReason.PLATFORM_NOT_ACCEPTED: "Platform not accepted",
    DenialReason.DEBUG_NOT_ALLOWED: "Debug enclave not allowed",
    DenialReason.MEASUREMENT_MISMATCH: "Measurement not accepted",
    DenialReason.GPU_REQUIRED: "Confidential GPU required",
    DenialReason.POLICY_EXPRESSION_FAILED: "Policy expression failed",
    DenialReason.PROVENANCE_MISSING: "Provenance missing",
    DenialReason.PROVENANCE_INVALID: "Provenance invalid",
    DenialReason.SIGNER_MISMATCH: "Signer not accepted",
    DenialReason.BOM_MISMATCH: "BOM not accepted",
    DenialReason.KEY_UNAVAILABLE: "Key unavailable",
    DenialReason.INTERNAL: "Internal error",
}

STATUS_FOR_REASON: dict[DenialReason, int] = {
    DenialReason.MALFORMED_REQUEST: 400,
    DenialReason.SUITE_UNSUPPORTED: 400,
    DenialReason.UNAUTHORIZED: 401,
    DenialReason.MODEL_UNKNOWN: 404,
    DenialReason.RATE_LIMITED: 429,
    DenialReason.KEY_UNAVAILABLE: 503,
    DenialReason.INTERNAL: 500,
}
"""The status of each reason not answered 403 (every evidence, nonce and policy denial is 403)."""


class Denied(ReleaseDenied):
    """A refusal by the broker, with its typed reason and HTTP status.

    Args:
        reason: the typed reason.
        detail: what went wrong, for the caller and the audit log (no secrets).
        status: the HTTP status (default: the reason's usual status).
        retry_after: seconds the caller should wait (rate limits), if any.
        public_detail: what the caller is told instead of ``detail`` when ``detail`` names the broker's own
            infrastructure (KEK or database errors): ``detail`` then goes to the audit log and server log only.
    """

    def __init__(
        self,
        reason: DenialReason,
        detail: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        public_detail: str | None = None,
    ) -> None:
        super().__init__(detail, reason.value, status if status is not None else STATUS_FOR_REASON.get(reason, 403))
        self.denial = reason
        self.detail = detail
        self.retry_after = retry_after
        self.public_detail = public_detail


def problem_document(reason: DenialReason, status: int, detail: str, instance: str | None = None) -> dict[str, Any]:
    """The RFC 9457 problem document (with the ``reason`` extension member) as JSON-ready data."""
    problem = Problem(
        type=reason.type_uri, title=TITLES.get(reason, reason.value), status=status, detail=detail, reason=reason
    )
    document = problem.model_dump(mode="json", exclude_none=True)
    if instance is not None:
        document["instance"] = instance
    return document


def problem_response(denied: Denied, instance: str | None = None) -> JSONResponse:
    """The ``application/problem+json`` response of a denial (``Retry-After`` set for rate limits)."""
    headers: dict[str, str] = {}
    if denied.retry_after is not None:
        headers["Retry-After"] = str(max(1, int(denied.retry_after + 0.999)))
    if denied.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="ccdeploy-broker"'
    return JSONResponse(
        problem_document(denied.denial, denied.status, denied.public_detail or denied.detail, instance),
        status_code=denied.status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )
