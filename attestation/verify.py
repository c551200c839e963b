"""Verification entry point: dispatch evidence to the verifier registered for its TEE type."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import ClassVar, Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from attestation.claims import Claims, Tee, VendorValue
from attestation.collateral import Collateral
from attestation.errors import MalformedEvidence
from attestation.fetch import Fetcher
from attestation.roots import pinned_intermediates, pinned_roots


class Verifier(Protocol):
    """What each TEE backend implements. Pure: no clock, network, environment or files."""

    tee: ClassVar[Tee]

    def verify(
        self,
        evidence: bytes,
        *,
        at: datetime | None,
        roots: Sequence[x509.Certificate],
        collateral: Collateral,
        fetcher: Fetcher | None,
        allow_simulator: bool,
    ) -> Claims:
        """Check the evidence's signature and chain at ``at`` and return its claims, or raise.

        ``at=None`` means the time the evidence states for itself; evidence that states none raises
        :class:`~attestation.errors.CollateralMissing`.
        """
        ...

    def decode(self, evidence: bytes) -> Mapping[str, VendorValue]:
        """Decode the evidence into its raw fields **without verifying anything** (for inspection)."""
        ...

    def looks_like(self, evidence: bytes) -> bool:
        """A cheap structural guess whether ``evidence`` is of this verifier's type."""
        ...


_CRYPTOGRAPHY_PARSE_ERRORS = (
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)

#: TEE type -> "module:Class" of its verifier, imported on first use (scheme-keyed, lazy registry).
VERIFIER_FOR_TEE: dict[Tee, str] = {
    Tee.NITRO: "attestation.tee.nitro:NitroVerifier",
    Tee.SEV_SNP: "attestation.tee.sev_snp:SevSnpVerifier",
    Tee.TDX: "attestation.tee.dcap:TdxVerifier",
    Tee.SGX: "attestation.tee.dcap:SgxVerifier",
    Tee.MAA: "attestation.tee.maa:MaaVerifier",
    Tee.NVIDIA_GPU: "attestation.tee.nvidia:NvidiaGpuVerifier",
    Tee.COMPOSITE: "attestation.composite:CompositeVerifier",
}


def verifier_for(tee: Tee | str) -> Verifier:
    """The verifier registered for ``tee``; raises ``ValueError`` for an unknown TEE type."""
    tee = Tee(tee)
    module_name, _, class_name = VERIFIER_FOR_TEE[tee].partition(":")
    verifier: Verifier = getattr(importlib.import_module(module_name), class_name)()
    return verifier


def verify(
    evidence: bytes,
    *,
    tee: Tee | str,
    at: datetime | None,
    roots: Sequence[x509.Certificate] | None = None,
    collateral: Collateral | None = None,
    fetcher: Fetcher | None = None,
    unsafe_allow_simulator_roots: bool = False,
    verifier: Verifier | None = None,
) -> Claims:
    """Verify ``evidence`` of type ``tee`` and return its TEE-neutral claims.

    Args:
        evidence: The raw evidence bytes (decode base64/hex text first, see :func:`attestation.evidence.read_evidence`).
        tee: Which TEE produced it.
        at: The instant to check every certificate and collateral window against; ``None`` for the time the
            evidence states (Nitro's timestamp). Never the wall clock: the caller decides.
        roots: Trust anchors replacing the pinned ones (``None``: the roots shipped in ``attestation/trust``).
        collateral: Intermediates, signing certificate and CRLs supplied by the caller. The pinned AMD ASK/ASVK
            certificates are always added as candidate intermediates.
        fetcher: Used to fetch missing collateral (e.g. a VCEK from AMD KDS); ``None`` means offline.
        unsafe_allow_simulator_roots: Accept chains that end in an :mod:`attestation.simulator` root. Simulator
            evidence proves nothing about real hardware; never set this outside tests and demos.
        verifier: A configured verifier for ``tee`` (e.g. ``SevSnpVerifier(kds_base_url=..., fetch_crls=True)``);
            default: the registered one with its defaults.

    Raises:
        attestation.errors.EvidenceInvalid: The evidence is not acceptable (exit 1 on the CLI).
        attestation.errors.CouldNotVerify: Collateral is missing or could not be fetched (exit 3).
        ValueError: ``at`` is a naive datetime (a programming error, not a verdict).
    """
    if at is not None and at.utcoffset() is None:
        raise ValueError("at must be a timezone-aware datetime")
    if verifier is None:
        verifier = verifier_for(tee)
    elif verifier.tee is not Tee(tee):
        raise ValueError(f"a {verifier.tee.value} verifier cannot verify {Tee(tee).value} evidence")
    anchors = tuple(roots) if roots is not None else pinned_roots(verifier.tee)
    supplied = collateral if collateral is not None else Collateral()
    try:
        return verifier.verify(
            evidence,
            at=at,
            roots=anchors,
            collateral=supplied.with_certificates(pinned_intermediates(verifier.tee)),
            fetcher=fetcher,
            allow_simulator=unsafe_allow_simulator_roots,
        )
    except _CRYPTOGRAPHY_PARSE_ERRORS as exc:
        # Last line of defence: cryptography decodes some certificate and CRL fields lazily and reports malformed
        # ones with these types. The verifiers guard the known places; anything missed still fails closed, typed.
        raise MalformedEvidence(f"malformed certificate or CRL data: {type(exc).__name__}: {exc}") from None
