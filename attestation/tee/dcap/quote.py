"""Intel DCAP ECDSA quotes: SGX v3, TDX v4 and v5 (TD 1.0 and TD 1.5 bodies), parsed by lengths.

Layout (Intel SGX/TDX DCAP quote library and "TDX DCAP Quoting Library API", appendix A): a 48-byte header; for v5 a
body descriptor (type u16, size u32); the body (SGX enclave report 384 bytes, TD 1.0 report 584, TD 1.5 report 648);
a u32 length and the ECDSA signature data. v3 signature data carries the QE report and certification data (type 5,
PEM PCK chain) directly; v4/v5 wrap them in certification data type 6 (QE report certification data). Integers are
little-endian. Every bound is checked; any failure is :class:`~attestation.errors.MalformedEvidence`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from attestation.errors import MalformedEvidence

HEADER_SIZE = 48
ENCLAVE_REPORT_SIZE = 384
TD10_REPORT_SIZE = 584
TD15_REPORT_SIZE = 648
TEE_TYPE_SGX = 0x00000000
TEE_TYPE_TDX = 0x00000081
ATTESTATION_KEY_ECDSA_P256 = 2
BODY_TYPE_SGX = 1
BODY_TYPE_TD10 = 2
BODY_TYPE_TD15 = 3
CERT_DATA_PCK_CHAIN = 5
CERT_DATA_QE_REPORT = 6
INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
#: A quote with its PCK chain is a few KiB; anything above this is refused before parsing.
MAX_QUOTE_SIZE = 1 << 20


@dataclass(frozen=True, slots=True)
class Header:
    """The 48-byte quote header."""

    version: int
    attestation_key_type: int
    tee_type: int
    qe_svn: int
    pce_svn: int
    qe_vendor_id: bytes
    user_data: bytes


@dataclass(frozen=True, slots=True)
class EnclaveReport:
    """An SGX enclave report (384 bytes): the ISV enclave's body in SGX quotes, and the QE's report in every quote."""

    cpu_svn: bytes
    misc_select: int
    attributes: bytes
    mr_enclave: bytes
    mr_signer: bytes
    isv_prod_id: int
    isv_svn: int
    report_data: bytes

    @property
    def debug(self) -> bool:
        """ATTRIBUTES.FLAGS bit 1 (DEBUG)."""
        return bool(self.attributes[0] & 0x02)


@dataclass(frozen=True, slots=True)
class TdReport:
    """A TD report body: TD 1.0 (584 bytes) or TD 1.5 (648 bytes, with TEE_TCB_SVN_2 and MRSERVICETD)."""

    tee_tcb_svn: bytes
    mr_seam: bytes
    mr_signer_seam: bytes
    seam_attributes: bytes
    td_attributes: bytes
    xfam: bytes
    mr_td: bytes
    mr_config_id: bytes
    mr_owner: bytes
    mr_owner_config: bytes
    rtmrs: tuple[bytes, bytes, bytes, bytes]
    report_data: bytes
    tee_tcb_svn2: bytes | None = None
    mr_service_td: bytes | None = None

    @property
    def debug(self) -> bool:
        """TD_ATTRIBUTES bit 0 (DEBUG)."""
        return bool(self.td_attributes[0] & 0x01)


@dataclass(frozen=True, slots=True)
class QeReportCertification:
    """The QE report, its signature by the PCK key, the QE authentication data, and the PCK chain (PEM)."""

    qe_report: EnclaveReport
    qe_report_raw: bytes
    qe_report_signature: bytes
    qe_auth_data: bytes
    pck_chain_pem: bytes


@dataclass(frozen=True, slots=True)
class Quote:
    """A parsed DCAP quote.

    Attributes:
        header: The header.
        body_type: 1 (SGX enclave report), 2 (TD 1.0) or 3 (TD 1.5); for v3/v4 derived from the TEE type.
        body: The ISV enclave report (SGX) or the TD report (TDX).
        signed_bytes: Header (‖ v5 body descriptor) ‖ body: what the attestation key signs.
        signature: The quote signature, raw r‖s (64 bytes).
        attestation_key: The ECDSA P-256 attestation public key, raw x‖y (64 bytes).
        certification: QE report, its signature, QE authentication data and PCK chain.
    """

    header: Header
    body_type: int
    body: EnclaveReport | TdReport
    signed_bytes: bytes
    signature: bytes
    attestation_key: bytes
    certification: QeReportCertification

    @property
    def is_tdx(self) -> bool:
        """Whether the quote is from a TD (TEE type 0x81)."""
        return self.header.tee_type == TEE_TYPE_TDX


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._offset = 0
        self._what = what

    def take(self, size: int, field: str) -> bytes:
        end = self._offset + size
        if size < 0 or end > len(self._data):
            raise MalformedEvidence(
                f"{self._what}: {field} needs {size} bytes at offset {self._offset}, "
                f"only {len(self._data) - self._offset} left"
            )
        chunk = self._data[self._offset : end]
        self._offset = end
        return chunk

    def u16(self, field: str) -> int:
        value: int = struct.unpack("<H", self.take(2, field))[0]
        return value

    def u32(self, field: str) -> int:
        value: int = struct.unpack("<I", self.take(4, field))[0]
        return value

    @property
    def offset(self) -> int:
        return self._offset

    def finish(self) -> None:
        if self._offset != len(self._data):
            raise MalformedEvidence(f"{self._what}: {len(self._data) - self._offset} unexpected trailing bytes")


def parse_quote(data: bytes) -> Quote:
    """Parse a DCAP quote (SGX v3, TDX v4/v5) strictly by lengths.

    Raises:
        MalformedEvidence: Truncated, trailing bytes, unsupported version, TEE type, body or certification type.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedEvidence("a quote is bytes")
    data = bytes(data)
    if len(data) > MAX_QUOTE_SIZE:
        raise MalformedEvidence(f"the quote is larger than {MAX_QUOTE_SIZE} bytes")
    reader = _Reader(data, "quote")
    header = _header(reader)
    body_type = _body_type(header, reader)
    body: EnclaveReport | TdReport
    if body_type == BODY_TYPE_SGX:
        body = parse_enclave_report(reader.take(ENCLAVE_REPORT_SIZE, "enclave report body"))
    else:
        size = TD10_REPORT_SIZE if body_type == BODY_TYPE_TD10 else TD15_REPORT_SIZE
        body = _td_report(reader.take(size, "TD report body"))
    signed_bytes = data[: reader.offset]
    signature_data = reader.take(reader.u32("signature data length"), "signature data")
    # Quote buffers are fixed-size: real quotes (dcap-qvl's samples among them) end in zero padding, which is not
    # signed and carries nothing. Anything else after the signature data is refused.
    if any(data[reader.offset :]):
        raise MalformedEvidence("the quote has non-zero bytes after its signature data")
    signature, key, certification = _signature_data(signature_data, header.version)
    return Quote(header, body_type, body, signed_bytes, signature, key, certification)


def looks_like_quote(data: bytes, *, tdx: bool) -> bool:
    """A cheap guess: a supported version with the TEE type of SGX (``tdx=False``) or TDX, and an ECDSA key."""
    if len(data) < HEADER_SIZE:
        return False
    version = int.from_bytes(data[0:2], "little")
    key_type = int.from_bytes(data[2:4], "little")
    tee_type = int.from_bytes(data[4:8], "little")
    if key_type != ATTESTATION_KEY_ECDSA_P256:
        return False
    if tdx:
        return version in (4, 5) and tee_type == TEE_TYPE_TDX
    return version == 3 and tee_type == TEE_TYPE_SGX


def _header(reader: _Reader) -> Header:
    version = reader.u16("version")
    key_type = reader.u16("attestation key type")
    tee_type = reader.u32("TEE type")
    qe_svn = reader.u16("QE SVN")
    pce_svn = reader.u16("PCE SVN")
    vendor = reader.take(16, "QE vendor id")
    user_data = reader.take(20, "user data")
    if version not in (3, 4, 5):
        raise MalformedEvidence(f"unsupported quote version {version} (3, 4 and 5 are supported)")
    if tee_type not in (TEE_TYPE_SGX, TEE_TYPE_TDX):
        raise MalformedEvidence(f"unknown TEE type {tee_type:#x}")
    if (version == 3) != (tee_type == TEE_TYPE_SGX):
        raise MalformedEvidence(f"quote version {version} with TEE type {tee_type:#x} is not supported")
    if key_type != ATTESTATION_KEY_ECDSA_P256:
        raise MalformedEvidence(f"unsupported attestation key type {key_type} (2: ECDSA P-256)")
    return Header(version, key_type, tee_type, qe_svn, pce_svn, vendor, user_data)


def _body_type(header: Header, reader: _Reader) -> int:
    if header.version < 5:
        return BODY_TYPE_TD10 if header.tee_type == TEE_TYPE_TDX else BODY_TYPE_SGX
    body_type = reader.u16("body type")
    size = reader.u32("body size")
    expected = {BODY_TYPE_TD10: TD10_REPORT_SIZE, BODY_TYPE_TD15: TD15_REPORT_SIZE}.get(body_type)
    if expected is None:
        raise MalformedEvidence(f"unsupported v5 body type {body_type} (2: TD 1.0, 3: TD 1.5)")
    if size != expected:
        raise MalformedEvidence(f"v5 body type {body_type} must be {expected} bytes, the quote says {size}")
    return body_type


def parse_enclave_report(raw: bytes) -> EnclaveReport:
    """Parse a 384-byte SGX enclave report."""
    reader = _Reader(raw, "enclave report")
    cpu_svn = reader.take(16, "CPUSVN")
    misc_select = reader.u32("MISCSELECT")
    reader.take(28, "reserved")
    attributes = reader.take(16, "ATTRIBUTES")
    mr_enclave = reader.take(32, "MRENCLAVE")
    reader.take(32, "reserved")
    mr_signer = reader.take(32, "MRSIGNER")
    reader.take(96, "reserved")
    isv_prod_id = reader.u16("ISVPRODID")
    isv_svn = reader.u16("ISVSVN")
    reader.take(60, "reserved")
    report_data = reader.take(64, "REPORTDATA")
    reader.finish()
    return EnclaveReport(cpu_svn, misc_select, attributes, mr_enclave, mr_signer, isv_prod_id, isv_svn, report_data)


def _td_report(raw: bytes) -> TdReport:
    reader = _Reader(raw, "TD report")
    tee_tcb_svn = reader.take(16, "TEE_TCB_SVN")
    mr_seam = reader.take(48, "MRSEAM")
    mr_signer_seam = reader.take(48, "MRSIGNERSEAM")
    seam_attributes = reader.take(8, "SEAMATTRIBUTES")
    td_attributes = reader.take(8, "TDATTRIBUTES")
    xfam = reader.take(8, "XFAM")
    mr_td = reader.take(48, "MRTD")
    mr_config_id = reader.take(48, "MRCONFIGID")
    mr_owner = reader.take(48, "MROWNER")
    mr_owner_config = reader.take(48, "MROWNERCONFIG")
    rtmrs = (reader.take(48, "RTMR0"), reader.take(48, "RTMR1"), reader.take(48, "RTMR2"), reader.take(48, "RTMR3"))
    report_data = reader.take(64, "REPORTDATA")
    svn2 = service = None
    if len(raw) == TD15_REPORT_SIZE:
        svn2 = reader.take(16, "TEE_TCB_SVN_2")
        service = reader.take(48, "MRSERVICETD")
    reader.finish()
    return TdReport(
        tee_tcb_svn,
        mr_seam,
        mr_signer_seam,
        seam_attributes,
        td_attributes,
        xfam,
        mr_td,
        mr_config_id,
        mr_owner,
        mr_owner_config,
        rtmrs,
        report_data,
        svn2,
        service,
    )


def _signature_data(raw: bytes, version: int) -> tuple[bytes, bytes, QeReportCertification]:
    reader = _Reader(raw, "quote signature data")
    signature = reader.take(64, "quote signature")
    key = reader.take(64, "attestation key")
    if version == 3:
        certification = _qe_report_certification(reader, nested_in="signature data")
        reader.finish()
        return signature, key, certification
    cert_type = reader.u16("certification data type")
    body = reader.take(reader.u32("certification data size"), "certification data")
    reader.finish()
    if cert_type != CERT_DATA_QE_REPORT:
        raise MalformedEvidence(
            f"certification data type {cert_type} is not supported (6: QE report certification data)"
        )
    inner = _Reader(body, "QE report certification data")
    certification = _qe_report_certification(inner, nested_in="QE report certification data")
    inner.finish()
    return signature, key, certification


def _qe_report_certification(reader: _Reader, *, nested_in: str) -> QeReportCertification:
    qe_report_raw = reader.take(ENCLAVE_REPORT_SIZE, "QE report")
    qe_report_signature = reader.take(64, "QE report signature")
    qe_auth_data = reader.take(reader.u16("QE authentication data size"), "QE authentication data")
    cert_type = reader.u16("certification data type")
    chain = reader.take(reader.u32("certification data size"), "certification data")
    if cert_type != CERT_DATA_PCK_CHAIN:
        raise MalformedEvidence(
            f"certification data type {cert_type} in the {nested_in} is not supported (5: PCK certificate chain)"
        )
    return QeReportCertification(
        parse_enclave_report(qe_report_raw), qe_report_raw, qe_report_signature, qe_auth_data, chain
    )
