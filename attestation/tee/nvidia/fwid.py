"""The firmware id (FWID) in an NVIDIA GPU attestation certificate's TCG DICE extension (OID 2.23.133.5.4.1).

NVIDIA's leaf certificates carry ``SEQUENCE { INTEGER, SubjectPublicKeyInfo, SEQUENCE { hashAlg OID, digest
OCTET STRING } }`` under the TCG DICE TcbInfo OID; the TCG DiceTcbInfo layout (``fwids [6] SEQUENCE OF FWID``) is
read too. A small strict DER reader is enough: definite lengths only, no trailing bytes.
"""

from __future__ import annotations

from cryptography import x509

from attestation._x509 import subject
from attestation.errors import CertificateMismatch, MalformedEvidence

TCG_DICE_TCB_INFO = x509.ObjectIdentifier("2.23.133.5.4.1")
#: DER encoding of the OID 2.16.840.1.101.3.4.2.2 (SHA-384), content octets only.
_SHA384_OID = bytes.fromhex("608648016503040202")
_SHA384_BYTES = 48
_SEQUENCE = 0x30
_OID = 0x06
_OCTET_STRING = 0x04
_FWIDS_TAG = 0xA6  # [6] IMPLICIT, constructed


class FwidMismatch(CertificateMismatch):
    """The FWID the report states differs from the one its attestation certificate carries."""

    check = "fwid"


def _elements(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) DER elements laid end to end in ``data``; raises ``ValueError`` on bad encoding."""
    out: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 2:
            raise ValueError("truncated DER element")
        tag, length = data[offset], data[offset + 1]
        offset += 2
        if tag & 0x1F == 0x1F:
            raise ValueError("multi-byte DER tags are not used here")
        if length & 0x80:
            count = length & 0x7F
            if not 1 <= count <= 3 or len(data) - offset < count:
                raise ValueError("bad DER length")
            length = int.from_bytes(data[offset : offset + count], "big")
            offset += count
        if length > len(data) - offset:
            raise ValueError("DER element runs past its container")
        out.append((tag, data[offset : offset + length]))
        offset += length
    return out


def _fwid(content: bytes) -> bytes | None:
    """The digest of an FWID ``SEQUENCE { OID, OCTET STRING }`` content if it is SHA-384, else ``None``."""
    parts = _elements(content)
    if len(parts) != 2 or parts[0][0] != _OID or parts[1][0] != _OCTET_STRING:
        return None
    if parts[0][1] != _SHA384_OID or len(parts[1][1]) != _SHA384_BYTES:
        return None
    return parts[1][1]


def _fwids(extension: bytes) -> list[bytes]:
    outer = _elements(extension)
    if len(outer) != 1 or outer[0][0] != _SEQUENCE:
        raise ValueError("the extension is not one DER SEQUENCE")
    found: list[bytes] = []
    for tag, content in _elements(outer[0][1]):
        if tag == _SEQUENCE:
            digest = _fwid(content)
            if digest is not None:
                found.append(digest)
        elif tag == _FWIDS_TAG:
            for inner_tag, inner in _elements(content):
                digest = _fwid(inner) if inner_tag == _SEQUENCE else None
                if digest is not None:
                    found.append(digest)
    return found


def certificate_fwid(cert: x509.Certificate) -> bytes:
    """The SHA-384 FWID of the attestation certificate; :class:`CertificateMismatch` if it has none."""
    try:
        extension = cert.extensions.get_extension_for_oid(TCG_DICE_TCB_INFO).value
    except x509.ExtensionNotFound:
        raise CertificateMismatch(f"{subject(cert)} has no TCG DICE extension (2.23.133.5.4.1) with an FWID") from None
    raw = extension.value if isinstance(extension, x509.UnrecognizedExtension) else b""
    try:
        fwids = _fwids(raw)
    except ValueError as exc:
        raise MalformedEvidence(f"the DICE extension of {subject(cert)} is not valid DER: {exc}") from None
    if len(fwids) != 1:
        raise CertificateMismatch(
            f"{subject(cert)}: expected one SHA-384 FWID in its DICE extension, found {len(fwids)}"
        )
    return fwids[0]


def check_fwid(cert: x509.Certificate, reported: bytes | None) -> bytes:
    """Return the certificate's FWID after checking it equals the report's (when the report states one).

    Reports of older drivers carry no FWID field; then the certificate's FWID stands alone (as in NVIDIA's own
    verifier), and it is still bound to the report because that certificate's key signed it.
    """
    certified = certificate_fwid(cert)
    if reported is not None and reported != certified:
        raise FwidMismatch(
            f"the report's FWID {reported.hex()} differs from the FWID {certified.hex()} of its attestation "
            f"certificate {subject(cert)}"
        )
    return certified
