"""Every report field by its spec name in snake case, as raw vendor values (for claims and ``attest inspect``)."""

from __future__ import annotations

from attestation.claims import VendorValue
from attestation.tee.sev_snp.report import AttestationReport
from attestation.tee.sev_snp.tcb import TcbLayout, TcbVersion

_P384_BYTES = 48


def vendor_fields(report: AttestationReport, layout: TcbLayout) -> dict[str, VendorValue]:
    """Every field of ``report`` by its spec name.

    TCB values are split by ``layout``; version-specific fields appear only where the version defines them. Two
    entries are not report fields: ``tcb_layout`` (the layout used) and ``signature`` (r and s, big-endian).
    """
    fields: dict[str, VendorValue] = {
        "version": report.version,
        "guest_svn": report.guest_svn,
        "policy": report.policy.raw,
        "policy_flags": report.policy.flags(),
        "family_id": report.family_id,
        "image_id": report.image_id,
        "vmpl": report.vmpl,
        "signature_algo": report.signature_algo,
        "current_tcb": _tcb(report.current_tcb, layout),
        "platform_info": report.platform_info.raw,
        "platform_info_flags": report.platform_info.flags(),
        "author_key_en": report.author_key_en,
        "mask_chip_key": report.mask_chip_key,
        "signing_key": report.signing_key.name.lower(),
        "report_data": report.report_data,
        "measurement": report.measurement,
        "host_data": report.host_data,
        "id_key_digest": report.id_key_digest,
        "author_key_digest": report.author_key_digest,
        "report_id": report.report_id,
        "report_id_ma": report.report_id_ma,
        "reported_tcb": _tcb(report.reported_tcb, layout),
    }
    if report.version >= 3:
        fields |= {"cpuid_fam_id": report.cpuid_fam_id, "cpuid_mod_id": report.cpuid_mod_id}
        fields["cpuid_step"] = report.cpuid_step
    fields |= {
        "chip_id": report.chip_id,
        "committed_tcb": _tcb(report.committed_tcb, layout),
        "current_build": report.current_build,
        "current_minor": report.current_minor,
        "current_major": report.current_major,
        "committed_build": report.committed_build,
        "committed_minor": report.committed_minor,
        "committed_major": report.committed_major,
        "launch_tcb": _tcb(report.launch_tcb, layout),
    }
    if report.version >= 5:
        fields |= {"launch_mit_vector": report.launch_mit_vector, "current_mit_vector": report.current_mit_vector}
    fields["signature"] = {"r": _big_endian(report.signature_r), "s": _big_endian(report.signature_s)}
    fields["tcb_layout"] = layout.value
    return fields


def _tcb(raw: int, layout: TcbLayout) -> dict[str, int]:
    return TcbVersion.decode(raw, layout).components()


def _big_endian(value: int) -> bytes:
    return value.to_bytes(max(_P384_BYTES, (value.bit_length() + 7) // 8), "big")
