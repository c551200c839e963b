"""SEV-SNP evidence simulator: byte-exact ATTESTATION_REPORTs under a locally generated AMD-style chain.

The chain copies AMD's certificate profile (spec 57230): a self-signed ARK, an ASK and an ASVK issued by it, and
VCEK/VLEK certificates with serial number 0, AMD's names (``CN=ARK-Milan``, ``SEV-Milan``, ``SEV-VLEK-Milan``,
``SEV-VCEK``, ``SEV-VLEK``), AMD's serial numbers, and the KDS extensions (productName, SPLs, hwID or cspId), all
signed with RSASSA-PSS/SHA-384/salt 48. Every subject carries ``O=`` :data:`SIMULATOR_ORGANIZATION`, so verifiers
refuse these roots unless simulator roots are explicitly trusted. Reports are signed with deterministic ECDSA
(RFC 6979) and certificates with a seeded PSS salt, so the same keys, times and seed give the same bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from attestation._x509 import SIMULATOR_ORGANIZATION, load_certificate_der
from attestation.tee.sev_snp import _der
from attestation.tee.sev_snp import certs as amd
from attestation.tee.sev_snp.chain import AMD_PSS
from attestation.tee.sev_snp.report import REPORT_SIZE, SIGNED_SIZE, SUPPORTED_VERSIONS
from attestation.tee.sev_snp.tcb import Product, TcbLayout, TcbVersion

#: AMD's serial numbers for (ARK, ASK, ASVK) of each product.
_SERIALS = {
    Product.MILAN: (0x10000, 0x10001, 0x10101),
    Product.GENOA: (0x20000, 0x20002, 0x20101),
    Product.TURIN: (0x30000, 0x30001, 0x30101),
}
#: (CPUID family, model, stepping) of each product's first stepping.
_CPUID = {Product.MILAN: (0x19, 0x01, 0x01), Product.GENOA: (0x19, 0x11, 0x01), Product.TURIN: (0x1A, 0x02, 0x00)}
_DEFAULT_TCB = {
    Product.MILAN: TcbVersion(bootloader=3, tee=0, snp=8, microcode=115),
    Product.GENOA: TcbVersion(bootloader=7, tee=0, snp=14, microcode=72),
    Product.TURIN: TcbVersion(bootloader=1, tee=1, snp=1, microcode=4, fmc=1),
}
#: Guest policy: SMT allowed, reserved bit 17 set (the spec requires it), debug off.
DEFAULT_POLICY = 0x30000
POLICY_DEBUG = 1 << 19
#: PLATFORM_INFO: SMT and TSME enabled.
DEFAULT_PLATFORM_INFO = 0b11
SIMULATOR_CSP_ID = "ccdeploy-simulator"
DEFAULT_SEED = b"ccdeploy SEV-SNP simulator"
_CA_YEARS, _LEAF_YEARS = 25, 7


@dataclass(frozen=True, slots=True)
class SnpKeys:
    """The private keys of a simulated AMD product: RSA for the CAs, P-384 for the report-signing keys."""

    ark: rsa.RSAPrivateKey
    ask: rsa.RSAPrivateKey
    asvk: rsa.RSAPrivateKey
    vcek: ec.EllipticCurvePrivateKey
    vlek: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, rsa_key_size: int = 4096) -> SnpKeys:
        """Fresh keys (AMD's ARK, ASK and ASVK are RSA-4096; smaller keys make faster test fixtures)."""
        ark, ask, asvk = (rsa.generate_private_key(65537, rsa_key_size) for _ in range(3))
        vcek, vlek = (ec.generate_private_key(ec.SECP384R1()) for _ in range(2))
        return cls(ark=ark, ask=ask, asvk=asvk, vcek=vcek, vlek=vlek)


@dataclass(frozen=True, slots=True)
class SimulatedReport:
    """A simulated report with the certificates that verify it.

    Attributes:
        report: The 1184-byte ATTESTATION_REPORT.
        signing_cert: The VCEK or VLEK certificate.
        chain: ASK (or ASVK) then ARK.
    """

    report: bytes
    signing_cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]


class SnpSimulator:
    """A simulated AMD product line that signs SEV-SNP reports.

    Args:
        keys: The product's keys (fixed keys give reproducible certificates and reports).
        product: ``"Milan"``, ``"Genoa"`` or ``"Turin"``.
        not_before: Start of every certificate's validity (CAs for 25 years, VCEK/VLEK for 7, as AMD's).
        seed: Derives report ids, default chip ids and the RSASSA-PSS salts.
    """

    def __init__(
        self, keys: SnpKeys, *, product: str = "Milan", not_before: datetime, seed: bytes = DEFAULT_SEED
    ) -> None:
        self._keys = keys
        self._product = Product(product)
        self._not_before = not_before
        self._seed = seed
        ark_serial, ask_serial, asvk_serial = _SERIALS[self._product]
        ark_name = _name(f"ARK-{self._product}")
        self._ark = self._ca(ark_name, keys.ark, ark_name, keys.ark, ark_serial, path_length=None)
        self._ask = self._ca(_name(f"SEV-{self._product}"), keys.ask, ark_name, keys.ark, ask_serial, path_length=0)
        asvk_name = _name(f"SEV-VLEK-{self._product}")
        self._asvk = self._ca(asvk_name, keys.asvk, ark_name, keys.ark, asvk_serial, path_length=0)

    @classmethod
    def create(cls, *, product: str = "Milan", at: datetime, rsa_key_size: int = 4096) -> SnpSimulator:
        """A simulator with fresh keys whose certificates are valid from a day before ``at``."""
        keys = SnpKeys.generate(rsa_key_size)
        return cls(keys, product=product, not_before=at - timedelta(days=1), seed=secrets.token_bytes(32))

    @property
    def product(self) -> Product:
        """The simulated product line."""
        return self._product

    @property
    def keys(self) -> SnpKeys:
        """The private keys."""
        return self._keys

    @property
    def ark(self) -> x509.Certificate:
        """The simulated ARK (the root to trust, with ``unsafe_allow_simulator_roots``)."""
        return self._ark

    @property
    def ask(self) -> x509.Certificate:
        """The simulated ASK (issues VCEKs)."""
        return self._ask

    @property
    def asvk(self) -> x509.Certificate:
        """The simulated ASVK (issues VLEKs)."""
        return self._asvk

    def chain(self, signing_key: str = "vcek") -> tuple[x509.Certificate, x509.Certificate]:
        """ASK then ARK (``"vcek"``), or ASVK then ARK (``"vlek"``), as KDS's ``cert_chain``."""
        return (self._asvk if amd.KeyKind(signing_key) is amd.KeyKind.VLEK else self._ask), self._ark

    def chain_pem(self, signing_key: str = "vcek") -> bytes:
        """:meth:`chain` as PEM."""
        return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in self.chain(signing_key))

    def default_chip_id(self) -> bytes:
        """A chip id derived from the seed (Turin fills only the first 8 of its 64 bytes)."""
        chip = hashlib.sha512(self._seed + b"chip_id" + self._product.encode()).digest()
        return chip[:8] + bytes(56) if self._product is Product.TURIN else chip

    def default_tcb(self) -> TcbVersion:
        """The TCB reports carry unless told otherwise."""
        return _DEFAULT_TCB[self._product]

    def endorsement_cert(self, signing_key: str, *, tcb: TcbVersion, hwid: bytes) -> x509.Certificate:
        """A VCEK (for chip ``hwid``) or VLEK certificate for TCB ``tcb``, with AMD's extensions."""
        kind = amd.KeyKind(signing_key)
        key = self._keys.vcek if kind is amd.KeyKind.VCEK else self._keys.vlek
        issuer, issuer_key = (self._ask, self._keys.ask) if kind is amd.KeyKind.VCEK else (self._asvk, self._keys.asvk)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(f"SEV-{kind.upper()}"))
            .issuer_name(issuer.subject)
            .public_key(key.public_key())
            .serial_number(1)  # rewritten to AMD's 0 below: the builder refuses non-positive serials
            .not_valid_before(self._not_before)
            .not_valid_after(self._not_before + timedelta(days=365 * _LEAF_YEARS))
        )
        for oid, value in self._amd_extensions(kind, tcb, hwid):
            builder = builder.add_extension(x509.UnrecognizedExtension(oid, value), critical=False)
        return self._sign(builder, issuer_key, zero_serial=True)

    def report(
        self,
        *,
        measurement: bytes = bytes(48),
        report_data: bytes = bytes(64),
        policy: int = DEFAULT_POLICY,
        debug: bool = False,
        reported_tcb: TcbVersion | None = None,
        chip_id: bytes | None = None,
        version: int = 5,
        signing_key: str = "vcek",
        vmpl: int = 0,
        host_data: bytes = bytes(32),
        family_id: bytes = bytes(16),
        image_id: bytes = bytes(16),
        guest_svn: int = 0,
        id_key_digest: bytes = bytes(48),
        author_key_digest: bytes = bytes(48),
        platform_info: int = DEFAULT_PLATFORM_INFO,
        vcek_tcb: TcbVersion | None = None,
        vcek_hwid: bytes | None = None,
    ) -> SimulatedReport:
        """A signed report and its certificates.

        ``vcek_tcb`` and ``vcek_hwid`` put another TCB or chip id into the signing certificate than into the report
        (forgeries whose key does not belong to the report).
        """
        if version not in SUPPORTED_VERSIONS:
            raise ValueError(f"report version {version} is not one of {sorted(SUPPORTED_VERSIONS)}")
        kind = amd.KeyKind(signing_key)
        tcb = reported_tcb or self.default_tcb()
        chip = self.default_chip_id() if chip_id is None else chip_id
        body = bytearray(REPORT_SIZE)
        layout = TcbLayout.for_product(self._product)
        _put(body, 0x00, version, 4)
        _put(body, 0x04, guest_svn, 4)
        _put(body, 0x08, policy | (POLICY_DEBUG if debug else 0), 8)
        body[0x10:0x20], body[0x20:0x30] = _sized(family_id, 16), _sized(image_id, 16)
        _put(body, 0x30, vmpl, 4)
        _put(body, 0x34, 1, 4)  # SIGNATURE_ALGO: ECDSA P-384 with SHA-384
        _put(body, 0x40, platform_info, 8)
        _put(body, 0x48, (0 if kind is amd.KeyKind.VCEK else 1) << 2, 4)
        body[0x50:0x90], body[0x90:0xC0] = _sized(report_data, 64), _sized(measurement, 48)
        body[0xC0:0xE0], body[0xE0:0x110] = _sized(host_data, 32), _sized(id_key_digest, 48)
        body[0x110:0x140] = _sized(author_key_digest, 48)
        body[0x140:0x160] = hashlib.sha256(self._seed + b"report_id" + bytes(body[0x50:0xC0])).digest()
        body[0x160:0x180] = b"\xff" * 32  # REPORT_ID_MA: no migration agent
        for offset in (0x38, 0x180, 0x1E0, 0x1F0):  # CURRENT, REPORTED, COMMITTED and LAUNCH TCB
            _put(body, offset, tcb.encode(layout), 8)
        if version >= 3:
            body[0x188:0x18B] = bytes(_CPUID[self._product])
        body[0x1A0:0x1E0] = _sized(chip, 64)
        body[0x1E8:0x1EB] = body[0x1EC:0x1EF] = bytes((31, 55, 1))  # firmware 1.55.31 (build, minor, major)
        signer = self._keys.vcek if kind is amd.KeyKind.VCEK else self._keys.vlek
        _sign_report(body, signer)
        cert = self.endorsement_cert(kind, tcb=vcek_tcb or tcb, hwid=chip if vcek_hwid is None else vcek_hwid)
        return SimulatedReport(report=bytes(body), signing_cert=cert, chain=self.chain(kind))

    def crl(
        self, revoked_serials: tuple[int, ...] = (), *, last_update: datetime, next_update: datetime
    ) -> x509.CertificateRevocationList:
        """A CRL issued and signed by the ARK (as KDS's ``/crl``), listing ``revoked_serials``."""
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self._ark.subject)
            .last_update(last_update)
            .next_update(next_update)
        )
        for serial in revoked_serials:
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(last_update).build()
            builder = builder.add_revoked_certificate(entry)
        crl = builder.sign(self._keys.ark, hashes.SHA384(), rsa_padding=AMD_PSS)
        der = crl.public_bytes(serialization.Encoding.DER)
        signature = self._pss_sign(self._keys.ark, crl.tbs_certlist_bytes)
        return x509.load_der_x509_crl(der[: -len(signature)] + signature)

    def _ca(
        self,
        subject_name: x509.Name,
        key: rsa.RSAPrivateKey,
        issuer_name: x509.Name,
        issuer_key: rsa.RSAPrivateKey,
        serial: int,
        *,
        path_length: int | None,
    ) -> x509.Certificate:
        public = key.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject_name)
            .issuer_name(issuer_name)
            .public_key(public)
            .serial_number(serial)
            .not_valid_before(self._not_before)
            .not_valid_after(self._not_before + timedelta(days=365 * _CA_YEARS))
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(public)
        constraints = x509.BasicConstraints(ca=True, path_length=path_length)
        extensions: list[tuple[x509.ExtensionType, bool]]
        if subject_name == issuer_name:  # in AMD's order: the ARK's, then the ASK's and ASVK's
            extensions = [(_key_usage(crl_sign=True), True), (ski, False), (constraints, True)]
        else:
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
            extensions = [(ski, False), (aki, False), (constraints, True), (_key_usage(crl_sign=False), True)]
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return self._sign(builder, issuer_key, zero_serial=False)

    def _amd_extensions(
        self, kind: amd.KeyKind, tcb: TcbVersion, hwid: bytes
    ) -> list[tuple[x509.ObjectIdentifier, bytes]]:
        product_name = f"{self._product}-B0" if kind is amd.KeyKind.VCEK else str(self._product)
        levels = [(amd.OID_BL_SPL, tcb.bootloader), (amd.OID_TEE_SPL, tcb.tee)]
        levels += [(oid, 0) for oid in amd.OID_RESERVED_SPLS]
        levels += [(amd.OID_SNP_SPL, tcb.snp), (amd.OID_UCODE_SPL, tcb.microcode)]
        if tcb.fmc is not None:
            levels.append((amd.OID_FMC_SPL, tcb.fmc))
        extensions = [
            (amd.OID_STRUCT_VERSION, _der.encode_unsigned(0)),
            (amd.OID_PRODUCT_NAME, _der.encode_ia5(product_name)),
        ]
        extensions += [(oid, _der.encode_unsigned(level)) for oid, level in levels]
        if kind is amd.KeyKind.VCEK:
            extensions.append((amd.OID_HWID, hwid))  # bare bytes, as KDS writes them
        else:
            extensions.append((amd.OID_CSP_ID, _der.encode_ia5(f"CN={SIMULATOR_CSP_ID}")))
        return extensions

    def _sign(self, builder: x509.CertificateBuilder, key: rsa.RSAPrivateKey, *, zero_serial: bool) -> x509.Certificate:
        draft = builder.sign(key, hashes.SHA384(), rsa_padding=AMD_PSS)
        der = draft.public_bytes(serialization.Encoding.DER)
        tbs = draft.tbs_certificate_bytes
        start = der.index(tbs)
        if zero_serial:
            tbs = _zero_serial(tbs)
        signature = self._pss_sign(key, tbs)
        return load_certificate_der(der[:start] + tbs + der[start + len(tbs) : -len(signature)] + signature, "sim")

    def _pss_sign(self, key: rsa.RSAPrivateKey, message: bytes) -> bytes:
        # cryptography draws a random salt for every RSASSA-PSS signature, so its certificates differ on each run.
        # Committed forgeries must be byte-identical whenever they are regenerated, so the 48-byte salt is derived
        # from the seed and the message (HMAC-SHA-384) and EMSA-PSS (RFC 8017 §9.1.1) is computed here, followed by
        # RSASP1 with the private numbers. Any salt is valid PSS; verifiers cannot tell the difference.
        salt = hmac.new(self._seed, message, hashlib.sha384).digest()
        signature = _rsassa_pss_sign(key, message, salt)
        key.public_key().verify(signature, message, AMD_PSS, hashes.SHA384())  # raises if the encoding were wrong
        return signature


def _rsassa_pss_sign(key: rsa.RSAPrivateKey, message: bytes, salt: bytes) -> bytes:
    numbers = key.private_numbers()
    modulus_bits = numbers.public_numbers.n.bit_length()
    em_bits = modulus_bits - 1
    em_len = (em_bits + 7) // 8
    digest = hashlib.sha384(b"\x00" * 8 + hashlib.sha384(message).digest() + salt).digest()
    db = bytes(em_len - len(salt) - len(digest) - 2) + b"\x01" + salt
    masked = bytearray(a ^ b for a, b in zip(db, _mgf1_sha384(digest, len(db)), strict=True))
    masked[0] &= 0xFF >> (8 * em_len - em_bits)
    encoded = int.from_bytes(bytes(masked) + digest + b"\xbc", "big")
    # RSASP1 with the Chinese remainder theorem.
    m1 = pow(encoded, numbers.dmp1, numbers.p)
    m2 = pow(encoded, numbers.dmq1, numbers.q)
    signature = m2 + (numbers.iqmp * (m1 - m2) % numbers.p) * numbers.q
    return signature.to_bytes((modulus_bits + 7) // 8, "big")


def _mgf1_sha384(seed: bytes, length: int) -> bytes:
    output = b"".join(hashlib.sha384(seed + counter.to_bytes(4, "big")).digest() for counter in range(length // 48 + 1))
    return output[:length]


def _zero_serial(tbs: bytes) -> bytes:
    # TBSCertificate ::= SEQUENCE { [0] version (A0 03 02 01 02), serialNumber INTEGER (02 01 01), ... }
    header = 2 + (tbs[1] & 0x7F if tbs[1] & 0x80 else 0)
    version, serial = header, header + 5
    if tbs[version : version + 5] != bytes.fromhex("a003020102") or tbs[serial : serial + 3] != b"\x02\x01\x01":
        raise RuntimeError("unexpected TBSCertificate layout")
    return tbs[: serial + 2] + b"\x00" + tbs[serial + 3 :]


def _sign_report(body: bytearray, key: ec.EllipticCurvePrivateKey) -> None:
    der = key.sign(bytes(body[:SIGNED_SIZE]), ec.ECDSA(hashes.SHA384(), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    body[SIGNED_SIZE : SIGNED_SIZE + 72] = r.to_bytes(72, "little")
    body[SIGNED_SIZE + 72 : SIGNED_SIZE + 144] = s.to_bytes(72, "little")


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Engineering"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Santa Clara"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, SIMULATOR_ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, crl_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _put(body: bytearray, offset: int, value: int, size: int) -> None:
    body[offset : offset + size] = value.to_bytes(size, "little")


def _sized(value: bytes, size: int) -> bytes:
    if len(value) != size:
        raise ValueError(f"expected {size} bytes, got {len(value)}")
    return value
