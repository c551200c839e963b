"""The PCK certificate: its chain to the Intel SGX Root CA, and Intel's SGX extension (TCB, PCE-ID, FMSPC)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from attestation._x509 import check_anchor_allowed, check_validity, load_certificates, subject
from attestation.errors import BadChain, CertificateMismatch, MalformedEvidence
from attestation.tee.dcap import _der

SGX_EXTENSION_OID = "1.2.840.113741.1.13.1"
_TCB_OID = f"{SGX_EXTENSION_OID}.2"
_PCESVN_OID = f"{_TCB_OID}.17"
_CPUSVN_OID = f"{_TCB_OID}.18"
#: Bound on chain length: Intel chains are leaf, one CA, root.
_MAX_DEPTH = 4


@dataclass(frozen=True, slots=True)
class SgxExtensions:
    """The decoded SGX extension of a PCK certificate.

    Attributes:
        ppid: Platform provisioning id (16 bytes).
        sgx_tcb_components: The 16 SGX TCB component SVNs the PCK certificate was issued for.
        pce_svn: The PCE SVN the certificate was issued for.
        cpu_svn: The raw 16-byte CPUSVN.
        pce_id: The PCE id (2 bytes).
        fmspc: The FMSPC (6 bytes): family-model-stepping-platform-custom SKU, which selects the TCB Info.
        sgx_type: 0 Standard, 1 Scalable, 2 Scalable with integrity.
    """

    ppid: bytes
    sgx_tcb_components: tuple[int, ...]
    pce_svn: int
    cpu_svn: bytes
    pce_id: bytes
    fmspc: bytes
    sgx_type: int


@dataclass(frozen=True, slots=True)
class CertChain:
    """A verified chain, leaf first, ending in the trust anchor that accepted it."""

    certificates: tuple[x509.Certificate, ...]

    @property
    def leaf(self) -> x509.Certificate:
        """The end-entity certificate."""
        return self.certificates[0]

    @property
    def issuer_ca(self) -> x509.Certificate:
        """The certificate that issued the leaf (the PCK Platform/Processor CA for a PCK chain)."""
        return self.certificates[1]

    @property
    def anchor(self) -> x509.Certificate:
        """The trust anchor."""
        return self.certificates[-1]


@functools.lru_cache(maxsize=64)
def load_pck_chain(pem: bytes) -> tuple[x509.Certificate, ...]:
    """The certificates of the quote's certification data type 5 (PEM, leaf first).

    Cached by the PEM bytes: a platform sends the same chain with every quote, and parsing it costs as much as a
    signature check. The result is immutable and every signature of the chain is still verified on each use.
    """
    certs = load_certificates(pem.rstrip(b"\0"), "the quote's PCK certificate chain")
    if len(certs) < 2:
        raise MalformedEvidence("the quote's PCK certificate chain must hold the PCK certificate and its CA")
    return certs


def walk_chain(
    certs: Sequence[x509.Certificate],
    *,
    roots: Sequence[x509.Certificate],
    at: datetime,
    allow_simulator: bool,
    what: str,
) -> CertChain:
    """Verify ``certs`` (leaf first, root optional) signature by signature up to one of ``roots``, valid at ``at``.

    Raises:
        BadChain: A signature does not verify, an intermediate is not a CA, or no trusted anchor is reached.
        UntrustedSimulatorRoot: The anchor is a simulator root and ``allow_simulator`` is false.
        OutsideValidity: A certificate is not valid at ``at``.
    """
    chain = [certs[0]]
    pool = list(certs[1:])
    while True:
        current = chain[-1]
        anchor = _issuing_anchor(current, roots)
        if anchor is not None:
            if anchor != current:
                chain.append(anchor)
            break
        if len(chain) >= _MAX_DEPTH:
            raise BadChain(f"{what}: no trusted root within {_MAX_DEPTH} certificates")
        issuer = next((cert for cert in pool if cert not in chain and _issued_by(current, cert)), None)
        if issuer is None:
            raise BadChain(f"{what}: {subject(current)} is not issued by a trusted root or a given CA certificate")
        _require_ca(issuer, what)
        chain.append(issuer)
    check_anchor_allowed(chain[-1], allow_simulator=allow_simulator)
    check_validity(chain, at)
    return CertChain(tuple(chain))


def _issuing_anchor(cert: x509.Certificate, roots: Sequence[x509.Certificate]) -> x509.Certificate | None:
    if cert in roots:
        return cert
    return next((root for root in roots if _issued_by(cert, root)), None)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _require_ca(cert: x509.Certificate, what: str) -> None:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise BadChain(f"{what}: {subject(cert)} issues certificates but is not a CA certificate")


def p256_key(cert: x509.Certificate, why: str) -> ec.EllipticCurvePublicKey:
    """The certificate's ECDSA P-256 key, or :class:`CertificateMismatch`."""
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CertificateMismatch(f"{subject(cert)} does not certify an ECDSA P-256 key; {why}")
    return key


@functools.lru_cache(maxsize=64)
def sgx_extensions(cert: x509.Certificate) -> SgxExtensions:
    """Decode the SGX extension (OID 1.2.840.113741.1.13.1) of a PCK certificate.

    Raises:
        CertificateMismatch: The certificate has no SGX extension (it is not a PCK certificate).
        MalformedEvidence: The extension does not decode as Intel specifies it.
    """
    try:
        extension = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(SGX_EXTENSION_OID)).value
    except x509.ExtensionNotFound:
        raise CertificateMismatch(f"{subject(cert)} has no SGX extension, so it is not a PCK certificate") from None
    if not isinstance(extension, x509.UnrecognizedExtension):
        raise MalformedEvidence("the SGX extension of the PCK certificate is not raw DER")
    try:
        return _decode(extension.value)
    except (ValueError, KeyError, IndexError) as exc:
        raise MalformedEvidence(f"the SGX extension of the PCK certificate does not decode: {exc}") from None


def _decode(der: bytes) -> SgxExtensions:
    entries = _der.oid_pairs(_der.single(der, _der.TAG_SEQUENCE))

    def octets(name: str, oid: str, size: int) -> bytes:
        tag, content = entries[oid]
        if tag != _der.TAG_OCTET_STRING or len(content) != size:
            raise ValueError(f"{name} must be an OCTET STRING of {size} bytes")
        return content

    tcb_tag, tcb_content = entries[_TCB_OID]
    if tcb_tag != _der.TAG_SEQUENCE:
        raise ValueError("TCB must be a SEQUENCE")
    tcb = _der.oid_pairs(tcb_content)
    components = tuple(_der.unsigned(*tcb[f"{_TCB_OID}.{index}"]) for index in range(1, 17))
    if any(svn > 0xFF for svn in components):
        raise ValueError("an SGX TCB component SVN is larger than a byte")
    pce_svn = _der.unsigned(*tcb[_PCESVN_OID])
    cpusvn_tag, cpu_svn = tcb[_CPUSVN_OID]
    if cpusvn_tag != _der.TAG_OCTET_STRING or len(cpu_svn) != 16:
        raise ValueError("CPUSVN must be an OCTET STRING of 16 bytes")
    return SgxExtensions(
        ppid=octets("PPID", f"{SGX_EXTENSION_OID}.1", 16),
        sgx_tcb_components=components,
        pce_svn=pce_svn,
        cpu_svn=cpu_svn,
        pce_id=octets("PCE-ID", f"{SGX_EXTENSION_OID}.3", 2),
        fmspc=octets("FMSPC", f"{SGX_EXTENSION_OID}.4", 6),
        sgx_type=_der.unsigned(*entries[f"{SGX_EXTENSION_OID}.5"]),
    )
