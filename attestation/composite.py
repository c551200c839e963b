"""Composite evidence: one CPU TEE's evidence and the evidence of its confidential GPUs, bound to one nonce.

A GPU that is not attested makes a CPU attestation meaningless for a model that runs on the GPU, and a GPU report
that is not bound to the CPU's evidence could come from any GPU anywhere. As in NVIDIA's and Confidential
Containers' reference architectures, each GPU's SPDM nonce is derived from the CPU evidence's report data::

    gpu_nonce = SHA-256(b"ccdeploy/gpu-nonce/v1" || cpu_report_data)

so one fresh caller nonce (bound into the CPU report data) covers every device. The evidence is a JSON document::

    {"format": "ccdeploy-composite/v1",
     "cpu": {"type": "sev-snp", "evidence": "<base64>"},
     "gpus": [{"id": "GPU-0", "evidence": "<base64 SPDM request||response>", "certificate_chain": "<PEM>"}]}

The claims are the CPU's, with one :class:`~attestation.claims.Claims` per GPU in ``devices`` (its ``vendor["device"]``
is the GPU's id), so that one appraisal covers them all.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar

from cryptography import x509

from attestation._x509 import fingerprint, load_certificates
from attestation.claims import Claims, Tee, VendorValue
from attestation.collateral import Collateral
from attestation.errors import AttestationError, EvidenceInvalid, MalformedEvidence, NonceMismatch
from attestation.fetch import Fetcher
from attestation.roots import pinned_intermediates, pinned_roots
from attestation.verify import Verifier, verifier_for

COMPOSITE_FORMAT = "ccdeploy-composite/v1"
GPU_NONCE_DOMAIN = b"ccdeploy/gpu-nonce/v1"
#: CPU evidence types composite evidence may carry (a GPU or another composite cannot be the CPU).
CPU_TEES = frozenset({Tee.NITRO, Tee.SEV_SNP, Tee.TDX, Tee.SGX, Tee.MAA})
#: More GPUs than any machine has: a bound on the work one piece of evidence can ask for.
MAX_GPUS = 64
_MAX_ID_LENGTH = 128


def gpu_nonce(report_data: bytes) -> bytes:
    """The 32-byte SPDM nonce a GPU must answer to be bound to CPU evidence carrying ``report_data``."""
    return hashlib.sha256(GPU_NONCE_DOMAIN + bytes(report_data)).digest()


class DuplicateDevice(EvidenceInvalid):
    """The same GPU (by its firmware identity) appears more than once: one device cannot stand in for two."""

    check = "distinct-devices"


@dataclass(frozen=True, slots=True)
class GpuEvidence:
    """One GPU's part of composite evidence.

    Attributes:
        id: The GPU's name in the claims and in error messages (``"GPU-0"``).
        evidence: The SPDM GET_MEASUREMENTS request followed by the signed response.
        certificate_chain: The attestation key's certificate chain as the driver returns it, leaf first (PEM).
    """

    id: str
    evidence: bytes
    certificate_chain: bytes


@dataclass(frozen=True, slots=True)
class CompositeEvidence:
    """Parsed composite evidence (nothing in it is verified yet)."""

    cpu_type: Tee
    cpu_evidence: bytes
    gpus: tuple[GpuEvidence, ...]

    def to_json(self) -> bytes:
        """The canonical JSON encoding (sorted keys, no spaces)."""
        document = {
            "format": COMPOSITE_FORMAT,
            "cpu": {"type": self.cpu_type.value, "evidence": _b64(self.cpu_evidence)},
            "gpus": [
                {
                    "id": gpu.id,
                    "evidence": _b64(gpu.evidence),
                    "certificate_chain": gpu.certificate_chain.decode("ascii"),
                }
                for gpu in self.gpus
            ],
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def compose(cpu_type: Tee | str, cpu_evidence: bytes, gpus: Sequence[GpuEvidence]) -> bytes:
    """Encode composite evidence (the attester side); checks the shape it writes as :func:`parse_composite` does."""
    evidence = CompositeEvidence(Tee(cpu_type), bytes(cpu_evidence), tuple(gpus))
    encoded = evidence.to_json()
    parse_composite(encoded)
    return encoded


def parse_composite(data: bytes) -> CompositeEvidence:
    """Parse composite evidence JSON strictly: known keys only, base64 fields, at least one GPU, unique ids.

    Raises:
        MalformedEvidence: Anything else.
    """
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise MalformedEvidence("composite evidence is not JSON") from None
    top = _object(document, "composite evidence", {"format", "cpu", "gpus"})
    if top.get("format") != COMPOSITE_FORMAT:
        raise MalformedEvidence(f"composite evidence must have format {COMPOSITE_FORMAT!r}")
    cpu = _object(top["cpu"], "cpu", {"type", "evidence"})
    try:
        cpu_type = Tee(_text(cpu["type"], "cpu.type"))
    except ValueError:
        raise MalformedEvidence(f"cpu.type {cpu['type']!r} is not a known evidence type") from None
    if cpu_type not in CPU_TEES:
        raise MalformedEvidence(f"cpu.type {cpu_type.value} is not CPU evidence")
    gpus_field = top["gpus"]
    if not isinstance(gpus_field, list) or not gpus_field:
        raise MalformedEvidence("gpus must be a non-empty list (CPU evidence alone is not composite)")
    if len(gpus_field) > MAX_GPUS:
        raise MalformedEvidence(f"composite evidence names more than {MAX_GPUS} GPUs")
    gpus = tuple(_gpu(item, index) for index, item in enumerate(gpus_field))
    ids = [gpu.id for gpu in gpus]
    if len(set(ids)) != len(ids):
        raise MalformedEvidence("two GPUs have the same id")
    return CompositeEvidence(cpu_type, _base64(cpu["evidence"], "cpu.evidence"), gpus)


def _gpu(item: Any, index: int) -> GpuEvidence:
    where = f"gpus[{index}]"
    fields = _object(item, where, {"id", "evidence", "certificate_chain"})
    gpu_id = _text(fields["id"], f"{where}.id")
    if not gpu_id or len(gpu_id) > _MAX_ID_LENGTH or not gpu_id.isprintable():
        raise MalformedEvidence(f"{where}.id must be 1 to {_MAX_ID_LENGTH} printable characters")
    chain = _text(fields["certificate_chain"], f"{where}.certificate_chain")
    if not chain.isascii():
        raise MalformedEvidence(f"{where}.certificate_chain must be PEM text")
    return GpuEvidence(gpu_id, _base64(fields["evidence"], f"{where}.evidence"), chain.encode("ascii"))


def _object(value: Any, where: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedEvidence(f"{where} must be a JSON object")
    if set(value) != keys:
        missing, extra = sorted(keys - set(value)), sorted(set(value) - keys)
        raise MalformedEvidence(f"{where} must have exactly the keys {sorted(keys)} (missing {missing}, extra {extra})")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise MalformedEvidence(f"{where} must be a string")
    return value


def _base64(value: Any, where: str) -> bytes:
    try:
        decoded = base64.b64decode(_text(value, where), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedEvidence(f"{where} is not standard base64") from None
    if not decoded:
        raise MalformedEvidence(f"{where} is empty")
    return decoded


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class CompositeVerifier:
    """Verify composite evidence: the CPU evidence as its own type, every GPU, and each GPU's nonce binding.

    Args:
        cpu_verifiers: Configured verifiers per CPU evidence type (e.g. an ``MaaVerifier`` with its issuer);
            types not given use the registered verifier with its defaults.
        gpu_verifier: A configured GPU verifier (e.g. ``NvidiaGpuVerifier(rim_roots=...)``); default: the
            registered one.

    Anchors: ``cpu_roots`` / ``gpu_roots`` when given; otherwise each member's own pinned roots when ``roots`` is
    the pinned pool, or else the caller's ``roots`` for every member (certificates are checked signature by
    signature, so an anchor of one vendor cannot complete another vendor's chain). The RIMs and OCSP responses of
    ``collateral`` serve every GPU.
    """

    tee: ClassVar[Tee] = Tee.COMPOSITE

    def __init__(
        self,
        *,
        cpu_verifiers: Mapping[Tee, Verifier] | None = None,
        gpu_verifier: Verifier | None = None,
        cpu_roots: Sequence[x509.Certificate] | None = None,
        gpu_roots: Sequence[x509.Certificate] | None = None,
    ) -> None:
        self._cpu_verifiers = dict(cpu_verifiers or {})
        self._gpu_verifier = gpu_verifier
        self._cpu_roots = None if cpu_roots is None else tuple(cpu_roots)
        self._gpu_roots = None if gpu_roots is None else tuple(gpu_roots)

    def _member_roots(
        self, configured: tuple[x509.Certificate, ...] | None, tee: Tee, roots: Sequence[x509.Certificate]
    ) -> tuple[x509.Certificate, ...]:
        """The anchors of one member.

        Configured ones; else its own pinned roots when ``roots`` is the pinned pool (an Azure Attestation key set
        must not be judged against other vendors' roots); else the caller's pool.
        """
        if configured is not None:
            return configured
        if tuple(roots) == pinned_roots(Tee.COMPOSITE):
            return pinned_roots(tee)
        return tuple(roots)

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
        """Verify every member and the binding; the claims are the CPU's with the GPUs' as ``devices``.

        Raises:
            MalformedEvidence: The document is malformed.
            NonceMismatch: A GPU answered a nonce other than the one derived from the CPU's report data (the
                message names the GPU).
            DuplicateDevice: Two GPU entries are the same device.
            AttestationError: Any member's own failure, its message prefixed with the member's name.
        """
        document = parse_composite(evidence)
        cpu_verifier = self._cpu_verifiers.get(document.cpu_type) or verifier_for(document.cpu_type)
        with _member("cpu"):
            cpu_claims = cpu_verifier.verify(
                document.cpu_evidence,
                at=at,
                roots=self._member_roots(self._cpu_roots, document.cpu_type, roots),
                collateral=collateral.with_certificates(pinned_intermediates(document.cpu_type)),
                fetcher=fetcher,
                allow_simulator=allow_simulator,
            )
        if cpu_claims.report_data is None:
            raise MalformedEvidence(f"the cpu evidence ({document.cpu_type.value}) carries no report data to bind")
        expected_nonce = gpu_nonce(cpu_claims.report_data)
        gpu_verifier = self._gpu_verifier or verifier_for(Tee.NVIDIA_GPU)
        gpu_roots = self._member_roots(self._gpu_roots, Tee.NVIDIA_GPU, roots)
        devices: list[Claims] = []
        identities: list[str] = []
        for gpu in document.gpus:
            with _member(gpu.id):
                chain = load_certificates(gpu.certificate_chain, "the certificate chain")
                claims = gpu_verifier.verify(
                    gpu.evidence,
                    at=at,
                    roots=gpu_roots,
                    collateral=Collateral(certificates=chain, rims=collateral.rims, ocsp=collateral.ocsp),
                    fetcher=fetcher,
                    allow_simulator=allow_simulator,
                )
            if claims.nonce is None or not hmac.compare_digest(claims.nonce, expected_nonce):
                answered = "no nonce" if claims.nonce is None else f"nonce {claims.nonce.hex()}"
                raise NonceMismatch(
                    f"{gpu.id}: the GPU answered {answered}, not {expected_nonce.hex()} derived from the cpu "
                    "evidence's report data: it is not bound to this CPU evidence"
                )
            devices.append(_named(claims, gpu.id))
            identities.append(fingerprint(chain[0]))
        _check_distinct(devices, identities)
        return replace(cpu_claims, devices=tuple(devices))

    def decode(self, evidence: bytes) -> Mapping[str, VendorValue]:
        """Decode the CPU and GPU evidence into raw fields without verifying anything."""
        document = parse_composite(evidence)
        cpu_fields = dict(verifier_for(document.cpu_type).decode(document.cpu_evidence))
        gpu_verifier = verifier_for(Tee.NVIDIA_GPU)
        gpus = tuple({"id": gpu.id, **gpu_verifier.decode(gpu.evidence)} for gpu in document.gpus)
        return {"format": COMPOSITE_FORMAT, "cpu_type": document.cpu_type.value, "cpu": cpu_fields, "gpus": gpus}

    def looks_like(self, evidence: bytes) -> bool:
        """Composite evidence is a JSON object naming its format."""
        return evidence.lstrip()[:1] == b"{" and COMPOSITE_FORMAT.encode() in evidence[:4096]


@contextmanager
def _member(name: str) -> Iterator[None]:
    """Re-raise an attestation error of one member with the member's name in front of its message."""
    try:
        yield
    except AttestationError as error:
        raise _prefixed(error, name) from None


def _prefixed(error: AttestationError, name: str) -> AttestationError:
    renamed = copy.copy(error)
    renamed.message = f"{name}: {error.message}"
    renamed.args = (renamed.message,)
    return renamed


def _named(claims: Claims, device: str) -> Claims:
    vendor: dict[str, VendorValue] = {**claims.vendor, "device": device}
    return replace(claims, vendor=vendor)


def _check_distinct(devices: Sequence[Claims], identities: Sequence[str]) -> None:
    """No device twice.

    A GPU is known by its attestation certificate (issued to one device's key for its firmware), not by its FWID,
    which names firmware that many GPUs share.
    """
    seen: dict[str, str] = {}
    for device, identity in zip(devices, identities, strict=True):
        name = str(device.vendor.get("device"))
        if identity in seen:
            raise DuplicateDevice(f"{seen[identity]} and {name} are the same GPU (attestation certificate {identity})")
        seen[identity] = name
