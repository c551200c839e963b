"""Parser of the SEV-SNP ATTESTATION_REPORT (SEV-SNP Firmware ABI spec 56860, table "ATTESTATION_REPORT Structure").

The report is 1184 (0x4A0) bytes, little-endian. Versions and what each adds:

* 2: the original layout (spec 1.51-1.54).
* 3: CPUID_FAM_ID, CPUID_MOD_ID, CPUID_STEP at 0x188-0x18A (spec 1.55), which tell the product and so the
  TCB_VERSION layout; PLATFORM_INFO gains ALIAS_CHECK_COMPLETE.
* 4: emitted by real firmware (Milan 1.55.31, on GCP), never published: AMD keeps its additions under embargo
  (virtee/sev PR #307 and #312). Its public fields are laid out as in version 3, which is how go-sev-guest and
  virtee/sev read it; that is what this parser does.
* 5: LAUNCH_MIT_VECTOR (0x1F8) and CURRENT_MIT_VECTOR (0x200) (spec 1.58); guest policy PAGE_SWAP_DISABLE and
  PLATFORM_INFO TIO_EN.

Reserved-field policy: the guest POLICY and the key-info word decide how a report is judged and verified, so their
reserved bits must be as the spec says (bit 17 one, the rest zero); reserved bytes elsewhere in the signed area are
ignored, because firmware of an embargoed version may fill them and they change no field defined here; the bytes
after r and s in the signature field are not signed, so they must be zero (nothing unsigned may vary but r and s).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields

from attestation.errors import MalformedEvidence
from attestation.tee.sev_snp.tcb import TcbLayout, layout_from_cpuid

REPORT_SIZE = 0x4A0
#: The signature covers bytes [0, 0x2A0).
SIGNED_SIZE = 0x2A0
SUPPORTED_VERSIONS = frozenset({2, 3, 4, 5})
#: SIGNATURE_ALGO value for ECDSA P-384 with SHA-384, the only algorithm the spec defines.
ECDSA_P384_SHA384 = 1
#: r and s are each 72 bytes, little-endian, at 0x2A0 and 0x2E8.
_SIG_COMPONENT = 72


class SigningKey(enum.IntEnum):
    """SIGNING_KEY (key-info bits 4:2): which key signed the report."""

    VCEK = 0
    VLEK = 1
    NONE = 7


@dataclass(frozen=True, slots=True)
class GuestPolicy:
    """The guest POLICY bit field (spec "Guest Policy Structure")."""

    raw: int
    abi_minor: int
    abi_major: int
    smt: bool
    migrate_ma: bool
    debug: bool
    single_socket: bool
    cxl_allow: bool
    mem_aes_256_xts: bool
    rapl_dis: bool
    ciphertext_hiding: bool
    page_swap_disable: bool

    @classmethod
    def parse(cls, raw: int) -> GuestPolicy:
        """Decode ``raw``; bit 17 must be one and bits 63:26 zero, else :class:`MalformedEvidence`."""
        if not raw >> 17 & 1:
            raise MalformedEvidence(f"guest policy 0x{raw:x}: reserved bit 17 must be 1")
        if raw >> 26:
            raise MalformedEvidence(f"guest policy 0x{raw:x}: reserved bits 63:26 must be 0")
        return cls(
            raw=raw,
            abi_minor=raw & 0xFF,
            abi_major=raw >> 8 & 0xFF,
            smt=_bit(raw, 16),
            migrate_ma=_bit(raw, 18),
            debug=_bit(raw, 19),
            single_socket=_bit(raw, 20),
            cxl_allow=_bit(raw, 21),
            mem_aes_256_xts=_bit(raw, 22),
            rapl_dis=_bit(raw, 23),
            ciphertext_hiding=_bit(raw, 24),
            page_swap_disable=_bit(raw, 25),
        )

    def flags(self) -> dict[str, int | bool]:
        """Every named field (``raw`` excluded)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "raw"}


@dataclass(frozen=True, slots=True)
class PlatformInfo:
    """The PLATFORM_INFO bit field; bits the spec reserves are kept in ``reserved`` rather than refused."""

    raw: int
    smt_en: bool
    tsme_en: bool
    ecc_en: bool
    rapl_dis: bool
    ciphertext_hiding_en: bool
    alias_check_complete: bool
    tio_en: bool
    reserved: int

    @classmethod
    def parse(cls, raw: int) -> PlatformInfo:
        """Decode ``raw``."""
        return cls(
            raw=raw,
            smt_en=_bit(raw, 0),
            tsme_en=_bit(raw, 1),
            ecc_en=_bit(raw, 2),
            rapl_dis=_bit(raw, 3),
            ciphertext_hiding_en=_bit(raw, 4),
            alias_check_complete=_bit(raw, 5),
            tio_en=_bit(raw, 7),
            reserved=raw & ~0b1011_1111,
        )

    def flags(self) -> dict[str, int | bool]:
        """Every named field (``raw`` excluded)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "raw"}


@dataclass(frozen=True, slots=True)
class AttestationReport:
    """Every field of an ATTESTATION_REPORT, named as in the spec (snake case).

    TCB values stay raw 64-bit ints because their layout depends on the product (:mod:`attestation.tee.sev_snp.tcb`).
    ``cpuid_*`` are ``None`` before version 3, the mitigation vectors before version 5.
    """

    raw: bytes
    version: int
    guest_svn: int
    policy: GuestPolicy
    family_id: bytes
    image_id: bytes
    vmpl: int
    signature_algo: int
    current_tcb: int
    platform_info: PlatformInfo
    author_key_en: bool
    mask_chip_key: bool
    signing_key: SigningKey
    report_data: bytes
    measurement: bytes
    host_data: bytes
    id_key_digest: bytes
    author_key_digest: bytes
    report_id: bytes
    report_id_ma: bytes
    reported_tcb: int
    cpuid_fam_id: int | None
    cpuid_mod_id: int | None
    cpuid_step: int | None
    chip_id: bytes
    committed_tcb: int
    current_build: int
    current_minor: int
    current_major: int
    committed_build: int
    committed_minor: int
    committed_major: int
    launch_tcb: int
    launch_mit_vector: int | None
    current_mit_vector: int | None
    signature_r: int
    signature_s: int

    @property
    def signed_bytes(self) -> bytes:
        """The bytes the signature covers, [0, 0x2A0)."""
        return self.raw[:SIGNED_SIZE]

    @property
    def chip_id_masked(self) -> bool:
        """CHIP_ID is all zero (MASK_CHIP_ID set on the platform, or a VLEK-signed report)."""
        return not any(self.chip_id)

    def cpuid_layout(self) -> TcbLayout | None:
        """The TCB layout the report's CPUID family implies (version 3+), else ``None``."""
        return None if self.cpuid_fam_id is None else layout_from_cpuid(self.cpuid_fam_id)


def parse_report(data: bytes) -> AttestationReport:
    """Parse an ATTESTATION_REPORT of a supported version, or raise :class:`MalformedEvidence`.

    Nothing is verified here; the result is untrusted until the signature has been checked.
    """
    if len(data) != REPORT_SIZE:
        raise MalformedEvidence(f"an SEV-SNP report is {REPORT_SIZE} bytes, got {len(data)}")
    data = bytes(data)
    version = _u32(data, 0x00)
    if version not in SUPPORTED_VERSIONS:
        raise MalformedEvidence(f"unsupported SEV-SNP report version {version} (supported: 2, 3, 4, 5)")
    algo = _u32(data, 0x34)
    if algo != ECDSA_P384_SHA384:
        raise MalformedEvidence(f"unsupported SIGNATURE_ALGO {algo} (only 1, ECDSA P-384 with SHA-384, is defined)")
    if any(data[0x2A0 + 2 * _SIG_COMPONENT :]):
        raise MalformedEvidence("the unsigned bytes after the signature's r and s must be zero")
    author_key_en, mask_chip_key, signing_key = _key_info(_u32(data, 0x48))
    has_cpuid, has_mit = version >= 3, version >= 5
    return AttestationReport(
        raw=data,
        version=version,
        guest_svn=_u32(data, 0x04),
        policy=GuestPolicy.parse(_u64(data, 0x08)),
        family_id=data[0x10:0x20],
        image_id=data[0x20:0x30],
        vmpl=_u32(data, 0x30),
        signature_algo=algo,
        current_tcb=_u64(data, 0x38),
        platform_info=PlatformInfo.parse(_u64(data, 0x40)),
        author_key_en=author_key_en,
        mask_chip_key=mask_chip_key,
        signing_key=signing_key,
        report_data=data[0x50:0x90],
        measurement=data[0x90:0xC0],
        host_data=data[0xC0:0xE0],
        id_key_digest=data[0xE0:0x110],
        author_key_digest=data[0x110:0x140],
        report_id=data[0x140:0x160],
        report_id_ma=data[0x160:0x180],
        reported_tcb=_u64(data, 0x180),
        cpuid_fam_id=data[0x188] if has_cpuid else None,
        cpuid_mod_id=data[0x189] if has_cpuid else None,
        cpuid_step=data[0x18A] if has_cpuid else None,
        chip_id=data[0x1A0:0x1E0],
        committed_tcb=_u64(data, 0x1E0),
        current_build=data[0x1E8],
        current_minor=data[0x1E9],
        current_major=data[0x1EA],
        committed_build=data[0x1EC],
        committed_minor=data[0x1ED],
        committed_major=data[0x1EE],
        launch_tcb=_u64(data, 0x1F0),
        launch_mit_vector=_u64(data, 0x1F8) if has_mit else None,
        current_mit_vector=_u64(data, 0x200) if has_mit else None,
        signature_r=int.from_bytes(data[0x2A0 : 0x2A0 + _SIG_COMPONENT], "little"),
        signature_s=int.from_bytes(data[0x2A0 + _SIG_COMPONENT : 0x2A0 + 2 * _SIG_COMPONENT], "little"),
    )


def looks_like_report(data: bytes) -> bool:
    """Whether ``data`` has a report's size and a supported version (a cheap guess, nothing checked)."""
    return len(data) == REPORT_SIZE and _u32(bytes(data[:4]), 0) in SUPPORTED_VERSIONS


def _key_info(word: int) -> tuple[bool, bool, SigningKey]:
    if word >> 5:
        raise MalformedEvidence(f"key-info word 0x{word:x}: reserved bits 31:5 must be 0")
    try:
        signing_key = SigningKey(word >> 2 & 0b111)
    except ValueError:
        raise MalformedEvidence(f"SIGNING_KEY {word >> 2 & 0b111} is reserved (0 VCEK, 1 VLEK, 7 none)") from None
    return bool(word & 1), bool(word & 2), signing_key


def _bit(value: int, n: int) -> bool:
    return bool(value >> n & 1)


def _u32(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 4], "little")


def _u64(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 8], "little")
