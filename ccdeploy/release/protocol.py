"""The release protocol's wire models (JSON over HTTP), shared by the broker, the enclave and tests.

Bytes travel as unpadded-or-padded standard base64 text (``B64``); times as RFC 3339. Models are frozen
and refuse unknown fields, so a request is parsed once at the edge and never re-validated.

Endpoints (``ccdeploy broker serve``)::

    POST /v1/challenge             -> Challenge
    POST /v1/release  ReleaseRequest -> ReleaseGrant | problem+json (Denial)
    GET  /v1/log/checkpoint        -> text/plain C2SP signed checkpoint
    POST /v1/models   (admin)      -> registered model
"""

from __future__ import annotations

import base64
import binascii
import enum
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from ccdeploy.release.hpke import HpkeSuite

__all__ = [
    "B64",
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_TYPE_BASE",
    "Challenge",
    "DenialReason",
    "Problem",
    "ReleaseGrant",
    "ReleaseRequest",
    "RequestCollateral",
    "b64",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://ccdeploy.dev/problems/"
MAX_EVIDENCE_BYTES = 256 * 1024
MAX_RIMS = 16
"""Two RIMs (driver and VBIOS) per GPU model; a few models at most."""
MAX_RIM_BYTES = 128 * 1024
MAX_OCSP_RESPONSES = 32
"""One per non-root certificate of each GPU's device chain and each RIM signer chain."""
MAX_OCSP_BYTES = 8 * 1024
MAX_DCAP_BYTES = 256 * 1024


def b64(data: bytes) -> str:
    """Standard base64 with padding: how bytes are written on the wire."""
    return base64.b64encode(data).decode("ascii")


def _from_b64(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise ValueError("expected base64 text")
    text = value.strip()
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64") from None


B64 = Annotated[bytes, BeforeValidator(_from_b64), PlainSerializer(b64, return_type=str)]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DenialReason(enum.StrEnum):
    """Why a release was refused: the ``reason`` member of the problem document, and its type URI's tail."""

    MALFORMED_REQUEST = "malformed-request"
    UNAUTHORIZED = "unauthorized"
    RATE_LIMITED = "rate-limited"
    MODEL_UNKNOWN = "model-unknown"
    SUITE_UNSUPPORTED = "suite-unsupported"
    NONCE_UNKNOWN = "nonce-unknown"
    NONCE_REPLAYED = "nonce-replayed"
    NONCE_EXPIRED = "nonce-expired"
    NONCE_MISMATCH = "nonce-mismatch"
    BINDING_MISMATCH = "binding-mismatch"
    EVIDENCE_INVALID = "evidence-invalid"
    EVIDENCE_UNVERIFIABLE = "evidence-unverifiable"
    EVIDENCE_STALE = "evidence-stale"
    PLATFORM_NOT_ACCEPTED = "platform-not-accepted"
    DEBUG_NOT_ALLOWED = "debug-not-allowed"
    MEASUREMENT_MISMATCH = "measurement-mismatch"
    GPU_REQUIRED = "gpu-required"
    GPU_INVALID = "gpu-invalid"
    POLICY_EXPRESSION_FAILED = "policy-expression-failed"
    PROVENANCE_MISSING = "provenance-missing"
    PROVENANCE_INVALID = "provenance-invalid"
    SIGNER_MISMATCH = "signer-mismatch"
    BOM_MISMATCH = "bom-mismatch"
    KEY_UNAVAILABLE = "key-unavailable"
    INTERNAL = "internal-error"

    @property
    def type_uri(self) -> str:
        """The RFC 9457 ``type`` URI of this reason."""
        return PROBLEM_TYPE_BASE + self.value


class Problem(_Wire):
    """An RFC 9457 problem document with the typed ``reason`` extension member."""

    model_config = ConfigDict(frozen=True, extra="allow")

    type: str
    title: str
    status: int
    detail: str = ""
    reason: DenialReason
    instance: str | None = None


class Challenge(_Wire):
    """``POST /v1/challenge``: a single-use nonce and when it stops being accepted."""

    nonce: B64
    expires_at: datetime


class RequestCollateral(_Wire):
    """Collateral the enclave sends with its evidence, so that an offline broker can verify it.

    Everything here is signed by its vendor (RIMs by NVIDIA's RIM signing CA, OCSP responses by the certificates'
    issuers, DCAP collateral by Intel's TCB signing key and CAs) and checked against pinned or policy roots, so an
    untrusted sender cannot forge it; at most it can send stale or irrelevant documents, which verify to nothing.
    The broker adds its own collateral (see ``ReleaseService``).
    """

    rims: tuple[Annotated[B64, Field(min_length=1, max_length=MAX_RIM_BYTES)], ...] = Field((), max_length=MAX_RIMS)
    """NVIDIA RIMs (SWID XML with an enveloped signature), driver and VBIOS."""
    ocsp: tuple[Annotated[B64, Field(min_length=1, max_length=MAX_OCSP_BYTES)], ...] = Field(
        (), max_length=MAX_OCSP_RESPONSES
    )
    """DER OCSP responses for the GPUs' certificates."""
    dcap: Annotated[str, Field(min_length=2, max_length=MAX_DCAP_BYTES)] | None = None
    """Intel DCAP collateral for a TDX quote, as dcap-qvl's ``QuoteCollateralV3`` JSON text."""


class ReleaseRequest(_Wire):
    """``POST /v1/release``: the model wanted, evidence bound to the nonce and the enclave's keys."""

    model: Annotated[str, Field(min_length=1, max_length=200)]
    nonce: B64
    evidence: Annotated[B64, Field(max_length=MAX_EVIDENCE_BYTES)]
    evidence_type: Annotated[str, Field(min_length=1, max_length=40)]
    """The attestation TEE type (``nitro``, ``sev-snp``, ``tdx``, ``maa``, ``composite``), as
    ``ccdeploy attest verify --type`` names it."""
    hpke_suite: HpkeSuite = HpkeSuite.XWING
    hpke_public_key: B64
    tls_public_key: Annotated[B64, Field(max_length=4096)]
    """DER SubjectPublicKeyInfo of the enclave's TLS key."""
    collateral: RequestCollateral | None = None
    """Vendor-signed collateral for the evidence (NVIDIA RIMs and OCSP responses, Intel DCAP collateral)."""


class ReleaseGrant(_Wire):
    """A successful release: the data key sealed to the enclave, and the signed receipt."""

    model: str
    suite: HpkeSuite
    suite_name: str
    """The full HPKE suite (KEM, KDF, AEAD) the key was sealed with."""
    sealed_key: B64
    """HPKE ``enc ‖ ct`` of the 32-byte data key, ``info`` = :func:`ccdeploy.release.hpke.release_info`."""
    receipt: dict[str, Any]
    """The release receipt: a Sigstore bundle (v0.3 JSON) over an in-toto statement."""
    log_entry: dict[str, Any]
    """The receipt's transparency-log entry: ``index``, ``tree_size``, ``inclusion_proof``, ``checkpoint``."""
