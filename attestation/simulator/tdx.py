"""Intel TDX evidence simulator: byte-exact DCAP quotes (v4, v5) and their collateral under a generated Intel-style PKI.

The PKI copies Intel's profile: a self-signed ``Intel SGX Root CA``, an ``Intel SGX PCK Platform CA`` and an
``Intel SGX TCB Signing`` certificate issued by it, and an ``Intel SGX PCK Certificate`` with Intel's SGX extension
(OID 1.2.840.113741.1.13.1: PPID, TCB components, PCESVN, CPUSVN, PCE-ID, FMSPC, SGX type, platform instance and
configuration), all ECDSA P-256. Every subject carries ``O=`` :data:`SIMULATOR_ORGANIZATION`, so verifiers refuse
the root unless simulator roots are explicitly trusted.

Quotes follow Intel's TDX DCAP Quote Generation Library layout: a 48-byte header, a TD 1.0 (584-byte) or, in v5,
a TD 1.5 (648-byte) report body, and the signature data: the quote signature and attestation key, then
certification data type 6 nesting the QE report, its signature by the PCK key, the QE authentication data and
certification data type 5 (the PEM PCK chain). The QE report data binds the attestation key and the QE
authentication data: ``SHA-256(attestation key || auth data) || 32 zero bytes``.

Collateral comes as dcap-qvl's ``QuoteCollateralV3`` JSON or as Intel PCS-style responses (bodies and headers): a
TCB Info (id ``TDX``, version 3) for the simulated FMSPC with a TDX module identity ``TDX_01``, a QE Identity (id
``TD_QE``), both signed over their exact JSON bytes by the TCB signing key, the PCK CRL signed by the PCK CA and the
root CA CRL signed by the root. All signatures are deterministic (RFC 6979) and all serial numbers and times derive
from the keys and ``at``, so fixed keys give byte-identical output.
"""

from __future__ import annotations

import hashlib
import json
import struct
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from attestation._x509 import SIMULATOR_ORGANIZATION
from attestation.simulator._keys import EcKeySet

if TYPE_CHECKING:
    from attestation.tee.dcap.collateral import DcapCollateral

HEADER_SIZE = 48
TD10_BODY_SIZE = 584
TD15_BODY_SIZE = 648
SGX_REPORT_SIZE = 384
#: v5 body descriptor: body type (u16) and body size (u32).
V5_BODY_DESCRIPTOR_SIZE = 6
TEE_TYPE_TDX = 0x81
ATTESTATION_KEY_TYPE_ECDSA_P256 = 2
CERT_DATA_QE_REPORT = 6
CERT_DATA_PCK_CHAIN = 5
#: Intel's QE vendor id, as every Intel quote carries it.
INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
SGX_EXTENSION_OID = x509.ObjectIdentifier("1.2.840.113741.1.13.1")

#: The simulated platform: FMSPC, SGX TCB components (CPUSVN bytes), PCESVN, PCE-ID and TDX TEE_TCB_SVN
#: (byte 0: TDX module SVN, byte 1: module major version, so the module identity is ``TDX_01``).
SIMULATED_FMSPC = bytes.fromhex("f0c06f000000")
SIMULATED_SGX_COMPONENTS = (3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0)
SIMULATED_PCE_SVN = 11
SIMULATED_PCE_ID = bytes(2)
DEFAULT_TEE_TCB_SVN = bytes((6, 1, 3)) + bytes(13)
#: TD_ATTRIBUTES: SEPT_VE_DISABLE (bit 28) set, DEBUG (bit 0) clear; XFAM as a typical TD has it.
DEFAULT_TD_ATTRIBUTES = (1 << 28).to_bytes(8, "little")
TD_ATTRIBUTES_DEBUG = 1
DEFAULT_XFAM = bytes.fromhex("e702060000000000")
DEFAULT_QE_AUTH_DATA = bytes(range(32))
#: The simulated TD quoting enclave (QE report attributes and identity as Intel's TD_QE has them).
QE_SVN = 4
QE_PROD_ID = 2
QE_ATTRIBUTES = bytes.fromhex("1500000000000000e700000000000000")
TCB_EVALUATION_DATA_NUMBER = 17
#: Collateral (TCB Info, QE Identity, CRLs) is issued a day before ``at`` and valid 30 days, as Intel's.
COLLATERAL_LEAD = timedelta(days=1)
COLLATERAL_LIFETIME = timedelta(days=30)
_CA_LIFETIME = timedelta(days=365 * 15)
_LEAF_LIFETIME = timedelta(days=365 * 7)
_TCB_DATE = "2024-03-13T00:00:00Z"
_OLD_TCB_DATE = "2018-01-04T00:00:00Z"
_OLD_ADVISORIES = ("INTEL-SA-00106", "INTEL-SA-00115")
_SIGNING = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
_PCS = "https://simulator.invalid/sgx/certification/v4"
_COMPONENT_NAMES: tuple[dict[str, str], ...] = (
    {"category": "BIOS", "type": "Early Microcode Update"},
    {"category": "OS/VMM", "type": "SGX Late Microcode Update"},
    {"category": "OS/VMM", "type": "TXT SINIT"},
    {"category": "BIOS"},
    {"category": "BIOS"},
    {"category": "BIOS"},
    {},
    {"category": "OS/VMM", "type": "SEAMLDR ACM"},
)
_TDX_COMPONENT_NAMES: tuple[dict[str, str], ...] = (
    {"category": "OS/VMM", "type": "TDX Module"},
    {"category": "OS/VMM", "type": "TDX Module"},
    {"category": "OS/VMM", "type": "TDX Late Microcode Update"},
)


@dataclass(frozen=True, slots=True)
class TdxSimulatorKeys(EcKeySet):
    """The five ECDSA P-256 keys of a simulated Intel DCAP PKI and quoting enclave."""

    curve: ClassVar[type[ec.EllipticCurve]] = ec.SECP256R1

    root: ec.EllipticCurvePrivateKey
    pck_ca: ec.EllipticCurvePrivateKey
    pck: ec.EllipticCurvePrivateKey
    tcb_signing: ec.EllipticCurvePrivateKey
    attestation: ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class PcsResponse:
    """One Intel PCS answer: the body as PCS sends it and the headers that matter (issuer chains URL-encoded)."""

    body: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class PcsResponses:
    """The PCS answers for one quote's collateral (TCB Info, QE Identity, PCK CRL, root CA CRL)."""

    tcb_info: PcsResponse
    qe_identity: PcsResponse
    pck_crl: PcsResponse
    root_ca_crl: PcsResponse


@dataclass(frozen=True, slots=True)
class _Certificates:
    root: x509.Certificate
    pck_ca: x509.Certificate
    pck: x509.Certificate
    tcb_signing: x509.Certificate


class TdxSimulator:
    """Issues Intel TDX quotes and their DCAP collateral under a locally generated, never-trusted-by-default root.

    Build one with :meth:`create` (fresh keys) or :meth:`from_keys` (fixed keys, reproducible output). The
    certificates are valid from a day before ``at``; collateral windows are around ``at`` unless told otherwise.
    """

    def __init__(self, keys: TdxSimulatorKeys, certificates: _Certificates, *, at: datetime) -> None:
        self._keys = keys
        self._certs = certificates
        self._at = at

    @classmethod
    def create(cls, *, at: datetime) -> TdxSimulator:
        """A simulator with fresh P-256 keys whose certificates and collateral are valid around ``at``."""
        return cls.from_keys(TdxSimulatorKeys.generate(), at=at)

    @classmethod
    def from_keys(cls, keys: TdxSimulatorKeys, *, at: datetime) -> TdxSimulator:
        """A simulator with the given keys whose certificates are valid around ``at`` (reproducible)."""
        at = _whole_seconds(at)
        start = at - COLLATERAL_LEAD
        root_name, ca_name = _name("Intel SGX Root CA"), _name("Intel SGX PCK Platform CA")
        root = _ca(root_name, keys.root, root_name, keys.root, start, start + _CA_LIFETIME, path_length=1)
        pck_ca = _ca(ca_name, keys.pck_ca, root_name, keys.root, start, start + _CA_LIFETIME, path_length=0)
        tcb_builder = _builder(_name("Intel SGX TCB Signing"), root_name, keys.tcb_signing, start, _LEAF_LIFETIME)
        tcb_signing = _sign_cert(_leaf_extensions(tcb_builder, keys.tcb_signing, root_name, keys.root), keys.root)
        pck_builder = _builder(_name("Intel SGX PCK Certificate"), ca_name, keys.pck, start, _LEAF_LIFETIME)
        pck_builder = _leaf_extensions(pck_builder, keys.pck, ca_name, keys.pck_ca)
        pck_builder = pck_builder.add_extension(
            x509.UnrecognizedExtension(SGX_EXTENSION_OID, _sgx_extension(keys)), False
        )
        pck = _sign_cert(pck_builder, keys.pck_ca)
        return cls(keys, _Certificates(root, pck_ca, pck, tcb_signing), at=at)

    @property
    def keys(self) -> TdxSimulatorKeys:
        """The simulator's private keys."""
        return self._keys

    @property
    def at(self) -> datetime:
        """The instant the certificates and default collateral windows are built around."""
        return self._at

    @property
    def root(self) -> x509.Certificate:
        """The simulated Intel SGX Root CA (pass it as a root, with simulator roots explicitly allowed)."""
        return self._certs.root

    @property
    def pck_ca(self) -> x509.Certificate:
        """The simulated PCK Platform CA (issues the PCK certificate and the PCK CRL)."""
        return self._certs.pck_ca

    @property
    def pck_certificate(self) -> x509.Certificate:
        """The simulated PCK certificate (certifies the key that signs QE reports)."""
        return self._certs.pck

    @property
    def tcb_signing_certificate(self) -> x509.Certificate:
        """The simulated TCB signing certificate (signs TCB Info and QE Identity)."""
        return self._certs.tcb_signing

    @property
    def qe_mrsigner(self) -> bytes:
        """MRSIGNER of the simulated TD quoting enclave."""
        return hashlib.sha256(b"ccdeploy simulated TD_QE signer" + _spki(self._keys.pck_ca)).digest()

    def root_pem(self) -> bytes:
        """The root certificate as PEM."""
        return _pem(self._certs.root)

    def pck_chain_pem(self) -> bytes:
        """PCK certificate, PCK Platform CA and root, as PEM (as certification data type 5 carries them)."""
        return _pem(self._certs.pck) + _pem(self._certs.pck_ca) + _pem(self._certs.root)

    def quote(
        self,
        report_data: bytes = bytes(64),
        *,
        mrtd: bytes | None = None,
        rtmrs: Sequence[bytes] | None = None,
        mrconfigid: bytes = bytes(48),
        mrowner: bytes = bytes(48),
        mrownerconfig: bytes = bytes(48),
        td_attributes: bytes = DEFAULT_TD_ATTRIBUTES,
        xfam: bytes = DEFAULT_XFAM,
        tee_tcb_svn: bytes = DEFAULT_TEE_TCB_SVN,
        mrseam: bytes | None = None,
        debug: bool = False,
        version: int = 4,
        td15: bool = False,
        mrservicetd: bytes = bytes(48),
        qe_auth_data: bytes = DEFAULT_QE_AUTH_DATA,
    ) -> bytes:
        """A signed TDX quote.

        Args:
            report_data: REPORT_DATA (64 bytes).
            mrtd: MRTD (48 bytes); default: :meth:`default_mrtd`.
            rtmrs: RTMR0-3 (four of 48 bytes); default: :meth:`default_rtmrs`.
            mrconfigid: MRCONFIGID (48 bytes).
            mrowner: MROWNER (48 bytes).
            mrownerconfig: MROWNERCONFIG (48 bytes).
            td_attributes: TD_ATTRIBUTES (8 bytes).
            xfam: XFAM (8 bytes).
            tee_tcb_svn: TEE_TCB_SVN (16 bytes); the collateral's TCB levels match the default.
            mrseam: MRSEAM (48 bytes); default derived from the keys.
            debug: Set the DEBUG bit of TD_ATTRIBUTES.
            version: 4 or 5.
            td15: A TD 1.5 body (v5 only): TEE_TCB_SVN2 (= ``tee_tcb_svn``) and MRSERVICETD follow.
            mrservicetd: MRSERVICETD of a TD 1.5 body (48 bytes).
            qe_auth_data: The QE authentication data the QE report data binds.

        Returns:
            The quote bytes.
        """
        if version not in (4, 5) or (td15 and version != 5):
            raise ValueError("quote version must be 4 or 5, and TD 1.5 bodies need version 5")
        attributes = bytearray(_sized(td_attributes, 8, "td_attributes"))
        attributes[0] |= TD_ATTRIBUTES_DEBUG if debug else 0
        measurements = tuple(rtmrs) if rtmrs is not None else self.default_rtmrs()
        if len(measurements) != 4:
            raise ValueError("a TD has four RTMRs")
        body = b"".join(
            (
                _sized(tee_tcb_svn, 16, "tee_tcb_svn"),
                _sized(mrseam if mrseam is not None else self.default_mrseam(), 48, "mrseam"),
                bytes(48),  # MRSIGNERSEAM: zero for Intel's TDX module
                bytes(8),  # SEAM_ATTRIBUTES
                bytes(attributes),
                _sized(xfam, 8, "xfam"),
                _sized(mrtd if mrtd is not None else self.default_mrtd(), 48, "mrtd"),
                _sized(mrconfigid, 48, "mrconfigid"),
                _sized(mrowner, 48, "mrowner"),
                _sized(mrownerconfig, 48, "mrownerconfig"),
                *(_sized(rtmr, 48, f"rtmr{index}") for index, rtmr in enumerate(measurements)),
                _sized(report_data, 64, "report_data"),
            )
        )
        if td15:
            body += _sized(tee_tcb_svn, 16, "tee_tcb_svn") + _sized(mrservicetd, 48, "mrservicetd")
        header = struct.pack("<HHIHH", version, ATTESTATION_KEY_TYPE_ECDSA_P256, TEE_TYPE_TDX, 0, 0)
        header += INTEL_QE_VENDOR_ID + hashlib.sha256(b"qe id" + _spki(self._keys.attestation)).digest()[:16] + bytes(4)
        signed = header + body
        if version == 5:
            signed = header + struct.pack("<HI", 3 if td15 else 2, len(body)) + body
        signature_data = self._signature_data(signed, qe_auth_data)
        return signed + struct.pack("<I", len(signature_data)) + signature_data

    def default_mrtd(self) -> bytes:
        """The MRTD quotes report unless told otherwise."""
        return hashlib.sha384(b"ccdeploy simulator MRTD").digest()

    def default_rtmrs(self) -> tuple[bytes, bytes, bytes, bytes]:
        """RTMR0-3 quotes report unless told otherwise."""
        rtmr0, rtmr1, rtmr2, rtmr3 = (hashlib.sha384(f"ccdeploy simulator RTMR{i}".encode()).digest() for i in range(4))
        return rtmr0, rtmr1, rtmr2, rtmr3

    def default_mrseam(self) -> bytes:
        """The MRSEAM of the simulated TDX module."""
        return hashlib.sha384(b"ccdeploy simulator TDX module" + _spki(self._keys.root)).digest()

    def qe_report(self, attestation_key: bytes, qe_auth_data: bytes) -> bytes:
        """The 384-byte SGX report of the simulated TD quoting enclave, binding the attestation key."""
        report_data = hashlib.sha256(attestation_key + qe_auth_data).digest() + bytes(32)
        return b"".join(
            (
                bytes(SIMULATED_SGX_COMPONENTS),  # CPUSVN
                bytes(4),  # MISCSELECT
                bytes(28),  # reserved, ISVEXTPRODID
                QE_ATTRIBUTES,
                hashlib.sha256(b"ccdeploy simulated TD_QE").digest(),  # MRENCLAVE
                bytes(32),
                self.qe_mrsigner,
                bytes(96),  # reserved, CONFIGID
                struct.pack("<HHH", QE_PROD_ID, QE_SVN, 0),
                bytes(42 + 16),  # reserved, ISVFAMILYID
                report_data,
            )
        )

    def tcb_info(
        self,
        *,
        tcb_status: str = "UpToDate",
        advisory_ids: Sequence[str] = (),
        fmspc: bytes = SIMULATED_FMSPC,
        issued: datetime | None = None,
    ) -> bytes:
        """The exact signed TCB Info JSON (id TDX, version 3) whose first level is the simulated platform's."""
        issue, next_update = self._window(issued)
        tdx_components = [_component(svn, _TDX_COMPONENT_NAMES, i) for i, svn in enumerate(DEFAULT_TEE_TCB_SVN)]
        current: dict[str, Any] = {
            "tcb": {
                "sgxtcbcomponents": [
                    _component(svn, _COMPONENT_NAMES, i) for i, svn in enumerate(SIMULATED_SGX_COMPONENTS)
                ],
                "pcesvn": SIMULATED_PCE_SVN,
                "tdxtcbcomponents": tdx_components,
            },
            "tcbDate": _TCB_DATE,
            "tcbStatus": tcb_status,
        }
        if advisory_ids:
            current["advisoryIDs"] = list(advisory_ids)
        older_sgx = [_component(max(svn - 1, 0), _COMPONENT_NAMES, i) for i, svn in enumerate(SIMULATED_SGX_COMPONENTS)]
        older = {
            "tcb": {"sgxtcbcomponents": older_sgx, "pcesvn": SIMULATED_PCE_SVN - 6, "tdxtcbcomponents": tdx_components},
            "tcbDate": _OLD_TCB_DATE,
            "tcbStatus": "OutOfDate",
            "advisoryIDs": list(_OLD_ADVISORIES),
        }
        module = {"mrsigner": "00" * 48, "attributes": "0000000000000000", "attributesMask": "FFFFFFFFFFFFFFFF"}
        module_levels = [
            {"tcb": {"isvsvn": DEFAULT_TEE_TCB_SVN[0]}, "tcbDate": _TCB_DATE, "tcbStatus": "UpToDate"},
            {"tcb": {"isvsvn": DEFAULT_TEE_TCB_SVN[0] - 2}, "tcbDate": _OLD_TCB_DATE, "tcbStatus": "OutOfDate"},
        ]
        document = {
            "id": "TDX",
            "version": 3,
            "issueDate": _rfc3339(issue),
            "nextUpdate": _rfc3339(next_update),
            "fmspc": fmspc.hex().upper(),
            "pceId": SIMULATED_PCE_ID.hex().upper(),
            "tcbType": 0,
            "tcbEvaluationDataNumber": TCB_EVALUATION_DATA_NUMBER,
            "tdxModule": module,
            "tdxModuleIdentities": [{"id": "TDX_01", **module, "tcbLevels": module_levels}],
            "tcbLevels": [current, older],
        }
        return _compact(document)

    def qe_identity(self, *, issued: datetime | None = None) -> bytes:
        """The exact signed QE Identity JSON (id TD_QE, version 2) of the simulated quoting enclave."""
        issue, next_update = self._window(issued)
        document = {
            "id": "TD_QE",
            "version": 2,
            "issueDate": _rfc3339(issue),
            "nextUpdate": _rfc3339(next_update),
            "tcbEvaluationDataNumber": TCB_EVALUATION_DATA_NUMBER,
            "miscselect": "00000000",
            "miscselectMask": "FFFFFFFF",
            "attributes": "11000000000000000000000000000000",
            "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
            "mrsigner": self.qe_mrsigner.hex().upper(),
            "isvprodid": QE_PROD_ID,
            "tcbLevels": [{"tcb": {"isvsvn": QE_SVN}, "tcbDate": _TCB_DATE, "tcbStatus": "UpToDate"}],
        }
        return _compact(document)

    def sign_json(self, document: bytes) -> bytes:
        """The raw ``r || s`` signature of the TCB signing key over ``document`` (as TCB Info signatures are)."""
        return _raw_signature(self._keys.tcb_signing, document)

    def pck_crl(self, revoked_serials: Sequence[int] = (), *, issued: datetime | None = None) -> bytes:
        """The DER PCK CRL, issued by the PCK Platform CA, listing ``revoked_serials``."""
        return self._crl(self._certs.pck_ca, self._keys.pck_ca, revoked_serials, issued)

    def root_ca_crl(self, revoked_serials: Sequence[int] = (), *, issued: datetime | None = None) -> bytes:
        """The DER root CA CRL, issued by the root, listing ``revoked_serials``."""
        return self._crl(self._certs.root, self._keys.root, revoked_serials, issued)

    def collateral_json(
        self,
        *,
        tcb_status: str = "UpToDate",
        advisory_ids: Sequence[str] = (),
        fmspc: bytes = SIMULATED_FMSPC,
        issued: datetime | None = None,
        crl_issued: datetime | None = None,
        revoked_pck_serials: Sequence[int] = (),
        revoked_ca_serials: Sequence[int] = (),
    ) -> bytes:
        """The collateral in dcap-qvl's ``QuoteCollateralV3`` JSON.

        Args:
            tcb_status: The status of the TCB level that matches the simulated platform.
            advisory_ids: The advisory ids of that level.
            fmspc: The FMSPC the TCB Info is for.
            issued: When TCB Info and QE Identity were issued (valid 30 days from then); default a day before ``at``.
            crl_issued: When the CRLs were issued (valid 30 days); default: ``issued``.
            revoked_pck_serials: Serial numbers the PCK CRL lists.
            revoked_ca_serials: Serial numbers the root CA CRL lists.
        """
        tcb_info = self.tcb_info(tcb_status=tcb_status, advisory_ids=advisory_ids, fmspc=fmspc, issued=issued)
        qe_identity = self.qe_identity(issued=issued)
        crl_time = crl_issued if crl_issued is not None else issued
        signing_chain = (_pem(self._certs.tcb_signing) + _pem(self._certs.root)).decode()
        document = {
            "pck_crl_issuer_chain": (_pem(self._certs.pck_ca) + _pem(self._certs.root)).decode(),
            "root_ca_crl": self.root_ca_crl(revoked_ca_serials, issued=crl_time).hex(),
            "pck_crl": self.pck_crl(revoked_pck_serials, issued=crl_time).hex(),
            "tcb_info_issuer_chain": signing_chain,
            "tcb_info": tcb_info.decode(),
            "tcb_info_signature": self.sign_json(tcb_info).hex(),
            "qe_identity_issuer_chain": signing_chain,
            "qe_identity": qe_identity.decode(),
            "qe_identity_signature": self.sign_json(qe_identity).hex(),
        }
        return (json.dumps(document, indent=2) + "\n").encode()

    def collateral(self, **options: Any) -> DcapCollateral:
        """:meth:`collateral_json` (same keyword arguments) parsed by the DCAP verifier's collateral loader."""
        from attestation.tee.dcap.collateral import DcapCollateral  # noqa: PLC0415 (the verifier is optional here)

        return DcapCollateral.from_dcap_qvl_json(self.collateral_json(**options))

    def pcs_responses(
        self,
        *,
        tcb_status: str = "UpToDate",
        advisory_ids: Sequence[str] = (),
        fmspc: bytes = SIMULATED_FMSPC,
        issued: datetime | None = None,
    ) -> PcsResponses:
        """The same collateral as Intel PCS serves it: JSON bodies, DER CRLs, URL-encoded PEM issuer chains."""
        tcb_info = self.tcb_info(tcb_status=tcb_status, advisory_ids=advisory_ids, fmspc=fmspc, issued=issued)
        qe_identity = self.qe_identity(issued=issued)
        signing_chain = urllib.parse.quote(_pem(self._certs.tcb_signing) + _pem(self._certs.root))
        crl_chain = urllib.parse.quote(_pem(self._certs.pck_ca) + _pem(self._certs.root))
        return PcsResponses(
            tcb_info=PcsResponse(
                b'{"tcbInfo":' + tcb_info + b',"signature":"' + self.sign_json(tcb_info).hex().encode() + b'"}',
                {"TCB-Info-Issuer-Chain": signing_chain},
            ),
            qe_identity=PcsResponse(
                b'{"enclaveIdentity":'
                + qe_identity
                + b',"signature":"'
                + self.sign_json(qe_identity).hex().encode()
                + b'"}',
                {"SGX-Enclave-Identity-Issuer-Chain": signing_chain},
            ),
            pck_crl=PcsResponse(self.pck_crl(issued=issued), {"SGX-PCK-CRL-Issuer-Chain": crl_chain}),
            root_ca_crl=PcsResponse(self.root_ca_crl(issued=issued), {}),
        )

    def _signature_data(self, signed: bytes, qe_auth_data: bytes) -> bytes:
        attestation_key = _raw_point(self._keys.attestation)
        qe_report = self.qe_report(attestation_key, qe_auth_data)
        chain = self.pck_chain_pem() + b"\0"  # Intel's QE terminates the PEM chain with a NUL byte
        qe_data = b"".join(
            (
                qe_report,
                _raw_signature(self._keys.pck, qe_report),
                struct.pack("<H", len(qe_auth_data)),
                qe_auth_data,
                struct.pack("<HI", CERT_DATA_PCK_CHAIN, len(chain)),
                chain,
            )
        )
        return b"".join(
            (
                _raw_signature(self._keys.attestation, signed),
                attestation_key,
                struct.pack("<HI", CERT_DATA_QE_REPORT, len(qe_data)),
                qe_data,
            )
        )

    def _window(self, issued: datetime | None) -> tuple[datetime, datetime]:
        start = _whole_seconds(issued) if issued is not None else self._at - COLLATERAL_LEAD
        return start, start + COLLATERAL_LIFETIME

    def _crl(
        self,
        issuer: x509.Certificate,
        key: ec.EllipticCurvePrivateKey,
        revoked_serials: Sequence[int],
        issued: datetime | None,
    ) -> bytes:
        last, following = self._window(issued)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuer.subject)
            .last_update(last)
            .next_update(following)
            .add_extension(x509.CRLNumber(1), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        )
        for serial in revoked_serials:
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(last).build()
            builder = builder.add_revoked_certificate(entry)
        crl = builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
        return crl.public_bytes(serialization.Encoding.DER)


def _sgx_extension(keys: TdxSimulatorKeys) -> bytes:
    """Intel's SGX extension of a PCK certificate (Platform CA profile), DER."""
    base = "1.2.840.113741.1.13.1"
    components = [
        _seq(_oid(f"{base}.2.{index + 1}"), _integer(svn)) for index, svn in enumerate(SIMULATED_SGX_COMPONENTS)
    ]
    components.append(_seq(_oid(f"{base}.2.17"), _integer(SIMULATED_PCE_SVN)))
    components.append(_seq(_oid(f"{base}.2.18"), _octets(bytes(SIMULATED_SGX_COMPONENTS))))
    configuration = _seq(
        _oid(f"{base}.7"),
        _seq(*(_seq(_oid(f"{base}.7.{index}"), _tlv(0x01, b"\xff")) for index in (1, 2, 3))),
    )
    return _seq(
        _seq(_oid(f"{base}.1"), _octets(hashlib.sha256(b"ppid" + _spki(keys.pck)).digest()[:16])),  # PPID
        _seq(_oid(f"{base}.2"), _seq(*components)),  # TCB
        _seq(_oid(f"{base}.3"), _octets(SIMULATED_PCE_ID)),  # PCE-ID
        _seq(_oid(f"{base}.4"), _octets(SIMULATED_FMSPC)),  # FMSPC
        _seq(_oid(f"{base}.5"), _tlv(0x0A, b"\x01")),  # SGX type: Scalable
        _seq(_oid(f"{base}.6"), _octets(hashlib.sha256(b"instance" + _spki(keys.pck)).digest()[:16])),
        configuration,
    )


def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    encoded = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(encoded))) + encoded + content


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _octets(value: bytes) -> bytes:
    return _tlv(0x04, value)


def _integer(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _oid(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    body = bytearray((40 * arcs[0] + arcs[1],))
    for arc in arcs[2:]:
        chunk, rest = [arc & 0x7F], arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        body += bytes(reversed(chunk))
    return _tlv(0x06, bytes(body))


def _component(svn: int, names: Sequence[Mapping[str, str]], index: int) -> dict[str, Any]:
    return {"svn": svn, **(names[index] if index < len(names) else {})}


def _compact(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _raw_signature(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(data, _SIGNING))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _raw_point(key: ec.EllipticCurvePrivateKey) -> bytes:
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return point[1:]


def _spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _whole_seconds(when: datetime) -> datetime:
    if when.utcoffset() is None:
        raise ValueError("times given to the simulator must be timezone-aware")
    return when.astimezone(UTC).replace(microsecond=0)


def _sized(value: bytes, size: int, what: str) -> bytes:
    if len(value) != size:
        raise ValueError(f"{what}: expected {size} bytes, got {len(value)}")
    return value


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, SIMULATOR_ORGANIZATION),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Santa Clara"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "CA"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    not_before: datetime,
    lifetime: timedelta,
) -> x509.CertificateBuilder:
    # Serial numbers derive from the certificate's contents so that fixed keys and times reproduce every byte.
    seed = subject.public_bytes() + _spki(key) + not_before.isoformat().encode()
    serial = int.from_bytes(hashlib.sha256(seed).digest()[:20], "big") >> 1 | 1
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_before + lifetime)
    )


def _ca(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    not_before: datetime,
    not_after: datetime,
    *,
    path_length: int,
) -> x509.Certificate:
    builder = _builder(subject, issuer, key, not_before, not_after - not_before)
    builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False)
    builder = builder.add_extension(_crl_distribution_point(issuer), False)
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    builder = builder.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), True)
    return _sign_cert(builder, issuer_key)


def _leaf_extensions(
    builder: x509.CertificateBuilder,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
) -> x509.CertificateBuilder:
    builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False)
    builder = builder.add_extension(_crl_distribution_point(issuer), False)
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    usage = x509.KeyUsage(True, True, False, False, False, False, False, False, False)
    builder = builder.add_extension(usage, True)
    return builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)


def _crl_distribution_point(issuer: x509.Name) -> x509.CRLDistributionPoints:
    which = "rootcacrl" if "Root" in str(issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value) else "pckcrl"
    uri = x509.UniformResourceIdentifier(f"{_PCS}/{which}")
    return x509.CRLDistributionPoints([x509.DistributionPoint([uri], None, None, None)])


def _sign_cert(builder: x509.CertificateBuilder, issuer_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    return builder.sign(issuer_key, hashes.SHA256(), ecdsa_deterministic=True)
