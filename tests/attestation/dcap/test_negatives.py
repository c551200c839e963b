"""Targeted negatives: one byte or one document changed in a real quote or its collateral, and simulator-made
collateral for the decisions real data cannot show (revocation, a Revoked TCB, another FMSPC)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.claims import Tee
from attestation.collateral import Collateral
from attestation.errors import (
    AttestationError,
    BadChain,
    BadSignature,
    Expired,
    NotYetValid,
    Revoked,
    UntrustedSimulatorRoot,
)
from attestation.simulator.tdx import TdxSimulator
from attestation.tee.dcap import (
    CollateralMismatch,
    DcapCollateral,
    NoMatchingTcbLevel,
    QeIdentityMismatch,
    QeReportBindingMismatch,
    TdxModuleMismatch,
)
from attestation.tee.dcap.evaluate import evaluate_tcb
from attestation.tee.dcap.models import QeIdentity, TcbInfo
from attestation.tee.dcap.pck import SgxExtensions, load_pck_chain, sgx_extensions
from attestation.tee.dcap.quote import Quote, parse_quote
from attestation.tee.dcap.tcb import TcbStatus
from attestation.verify import verify
from tests.attestation.dcap.conftest import DcapVector

# Offsets in the v4 quote: header 48 + TD 1.0 body 584 = 632 signed bytes, u32 length, then the signature data:
# quote signature (64), attestation key (64), certification data type 6 (u16, u32), QE report (384), its
# signature (64), QE auth data (u16 size + data).
MRTD_AT = 48 + 136
QUOTE_SIGNATURE_AT = 636
QE_REPORT_AT = 636 + 128 + 6
QE_REPORT_SIGNATURE_AT = QE_REPORT_AT + 384
QE_AUTH_DATA_AT = QE_REPORT_SIGNATURE_AT + 64 + 2


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def _verify_v4(vector: DcapVector, quote: bytes | None = None, dcap: DcapCollateral | None = None) -> None:
    verify(
        vector.quote if quote is None else quote,
        tee=Tee.TDX,
        at=vector.at,
        collateral=Collateral(dcap=vector.collateral() if dcap is None else dcap),
    )


@pytest.mark.parametrize(
    ("offset", "error", "message"),
    [
        (MRTD_AT, BadSignature, "quote signature"),
        (QUOTE_SIGNATURE_AT + 5, BadSignature, "quote signature"),
        (QE_REPORT_AT + 100, BadSignature, "QE report signature"),
        (QE_REPORT_SIGNATURE_AT + 3, BadSignature, "QE report signature"),
        (QE_AUTH_DATA_AT + 1, QeReportBindingMismatch, "SHA-256"),
    ],
    ids=["body", "quote-signature", "qe-report", "qe-report-signature", "qe-auth-data"],
)
def test_one_flipped_byte_of_the_quote_is_refused(
    tdx_v4: DcapVector, offset: int, error: type[AttestationError], message: str
) -> None:
    with pytest.raises(error, match=message):
        _verify_v4(tdx_v4, quote=_flip(tdx_v4.quote, offset))
    with pytest.raises(error, match=message):  # without collateral too: these checks need none
        verify(_flip(tdx_v4.quote, offset), tee=Tee.TDX, at=tdx_v4.at)


@pytest.mark.parametrize("field", ["tcb_info", "qe_identity"])
def test_a_changed_signed_document_is_refused(tdx_v4: DcapVector, field: str) -> None:
    fields = tdx_v4.fields
    fields[field] = fields[field].replace('"tcbEvaluationDataNumber":17', '"tcbEvaluationDataNumber":18')
    with pytest.raises(BadSignature, match="TCB Info" if field == "tcb_info" else "QE Identity"):
        _verify_v4(tdx_v4, dcap=DcapCollateral.from_dcap_qvl_json(json.dumps(fields).encode()))


def test_a_changed_crl_signature_is_refused(tdx_v4: DcapVector) -> None:
    fields = tdx_v4.fields
    crl = bytearray(bytes.fromhex(fields["pck_crl"]))
    crl[-3] ^= 0x01  # inside the signature's s
    fields["pck_crl"] = crl.hex()
    with pytest.raises(BadSignature, match="PCK CRL"):
        _verify_v4(tdx_v4, dcap=DcapCollateral.from_dcap_qvl_json(json.dumps(fields).encode()))


def test_another_platforms_pck_crl_is_refused(tdx_v4: DcapVector, sgx_v3: DcapVector) -> None:
    # The SGX sample's PCK CRL is the Processor CA's; the TDX quote's PCK is issued by the Platform CA.
    with pytest.raises(BadChain, match="PCK Processor CA"):
        verify(
            tdx_v4.quote,
            tee=Tee.TDX,
            at=sgx_v3.at - timedelta(minutes=1),
            collateral=Collateral(dcap=sgx_v3.collateral()),
        )


def test_collateral_from_the_future_is_not_yet_valid(tdx_v4: DcapVector, tdx_v5: DcapVector) -> None:
    with pytest.raises(NotYetValid):
        _verify_v4(tdx_v4, dcap=tdx_v5.collateral())


def _self_signed(name: str, organization: str = "Intel Corporation") -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(x509.NameOID.COMMON_NAME, name),
            x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, organization),
        ]
    )
    start = datetime(2018, 1, 1, tzinfo=UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=365 * 30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def test_a_wrong_root_is_refused(tdx_v4: DcapVector) -> None:
    impostor = _self_signed("Intel SGX Root CA")
    with pytest.raises(BadChain, match="not issued by a trusted root"):
        verify(tdx_v4.quote, tee=Tee.TDX, at=tdx_v4.at, roots=[impostor])


def test_collateral_signed_under_another_root_is_refused(tdx_v4: DcapVector) -> None:
    sim = TdxSimulator.create(at=tdx_v4.at)
    foreign = json.loads(sim.collateral_json())
    fields = tdx_v4.fields
    for key in ("tcb_info", "tcb_info_signature", "tcb_info_issuer_chain"):
        fields[key] = foreign[key]
    with pytest.raises(BadChain, match="TCB Info signer"):
        _verify_v4(tdx_v4, dcap=DcapCollateral.from_dcap_qvl_json(json.dumps(fields).encode()))


SIM_AT = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def sim() -> TdxSimulator:
    return TdxSimulator.create(at=SIM_AT)


def _verify_sim(sim: TdxSimulator, dcap: DcapCollateral | None = None, *, allow: bool = True) -> dict[str, object]:
    claims = verify(
        sim.quote(),
        tee=Tee.TDX,
        at=SIM_AT,
        roots=[sim.root],
        collateral=Collateral(dcap=dcap),
        unsafe_allow_simulator_roots=allow,
    )
    assert claims.signer.simulated
    return dict(claims.vendor)


def test_a_simulator_root_is_refused_unless_allowed(sim: TdxSimulator) -> None:
    with pytest.raises(UntrustedSimulatorRoot):
        _verify_sim(sim, sim.collateral(), allow=False)
    assert _verify_sim(sim, sim.collateral())["tcb_status"] == "UpToDate"


def test_simulator_root_is_not_a_pinned_root(sim: TdxSimulator) -> None:
    with pytest.raises(BadChain):
        verify(sim.quote(), tee=Tee.TDX, at=SIM_AT, unsafe_allow_simulator_roots=True)


def test_revoked_pck_and_pck_ca(sim: TdxSimulator) -> None:
    with pytest.raises(Revoked, match="PCK Certificate"):
        _verify_sim(sim, sim.collateral(revoked_pck_serials=[sim.pck_certificate.serial_number]))
    with pytest.raises(Revoked, match="PCK Platform CA"):
        _verify_sim(sim, sim.collateral(revoked_ca_serials=[sim.pck_ca.serial_number]))
    with pytest.raises(Revoked, match="TCB Signing"):
        _verify_sim(sim, sim.collateral(revoked_ca_serials=[sim.tcb_signing_certificate.serial_number]))


def test_tcb_status_revoked_is_refused(sim: TdxSimulator) -> None:
    with pytest.raises(Revoked, match="TCB status is Revoked"):
        _verify_sim(sim, sim.collateral(tcb_status="Revoked"))


def test_other_statuses_are_reported_with_advisories(sim: TdxSimulator) -> None:
    vendor = _verify_sim(sim, sim.collateral(tcb_status="SWHardeningNeeded", advisory_ids=["INTEL-SA-00615"]))
    assert vendor["tcb_status"] == "SWHardeningNeeded"
    assert vendor["platform_tcb_status"] == "SWHardeningNeeded"
    assert vendor["advisory_ids"] == ("INTEL-SA-00615",)


def test_tcb_info_for_another_fmspc_is_refused(sim: TdxSimulator) -> None:
    with pytest.raises(CollateralMismatch, match="FMSPC"):
        _verify_sim(sim, sim.collateral(fmspc=bytes.fromhex("00a067110000")))


def test_stale_crl_from_the_simulator_is_expired(sim: TdxSimulator) -> None:
    with pytest.raises(Expired, match="CRL"):
        _verify_sim(sim, sim.collateral(crl_issued=SIM_AT - timedelta(days=40)))


# Evaluation rules on the real v4 quote, with its verified TCB Info / QE Identity changed in memory.


def _parts(vector: DcapVector) -> tuple[Quote, SgxExtensions, TcbInfo, QeIdentity]:
    quote = parse_quote(vector.quote)
    pck = sgx_extensions(load_pck_chain(quote.certification.pck_chain_pem)[0])
    dcap = vector.collateral()
    return quote, pck, dcap.tcb_info, dcap.qe_identity


def test_evaluation_of_the_real_v4_quote(tdx_v4: DcapVector) -> None:
    final, platform, qe, module = evaluate_tcb(*_parts(tdx_v4))
    assert (final.status, platform.status, qe.status) == ("UpToDate",) * 3
    assert module == TcbStatus("UpToDate", (), "2024-03-13T00:00:00Z")


def test_qe_identity_mismatches(tdx_v4: DcapVector) -> None:
    quote, pck, info, identity = _parts(tdx_v4)
    for change in (
        {"mrsigner": bytes(32)},
        {"isv_prod_id": 7},
        {"miscselect": 1},
        {"attributes": bytes(16)},
        {"id": "QE"},
    ):
        error = CollateralMismatch if "id" in change else QeIdentityMismatch
        with pytest.raises(error):
            evaluate_tcb(quote, pck, info, replace(identity, **change))
    low = replace(identity, tcb_levels=tuple(replace(level, isv_svn=99) for level in identity.tcb_levels))
    with pytest.raises(NoMatchingTcbLevel, match="QE"):
        evaluate_tcb(quote, pck, info, low)


def test_tdx_module_identity_rules(tdx_v4: DcapVector) -> None:
    quote, pck, info, identity = _parts(tdx_v4)
    renamed = tuple(replace(module, id="TDX_7F") for module in info.tdx_module_identities)
    with pytest.raises(TdxModuleMismatch, match="TDX_01"):
        evaluate_tcb(quote, pck, replace(info, tdx_module_identities=renamed), identity)
    signer = tuple(replace(module, mrsigner=b"\x01" * 48) for module in info.tdx_module_identities)
    with pytest.raises(TdxModuleMismatch, match="MRSIGNERSEAM"):
        evaluate_tcb(quote, pck, replace(info, tdx_module_identities=signer), identity)
    out_of_date = tuple(
        replace(
            module,
            tcb_levels=tuple(
                replace(level, tcb_status="OutOfDate", advisory_ids=("INTEL-SA-01079",)) for level in module.tcb_levels
            ),
        )
        for module in info.tdx_module_identities
    )
    final, platform, _qe, module = evaluate_tcb(quote, pck, replace(info, tdx_module_identities=out_of_date), identity)
    assert module is not None and module.status == "OutOfDate"
    assert platform.status == final.status == "OutOfDate"
    assert final.advisory_ids == ("INTEL-SA-01079",)


def test_platform_level_needs_every_component(tdx_v4: DcapVector) -> None:
    quote, pck, info, identity = _parts(tdx_v4)
    higher_pce = tuple(replace(level, pce_svn=pck.pce_svn + 1) for level in info.tcb_levels)
    with pytest.raises(NoMatchingTcbLevel, match="No matching TCB level found"):
        evaluate_tcb(quote, pck, replace(info, tcb_levels=higher_pce), identity)
    # A TDX component in a byte beyond the first three (all 16 are compared).
    strict = tuple(replace(level, tdx_components=(*(level.tdx_components or ())[:15], 1)) for level in info.tcb_levels)
    with pytest.raises(NoMatchingTcbLevel):
        evaluate_tcb(quote, pck, replace(info, tcb_levels=strict), identity)


def test_status_merge_takes_the_worse_and_unites_advisories() -> None:
    up = TcbStatus("UpToDate", ("A",), "d1")
    config = TcbStatus("ConfigurationNeeded", ("B", "A"), "d2")
    assert up.merge(config) == TcbStatus("ConfigurationNeeded", ("A", "B"), "d1")
    assert config.merge(up) == TcbStatus("ConfigurationNeeded", ("B", "A"), "d2")
    assert TcbStatus("OutOfDate", ()).merge(TcbStatus("SWHardeningNeeded", ())).status == "OutOfDate"


@pytest.mark.parametrize("document", ["tcb_info", "qe_identity"])
def test_collateral_signed_by_a_pck_key_is_refused(document: str) -> None:
    # A PCK key extracted from a vulnerable platform chains to the Intel root too, but must never vouch for TCB
    # levels or the QE identity: only the TCB Signing certificate, issued by the root itself, may.
    from attestation.simulator.tdx import _pem, _raw_signature

    at = datetime(2025, 1, 1, tzinfo=UTC)
    sim = TdxSimulator.create(at=at)
    collateral = json.loads(sim.collateral_json())
    signed = collateral[document].encode()
    collateral[f"{document}_issuer_chain"] = (_pem(sim.pck_certificate) + _pem(sim.pck_ca) + _pem(sim.root)).decode()
    collateral[f"{document}_signature"] = _raw_signature(sim.keys.pck, signed).hex()
    dcap = DcapCollateral.from_dcap_qvl_json(json.dumps(collateral).encode())
    with pytest.raises(BadChain, match="not Intel's TCB Signing certificate"):
        verify(
            sim.quote(),
            tee=Tee.TDX,
            at=at,
            roots=[sim.root],
            collateral=Collateral(dcap=dcap),
            unsafe_allow_simulator_roots=True,
        )
