"""Every TDX/SGX row of MANIFEST §5 through ``attestation.verify`` and ``appraise``, with both collateral forms."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest

from attestation.appraise import appraise
from attestation.claims import Claims, Tee
from attestation.collateral import Collateral
from attestation.errors import CollateralMissing, Expired, MalformedEvidence
from attestation.reference import ReferenceValues
from attestation.tee.dcap import NoMatchingTcbLevel, SgxVerifier, TdxVerifier
from attestation.tee.dcap.collateral import DcapCollateral
from attestation.verify import verify
from tests.attestation.dcap.conftest import DcapVector

INTEL_ROOT_SHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"

Form = Callable[[DcapVector], DcapCollateral]


def _json_form(vector: DcapVector) -> DcapCollateral:
    return vector.collateral()


def _pcs_form(vector: DcapVector) -> DcapCollateral:
    return DcapCollateral.from_pcs(**vector.pcs_bodies())


FORMS = pytest.mark.parametrize("form", [_json_form, _pcs_form], ids=["dcap-qvl-json", "pcs"])


def _verify(vector: DcapVector, form: Form, *, delta: timedelta = timedelta()) -> Claims:
    return verify(vector.quote, tee=vector.tee, at=vector.at + delta, collateral=Collateral(dcap=form(vector)))


@FORMS
def test_tdx_v4_is_up_to_date_at_its_time(tdx_v4: DcapVector, form: Form) -> None:
    claims = _verify(tdx_v4, form)
    assert claims.tee is Tee.TDX
    assert claims.platform == "intel-tdx"
    assert claims.vendor["tcb_status"] == "UpToDate"
    assert claims.vendor["advisory_ids"] == ()
    assert claims.vendor["platform_tcb_status"] == "UpToDate"
    assert claims.vendor["qe_tcb_status"] == "UpToDate"
    assert claims.vendor["tdx_module_tcb_status"] == "UpToDate"
    assert claims.vendor["tcb_date"] == "2024-03-13T00:00:00Z"
    assert claims.vendor["collateral_window"] == {
        "not_before": "2025-06-19T10:32:27Z",
        "not_after": "2025-07-19T10:00:35Z",
    }
    assert claims.vendor["quote_version"] == 4
    assert claims.vendor["tee_type"] == 0x81
    assert claims.vendor["fmspc"] == "b0c06f000000"
    assert claims.vendor["pce_svn"] == 11
    assert claims.tcb == {"pce_svn": 11}
    assert claims.vendor["tee_tcb_svn"] == bytes.fromhex("06010300") + bytes(12)
    assert claims.measurements["mrtd"].hex() == (
        "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
    )
    assert claims.measurements["rtmr0"].hex() == (
        "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0"
    )
    assert set(claims.measurements) == {
        "mrtd",
        "rtmr0",
        "rtmr1",
        "rtmr2",
        "rtmr3",
        "mrconfigid",
        "mrowner",
        "mrownerconfig",
        "mrseam",
        "mrsignerseam",
    }
    assert claims.report_data is not None
    assert claims.report_data.hex() == (
        "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9"
        "eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20"
    )
    assert claims.nonce is None and claims.hardware_id is None
    assert claims.debug is False
    assert claims.unchecked == {}
    assert claims.signer.root_sha256 == INTEL_ROOT_SHA256
    assert claims.signer.subjects[0].endswith("CN=Intel SGX PCK Certificate")
    assert claims.signer.subjects[1].endswith("CN=Intel SGX PCK Platform CA")
    assert claims.signer.simulated is False
    assert claims.signer.revocation == "PCK CRL and Intel SGX Root CA CRL checked at 2025-07-19T10:00:34Z"
    json.dumps(claims.to_dict())
    assert appraise(claims).ok


@FORMS
def test_tdx_v4_fails_two_seconds_later_on_the_stale_pck_crl(tdx_v4: DcapVector, form: Form) -> None:
    with pytest.raises(Expired, match="PCK CRL"):
        _verify(tdx_v4, form, delta=timedelta(seconds=2))


def test_tdx_v4_at_the_last_second_of_its_window_passes(tdx_v4: DcapVector) -> None:
    assert _verify(tdx_v4, _json_form, delta=timedelta(seconds=1)).vendor["tcb_status"] == "UpToDate"


@FORMS
def test_tdx_v5_has_no_matching_tcb_level(tdx_v5: DcapVector, form: Form) -> None:
    with pytest.raises(NoMatchingTcbLevel, match="No matching TCB level found"):
        _verify(tdx_v5, form)


def test_tdx_v5_td15_body_is_read(tdx_v5: DcapVector) -> None:
    claims = verify(tdx_v5.quote, tee=Tee.TDX, at=tdx_v5.at)
    assert claims.vendor["quote_version"] == 5
    assert claims.vendor["fmspc"] == "90c06f000000"
    assert claims.vendor["pce_svn"] == 13
    assert claims.vendor["cpu_svn"] == bytes([3, 3, 2, 2, 4, 1, 0, 3]) + bytes(8)
    assert claims.measurements["mrtd"].hex() == (
        "273828c46252fcbdd8ad2dd907130222b03466d52a2911d70c1a5950895d6bd1ae451d382d5a9b1b4c0ed0e5ae9a3dbd"
    )
    assert "mrservicetd" in claims.measurements
    assert claims.vendor["tee_tcb_svn"] == bytes.fromhex("07010300") + bytes(12)


@FORMS
def test_sgx_v3_needs_configuration_and_sw_hardening(sgx_v3: DcapVector, form: Form) -> None:
    claims = _verify(sgx_v3, form)
    assert claims.tee is Tee.SGX
    assert claims.platform == "intel-sgx"
    assert claims.vendor["tcb_status"] == "ConfigurationAndSWHardeningNeeded"
    assert claims.vendor["advisory_ids"] == ("INTEL-SA-00289", "INTEL-SA-00615")
    assert claims.vendor["qe_tcb_status"] == "UpToDate"
    assert "tdx_module_tcb_status" not in claims.vendor
    assert claims.vendor["quote_version"] == 3
    assert claims.vendor["fmspc"] == "00a067110000"
    assert claims.measurements == {
        "mrenclave": bytes.fromhex("33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"),
        "mrsigner": bytes.fromhex("815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6"),
    }
    assert claims.report_data == b"Hello, world!".ljust(64, b"\0")
    assert claims.signer.subjects[1].endswith("CN=Intel SGX PCK Processor CA")
    for key in ("isv_prodid", "isv_svn", "attributes", "misc_select"):
        assert key in claims.vendor


def test_sgx_v3_is_rejected_by_default_and_accepted_when_named(sgx_v3: DcapVector) -> None:
    claims = _verify(sgx_v3, _json_form)
    default = appraise(claims)
    assert not default.ok
    assert [f.name for f in default.failures] == ["sgx.tcb-status"]
    accepting = ReferenceValues.from_yaml(
        "sgx:\n"
        "  mrenclave: '33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb'\n"
        "  tcb: {statuses: [ConfigurationAndSWHardeningNeeded], advisories: [INTEL-SA-00289, INTEL-SA-00615]}\n"
    )
    assert appraise(claims, accepting).ok
    one_advisory = ReferenceValues.from_yaml(
        "sgx:\n  tcb: {statuses: [ConfigurationAndSWHardeningNeeded], advisories: [INTEL-SA-00289]}\n"
    )
    assert not appraise(claims, one_advisory).ok


def test_tdx_reference_values_on_real_claims(tdx_v4: DcapVector) -> None:
    claims = _verify(tdx_v4, _json_form)
    refs = ReferenceValues.from_yaml(
        "tdx:\n"
        "  mrtd: '91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7'\n"
        "  rtmr0: '44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0'\n"
    )
    assert appraise(claims, refs).ok
    wrong = ReferenceValues.from_yaml("tdx:\n  mrtd: '" + "00" * 48 + "'\n")
    assert [f.name for f in appraise(claims, wrong).failures] == ["tdx.mrtd"]


@pytest.mark.parametrize("name", ["tdx_v4", "tdx_v5", "sgx_v3"])
def test_without_collateral_the_quote_is_still_checked_and_the_rest_is_unchecked(
    name: str, request: pytest.FixtureRequest
) -> None:
    vector: DcapVector = request.getfixturevalue(name)
    claims = verify(vector.quote, tee=vector.tee, at=vector.at)
    assert claims.unchecked.keys() == {f"{vector.tee.value}.collateral"}
    assert "tcb_status" not in claims.vendor
    assert claims.signer.revocation == "not checked (no collateral)"
    assert claims.signer.root_sha256 == INTEL_ROOT_SHA256
    appraisal = appraise(claims)
    assert isinstance(appraisal.error(), CollateralMissing)
    name = "mrtd" if vector.tee is Tee.TDX else "mrenclave"
    section = f"{vector.tee.value}:\n  {name}: '{claims.measurements[name].hex()}'\n"
    assert isinstance(appraise(claims, ReferenceValues.from_yaml(section)).error(), CollateralMissing)
    waived = ReferenceValues.from_yaml(section + f"waive: [{vector.tee.value}.collateral]\n")
    assert appraise(claims, waived).ok


def test_a_quote_states_no_time(tdx_v4: DcapVector) -> None:
    with pytest.raises(CollateralMissing, match="no time"):
        verify(tdx_v4.quote, tee=Tee.TDX, at=None, collateral=Collateral(dcap=tdx_v4.collateral()))


def test_quote_types_are_not_interchangeable(tdx_v4: DcapVector, sgx_v3: DcapVector) -> None:
    with pytest.raises(MalformedEvidence, match="TDX quote, not an SGX quote"):
        verify(tdx_v4.quote, tee=Tee.SGX, at=tdx_v4.at)
    with pytest.raises(MalformedEvidence, match="SGX quote, not an TDX quote"):
        verify(sgx_v3.quote, tee=Tee.TDX, at=sgx_v3.at)


def test_looks_like_and_decode(tdx_v4: DcapVector, tdx_v5: DcapVector, sgx_v3: DcapVector) -> None:
    tdx, sgx = TdxVerifier(), SgxVerifier()
    assert tdx.looks_like(tdx_v4.quote) and tdx.looks_like(tdx_v5.quote) and not tdx.looks_like(sgx_v3.quote)
    assert sgx.looks_like(sgx_v3.quote) and not sgx.looks_like(tdx_v4.quote)
    assert not tdx.looks_like(b"") and not sgx.looks_like(b"\x03\x00")
    decoded = tdx.decode(tdx_v5.quote)
    assert decoded["quote_version"] == 5 and decoded["body_type"] == 3
    chain = decoded["pck_chain_pem"]
    assert isinstance(chain, str) and chain.startswith("-----BEGIN CERTIFICATE-----")
    assert sgx.decode(sgx_v3.quote)["report_data"] == b"Hello, world!".ljust(64, b"\0")
