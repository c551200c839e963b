"""Collateral an attester can hand over with its evidence, for the broker to verify it offline.

Every document here is signed by its vendor (NVIDIA RIMs and OCSP responses, Intel DCAP collateral), so the enclave
is only a courier: the broker checks each against its pinned or policy roots. An attester that has collateral
implements :class:`CollateralSource`; bootstrap sends it in the release request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["AttesterCollateral", "CollateralSource", "collateral_of"]


@dataclass(frozen=True, slots=True)
class AttesterCollateral:
    """Collateral for one piece of evidence.

    Attributes:
        rims: NVIDIA RIMs (SWID XML), driver and VBIOS.
        ocsp: DER OCSP responses for the GPUs' certificates.
        dcap: Intel DCAP collateral for a TDX quote, dcap-qvl ``QuoteCollateralV3`` JSON.
    """

    rims: tuple[bytes, ...] = ()
    ocsp: tuple[bytes, ...] = ()
    dcap: bytes | None = None

    def __bool__(self) -> bool:
        return bool(self.rims or self.ocsp or self.dcap)

    def merged(self, other: AttesterCollateral) -> AttesterCollateral:
        """Both collaterals in one (duplicates dropped; the first DCAP collateral wins)."""
        return AttesterCollateral(
            rims=tuple(dict.fromkeys((*self.rims, *other.rims))),
            ocsp=tuple(dict.fromkeys((*self.ocsp, *other.ocsp))),
            dcap=self.dcap if self.dcap is not None else other.dcap,
        )


@runtime_checkable
class CollateralSource(Protocol):
    """An attester (or GPU source) that supplies collateral for the evidence it produces."""

    def collateral(self) -> AttesterCollateral:
        """The collateral for the evidence this attester produces now."""
        ...


def collateral_of(source: object) -> AttesterCollateral:
    """``source``'s collateral, or none when it supplies none."""
    return source.collateral() if isinstance(source, CollateralSource) else AttesterCollateral()
