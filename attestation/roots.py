"""Pinned trust roots, shipped as package data (see ``attestation/trust/README.md`` for sources and fingerprints).

Loading package data is the only file access in :mod:`attestation` besides the opt-in fetch cache; it happens
here, at the edge, never inside a verifier. Every root can be replaced by the caller (``roots=`` of
:func:`attestation.verify`, ``--root`` on the CLI).
"""

from __future__ import annotations

import functools
from importlib import resources

from cryptography import x509

from attestation._x509 import is_self_signed, load_certificates
from attestation.claims import Tee

_INTEL = ("intel-sgx-root-ca.pem",)
_CPU_TRUST_FILES: dict[Tee, tuple[str, ...]] = {
    Tee.NITRO: ("aws-nitro-enclaves-root-g1.pem",),
    Tee.SEV_SNP: ("amd-milan-ask-ark-asvk.pem", "amd-genoa-ask-ark-asvk.pem", "amd-turin-ask-ark-asvk.pem"),
    Tee.TDX: _INTEL,
    Tee.SGX: _INTEL,
}
_GPU_TRUST_FILES = ("nvidia-device-identity-root.pem",)
_RIM_TRUST_FILES = ("nvidia-rim-signing-root.pem",)
#: Azure Attestation has no pinned root: its JWKS is trusted for being the pinned issuer's own ``/certs``.
_TRUST_FILES: dict[Tee, tuple[str, ...]] = {
    **_CPU_TRUST_FILES,
    Tee.NVIDIA_GPU: _GPU_TRUST_FILES,
    # Composite evidence: the CPU's and the GPUs' anchors in one pool. Each member's chain is still checked
    # signature by signature, so an anchor of one vendor cannot complete another vendor's chain.
    Tee.COMPOSITE: tuple(
        dict.fromkeys([*(f for files in _CPU_TRUST_FILES.values() for f in files), *_GPU_TRUST_FILES])
    ),
}


@functools.cache
def _load(names: tuple[str, ...]) -> tuple[x509.Certificate, ...]:
    certs: list[x509.Certificate] = []
    for name in names:
        data = resources.files("attestation").joinpath("trust", name).read_bytes()
        certs.extend(load_certificates(data, f"pinned trust file {name}"))
    return tuple(certs)


def _pinned(tee: Tee) -> tuple[x509.Certificate, ...]:
    return _load(_TRUST_FILES.get(tee, ()))


@functools.cache
def pinned_rim_roots() -> tuple[x509.Certificate, ...]:
    """The pinned anchors of NVIDIA RIM signer chains (NVIDIA CoRIM signing Root CA); never GPU device roots."""
    return _load(_RIM_TRUST_FILES)


@functools.cache
def pinned_roots(tee: Tee) -> tuple[x509.Certificate, ...]:
    """The self-signed trust anchors pinned for ``tee`` (AWS Nitro Enclaves Root G1; AMD ARK per product)."""
    return tuple(cert for cert in _pinned(tee) if is_self_signed(cert))


@functools.cache
def pinned_intermediates(tee: Tee) -> tuple[x509.Certificate, ...]:
    """CA certificates pinned for ``tee`` that are not anchors (AMD ASK and ASVK per product)."""
    return tuple(cert for cert in _pinned(tee) if not is_self_signed(cert))


def split_roots(
    certs: tuple[x509.Certificate, ...],
) -> tuple[tuple[x509.Certificate, ...], tuple[x509.Certificate, ...]]:
    """Split a caller's bundle into (self-signed anchors, other CA certificates)."""
    self_signed = [is_self_signed(cert) for cert in certs]
    anchors = tuple(cert for cert, root in zip(certs, self_signed, strict=True) if root)
    return anchors, tuple(cert for cert, root in zip(certs, self_signed, strict=True) if not root)
