"""TCB evaluation: QE identity, platform TCB level, TDX module identity, and how their statuses merge.

The rules follow Intel's QVL as dcap-qvl implements them: TCB levels are tried in Intel's canonical order (SGX
components, then PCESVN, then TDX components, highest first); a level matches when every SGX component of the PCK
certificate, its PCESVN and (TDX) every byte of TEE_TCB_SVN are at least the level's; statuses merge to the worse one
and advisories to the union.
"""

from __future__ import annotations

from dataclasses import dataclass

from attestation.tee.dcap.errors import NoMatchingTcbLevel, QeIdentityMismatch, TdxModuleMismatch
from attestation.tee.dcap.models import IsvTcbLevel, QeIdentity, TcbInfo, TcbLevel
from attestation.tee.dcap.pck import SgxExtensions
from attestation.tee.dcap.quote import EnclaveReport, TdReport

#: Severity order used to merge statuses (dcap-qvl's ``TcbStatus::severity``).
_SEVERITY = {
    "UpToDate": 0,
    "SWHardeningNeeded": 1,
    "ConfigurationNeeded": 2,
    "ConfigurationAndSWHardeningNeeded": 3,
    "OutOfDate": 4,
    "OutOfDateConfigurationNeeded": 5,
    "Revoked": 6,
}


@dataclass(frozen=True, slots=True)
class TcbStatus:
    """A TCB status with its advisory ids (and the date of the level it came from, where there is one)."""

    status: str
    advisory_ids: tuple[str, ...]
    tcb_date: str = ""

    @classmethod
    def of(cls, level: TcbLevel | IsvTcbLevel) -> TcbStatus:
        """The status of a matched level."""
        return cls(level.tcb_status, level.advisory_ids, level.tcb_date)

    def merge(self, other: TcbStatus) -> TcbStatus:
        """The worse of both statuses, with the advisories of both (this one's date kept)."""
        worse = other.status if _SEVERITY[other.status] > _SEVERITY[self.status] else self.status
        advisories = self.advisory_ids + tuple(a for a in other.advisory_ids if a not in self.advisory_ids)
        return TcbStatus(worse, advisories, self.tcb_date)


def evaluate_qe_identity(qe: EnclaveReport, identity: QeIdentity) -> TcbStatus:
    """Match the QE report against the QE Identity and return the QE's TCB status.

    Raises:
        QeIdentityMismatch: MRSIGNER, ISVPRODID, masked MISCSELECT or masked ATTRIBUTES differ.
        NoMatchingTcbLevel: The QE's ISVSVN is below every level.
    """
    if qe.mr_signer != identity.mrsigner:
        raise QeIdentityMismatch(f"the QE's MRSIGNER {qe.mr_signer.hex()} is not {identity.mrsigner.hex()}")
    if qe.isv_prod_id != identity.isv_prod_id:
        raise QeIdentityMismatch(f"the QE's ISVPRODID {qe.isv_prod_id} is not {identity.isv_prod_id}")
    mask = identity.miscselect_mask
    if qe.misc_select & mask != identity.miscselect & mask:
        raise QeIdentityMismatch(f"the QE's MISCSELECT {qe.misc_select:#010x} does not match the QE Identity")
    if _masked(qe.attributes, identity.attributes_mask) != _masked(identity.attributes, identity.attributes_mask):
        raise QeIdentityMismatch(f"the QE's ATTRIBUTES {qe.attributes.hex()} do not match the QE Identity")
    level = _isv_level(qe.isv_svn, identity.tcb_levels)
    if level is None:
        raise NoMatchingTcbLevel(f"No matching TCB level found for the QE (ISVSVN {qe.isv_svn}) in the QE Identity")
    return TcbStatus.of(level)


def platform_tcb(info: TcbInfo, pck: SgxExtensions, tee_tcb_svn: bytes | None) -> TcbStatus:
    """The status of the first TCB level the platform meets.

    Raises:
        NoMatchingTcbLevel: No level matches ("No matching TCB level found").
    """
    for level in sorted(info.tcb_levels, key=_canonical_order, reverse=True):
        if pck.pce_svn < level.pce_svn:
            continue
        if any(have < need for have, need in zip(pck.sgx_tcb_components, level.sgx_components, strict=True)):
            continue
        if (
            tee_tcb_svn is not None
            and level.tdx_components is not None
            and any(have < need for have, need in zip(tee_tcb_svn, level.tdx_components, strict=True))
        ):
            continue
        return TcbStatus.of(level)
    svn = "" if tee_tcb_svn is None else f", TEE_TCB_SVN {tee_tcb_svn.hex()}"
    raise NoMatchingTcbLevel(
        f"No matching TCB level found: the platform (SGX components {list(pck.sgx_tcb_components)}, PCESVN "
        f"{pck.pce_svn}{svn}) is below every level of the TCB Info for FMSPC {info.fmspc.hex()}"
    )


def tdx_module_tcb(info: TcbInfo, td: TdReport) -> TcbStatus | None:
    """Match the TDX module (SEAM) against the TCB Info; its status when the TCB Info has levels for it.

    The identity is ``tdxModuleIdentities`` entry ``TDX_%02X`` of TEE_TCB_SVN[1] (module major version), else the
    base ``tdxModule``; the module's ISVSVN is TEE_TCB_SVN[0].

    Raises:
        TdxModuleMismatch: No identity for the module version, or MRSIGNERSEAM / masked SEAMATTRIBUTES differ.
        NoMatchingTcbLevel: The module's ISVSVN is below every level of its identity.
    """
    if info.id != "TDX":
        return None
    isv_svn, version = td.tee_tcb_svn[0], td.tee_tcb_svn[1]
    identity = info.tdx_module
    if version > 0 and info.tdx_module_identities:
        wanted = f"TDX_{version:02X}"
        identity = next((i for i in info.tdx_module_identities if i.id.upper() == wanted), None)
        if identity is None:
            raise TdxModuleMismatch(f"the TCB Info has no TDX module identity {wanted}")
    if identity is None:
        raise TdxModuleMismatch("the TDX TCB Info has no tdxModule")
    if td.mr_signer_seam != identity.mrsigner:
        raise TdxModuleMismatch(f"MRSIGNERSEAM {td.mr_signer_seam.hex()} is not the TDX module's signer")
    mask = identity.attributes_mask
    if _masked(td.seam_attributes, mask) != _masked(identity.attributes, mask) or any(
        actual & ~m & 0xFF for actual, m in zip(td.seam_attributes, mask, strict=True)
    ):
        raise TdxModuleMismatch(f"SEAMATTRIBUTES {td.seam_attributes.hex()} do not match the TDX module identity")
    if not identity.tcb_levels:
        return None
    level = _isv_level(isv_svn, identity.tcb_levels)
    if level is None:
        raise NoMatchingTcbLevel(f"No matching TCB level found for TDX module {identity.id} (ISVSVN {isv_svn})")
    return TcbStatus(level.tcb_status, level.advisory_ids, level.tcb_date)


def _canonical_order(level: TcbLevel) -> tuple[tuple[int, ...], int, tuple[int, ...]]:
    return level.sgx_components, level.pce_svn, level.tdx_components or ()


def _isv_level(isv_svn: int, levels: tuple[IsvTcbLevel, ...]) -> IsvTcbLevel | None:
    return next((level for level in levels if isv_svn >= level.isv_svn), None)


def _masked(value: bytes, mask: bytes) -> bytes:
    return bytes(v & m for v, m in zip(value, mask, strict=True))
