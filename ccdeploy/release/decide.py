"""Release decisions under a policy: appraise an enclave's evidence, and check a sealed model's provenance and BOM.

Both functions are pure apart from the pinned trust material they read: time, evidence, the artifact's head and
stream digests and its provenance bundle come in as arguments. They run every check they can and report each
one (for ``ccdeploy policy test`` and the release receipt), and name the :class:`DenialReason` of the first
check that failed. Everything fails closed: a check that cannot be carried out is a failed check.

The nonce and the report-data binding are not checked here: the broker does that with the request in hand.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from sigstore.models import TrustedRoot

import attestation
from attestation import Claims, Collateral, CouldNotVerify, DebugNotAllowed, Fetcher, Tee
from attestation.composite import CompositeVerifier, parse_composite
from attestation.errors import AttestationError, NonceMismatch, ReferenceValueViolation
from attestation.roots import pinned_roots
from attestation.verify import Verifier
from ccdeploy._checks import Check
from ccdeploy.errors import CcdError, SignatureInvalid, UntrustedSigner
from ccdeploy.provenance.predicates import SEAL_BUILD_TYPE, SLSA_PREDICATE_TYPE
from ccdeploy.provenance.verify import (
    Report,
    SignerPolicy,
    TrustInputs,
    pinned_trusted_root,
    sealed_target,
    verify_bundle,
)
from ccdeploy.release.policy import ProvenanceRequirement, ReleasePolicy
from ccdeploy.release.protocol import DenialReason
from ccdeploy.seal.digest import DIGEST_ALGORITHM, SealedDigest, sealed_digest_from_parts

__all__ = [
    "CLOCK_SKEW",
    "EvidenceDecision",
    "ModelDecision",
    "PolicyCheck",
    "appraise_evidence",
    "check_model",
]

CLOCK_SKEW = timedelta(seconds=60)
"""Evidence may state a time this far after ``now`` (the enclave's clock runs ahead) and still be fresh."""


PolicyCheck = Check
"""One check of a release decision: its name, whether it held, and why (the shared :class:`ccdeploy._checks.Check`)."""


@dataclass(frozen=True)
class EvidenceDecision:
    """The evidence half of a decision: the verified claims (if verification got that far) and every check."""

    claims: Claims | None
    checks: tuple[PolicyCheck, ...]
    denial: DenialReason | None
    detail: str

    @property
    def ok(self) -> bool:
        """True when nothing denies the release."""
        return self.denial is None


@dataclass(frozen=True)
class ModelDecision:
    """The model half of a decision: the artifact, its provenance and its BOM, checked against the policy."""

    checks: tuple[PolicyCheck, ...]
    denial: DenialReason | None
    detail: str
    artifact_digest: str | None = None
    """The recomputed ``ccseal.v1.blake3`` digest (hex), when the head parsed."""
    header_sha256: str | None = None

    @property
    def ok(self) -> bool:
        """True when nothing denies the release."""
        return self.denial is None


class _Outcome:
    """Collects checks in order; the first failure gives the denial reason."""

    def __init__(self) -> None:
        self.checks: list[PolicyCheck] = []
        self.denial: DenialReason | None = None
        self.failures: list[str] = []

    def add(self, name: str, ok: bool, detail: str, reason: DenialReason) -> None:
        self.checks.append(PolicyCheck(name, ok, detail))
        if not ok:
            self.failures.append(f"{name}: {detail}")
            if self.denial is None:
                self.denial = reason

    @property
    def detail(self) -> str:
        return "; ".join(self.failures) if self.failures else "every check passed"


# --- evidence -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """What the evidence claims to be: its type, and for composite evidence the CPU type and the GPU count."""

    tee: Tee
    cpu: Tee
    gpus: int = 0


def appraise_evidence(
    policy: ReleasePolicy,
    evidence: bytes,
    evidence_type: str,
    *,
    now: datetime,
    fetcher: Fetcher | None = None,
    collateral: Collateral | None = None,
    model: Mapping[str, Any] | None = None,
) -> EvidenceDecision:
    """Verify ``evidence`` at ``now`` and appraise its claims against ``policy`` (the nonce is not checked here).

    Order: platform accepted (for composite evidence: its CPU type) → signature and chain (roots from
    ``policy.trust_roots`` for the platform, else the pinned ones; simulator roots only with
    ``unsafe_accept_simulator_roots``; for composite evidence every GPU too, its measurements against NVIDIA's
    RIMs and its nonce derived from the CPU's report data) → reference values, debug, and every check that could
    not be made for want of collateral → evidence age → GPU requirement (count, driver, VBIOS, OCSP) → CEL
    expressions.

    Args:
        policy: The model's release policy.
        evidence: Raw evidence bytes.
        evidence_type: The attestation TEE type (``nitro``, ``sev-snp``, ``tdx``, ``maa``, ``composite``).
        now: The decision time (timezone-aware); certificates are checked at it and the evidence age taken from it.
        fetcher: Fetches missing collateral (SEV-SNP VCEK, Intel PCS collateral, the MAA provider's keys);
            ``None``: offline.
        collateral: Collateral supplied with the evidence (SEV-SNP VCEK/VLEK and chain, DCAP collateral, NVIDIA
            RIMs and OCSP responses, an MAA JWKS).
        model: ``{"name", "artifact_id"}``, the ``model`` variable of CEL expressions.

    Returns:
        The decision; ``denial`` is ``None`` when every check passed.

    Raises:
        ValueError: ``now`` is naive (a programming error, not a verdict).
    """
    if now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    outcome = _Outcome()
    target = _accepted_target(policy, evidence, evidence_type, outcome)
    if target is None:
        return EvidenceDecision(None, tuple(outcome.checks), outcome.denial, outcome.detail)
    claims = _verify(policy, evidence, target, now, fetcher, collateral, outcome)
    if claims is None:
        return EvidenceDecision(None, tuple(outcome.checks), outcome.denial, outcome.detail)
    appraisal = attestation.appraise(claims, policy.reference_values(), nonce=None)
    for result in appraisal.results:
        outcome.add(result.name, result.ok, result.detail, _appraisal_reason(result.error))
    _age(policy, claims, now, outcome)
    _gpus(policy, claims, target, outcome)
    if policy.cel:
        document = claims.to_dict()
        activation_model = dict(model) if model is not None else {}
        for index, expression in enumerate(policy.cel):
            result_cel = expression.evaluate(document, activation_model)
            outcome.add(f"cel[{index}]", result_cel.ok, result_cel.detail, DenialReason.POLICY_EXPRESSION_FAILED)
    return EvidenceDecision(claims, tuple(outcome.checks), outcome.denial, outcome.detail)


def _appraisal_reason(error: type[AttestationError]) -> DenialReason:
    if issubclass(error, DebugNotAllowed):
        return DenialReason.DEBUG_NOT_ALLOWED
    if issubclass(error, CouldNotVerify):  # a check left undone for want of collateral (RIMs, DCAP collateral)
        return DenialReason.EVIDENCE_UNVERIFIABLE
    return DenialReason.MEASUREMENT_MISMATCH


def _accepted_target(policy: ReleasePolicy, evidence: bytes, evidence_type: str, outcome: _Outcome) -> _Target | None:
    accepted = ", ".join(policy.platforms.names())
    try:
        tee = Tee(evidence_type)
    except ValueError:
        tee = None
    if tee is None or tee not in _EVIDENCE_TYPES:
        detail = f"unknown evidence type {evidence_type[:40]!r}; the policy accepts {accepted} (alone or composite)"
        outcome.add("platform", False, detail, DenialReason.PLATFORM_NOT_ACCEPTED)
        return None
    target = _Target(tee, tee)
    described = tee.value
    if tee is Tee.COMPOSITE:
        try:
            document = parse_composite(evidence)
        except AttestationError as exc:
            outcome.add("evidence", False, exc.diagnostics(), DenialReason.EVIDENCE_INVALID)
            return None
        target = _Target(tee, document.cpu_type, len(document.gpus))
        described = f"composite evidence of a {document.cpu_type.value} CPU and {target.gpus} GPU(s):"
        described += f" {document.cpu_type.value}"
    ok = policy.platforms.accepts(target.cpu)
    detail = f"{described} is {'' if ok else 'not '}accepted (the policy accepts {accepted})"
    outcome.add("platform", ok, detail, DenialReason.PLATFORM_NOT_ACCEPTED)
    return target if ok else None


_EVIDENCE_TYPES = frozenset({Tee.NITRO, Tee.SEV_SNP, Tee.TDX, Tee.MAA, Tee.COMPOSITE})
"""Evidence types a release request may carry (a GPU alone proves nothing about the CPU that holds the key)."""


def _roots(policy: ReleasePolicy, tee: Tee) -> tuple[x509.Certificate, ...] | None:
    return policy.trust_roots.for_tee(tee) if policy.trust_roots is not None else None


def _verifier(policy: ReleasePolicy, target: _Target) -> tuple[Verifier | None, tuple[x509.Certificate, ...] | None]:
    """The configured verifier (``None``: the registered default) and the trust anchors for ``target``."""
    cpu_verifiers: dict[Tee, Verifier] = {}
    if target.cpu is Tee.MAA and policy.platforms.maa is not None:
        from attestation.tee.maa import MaaVerifier  # noqa: PLC0415 - loaded only for Azure Attestation tokens

        cpu_verifiers[Tee.MAA] = MaaVerifier(issuer=policy.platforms.maa.issuer)
    if target.tee is not Tee.COMPOSITE:
        return cpu_verifiers.get(target.tee), _roots(policy, target.tee)
    from attestation.tee.nvidia import NvidiaGpuVerifier  # noqa: PLC0415 - loaded only for composite evidence

    rim_roots = policy.trust_roots.nvidia_rim if policy.trust_roots is not None else None
    cpu_roots = _roots(policy, target.cpu) or pinned_roots(target.cpu)
    gpu_roots = _roots(policy, Tee.NVIDIA_GPU) or pinned_roots(Tee.NVIDIA_GPU)
    verifier = CompositeVerifier(
        cpu_verifiers=cpu_verifiers,
        gpu_verifier=NvidiaGpuVerifier(rim_roots=rim_roots),
        cpu_roots=cpu_roots,
        gpu_roots=gpu_roots,
    )
    return verifier, tuple(dict.fromkeys((*cpu_roots, *gpu_roots)))


def _verify(
    policy: ReleasePolicy,
    evidence: bytes,
    target: _Target,
    now: datetime,
    fetcher: Fetcher | None,
    collateral: Collateral | None,
    outcome: _Outcome,
) -> Claims | None:
    verifier, roots = _verifier(policy, target)
    try:
        claims = attestation.verify(
            evidence,
            tee=target.tee,
            at=now,
            roots=roots,
            collateral=collateral,
            fetcher=fetcher,
            unsafe_allow_simulator_roots=policy.unsafe_accept_simulator_roots,
            verifier=verifier,
        )
    except CouldNotVerify as exc:
        outcome.add("evidence", False, exc.diagnostics(), DenialReason.EVIDENCE_UNVERIFIABLE)
        return None
    except NonceMismatch as exc:  # a GPU answered a nonce not derived from this CPU evidence
        outcome.add("evidence", False, exc.diagnostics(), DenialReason.BINDING_MISMATCH)
        return None
    except ReferenceValueViolation as exc:  # a GPU's measurements differ from NVIDIA's signed RIMs
        name = "gpu.measurements" if target.tee is Tee.COMPOSITE else "evidence"
        outcome.add(name, False, exc.diagnostics(), DenialReason.MEASUREMENT_MISMATCH)
        return None
    except AttestationError as exc:
        outcome.add("evidence", False, exc.diagnostics(), DenialReason.EVIDENCE_INVALID)
        return None
    anchor = "policy trust root" if _roots(policy, target.cpu) is not None else "pinned root"
    simulated = " (an evidence-simulator root, accepted by the policy)" if claims.signer.simulated else ""
    devices = f" with {len(claims.devices)} GPU(s) bound to it" if claims.devices else ""
    detail = (
        f"{claims.platform} evidence{devices} verifies at {now.isoformat()} to the {anchor} "
        f"sha256:{claims.signer.root_sha256}{simulated}"
    )
    outcome.add("evidence", True, detail, DenialReason.EVIDENCE_INVALID)
    return claims


def _gpus(policy: ReleasePolicy, claims: Claims, target: _Target, outcome: _Outcome) -> None:
    """The policy's GPU requirement: enough GPUs, each with an accepted driver and VBIOS, OCSP when required."""
    requirement = policy.gpu
    devices = claims.devices
    if not requirement.required:
        detail = "no confidential GPU required"
        if devices:
            detail += f"; {len(devices)} GPU(s) verified against NVIDIA's RIMs and bound to the CPU evidence"
        outcome.add("gpu", True, detail, DenialReason.GPU_REQUIRED)
        return
    wanted = requirement.minimum_count
    if target.tee is not Tee.COMPOSITE:
        detail = (
            f"the policy requires {wanted} confidential GPU(s); the evidence is {target.tee.value} alone "
            "(GPUs are attested only in composite evidence)"
        )
        outcome.add("gpu.count", False, detail, DenialReason.GPU_REQUIRED)
        return
    names = ", ".join(_device_name(device, index) for index, device in enumerate(devices))
    detail = f"{len(devices)} GPU(s) verified and bound to the CPU evidence ({names}); at least {wanted} required"
    outcome.add("gpu.count", len(devices) >= wanted, detail, DenialReason.GPU_REQUIRED)
    for index, device in enumerate(devices):
        name = _device_name(device, index)
        for check, field, accepted in (
            ("driver", "driver_version", requirement.drivers),
            ("vbios", "vbios_version", requirement.vbios),
        ):
            if accepted:
                actual = device.vendor.get(field)
                ok = isinstance(actual, str) and actual in accepted
                detail = f"{name} {check} version {actual!s:.64}, one of {', '.join(accepted)} required"
                outcome.add(f"gpu.{name}.{check}", ok, detail, DenialReason.GPU_INVALID)
        if requirement.require_ocsp:
            status = device.vendor.get("ocsp")
            ok = status == "good"
            detail = f"{name} certificate status by OCSP: {status!s:.32} ({device.signer.revocation})"
            if not ok:
                detail += "; fresh good OCSP responses for every certificate are required"
            outcome.add(f"gpu.{name}.ocsp", ok, detail, DenialReason.GPU_INVALID)


def _device_name(device: Claims, index: int) -> str:
    name = device.vendor.get("device")
    return name if isinstance(name, str) and name else f"gpus[{index}]"


def _age(policy: ReleasePolicy, claims: Claims, now: datetime, outcome: _Outcome) -> None:
    limit = policy.max_evidence_age
    if claims.issued_at is None:
        outcome.add(
            "evidence.age",
            True,
            "the evidence states no time; its freshness rests on the nonce binding",
            DenialReason.EVIDENCE_STALE,
        )
        return
    age = now - claims.issued_at
    seconds = age.total_seconds()
    if age < -CLOCK_SKEW:
        detail = f"the evidence is dated {-seconds:.3f} s after the decision time (at most {CLOCK_SKEW.seconds} s)"
        outcome.add("evidence.age", False, detail, DenialReason.EVIDENCE_STALE)
        return
    ok = seconds <= limit
    detail = f"the evidence is {max(seconds, 0.0):.3f} s old, at most {limit} s accepted"
    outcome.add("evidence.age", ok, detail, DenialReason.EVIDENCE_STALE)


# --- model ----------------------------------------------------------------------------------------------------


def check_model(
    policy: ReleasePolicy,
    *,
    head: bytes,
    part_digests: Sequence[str],
    provenance: bytes | None,
    now: datetime,
    name: str = "artifact.ccseal",
) -> ModelDecision:
    """Check a sealed artifact, known by its head and stream digests, against the policy's provenance and BOM.

    The artifact digest is recomputed from ``head`` and ``part_digests``; the provenance bundle (the
    ``NAME.provenance.sigstore.json`` of ``ccdeploy sign``) is verified offline at ``now``: its signer against
    the policy, its subjects against this artifact digest, its seal-header byproduct against this header.

    Args:
        policy: The model's release policy.
        head: The artifact's head part exactly as on disk (preamble, header JSON, header MAC).
        part_digests: Hex BLAKE3 digests of the artifact's streams, in payload order.
        provenance: The provenance bundle bytes, or ``None`` when none was registered.
        now: Validation time for certificate-signed bundles (timezone-aware).
        name: How the artifact is called in reports.

    Returns:
        The decision; ``denial`` is ``None`` when every check passed.
    """
    outcome = _Outcome()
    try:
        digest = sealed_digest_from_parts(head, part_digests)
    except CcdError as exc:
        outcome.add("artifact", False, exc.diagnostics(), DenialReason.PROVENANCE_INVALID)
        return ModelDecision(tuple(outcome.checks), outcome.denial, outcome.detail)
    outcome.add(
        "artifact",
        True,
        f"{DIGEST_ALGORITHM} {digest.value} (header sha256 {digest.header_sha256})",
        DenialReason.PROVENANCE_INVALID,
    )
    _provenance(policy.provenance, provenance, digest, now, name, outcome)
    _bom(policy, digest, outcome)
    return ModelDecision(tuple(outcome.checks), outcome.denial, outcome.detail, digest.value, digest.header_sha256)


@functools.cache
def _pinned_root() -> TrustedRoot:
    return pinned_trusted_root()


def _signer_kind(bundle: bytes) -> tuple[str | None, str | None]:
    """``("key", hint)`` or ``("certificate", None)`` from the bundle's verification material; unverified."""
    try:
        material = json.loads(bundle).get("verificationMaterial")
    except (ValueError, AttributeError, RecursionError):
        return None, None
    if not isinstance(material, dict):
        return None, None
    if isinstance(material.get("publicKey"), dict):
        hint = material["publicKey"].get("hint")
        return "key", hint if isinstance(hint, str) else None
    if "certificate" in material or "x509CertificateChain" in material:
        return "certificate", None
    return None, None


def _provenance(
    requirement: ProvenanceRequirement | None,
    bundle: bytes | None,
    digest: SealedDigest,
    now: datetime,
    name: str,
    outcome: _Outcome,
) -> None:
    invalid = DenialReason.PROVENANCE_INVALID
    if requirement is None:
        note = " (a bundle is registered; not checked)" if bundle is not None else ""
        outcome.add("provenance", True, f"the policy requires no signed provenance{note}", invalid)
        return
    if bundle is None:
        outcome.add(
            "provenance",
            False,
            "the policy requires signed provenance; none was given",
            DenialReason.PROVENANCE_MISSING,
        )
        return
    required = _required_signer(requirement)
    kind, hint = _signer_kind(bundle)
    if kind is not None and (kind == "key") != (requirement.key is not None):
        detail = f"the bundle is signed by a {kind}; the policy requires {required}"
        outcome.add("provenance.signer", False, detail, DenialReason.SIGNER_MISMATCH)
        return
    if requirement.key is not None:
        trust = TrustInputs(trusted_root=_pinned_root(), at=now, keys=(requirement.key,))
        signer_policy = SignerPolicy()
    else:
        trust = TrustInputs(trusted_root=_pinned_root(), at=now)
        signer_policy = SignerPolicy(
            identity=requirement.identity, issuer=requirement.issuer, builder_id=requirement.builder_id
        )
    report = Report()
    try:
        result = verify_bundle(bundle, sealed_target(digest, name), trust, signer_policy, report)
    except CcdError as exc:  # malformed bundle, bad signature, subject mismatch, unusable trust: all fail closed
        reason = invalid
        detail = exc.diagnostics()
        if isinstance(exc, UntrustedSigner):
            reason = DenialReason.SIGNER_MISMATCH
        elif (
            isinstance(exc, SignatureInvalid)
            and requirement.key is not None
            and hint not in (None, requirement.key.hint)
        ):
            # A key-signed bundle names its key only by an (unsigned) hint; a signature that fails under the
            # policy's key while naming another key is taken as another signer's. Either way nothing is released.
            reason = DenialReason.SIGNER_MISMATCH
            detail = f"signed by another key (hint {str(hint)[:16]}...); the policy requires {required}"
        _report_checks(report, outcome, reason)
        if reason is DenialReason.SIGNER_MISMATCH or all(check.ok for check in report.checks):
            outcome.add(
                "provenance.signer" if reason is DenialReason.SIGNER_MISMATCH else "provenance", False, detail, reason
            )
        return
    _report_checks(report, outcome, invalid)
    _seal_statement(result.statement, requirement, outcome)


def _required_signer(requirement: ProvenanceRequirement) -> str:
    if requirement.key is not None:
        return f"key sha256:{requirement.key.sha256}"
    return f"identity {requirement.identity!r} from issuer {requirement.issuer!r}"


def _report_checks(report: Report, outcome: _Outcome, reason: DenialReason) -> None:
    for check in report.checks:
        outcome.add(f"provenance.{check.name}", check.ok, check.detail, reason)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _seal_statement(statement: dict[str, Any] | None, requirement: ProvenanceRequirement, outcome: _Outcome) -> None:
    """The verified statement must be the seal step's SLSA provenance (so its header byproduct was checked)."""
    predicate = _dict(_dict(statement).get("predicate"))
    predicate_type = _dict(statement).get("predicateType")
    build_type = _dict(predicate.get("buildDefinition")).get("buildType")
    ok = predicate_type == SLSA_PREDICATE_TYPE and build_type == SEAL_BUILD_TYPE
    detail = f"predicate {predicate_type!r}, build type {build_type!r}"
    if ok:
        detail += " (the seal provenance of this artifact)"
    else:
        detail += f"; required {SLSA_PREDICATE_TYPE} with build type {SEAL_BUILD_TYPE}"
    outcome.add("provenance.predicate", ok, detail, DenialReason.PROVENANCE_INVALID)
    if not ok or requirement.key is None or requirement.builder_id is None:
        return
    # A key-signed bundle carries no certificate to take the builder from: the key holder vouches for the
    # predicate, so its builder id is what is compared.
    builder = _dict(_dict(predicate.get("runDetails")).get("builder")).get("id")
    expected = requirement.builder_id
    matched = isinstance(builder, str) and (
        builder == expected if "@" in expected else builder.split("@", 1)[0] == expected
    )
    detail = f"builder {builder!r} (from the signed predicate), required {expected!r}"
    outcome.add("provenance.builder_id", matched, detail, DenialReason.SIGNER_MISMATCH)


def _bom(policy: ReleasePolicy, digest: SealedDigest, outcome: _Outcome) -> None:
    reason = DenialReason.BOM_MISMATCH
    requirement = policy.bom
    if requirement is None:
        outcome.add("bom", True, "the policy requires no BOM", reason)
        return
    recorded = digest.header.bom_digest
    expected = requirement.expected_hex
    if recorded is None:
        outcome.add("bom", False, "the sealed header records no BOM digest; the policy requires one", reason)
    elif expected is not None and recorded != expected:
        outcome.add(
            "bom", False, f"the sealed header records BOM sha256:{recorded}, required sha256:{expected}", reason
        )
    else:
        outcome.add("bom", True, f"the sealed header records BOM sha256:{recorded}", reason)
