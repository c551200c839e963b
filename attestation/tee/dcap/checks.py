"""Collateral checks: CRLs (signature, freshness, revocation) and the signed TCB Info / QE Identity documents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attestation._x509 import subject
from attestation.errors import BadChain, BadSignature, CollateralMissing, Expired, NotYetValid, Revoked
from attestation.tee.dcap.pck import SGX_EXTENSION_OID, CertChain, p256_key, walk_chain

#: The common name of the certificate that signs TCB Info and QE Identity documents (and nothing else).
TCB_SIGNING_COMMON_NAME = "Intel SGX TCB Signing"


def check_crl(crl: x509.CertificateRevocationList, issuer: x509.Certificate, at: datetime, what: str) -> None:
    """``crl`` is issued and signed by ``issuer`` and current at ``at`` (thisUpdate <= at <= nextUpdate).

    Raises:
        BadChain: The CRL names another issuer.
        BadSignature: The CRL's signature does not verify with the issuer's key.
        NotYetValid, Expired: ``at`` is outside the CRL's window.
        CollateralMissing: The CRL has no nextUpdate.
    """
    if crl.issuer != issuer.subject:
        raise BadChain(f"{what} is issued by {crl.issuer.rfc4514_string()}, not by {subject(issuer)}")
    key = issuer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not crl.is_signature_valid(key):
        raise BadSignature(f"{what} is not signed by {subject(issuer)}")
    following = crl.next_update_utc
    if following is None:
        raise CollateralMissing(f"{what} has no nextUpdate; fetch a current one")
    check_window(crl.last_update_utc, following, at, what)


def check_window(not_before: datetime, not_after: datetime, at: datetime, what: str) -> None:
    """Raise NotYetValid / Expired unless ``not_before <= at <= not_after``."""
    if at < not_before:
        raise NotYetValid(f"{what} is valid from {not_before.isoformat()}, not yet at {at.isoformat()}")
    if at > not_after:
        raise Expired(f"{what} was valid until {not_after.isoformat()}, not at {at.isoformat()}")


def check_not_revoked(crl: x509.CertificateRevocationList, cert: x509.Certificate, what: str) -> None:
    """Raise :class:`Revoked` if ``cert`` is listed in ``crl``."""
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is not None:
        raise Revoked(
            f"{subject(cert)} (serial {cert.serial_number:#x}) is revoked since "
            f"{entry.revocation_date_utc.isoformat()} by {what}"
        )


def check_signer_chain(
    issuer_chain: Sequence[x509.Certificate],
    *,
    roots: Sequence[x509.Certificate],
    root_crl: x509.CertificateRevocationList,
    at: datetime,
    allow_simulator: bool,
    what: str,
) -> CertChain:
    """The chain of an Intel collateral signer (TCB Signing), verified to ``roots`` and not revoked by the root CRL.

    Raises:
        BadChain: The signer does not chain to a trusted root.
        Revoked: A certificate of the chain is on the root CA CRL.
    """
    chain = walk_chain(issuer_chain, roots=roots, at=at, allow_simulator=allow_simulator, what=f"the {what} signer")
    _check_tcb_signing_profile(chain, what)
    for cert in chain.certificates[:-1]:
        check_not_revoked(root_crl, cert, "the Intel SGX Root CA CRL")
    return chain


def _check_tcb_signing_profile(chain: CertChain, what: str) -> None:
    """The signer must be Intel's TCB Signing certificate itself, as Intel's QVL requires.

    That is: issued directly by the root, not a CA, named "Intel SGX TCB Signing", and without the SGX extension of
    a PCK certificate. Any other certificate under the root (a PCK key extracted from a vulnerable platform, say)
    must not vouch for TCB levels.
    """
    leaf = chain.certificates[0]
    problems = []
    if len(chain.certificates) != 2:
        problems.append(
            f"its chain has {len(chain.certificates)} certificates, not the TCB Signing certificate and root"
        )
    names = leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if [name.value for name in names] != [TCB_SIGNING_COMMON_NAME]:
        problems.append(f"it is {subject(leaf)}, not {TCB_SIGNING_COMMON_NAME}")
    try:
        if leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            problems.append("it is a CA certificate")
    except x509.ExtensionNotFound:
        pass
    try:
        leaf.extensions.get_extension_for_oid(x509.ObjectIdentifier(SGX_EXTENSION_OID))
        problems.append("it carries the SGX extension of a PCK certificate")
    except x509.ExtensionNotFound:
        pass
    if problems:
        raise BadChain(f"the {what} signer is not Intel's TCB Signing certificate: " + "; ".join(problems))


def check_document_signature(document: bytes, signature: bytes, signer: CertChain, what: str) -> None:
    """The ECDSA P-256 ``signature`` over the exact ``document`` bytes verifies with the signer's key.

    Raises:
        BadSignature: It does not.
    """
    key = p256_key(signer.leaf, f"Intel signs the {what} with ECDSA P-256")
    if not verify_raw_p256(key, signature, document):
        raise BadSignature(f"the {what} signature does not verify with the key of {subject(signer.leaf)}")


def verify_raw_p256(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    """Whether the raw r‖s ``signature`` (64 bytes) over ``data`` verifies with ``key`` (ECDSA P-256, SHA-256)."""
    if len(signature) != 64:
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    try:
        key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
