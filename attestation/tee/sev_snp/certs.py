"""What a VCEK or VLEK certificate says about the key it certifies (AMD spec 57230, "VCEK Certificate Extensions").

Every extension sits under 1.3.6.1.4.1.3704.1: ``.1`` structVersion (INTEGER), ``.2`` productName (IA5String:
"Milan-B0" for a VCEK, "Milan" for a VLEK), ``.3.1`` blSPL, ``.3.2`` teeSPL, ``.3.3`` snpSPL, ``.3.4``-``.3.7``
reserved SPLs, ``.3.8`` ucodeSPL, ``.3.9`` fmcSPL (Turin), all INTEGER; ``.4`` hwID (VCEK only: the chip's
CHIP_ID, written by KDS as the bare 64 bytes or, in newer certificates, as a DER OCTET STRING); ``.5`` cspId
(VLEK only: IA5String naming the cloud provider the VLEK was issued to).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cryptography import x509

from attestation._x509 import subject
from attestation.errors import CertificateMismatch
from attestation.tee.sev_snp import _der
from attestation.tee.sev_snp.tcb import TcbVersion

_PREFIX = "1.3.6.1.4.1.3704.1"
OID_STRUCT_VERSION = x509.ObjectIdentifier(f"{_PREFIX}.1")
OID_PRODUCT_NAME = x509.ObjectIdentifier(f"{_PREFIX}.2")
OID_BL_SPL = x509.ObjectIdentifier(f"{_PREFIX}.3.1")
OID_TEE_SPL = x509.ObjectIdentifier(f"{_PREFIX}.3.2")
OID_SNP_SPL = x509.ObjectIdentifier(f"{_PREFIX}.3.3")
OID_RESERVED_SPLS = tuple(x509.ObjectIdentifier(f"{_PREFIX}.3.{n}") for n in (4, 5, 6, 7))
OID_UCODE_SPL = x509.ObjectIdentifier(f"{_PREFIX}.3.8")
OID_FMC_SPL = x509.ObjectIdentifier(f"{_PREFIX}.3.9")
OID_HWID = x509.ObjectIdentifier(f"{_PREFIX}.4")
OID_CSP_ID = x509.ObjectIdentifier(f"{_PREFIX}.5")

#: CHIP_ID is 64 bytes; Turin chips fill only the first 8 (KDS takes those 8 as the hwid).
HWID_SIZES = (64, 8)


class KeyKind(enum.StrEnum):
    """The two kinds of report-signing key."""

    VCEK = "vcek"
    VLEK = "vlek"


@dataclass(frozen=True, slots=True)
class Endorsement:
    """The AMD extensions of a VCEK or VLEK certificate.

    Attributes:
        kind: VCEK (carries hwID) or VLEK (carries cspId).
        product_name: The productName extension, e.g. ``"Milan-B0"`` (VCEK) or ``"Milan"`` (VLEK).
        tcb: The TCB the key was derived for (blSPL, teeSPL, snpSPL, ucodeSPL, and fmcSPL where present).
        hwid: The chip's id (VCEK), else ``None``.
        csp_id: The cloud provider's name (VLEK), else ``None``.
    """

    kind: KeyKind
    product_name: str
    tcb: TcbVersion
    hwid: bytes | None
    csp_id: str | None

    @property
    def product_line(self) -> str:
        """The product name without its stepping: ``"Milan"`` for ``"Milan-B0"``."""
        return self.product_name.partition("-")[0]


def read_endorsement(cert: x509.Certificate) -> Endorsement:
    """Read the AMD extensions of ``cert``; raise :class:`CertificateMismatch` if it is no VCEK or VLEK."""
    values = {ext.oid: ext.value.value for ext in cert.extensions if isinstance(ext.value, x509.UnrecognizedExtension)}
    name = subject(cert)
    try:
        hwid = _hwid(values[OID_HWID]) if OID_HWID in values else None
        csp_id = _der.read_ia5(values[OID_CSP_ID]) if OID_CSP_ID in values else None
        product_name = _der.read_ia5(values[OID_PRODUCT_NAME])
        tcb = TcbVersion(
            bootloader=_spl(values[OID_BL_SPL]),
            tee=_spl(values[OID_TEE_SPL]),
            snp=_spl(values[OID_SNP_SPL]),
            microcode=_spl(values[OID_UCODE_SPL]),
            fmc=_spl(values[OID_FMC_SPL]) if OID_FMC_SPL in values else None,
        )
    except KeyError as missing:
        raise CertificateMismatch(f"{name} lacks the AMD extension {missing.args[0].dotted_string}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CertificateMismatch(f"{name} has a malformed AMD extension: {exc}") from None
    if (hwid is None) == (csp_id is None):
        raise CertificateMismatch(f"{name} must carry exactly one of hwID (a VCEK) and cspId (a VLEK)")
    kind = KeyKind.VCEK if hwid is not None else KeyKind.VLEK
    return Endorsement(kind=kind, product_name=product_name, tcb=tcb, hwid=hwid, csp_id=csp_id)


def _spl(value: bytes) -> int:
    level = _der.read_unsigned(value)
    if level > 0xFF:
        raise ValueError(f"security patch level {level} does not fit in a byte")
    return level


def _hwid(value: bytes) -> bytes:
    if len(value) in HWID_SIZES:  # KDS writes the bare bytes, without an OCTET STRING header
        return value
    octets = _der.read_tlv(value, _der.TAG_OCTET_STRING)
    if len(octets) not in HWID_SIZES:
        raise ValueError(f"hwID is {len(octets)} bytes, expected 64 (or 8 on Turin)")
    return octets
