"""Appraisal of Intel, Azure and NVIDIA claims: TCB status acceptance, waivers, and per-device checks."""

from __future__ import annotations

from typing import Any

import pytest

from attestation.appraise import appraise
from attestation.claims import Claims, SignerChain, Tee
from attestation.errors import CollateralMissing, DebugNotAllowed, ReferenceValueViolation
from attestation.reference import ReferenceValues, ReferenceValuesInvalid

MRTD = bytes([7]) * 48


def intel(
    tee: Tee = Tee.TDX, *, status: str | None = "UpToDate", advisories: tuple[str, ...] = (), **kw: Any
) -> Claims:
    vendor: dict[str, Any] = {"isv_prodid": 1, "isv_svn": 3}
    if status is not None:
        vendor |= {"tcb_status": status, "advisory_ids": advisories}
    unchecked = {} if status is not None else {f"{tee.value}.collateral": "no DCAP collateral given"}
    measurements = {"mrtd": MRTD, "rtmr0": bytes(48)} if tee is Tee.TDX else {"mrenclave": MRTD[:32]}
    fields: dict[str, Any] = {
        "tee": tee,
        "platform": f"intel-{tee.value}",
        "measurements": measurements,
        "report_data": bytes(64),
        "nonce": None,
        "tcb": {"pce_svn": 11},
        "debug": False,
        "hardware_id": None,
        "signer": SignerChain(("CN=PCK",), "00" * 32),
        "vendor": vendor,
        "unchecked": unchecked,
    }
    fields.update(kw)
    return Claims(**fields)


def gpu(name: str, *, driver: str = "550.90.07", ocsp: str = "unchecked", unchecked: bool = False) -> Claims:
    return Claims(
        tee=Tee.NVIDIA_GPU,
        platform="nvidia/GH100",
        measurements={"spdm1": bytes(48)},
        report_data=None,
        nonce=bytes(32),
        tcb={},
        debug=False,
        hardware_id=name,
        signer=SignerChain(("CN=leaf",), "00" * 32, revocation="not checked (no OCSP response)"),
        vendor={"device": name, "driver_version": driver, "vbios_version": "96.00.9F.00.01", "ocsp": ocsp},
        unchecked={"nvidia-gpu.measurements": "no driver RIM given"} if unchecked else {},
    )


def refs(text: str) -> ReferenceValues:
    return ReferenceValues.from_yaml(text)


def test_up_to_date_passes_without_reference_values() -> None:
    appraisal = appraise(intel())
    assert appraisal.ok
    assert [r.name for r in appraisal.results] == ["debug", "tdx.tcb-status"]


@pytest.mark.parametrize("status", ["SWHardeningNeeded", "OutOfDate", "ConfigurationNeeded"])
def test_other_statuses_fail_by_default(status: str) -> None:
    error = appraise(intel(status=status, advisories=("INTEL-SA-00615",))).error()
    assert isinstance(error, ReferenceValueViolation) and status in error.message


def test_a_named_status_needs_every_advisory_named() -> None:
    claims = intel(Tee.SGX, status="ConfigurationAndSWHardeningNeeded", advisories=("INTEL-SA-00289", "INTEL-SA-00615"))
    status_only = refs("sgx: {tcb: {statuses: [ConfigurationAndSWHardeningNeeded]}}")
    error = appraise(claims, status_only).error()
    assert error is not None and "INTEL-SA-00289, INTEL-SA-00615 are not named" in error.message
    one = refs("sgx: {tcb: {statuses: [ConfigurationAndSWHardeningNeeded], advisories: [INTEL-SA-00289]}}")
    error = appraise(claims, one).error()
    assert error is not None and "INTEL-SA-00615" in error.message and "INTEL-SA-00289 " not in error.message
    both = refs(
        "sgx: {tcb: {statuses: [ConfigurationAndSWHardeningNeeded], advisories: [INTEL-SA-00289, INTEL-SA-00615]}}"
    )
    assert appraise(claims, both).ok
    other_status = refs("sgx: {tcb: {statuses: [SWHardeningNeeded], advisories: [INTEL-SA-00289, INTEL-SA-00615]}}")
    assert not appraise(claims, other_status).ok


def test_missing_collateral_is_could_not_check_unless_waived() -> None:
    claims = intel(status=None)
    error = appraise(claims).error()
    assert isinstance(error, CollateralMissing) and "tdx.collateral" in error.message
    waived = appraise(claims, refs(f"tdx: {{mrtd: '{MRTD.hex()}'}}\nwaive: [tdx.collateral]"))
    assert waived.ok
    assert any(r.name == "tdx.collateral" and "waived" in r.detail for r in waived.results)


def test_a_decision_outranks_could_not_check() -> None:
    claims = intel(status=None, debug=True)
    assert isinstance(appraise(claims).error(), DebugNotAllowed)


def test_tdx_measurements_and_report_data() -> None:
    ok = refs(f"tdx: {{mrtd: ['{bytes(48).hex()}', '{MRTD.hex()}'], rtmr0: '{bytes(48).hex()}'}}")
    assert appraise(intel(), ok).ok
    wrong = appraise(intel(), refs(f"tdx: {{mrtd: '{bytes(48).hex()}', report_data: '{'11' * 64}'}}"))
    assert [f.name for f in wrong.failures] == ["tdx.mrtd", "tdx.report-data"]


def test_sgx_identity_fields() -> None:
    claims = intel(Tee.SGX)
    assert appraise(claims, refs("sgx: {isv_prodid: 1, minimum_isv_svn: 3}")).ok
    failures = appraise(claims, refs("sgx: {isv_prodid: 2, minimum_isv_svn: 4}")).failures
    assert [f.name for f in failures] == ["sgx.isv-prodid", "sgx.isv-svn"]


def test_unknown_waivers_and_advisory_ids_are_refused() -> None:
    with pytest.raises(ReferenceValuesInvalid):
        refs("waive: [sev-snp.everything]")
    with pytest.raises(ReferenceValuesInvalid):
        refs("tdx: {tcb: {statuses: [UpToDate], advisories: [CVE-2024-1]}}")
    with pytest.raises(ReferenceValuesInvalid):
        refs("tdx: {tcb: {statuses: [Revoked]}}")


def test_maa_claims() -> None:
    claims = Claims(
        tee=Tee.MAA,
        platform="azure-attestation/sgx",
        measurements={"mrenclave": bytes(32), "mrsigner": bytes([1]) * 32},
        report_data=None,
        nonce=None,
        tcb={},
        debug=False,
        hardware_id=None,
        signer=SignerChain(("CN=maa",), "00" * 32),
        vendor={"x-ms-attestation-type": "sgx", "x-ms-sgx-product-id": 1, "x-ms-sgx-svn": 1, "x-ms-policy-hash": "abc"},
    )
    good = refs(
        f"maa: {{attestation_types: [sgx], mrsigner: '{'01' * 32}', product_id: 1, minimum_svn: 1, policy_hashes: [abc]}}"
    )
    assert appraise(claims, good).ok
    bad = refs("maa: {attestation_types: [sevsnpvm], product_id: 2, minimum_svn: 2, policy_hashes: [x]}")
    assert [f.name for f in appraise(claims, bad).failures] == [
        "maa.attestation-type",
        "maa.product-id",
        "maa.svn",
        "maa.policy-hash",
    ]


def test_devices_are_appraised_under_their_names() -> None:
    cpu = intel(devices=(gpu("GPU-0"), gpu("GPU-1", driver="535.0", unchecked=True)))
    appraisal = appraise(cpu, refs(f"tdx: {{mrtd: '{MRTD.hex()}'}}\nnvidia-gpu: {{drivers: ['550.90.07']}}"))
    failed = {f.name: f.error for f in appraisal.failures}
    assert failed == {
        "GPU-1.nvidia-gpu.measurements": CollateralMissing,
        "GPU-1.nvidia-gpu.driver": ReferenceValueViolation,
    }
    assert isinstance(appraisal.error(), ReferenceValueViolation)


def test_devices_need_no_section_of_their_own() -> None:
    cpu = intel(devices=(gpu("GPU-0"),))
    assert appraise(cpu, refs(f"tdx: {{mrtd: '{MRTD.hex()}'}}")).ok


def test_ocsp_can_be_required() -> None:
    required = refs(f"tdx: {{mrtd: '{MRTD.hex()}'}}\nnvidia-gpu: {{require_ocsp: true}}")
    assert not appraise(intel(devices=(gpu("GPU-0"),)), required).ok
    assert appraise(intel(devices=(gpu("GPU-0", ocsp="good"),)), required).ok
