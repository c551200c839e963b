"""Simulated NVIDIA Hopper confidential-computing evidence: SPDM reports, device chain, RIMs and OCSP responses.

The shapes copy the real H100 artifacts byte for byte, with the simulator's own keys and values:

* the report is an SPDM 1.1 GET_MEASUREMENTS request (``11 e0 01 ff``, a 32-byte nonce, slot 0) followed by the
  response: 64 measurement blocks (DMTF, SHA-384), a responder nonce, opaque-data TLVs (``u16`` type and length:
  VBIOS version, board id, chip SKU, project, project SKU, driver version, FWID, ...) and an ECDSA P-384 ``r || s``
  signature over SHA-384 of the request and the response up to the signature;
* the device chain is root -> "NVIDIA GH100 Identity" -> "NVIDIA GH100 Provisioner ICA 1" -> "GH100 A01 GSP BROM" ->
  "GH100 A01 GSP FMC LF" (the attestation key), the leaf carrying the TCG DICE TcbInfo extension whose last 48
  bytes are the FWID that the report's opaque data repeats;
* the driver and VBIOS RIMs are SWID tags with 64 ``Measurement`` resources (an active RIM index ``i`` is SPDM block
  ``i + 1``; some indices list alternatives) and an enveloped XMLDSig (ecdsa-sha384, C14N 1.1) whose KeyInfo holds
  the signer chain: signer -> L3 -> CA -> root;
* OCSP responses (status good, or revoked where asked) are signed by each certificate's issuer.

Every certificate names :data:`attestation._x509.SIMULATOR_ORGANIZATION`, so verifiers refuse these roots unless
simulator roots are explicitly trusted. Every signature is deterministic (RFC 6979) and every serial number and time
derives from the keys and the ``at`` given, so fixed keys reproduce every byte.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from lxml import etree  # type: ignore[import-untyped, unused-ignore]
from signxml.algorithms import DigestAlgorithm, SignatureConstructionMethod, SignatureMethod
from signxml.signer import XMLSigner

from attestation._x509 import SIMULATOR_ORGANIZATION
from attestation.simulator._keys import EcKeySet

DEFAULT_DRIVER_VERSION = "550.90.07"
DEFAULT_VBIOS_VERSION = "96.00.9F.00.01"
BLOCK_COUNT = 64
DIGEST_BYTES = 48
NONCE_BYTES = 32
SIGNATURE_BYTES = 96
REQUEST_BYTES = 4 + NONCE_BYTES + 1
#: RIM indices (0-based; SPDM block = index + 1) that the real GH100 RIMs mark active.
DRIVER_ACTIVE = (7, *range(21, 41))
VBIOS_ACTIVE = (*range(0, 7), *range(8, 13))
#: Opaque-data TLV types (NVIDIA's numbering).
OPAQUE_DRIVER_VERSION = 3
OPAQUE_VBIOS_VERSION = 6
OPAQUE_CHIP_SKU = 15
OPAQUE_PROJECT = 17
OPAQUE_PROJECT_SKU = 18
OPAQUE_FWID = 20
TCB_INFO_OID = x509.ObjectIdentifier("2.23.133.5.4.1")
#: NVIDIA's SAN otherName type for the device identity (``NVIDIA:GH100:<id>``).
DEVICE_NAME_OID = x509.ObjectIdentifier("1.3.6.1.4.1.412.274.1")

_REQUEST_HEADER = bytes((0x11, 0xE0, 0x01, 0xFF))  # SPDM 1.1 GET_MEASUREMENTS, signature requested, all blocks
_RESPONSE_HEADER = bytes((0x11, 0x60, 0x00, 0x00))  # SPDM 1.1 MEASUREMENTS, slot 0
_DEVICE_FOREVER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)  # NVIDIA's device certificates never expire
_RIM_LIFETIMES = {"rim_root": 30 * 365, "rim_ca": 10 * 365, "rim_l3": 3 * 365, "rim_signer": 2 * 365}
_OCSP_URL = "http://ocsp.simulator.invalid"
_SWID = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
_SHA384_NS = "http://www.w3.org/2001/04/xmlenc#sha384"
_TCG_RIM = "https://trustedcomputinggroup.org/resource/tcg-reference-integrity-manifest-rim-information-model/"
_C14N11 = "http://www.w3.org/2006/12/xml-c14n11"
_CA_USAGE = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
_BROM_USAGE = x509.KeyUsage(False, False, False, False, False, True, False, False, False)
_SIGNING_USAGE = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
_ECDSA_SHA384_ALGORITHM = bytes.fromhex("300a06082a8648ce3d040303")
_OCSP_BASIC = bytes.fromhex("06092b0601050507300101")


@dataclass(frozen=True, slots=True)
class NvidiaGpuSimulatorKeys(EcKeySet):
    """The P-384 keys of a simulated GPU: the device chain (root to attestation key) and the RIM signing chain."""

    curve: ClassVar[type[ec.EllipticCurve]] = ec.SECP384R1

    device_root: ec.EllipticCurvePrivateKey
    identity: ec.EllipticCurvePrivateKey
    provisioner: ec.EllipticCurvePrivateKey
    brom: ec.EllipticCurvePrivateKey
    attestation: ec.EllipticCurvePrivateKey
    rim_root: ec.EllipticCurvePrivateKey
    rim_ca: ec.EllipticCurvePrivateKey
    rim_l3: ec.EllipticCurvePrivateKey
    rim_signer: ec.EllipticCurvePrivateKey


def default_measurements() -> dict[int, bytes]:
    """The SPDM blocks (1-64) a simulated GPU reports: a distinct digest for every RIM-active block, else zeros."""
    blocks = dict.fromkeys(range(1, BLOCK_COUNT + 1), bytes(DIGEST_BYTES))
    for kind, active in (("driver", DRIVER_ACTIVE), ("vbios", VBIOS_ACTIVE)):
        for index in active:
            blocks[index + 1] = hashlib.sha384(f"ccdeploy simulator GPU {kind} measurement {index}".encode()).digest()
    return blocks


def default_fwid() -> bytes:
    """The FWID of the simulated GSP firmware (in the leaf's TcbInfo and the report's opaque data)."""
    return hashlib.sha384(b"ccdeploy simulator GPU firmware").digest()


class NvidiaGpuSimulator:
    """A simulated H100 in confidential-computing mode, with NVIDIA-shaped device and RIM signing chains.

    Build one with :meth:`create` (fresh keys) or :meth:`from_keys` (fixed keys, reproducible output). The device
    CAs are valid from a day before ``at`` (the device certificates never expire, as NVIDIA's); the RIM chain from a
    day before ``at`` for 30 / 10 / 3 / 2 years (root, CA, L3, signer).
    """

    def __init__(self, keys: NvidiaGpuSimulatorKeys, *, at: datetime, fwid: bytes) -> None:
        if len(fwid) != DIGEST_BYTES:
            raise ValueError(f"an FWID is {DIGEST_BYTES} bytes")
        self._keys = keys
        self._fwid = fwid
        start = _whole_seconds(at) - timedelta(days=1)
        self._device = _device_chain(keys, start, fwid)
        self._rim = _rim_chain(keys, start)

    @classmethod
    def create(cls, *, at: datetime, fwid: bytes | None = None) -> NvidiaGpuSimulator:
        """A simulator with fresh keys whose certificates are valid around ``at``."""
        return cls.from_keys(NvidiaGpuSimulatorKeys.generate(), at=at, fwid=fwid)

    @classmethod
    def from_keys(cls, keys: NvidiaGpuSimulatorKeys, *, at: datetime, fwid: bytes | None = None) -> NvidiaGpuSimulator:
        """A simulator with the given keys whose certificates are valid around ``at`` (reproducible)."""
        return cls(keys, at=at, fwid=default_fwid() if fwid is None else fwid)

    @property
    def keys(self) -> NvidiaGpuSimulatorKeys:
        """The simulator's private keys."""
        return self._keys

    @property
    def fwid(self) -> bytes:
        """The firmware id certified in the leaf's TcbInfo extension."""
        return self._fwid

    @property
    def device_chain(self) -> tuple[x509.Certificate, ...]:
        """The device chain, leaf (the attestation key, "GH100 A01 GSP FMC LF") first, root last."""
        return self._device

    @property
    def rim_chain(self) -> tuple[x509.Certificate, ...]:
        """The RIM signing chain, signer first, root last (as the RIMs' KeyInfo carries it)."""
        return self._rim

    @property
    def device_root(self) -> x509.Certificate:
        """The simulated NVIDIA Device Identity root (trust it only with simulator roots allowed)."""
        return self._device[-1]

    @property
    def rim_root(self) -> x509.Certificate:
        """The simulated RIM signing root (trust it only with simulator roots allowed)."""
        return self._rim[-1]

    def device_root_pem(self) -> bytes:
        """:attr:`device_root` as PEM."""
        return _pem(self.device_root)

    def rim_root_pem(self) -> bytes:
        """:attr:`rim_root` as PEM."""
        return _pem(self.rim_root)

    def certificate_chain_pem(self) -> bytes:
        """The device chain as PEM, leaf first and root last, as the driver returns it."""
        return b"".join(_pem(cert) for cert in self._device)

    def report(
        self,
        nonce: bytes,
        *,
        driver_version: str = DEFAULT_DRIVER_VERSION,
        vbios_version: str = DEFAULT_VBIOS_VERSION,
        measurements: Mapping[int, bytes] | None = None,
        fwid: bytes | None = None,
    ) -> bytes:
        """An attestation report: the GET_MEASUREMENTS request, then the signed MEASUREMENTS response.

        Args:
            nonce: The verifier's 32-byte nonce.
            driver_version: The driver version the opaque data states.
            vbios_version: The VBIOS version the opaque data states (five hex bytes, e.g. ``96.00.9F.00.01``).
            measurements: SPDM blocks (1-64, 48 bytes) replacing those of :func:`default_measurements`, e.g. a
                GPU whose block differs from its RIM.
            fwid: The FWID the opaque data states (default: the certified one; another one forges a mismatch).

        Returns:
            ``request || response``, deterministic for the same keys and arguments.
        """
        if len(nonce) != NONCE_BYTES:
            raise ValueError(f"an SPDM nonce is {NONCE_BYTES} bytes")
        blocks = default_measurements()
        blocks.update(measurements or {})
        _check_blocks(blocks)
        request = _REQUEST_HEADER + nonce + b"\x00"
        record = b"".join(_block(index, value) for index, value in sorted(blocks.items()))
        responder_nonce = hashlib.sha256(b"ccdeploy simulator GPU responder nonce" + nonce).digest()
        opaque = _opaque(driver_version, vbios_version, self._fwid if fwid is None else fwid)
        response = (
            _RESPONSE_HEADER
            + bytes((len(blocks),))
            + len(record).to_bytes(3, "little")
            + record
            + responder_nonce
            + struct.pack("<H", len(opaque))
            + opaque
        )
        der = self._keys.attestation.sign(request + response, _deterministic())
        r, s = decode_dss_signature(der)
        return request + response + r.to_bytes(48, "big") + s.to_bytes(48, "big")

    def driver_rim(
        self,
        *,
        version: str = DEFAULT_DRIVER_VERSION,
        measurements: Mapping[int, bytes] | None = None,
        signer: Literal["rim", "device"] = "rim",
    ) -> bytes:
        """The signed driver RIM (golden values of :data:`DRIVER_ACTIVE`).

        Args:
            version: The driver version it is for (its ``colloquialVersion``).
            measurements: SPDM blocks replacing the golden values (keyed like :meth:`report`'s).
            signer: ``"device"`` signs it with the device attestation key and chain instead of the RIM signer, a
                forgery a verifier must refuse.
        """
        return self._rim_document("driver", version, DRIVER_ACTIVE, measurements, signer)

    def vbios_rim(
        self,
        *,
        version: str = DEFAULT_VBIOS_VERSION,
        measurements: Mapping[int, bytes] | None = None,
        signer: Literal["rim", "device"] = "rim",
    ) -> bytes:
        """The signed VBIOS RIM (golden values of :data:`VBIOS_ACTIVE`); arguments as :meth:`driver_rim`'s."""
        return self._rim_document("vbios", version, VBIOS_ACTIVE, measurements, signer)

    def ocsp_responses(
        self, *, at: datetime, revoked: Collection[x509.Certificate] = (), lifetime: timedelta = timedelta(days=1)
    ) -> tuple[bytes, ...]:
        """DER OCSP responses for every non-root certificate of both chains, each signed by the certificate's issuer.

        Args:
            at: The responses are produced an hour before ``at`` and valid until ``at + lifetime``.
            revoked: Certificates to report as revoked (since a day before ``at``, key compromise); others are good.
            lifetime: How long after ``at`` the responses stay fresh (their nextUpdate).
        """
        produced = _whole_seconds(at) - timedelta(hours=1)
        responses = []
        for chain, keys in ((self._device, self._device_keys()), (self._rim, self._rim_keys())):
            for index in range(len(chain) - 1):
                cert, issuer, issuer_key = chain[index], chain[index + 1], keys[index + 1]
                bad = cert in revoked
                responses.append(_ocsp_response(cert, issuer, issuer_key, produced, produced + lifetime, bad))
        return tuple(responses)

    def _device_keys(self) -> tuple[ec.EllipticCurvePrivateKey, ...]:
        k = self._keys
        return (k.attestation, k.brom, k.provisioner, k.identity, k.device_root)

    def _rim_keys(self) -> tuple[ec.EllipticCurvePrivateKey, ...]:
        k = self._keys
        return (k.rim_signer, k.rim_l3, k.rim_ca, k.rim_root)

    def _rim_document(
        self,
        kind: str,
        version: str,
        active: tuple[int, ...],
        measurements: Mapping[int, bytes] | None,
        signer: Literal["rim", "device"],
    ) -> bytes:
        blocks = default_measurements()
        blocks.update(measurements or {})
        _check_blocks(blocks)
        document = etree.fromstring(_swid_xml(kind, version, active, blocks).encode())
        key, chain = (self._keys.rim_signer, self._rim) if signer == "rim" else (self._keys.attestation, self._device)
        xml_signer = XMLSigner(
            method=SignatureConstructionMethod.enveloped,
            signature_algorithm=SignatureMethod.ECDSA_SHA384,
            digest_algorithm=DigestAlgorithm.SHA384,
            c14n_algorithm=_C14N11,
        )
        # signxml signs with key.sign(data, signature_algorithm=ECDSA(...)), a random nonce; the adapter makes the
        # signature deterministic (RFC 6979) so regenerated RIMs are byte-identical.
        signed = xml_signer.sign(
            document, key=cast(Any, _DeterministicKey(key)), cert=[_pem(cert).decode() for cert in chain]
        )
        return cast(bytes, etree.tostring(signed))


class _DeterministicKey:
    """The slice of an EC private key that signxml uses, signing with RFC 6979 nonces."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self.key_size = key.key_size
        self.curve = key.curve

    def sign(self, data: bytes, signature_algorithm: ec.ECDSA) -> bytes:
        return self._key.sign(data, ec.ECDSA(signature_algorithm.algorithm, deterministic_signing=True))

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()


def _deterministic() -> ec.ECDSA:
    return ec.ECDSA(hashes.SHA384(), deterministic_signing=True)


def _check_blocks(blocks: Mapping[int, bytes]) -> None:
    for index, value in blocks.items():
        if not 1 <= index <= BLOCK_COUNT or len(value) != DIGEST_BYTES:
            raise ValueError(f"block {index}: indices are 1-{BLOCK_COUNT} and values {DIGEST_BYTES} bytes")


def _block(index: int, value: bytes) -> bytes:
    # Index, MeasurementSpecification (DMTF), MeasurementSize; DMTF value type 1 (mutable firmware, digest), size.
    dmtf = bytes((0x01,)) + struct.pack("<H", len(value)) + value
    return bytes((index, 0x01)) + struct.pack("<H", len(dmtf)) + dmtf


def _vbios_bytes(version: str) -> bytes:
    parts = [int(part, 16) for part in version.split(".")]
    if len(parts) != 5 or not all(0 <= part <= 0xFF for part in parts):
        raise ValueError(f"a VBIOS version is five hex bytes, e.g. 96.00.9F.00.01, not {version!r}")
    # NVIDIA's encoding: "aa.bb.cc.dd.ee" is the bytes dd cc bb aa ee, then three zero bytes.
    return bytes((parts[3], parts[2], parts[1], parts[0], parts[4], 0, 0, 0))


def _opaque(driver_version: str, vbios_version: str, fwid: bytes) -> bytes:
    # The TLVs and their order as a 2024 H100 driver reports them; unnamed types carry the same-sized values.
    fields_ = (
        (OPAQUE_VBIOS_VERSION, _vbios_bytes(vbios_version)),
        (14, bytes.fromhex("b1030000")),
        (OPAQUE_CHIP_SKU, b"882".ljust(9, b"\0")),
        (16, b"0".ljust(5, b"\0")),
        (OPAQUE_PROJECT, b"1010\0"),
        (OPAQUE_PROJECT_SKU, b"0200\0"),
        (19, bytes(2)),
        (OPAQUE_DRIVER_VERSION, driver_version.encode("ascii") + b"\0"),
        (4, bytes.fromhex("8001000000000000")),
        (12, b"".join(struct.pack("<I", 1 if index in _active_blocks() else 0) for index in range(1, 65))),
        (13, bytes.fromhex("00c00100")),
        (11, b"\x55"),
        (OPAQUE_FWID, fwid),
        (21, b"\x55"),
    )
    return b"".join(struct.pack("<HH", kind, len(value)) + value for kind, value in fields_)


def _active_blocks() -> frozenset[int]:
    return frozenset(index + 1 for index in (*DRIVER_ACTIVE, *VBIOS_ACTIVE))


def _swid_xml(kind: str, version: str, active: tuple[int, ...], blocks: Mapping[int, bytes]) -> str:
    tag_id = hashlib.sha384(f"ccdeploy simulator {kind} RIM {version}".encode()).hexdigest()
    lines = [
        f'<SoftwareIdentity xmlns="{_SWID}" xmlns:ns0="{_SWID}" xmlns:ns2="{_SHA384_NS}" corpus="false" '
        f'name="GH100" patch="false" supplemental="false" tagId="{tag_id}" version="1.0" tagVersion="0">',
        f'    <ns0:Entity name="{SIMULATOR_ORGANIZATION}" role="softwareCreator tagCreator"/>',
        f'    <ns0:Meta xmlns:ns1="{_TCG_RIM}" colloquialVersion="{version}" edition="GPU" product="GH100" '
        'revision="r1" PayloadType="direct" ns1:BindingSpec="RIMIM" ns1:BindingSpecVersion="1.01" '
        f'ns1:PlatformManufacturerId="5703" ns1:PlatformManufacturerStr="{SIMULATOR_ORGANIZATION}" '
        f'ns1:PlatformModel="GH100" ns1:FirmwareManufacturer="{SIMULATOR_ORGANIZATION}" '
        'ns1:FirmwareManufacturerId="5703"/>',
        f'    <ns0:Payload xmlns:SHA384="{_SHA384_NS}">',
    ]
    for index in range(BLOCK_COUNT):
        values = _alternatives(kind, index, blocks[index + 1]) if index in active else (bytes(DIGEST_BYTES),)
        hashes_ = " ".join(f'ns2:Hash{n}="{value.hex()}"' for n, value in enumerate(values))
        name = f"HashedMeasurement_{index}" if index in active else f"Measurement_{index}"
        lines.append(
            f'        <ns0:Resource type="Measurement" index="{index}" active="{index in active}" '
            f'alternatives="{len(values)}" {hashes_} name="{name}" size="{DIGEST_BYTES}"/>'
        )
    lines += ["    </ns0:Payload>", "</SoftwareIdentity>"]
    return "\n".join(lines)


def _alternatives(kind: str, index: int, value: bytes) -> tuple[bytes, ...]:
    """The accepted values of an active index: some indices list alternatives, as the real RIMs do."""
    other = hashlib.sha384(f"ccdeploy simulator GPU {kind} alternative {index}".encode()).digest()
    if (kind, index) in (("driver", 23), ("driver", 24)):
        return (value, bytes(DIGEST_BYTES))
    if (kind, index) == ("driver", 35):
        return (other, value)
    if (kind, index) == ("vbios", 12):
        return (bytes(DIGEST_BYTES), other, value, hashlib.sha384(other).digest())
    return (value,)


def _whole_seconds(when: datetime) -> datetime:
    if when.utcoffset() is None:
        raise ValueError("times given to the simulator must be timezone-aware")
    return when.astimezone(UTC).replace(microsecond=0)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _tlv(tag: int, content: bytes) -> bytes:
    """One DER element (definite length)."""
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _tcb_info(brom_key: ec.EllipticCurvePrivateKey, fwid: bytes) -> bytes:
    # The shape of NVIDIA's 2.23.133.5.4.1 value: SEQUENCE { INTEGER 1, the BROM's SubjectPublicKeyInfo,
    # SEQUENCE { OID sha384, OCTET STRING fwid } }, so the FWID is its last 48 bytes.
    sha384_oid = bytes.fromhex("0609608648016503040202")
    fwid_seq = _tlv(0x30, sha384_oid + _tlv(0x04, fwid))
    return _tlv(0x30, bytes.fromhex("020101") + _spki(brom_key) + fwid_seq)


def _serial(key: ec.EllipticCurvePrivateKey, common_name: str) -> int:
    # Serials derive from the key and name so that fixed keys reproduce every byte.
    return int.from_bytes(hashlib.sha256(_spki(key) + common_name.encode()).digest()[:16], "big") >> 1 | 1


def _name(common_name: str, serial: int | None = None) -> x509.Name:
    attributes = [
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, SIMULATOR_ORGANIZATION),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
    ]
    if serial is not None:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, f"{serial:X}"))
    return x509.Name(attributes)


def _certificate(
    common_name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    window: tuple[datetime, datetime],
    extensions: list[tuple[x509.ExtensionType, bool]],
    *,
    serial_in_name: bool = False,
) -> x509.Certificate:
    serial = _serial(key, common_name)
    name = _name(common_name, serial if serial_in_name else None)
    issuer_name, issuer_key = issuer or (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(window[0])
        .not_valid_after(window[1])
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical)
    return builder.sign(issuer_key, hashes.SHA384(), ecdsa_deterministic=True)


def _ca_extensions(path_length: int | None, *, ocsp_url: bool) -> list[tuple[x509.ExtensionType, bool]]:
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=True, path_length=path_length), True),
        (_CA_USAGE, True),
    ]
    if ocsp_url:
        access = x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(_OCSP_URL))
        extensions.append((x509.AuthorityInformationAccess([access]), False))
    return extensions


def _device_chain(keys: NvidiaGpuSimulatorKeys, start: datetime, fwid: bytes) -> tuple[x509.Certificate, ...]:
    window = (start, _DEVICE_FOREVER)
    root = _certificate(
        "NVIDIA Device Identity CA", keys.device_root, None, window, _ca_extensions(None, ocsp_url=False)
    )
    identity = _certificate(
        "NVIDIA GH100 Identity",
        keys.identity,
        (root.subject, keys.device_root),
        window,
        _ca_extensions(None, ocsp_url=True),
    )
    provisioner = _certificate(
        "NVIDIA GH100 Provisioner ICA 1",
        keys.provisioner,
        (identity.subject, keys.identity),
        window,
        _ca_extensions(None, ocsp_url=True),
    )
    brom = _certificate(
        "GH100 A01 GSP BROM",
        keys.brom,
        (provisioner.subject, keys.provisioner),
        window,
        [(x509.BasicConstraints(ca=True, path_length=None), True), (_BROM_USAGE, True)],
        serial_in_name=True,
    )
    device_id = f"NVIDIA:GH100:{brom.serial_number:X}"[:29]
    san = x509.SubjectAlternativeName([x509.OtherName(DEVICE_NAME_OID, _tlv(0x0C, device_id.encode()))])
    leaf = _certificate(
        "GH100 A01 GSP FMC LF",
        keys.attestation,
        (brom.subject, keys.brom),
        window,
        [
            (_SIGNING_USAGE, True),
            (san, False),
            (x509.UnrecognizedExtension(TCB_INFO_OID, _tcb_info(keys.brom, fwid)), False),
        ],
        serial_in_name=True,
    )
    return (leaf, brom, provisioner, identity, root)


def _rim_chain(keys: NvidiaGpuSimulatorKeys, start: datetime) -> tuple[x509.Certificate, ...]:
    def window(role: str) -> tuple[datetime, datetime]:
        return (start, start + timedelta(days=_RIM_LIFETIMES[role]))

    root = _certificate(
        "NVIDIA CoRIM signing Root CA", keys.rim_root, None, window("rim_root"), _ca_extensions(None, ocsp_url=False)
    )
    ca = _certificate(
        "NVIDIA Reference Value GH100 CA",
        keys.rim_ca,
        (root.subject, keys.rim_root),
        window("rim_ca"),
        _ca_extensions(None, ocsp_url=True),
    )
    l3 = _certificate(
        "NVIDIA Reference Value L3 GH100 001",
        keys.rim_l3,
        (ca.subject, keys.rim_ca),
        window("rim_l3"),
        _ca_extensions(0, ocsp_url=True),
    )
    access = x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(_OCSP_URL))
    signer = _certificate(
        "HCC RIM L4 Signer",
        keys.rim_signer,
        (l3.subject, keys.rim_l3),
        window("rim_signer"),
        [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (_SIGNING_USAGE, True),
            (x509.AuthorityInformationAccess([access]), False),
        ],
    )
    return (signer, l3, ca, root)


def _ocsp_response(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    produced: datetime,
    next_update: datetime,
    revoked: bool,
) -> bytes:
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=cert,
        issuer=issuer,
        algorithm=hashes.SHA384(),
        cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
        this_update=produced,
        next_update=next_update,
        revocation_time=produced - timedelta(days=1) if revoked else None,
        revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
    )
    built = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, issuer).sign(issuer_key, hashes.SHA384())
    # cryptography stamps producedAt with the current time and signs with a random ECDSA nonce. To reproduce every
    # byte, the 15-character GeneralizedTime of producedAt is replaced in place (same length) and the
    # tbsResponseData is signed again, deterministically; the DER around it is then rebuilt (RFC 6960 4.2.1).
    stamped = b"\x18\x0f" + built.produced_at_utc.strftime("%Y%m%d%H%M%SZ").encode()
    wanted = b"\x18\x0f" + produced.strftime("%Y%m%d%H%M%SZ").encode()
    tbs = built.tbs_response_bytes
    if stamped != wanted:
        if tbs.count(stamped) != 1:
            raise AssertionError("cannot locate producedAt in the OCSP response")
        tbs = tbs.replace(stamped, wanted)
    signature = issuer_key.sign(tbs, _deterministic())
    basic = _tlv(0x30, tbs + _ECDSA_SHA384_ALGORITHM + _tlv(0x03, b"\x00" + signature))
    response_bytes = _tlv(0x30, _OCSP_BASIC + _tlv(0x04, basic))
    return _tlv(0x30, bytes.fromhex("0a0100") + _tlv(0xA0, response_bytes))
