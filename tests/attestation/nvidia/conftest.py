"""Shared NVIDIA GPU test material: the real reports, chains and RIMs of ../shared/vectors (MANIFEST §4), and a
small generated PKI and report builder for the negatives real data cannot give (OCSP, simulator roots)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from attestation._x509 import SIMULATOR_ORGANIZATION, load_certificates
from attestation.tee.nvidia.fwid import TCG_DICE_TCB_INFO

#: Inside every real certificate's window, RIM signers included (MANIFEST §4).
REAL_AT = datetime(2024, 6, 1, tzinfo=UTC)
#: After the RIM signer certificates expired (2025-06-22/26), the device chains still valid (9999).
LATE_AT = datetime(2026, 11, 22, tzinfo=UTC)
#: Inside the generated certificates' windows.
GEN_AT = datetime(2025, 1, 1, tzinfo=UTC)
DRIVER_RIM = "nvtrust-driver-rim-545.00-test-no-gpu.swidtag"
VBIOS_RIM = "nvtrust-vbios-rim-96.00.5E.00.01-test-no-gpu.swidtag"


@dataclass(frozen=True)
class RealEvidence:
    """One NVIDIA row of MANIFEST §4."""

    report: bytes
    chain: tuple[x509.Certificate, ...]


def _load(vectors: Path, report: str, chain: str) -> RealEvidence:
    gpu = vectors / "nvidia-gpu"
    return RealEvidence(
        report=bytes.fromhex((gpu / report).read_text().strip()),
        chain=load_certificates((gpu / chain).read_bytes(), chain),
    )


@pytest.fixture(scope="session")
def real_2023(vectors: Path) -> RealEvidence:
    return _load(vectors, "nvtrust-2023-h100-report.hex", "nvtrust-2023-h100-ak-cert-chain.pem")


@pytest.fixture(scope="session")
def real_2025(vectors: Path) -> RealEvidence:
    return _load(vectors, "nvtrust-2025-h100-report.hex", "nvtrust-2025-h100-cert-chain.pem")


@pytest.fixture(scope="session")
def driver_rim(vectors: Path) -> bytes:
    return (vectors / "nvidia-gpu" / DRIVER_RIM).read_bytes()


@pytest.fixture(scope="session")
def vbios_rim(vectors: Path) -> bytes:
    return (vectors / "nvidia-gpu" / VBIOS_RIM).read_bytes()


# --- generated PKI -------------------------------------------------------------------------------------------------

_NOT_BEFORE = datetime(2024, 1, 1, tzinfo=UTC)
_NOT_AFTER = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Issued:
    """A generated certificate with its key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name),
        ]
    )


def issue(
    common_name: str,
    *,
    issuer: Issued | None = None,
    ca: bool = False,
    organization: str = "Test GPU Vendor",
    not_after: datetime = _NOT_AFTER,
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    serial: int | None = None,
) -> Issued:
    """A P-384 certificate (self-signed when ``issuer`` is None)."""
    key = ec.generate_private_key(ec.SECP384R1())
    name = _name(common_name, organization)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    signer = issuer.key if issuer else key
    return Issued(builder.sign(signer, hashes.SHA384()), key)


def dice_extension(fwid: bytes) -> tuple[x509.ExtensionType, bool]:
    """NVIDIA's layout of the DICE extension: SEQUENCE { INTEGER 1, SEQUENCE { sha384, OCTET STRING fwid } }."""
    oid = bytes.fromhex("0609608648016503040202")
    octets = bytes((0x04, len(fwid))) + fwid
    fwid_seq = bytes((0x30, len(oid) + len(octets))) + oid + octets
    body = bytes.fromhex("020101") + fwid_seq
    return x509.UnrecognizedExtension(TCG_DICE_TCB_INFO, bytes((0x30, len(body))) + body), False


@dataclass(frozen=True)
class GeneratedDevice:
    """A generated device PKI: root -> intermediate -> leaf (with a DICE FWID)."""

    root: Issued
    intermediate: Issued
    leaf: Issued
    fwid: bytes

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        return (self.leaf.cert, self.intermediate.cert, self.root.cert)


def make_device(*, organization: str = SIMULATOR_ORGANIZATION, fwid: bytes = bytes(range(48))) -> GeneratedDevice:
    root = issue("Test Device Identity Root", ca=True, organization=organization)
    intermediate = issue("Test GPU Identity", issuer=root, ca=True, organization=organization)
    leaf = issue(
        "GH100 A01 GSP FMC LF", issuer=intermediate, organization=organization, extensions=[dice_extension(fwid)]
    )
    return GeneratedDevice(root, intermediate, leaf, fwid)


# --- report builder ------------------------------------------------------------------------------------------------


#: Four 48-byte measurement values.
DEFAULT_BLOCKS = tuple(bytes([n]) * 48 for n in range(1, 5))


def opaque_field(field_id: int, value: bytes) -> bytes:
    return field_id.to_bytes(2, "little") + len(value).to_bytes(2, "little") + value


def build_report(
    key: ec.EllipticCurvePrivateKey,
    *,
    nonce: bytes = b"\x11" * 32,
    blocks: Sequence[bytes] = DEFAULT_BLOCKS,
    opaque: bytes = b"",
    trailing: bytes = b"",
) -> bytes:
    """An SPDM 1.1 GET_MEASUREMENTS request || signed MEASUREMENTS response."""
    request = bytes((0x11, 0xE0, 0x01, 0xFF)) + nonce + b"\x00"
    record = b"".join(
        bytes((index, 0x01))
        + (len(value) + 3).to_bytes(2, "little")
        + b"\x01"
        + len(value).to_bytes(2, "little")
        + value
        for index, value in enumerate(blocks, start=1)
    )
    response = (
        bytes((0x11, 0x60, 0x00, 0x00, len(blocks)))
        + len(record).to_bytes(3, "little")
        + record
        + b"\x22" * 32
        + len(opaque).to_bytes(2, "little")
        + opaque
    )
    r, s = decode_dss_signature(key.sign(request + response, ec.ECDSA(hashes.SHA384())))
    return request + response + r.to_bytes(48, "big") + s.to_bytes(48, "big") + trailing


def days(n: int) -> timedelta:
    return timedelta(days=n)
