"""AMD EPYC product lines and the two TCB_VERSION layouts.

TCB_VERSION is a 64-bit value of security patch levels (SPLs). Its layout depends on the CPU family
(SEV-SNP Firmware ABI spec 56860, "TCB_VERSION"; the same split is in virtee/sev ``TcbVersion`` and the Linux
``sev_snp_tcb_version_genoa_milan`` / ``sev_snp_tcb_version_turin`` structs):

* family 19h (Milan, Genoa): byte 0 BOOT_LOADER, byte 1 TEE, bytes 2-5 reserved, byte 6 SNP, byte 7 MICROCODE;
* family 1Ah (Turin): byte 0 FMC, byte 1 BOOT_LOADER, byte 2 TEE, byte 3 SNP, bytes 4-6 reserved, byte 7 MICROCODE.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Product(enum.StrEnum):
    """AMD product lines with SEV-SNP; the values are the names KDS uses in its URLs."""

    MILAN = "Milan"
    GENOA = "Genoa"
    TURIN = "Turin"


class TcbLayout(enum.StrEnum):
    """Which TCB_VERSION layout a report uses."""

    MILAN_GENOA = "milan-genoa"
    TURIN = "turin"

    @classmethod
    def for_product(cls, product: Product) -> TcbLayout:
        """The layout of ``product``'s CPU family."""
        return cls.TURIN if product is Product.TURIN else cls.MILAN_GENOA


FAMILY_ZEN3_ZEN4 = 0x19
FAMILY_ZEN5 = 0x1A


def layout_from_cpuid(family: int) -> TcbLayout | None:
    """The TCB layout of CPU ``family`` (CPUID_FAM_ID), or ``None`` for a family without SEV-SNP support here."""
    return {FAMILY_ZEN3_ZEN4: TcbLayout.MILAN_GENOA, FAMILY_ZEN5: TcbLayout.TURIN}.get(family)


def product_from_cpuid(family: int, model: int) -> Product | None:
    """The product line of a CPUID family/model pair, as AMD's tools map it (``None`` if unknown).

    Family 19h models 00h-0Fh are Milan; 10h-1Fh and A0h-AFh are Genoa (Bergamo and Siena share Genoa's KDS
    endpoints); family 1Ah models 00h-11h are Turin (virtee/snpguest ``get_processor_model``).
    """
    if family == FAMILY_ZEN3_ZEN4:
        if model <= 0x0F:
            return Product.MILAN
        if 0x10 <= model <= 0x1F or 0xA0 <= model <= 0xAF:
            return Product.GENOA
    if family == FAMILY_ZEN5 and model <= 0x11:
        return Product.TURIN
    return None


@dataclass(frozen=True, slots=True)
class TcbVersion:
    """The named security patch levels of a TCB_VERSION.

    Attributes:
        bootloader: BOOT_LOADER SPL (``blSPL`` in KDS).
        tee: TEE (PSP OS) SPL (``teeSPL``).
        snp: SNP firmware SPL (``snpSPL``).
        microcode: Lowest microcode patch level of all cores (``ucodeSPL``).
        fmc: FMC SPL (``fmcSPL``), Turin only; ``None`` on Milan and Genoa.
    """

    bootloader: int
    tee: int
    snp: int
    microcode: int
    fmc: int | None = None

    @classmethod
    def decode(cls, raw: int, layout: TcbLayout) -> TcbVersion:
        """Split the 64-bit ``raw`` value according to ``layout``."""
        b = raw.to_bytes(8, "little")
        if layout is TcbLayout.TURIN:
            return cls(bootloader=b[1], tee=b[2], snp=b[3], microcode=b[7], fmc=b[0])
        return cls(bootloader=b[0], tee=b[1], snp=b[6], microcode=b[7])

    def encode(self, layout: TcbLayout) -> int:
        """The 64-bit value of these SPLs in ``layout`` (reserved bytes zero)."""
        b = bytearray(8)
        if layout is TcbLayout.TURIN:
            b[0], b[1], b[2], b[3] = self.fmc or 0, self.bootloader, self.tee, self.snp
        else:
            b[0], b[1], b[6] = self.bootloader, self.tee, self.snp
        b[7] = self.microcode
        return int.from_bytes(b, "little")

    def components(self) -> dict[str, int]:
        """Named components: ``bootloader``, ``tee``, ``snp``, ``microcode``, plus ``fmc`` where present."""
        named = {"bootloader": self.bootloader, "tee": self.tee, "snp": self.snp, "microcode": self.microcode}
        if self.fmc is not None:
            named["fmc"] = self.fmc
        return named
