"""The TDX evidence simulator: quote layout, QE binding, PKI profile, collateral, and verifier round trips."""

from __future__ import annotations

import hashlib
import json
import struct
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attestation._x509 import SIMULATOR_ORGANIZATION, is_simulator_certificate
from attestation.appraise import appraise
from attestation.claims import Claims
from attestation.collateral import Collateral
from attestation.errors import BadChain, CollateralMissing, ReferenceValueViolation, UntrustedSimulatorRoot
from attestation.reference import ReferenceValues
from attestation.simulator.tdx import (
    DEFAULT_QE_AUTH_DATA,
    HEADER_SIZE,
    SGX_EXTENSION_OID,
    SGX_REPORT_SIZE,
    SIMULATED_FMSPC,
    TD10_BODY_SIZE,
    TD15_BODY_SIZE,
    TdxSimulator,
    TdxSimulatorKeys,
)
from attestation.tee.dcap import DcapCollateral
from attestation.verify import verify

AT = datetime(2025, 1, 1, tzinfo=UTC)
REPORT_DATA = b"ccdeploy tdx".ljust(64, b"\0")
MRTD_OFFSET, RTMR0_OFFSET, REPORT_DATA_OFFSET = 136, 328, 520


@pytest.fixture(scope="module")
def sim() -> TdxSimulator:
    return TdxSimulator.create(at=AT)


def _verify_raw(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> None:
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    key.verify(der, data, ec.ECDSA(hashes.SHA256()))


def _split(quote: bytes) -> dict[str, bytes]:
    """An independent reading of Intel's layout (header, body, signature data, nested certification data)."""
    version = struct.unpack_from("<H", quote)[0]
    offset = HEADER_SIZE
    if version == 5:
        _, size = struct.unpack_from("<HI", quote, offset)
        offset += 6
    else:
        size = TD10_BODY_SIZE
    body, offset = quote[offset : offset + size], offset + size
    signed = quote[:offset]
    (length,) = struct.unpack_from("<I", quote, offset)
    data = quote[offset + 4 :]
    assert len(data) == length
    cert_type, cert_size = struct.unpack_from("<HI", data, 128)
    assert cert_type == 6 and len(data) == 134 + cert_size
    qe = data[134:]
    (auth_size,) = struct.unpack_from("<H", qe, 448)
    chain_type, chain_size = struct.unpack_from("<HI", qe, 450 + auth_size)
    assert chain_type == 5
    chain = qe[456 + auth_size :]
    assert len(chain) == chain_size
    return {
        "signed": signed,
        "body": body,
        "signature": data[:64],
        "attestation_key": data[64:128],
        "qe_report": qe[:SGX_REPORT_SIZE],
        "qe_signature": qe[SGX_REPORT_SIZE:448],
        "auth": qe[450 : 450 + auth_size],
        "chain": chain,
    }


def test_v4_quote_layout_and_signatures(sim: TdxSimulator) -> None:
    mrtd, rtmrs = bytes(range(48)), tuple(bytes([i]) * 48 for i in range(4))
    quote = sim.quote(REPORT_DATA, mrtd=mrtd, rtmrs=rtmrs)
    parts = _split(quote)
    assert struct.unpack_from("<HHI", quote) == (4, 2, 0x81)
    assert len(parts["body"]) == TD10_BODY_SIZE and parts["signed"] == quote[: HEADER_SIZE + TD10_BODY_SIZE]
    assert parts["body"][MRTD_OFFSET : MRTD_OFFSET + 48] == mrtd
    assert parts["body"][RTMR0_OFFSET : RTMR0_OFFSET + 192] == b"".join(rtmrs)
    assert parts["body"][REPORT_DATA_OFFSET:] == REPORT_DATA
    attestation_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + parts["attestation_key"])
    _verify_raw(attestation_key, parts["signature"], parts["signed"])
    chain = x509.load_pem_x509_certificates(parts["chain"].rstrip(b"\0"))
    assert chain == [sim.pck_certificate, sim.pck_ca, sim.root]
    pck_key = sim.pck_certificate.public_key()
    assert isinstance(pck_key, ec.EllipticCurvePublicKey)
    _verify_raw(pck_key, parts["qe_signature"], parts["qe_report"])


def test_qe_report_binds_attestation_key_and_auth_data(sim: TdxSimulator) -> None:
    parts = _split(sim.quote(REPORT_DATA, qe_auth_data=b"other auth"))
    assert parts["auth"] == b"other auth"
    expected = hashlib.sha256(parts["attestation_key"] + parts["auth"]).digest() + bytes(32)
    assert parts["qe_report"][320:384] == expected
    assert _split(sim.quote(REPORT_DATA))["auth"] == DEFAULT_QE_AUTH_DATA


@pytest.mark.parametrize(("td15", "body_type", "size"), [(False, 2, TD10_BODY_SIZE), (True, 3, TD15_BODY_SIZE)])
def test_v5_quote_has_a_body_descriptor_inside_the_signed_bytes(
    sim: TdxSimulator, td15: bool, body_type: int, size: int
) -> None:
    quote = sim.quote(REPORT_DATA, version=5, td15=td15, mrservicetd=b"\x55" * 48)
    assert struct.unpack_from("<HHIHH", quote)[0] == 5
    assert struct.unpack_from("<HI", quote, HEADER_SIZE) == (body_type, size)
    parts = _split(quote)
    assert len(parts["signed"]) == HEADER_SIZE + 6 + size
    attestation_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + parts["attestation_key"])
    _verify_raw(attestation_key, parts["signature"], parts["signed"])
    if td15:
        assert parts["body"][600:648] == b"\x55" * 48


def test_debug_sets_td_attributes_bit_0(sim: TdxSimulator) -> None:
    assert _split(sim.quote(debug=True))["body"][120] & 1 == 1
    assert _split(sim.quote())["body"][120] & 1 == 0


def test_bad_arguments_are_refused(sim: TdxSimulator) -> None:
    with pytest.raises(ValueError, match="mrtd"):
        sim.quote(mrtd=b"short")
    with pytest.raises(ValueError, match=r"TD 1\.5"):
        sim.quote(td15=True)
    with pytest.raises(ValueError, match="RTMR"):
        sim.quote(rtmrs=[bytes(48)])


def test_every_certificate_is_a_simulator_certificate_with_intel_names(sim: TdxSimulator) -> None:
    certs = (sim.root, sim.pck_ca, sim.pck_certificate, sim.tcb_signing_certificate)
    for cert in certs:
        assert is_simulator_certificate(cert)
        assert cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value == SIMULATOR_ORGANIZATION
    names = [cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value for cert in certs]
    assert names == [
        "Intel SGX Root CA",
        "Intel SGX PCK Platform CA",
        "Intel SGX PCK Certificate",
        "Intel SGX TCB Signing",
    ]
    sim.pck_certificate.verify_directly_issued_by(sim.pck_ca)
    sim.pck_ca.verify_directly_issued_by(sim.root)
    sim.tcb_signing_certificate.verify_directly_issued_by(sim.root)
    assert sim.pck_certificate.extensions.get_extension_for_oid(SGX_EXTENSION_OID).critical is False
    assert sim.root.not_valid_before_utc < AT < sim.pck_certificate.not_valid_after_utc


def test_fixed_keys_give_identical_bytes(sim: TdxSimulator) -> None:
    again = TdxSimulator.from_keys(TdxSimulatorKeys.from_pem(sim.keys.to_pem()), at=AT)
    assert again.quote(REPORT_DATA) == sim.quote(REPORT_DATA)
    assert again.collateral_json() == sim.collateral_json()
    assert again.root_pem() == sim.root_pem()


def test_collateral_json_has_dcap_qvl_shape_and_valid_signatures(sim: TdxSimulator) -> None:
    document = json.loads(sim.collateral_json(tcb_status="SWHardeningNeeded", advisory_ids=["INTEL-SA-00615"]))
    assert set(document) == {
        "pck_crl_issuer_chain",
        "root_ca_crl",
        "pck_crl",
        "tcb_info_issuer_chain",
        "tcb_info",
        "tcb_info_signature",
        "qe_identity_issuer_chain",
        "qe_identity",
        "qe_identity_signature",
    }
    key = sim.tcb_signing_certificate.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    for name in ("tcb_info", "qe_identity"):
        _verify_raw(key, bytes.fromhex(document[f"{name}_signature"]), document[name].encode())
    tcb_info = json.loads(document["tcb_info"])
    assert tcb_info["fmspc"] == SIMULATED_FMSPC.hex().upper() and tcb_info["id"] == "TDX"
    assert tcb_info["tcbLevels"][0]["tcbStatus"] == "SWHardeningNeeded"
    assert tcb_info["tcbLevels"][0]["advisoryIDs"] == ["INTEL-SA-00615"]
    assert [identity["id"] for identity in tcb_info["tdxModuleIdentities"]] == ["TDX_01"]
    assert json.loads(document["qe_identity"])["id"] == "TD_QE"
    assert tcb_info["issueDate"] < "2025-01-01T00:00:00Z" < tcb_info["nextUpdate"]
    pck_crl = x509.load_der_x509_crl(bytes.fromhex(document["pck_crl"]))
    root_crl = x509.load_der_x509_crl(bytes.fromhex(document["root_ca_crl"]))
    assert pck_crl.is_signature_valid(sim.pck_ca.public_key())  # type: ignore[arg-type]
    assert root_crl.is_signature_valid(sim.root.public_key())  # type: ignore[arg-type]
    assert pck_crl.next_update_utc is not None and pck_crl.next_update_utc > AT


def test_revoked_serials_and_stale_windows(sim: TdxSimulator) -> None:
    serial = sim.pck_certificate.serial_number
    stale = AT - timedelta(days=60)
    document = json.loads(sim.collateral_json(revoked_pck_serials=[serial], crl_issued=stale))
    crl = x509.load_der_x509_crl(bytes.fromhex(document["pck_crl"]))
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert crl.next_update_utc is not None and crl.next_update_utc < AT
    assert json.loads(document["tcb_info"])["nextUpdate"] > "2025-01-01T00:00:00Z"


def test_pcs_responses_carry_the_same_signed_documents(sim: TdxSimulator) -> None:
    responses = sim.pcs_responses()
    body = json.loads(responses.tcb_info.body)
    assert json.dumps(body["tcbInfo"], separators=(",", ":")).encode() == sim.tcb_info()
    chain = urllib.parse.unquote(responses.tcb_info.headers["TCB-Info-Issuer-Chain"]).encode()
    assert x509.load_pem_x509_certificates(chain) == [sim.tcb_signing_certificate, sim.root]
    assert json.loads(responses.qe_identity.body)["enclaveIdentity"]["id"] == "TD_QE"
    assert x509.load_der_x509_crl(responses.pck_crl.body).issuer == sim.pck_ca.subject
    assert x509.load_der_x509_crl(responses.root_ca_crl.body).issuer == sim.root.subject


# Round trips through the DCAP verifier (attestation.tee.dcap).


def _verify(sim: TdxSimulator, quote: bytes, *, allow_simulator: bool = True, **collateral: Any) -> Claims:
    return verify(
        quote,
        tee="tdx",
        at=AT,
        roots=[sim.root],
        collateral=Collateral(dcap=sim.collateral(**collateral)),
        unsafe_allow_simulator_roots=allow_simulator,
    )


def test_simulated_quote_verifies_up_to_date_with_its_measurements(sim: TdxSimulator) -> None:
    mrtd, rtmrs = bytes(range(48)), tuple(bytes([i + 1]) * 48 for i in range(4))
    claims = _verify(sim, sim.quote(REPORT_DATA, mrtd=mrtd, rtmrs=rtmrs, mrconfigid=b"\x07" * 48))
    assert claims.platform == "intel-tdx" and claims.report_data == REPORT_DATA
    assert claims.measurements["mrtd"] == mrtd and claims.measurements["mrconfigid"] == b"\x07" * 48
    assert [claims.measurements[f"rtmr{i}"] for i in range(4)] == list(rtmrs)
    assert claims.vendor["tcb_status"] == "UpToDate" and claims.vendor["advisory_ids"] == ()
    assert claims.vendor["fmspc"] == SIMULATED_FMSPC.hex() and claims.signer.simulated
    assert claims.debug is False and not claims.unchecked
    assert appraise(claims, nonce=b"ccdeploy tdx").ok


@pytest.mark.parametrize("td15", [False, True])
def test_v5_quotes_verify(sim: TdxSimulator, td15: bool) -> None:
    claims = _verify(sim, sim.quote(REPORT_DATA, version=5, td15=td15, mrservicetd=b"\x42" * 48))
    assert claims.vendor["quote_version"] == 5 and claims.vendor["tcb_status"] == "UpToDate"
    assert claims.measurements.get("mrservicetd") == (b"\x42" * 48 if td15 else None)


def test_pcs_responses_give_the_same_verdict(sim: TdxSimulator) -> None:
    responses = sim.pcs_responses()
    dcap = DcapCollateral.from_pcs(
        tcb_info=responses.tcb_info.body,
        qe_identity=responses.qe_identity.body,
        tcb_issuer_chain=responses.tcb_info.headers["TCB-Info-Issuer-Chain"].encode(),
        pck_crl=responses.pck_crl.body,
        pck_crl_issuer_chain=responses.pck_crl.headers["SGX-PCK-CRL-Issuer-Chain"].encode(),
        root_ca_crl=responses.root_ca_crl.body,
    )
    claims = verify(
        sim.quote(REPORT_DATA),
        tee="tdx",
        at=AT,
        roots=[sim.root],
        collateral=Collateral(dcap=dcap),
        unsafe_allow_simulator_roots=True,
    )
    assert claims.vendor["tcb_status"] == "UpToDate"


def test_simulator_root_is_refused_unless_allowed(sim: TdxSimulator) -> None:
    with pytest.raises(UntrustedSimulatorRoot):
        _verify(sim, sim.quote(REPORT_DATA), allow_simulator=False)


def test_the_pinned_intel_root_refuses_simulated_quotes(sim: TdxSimulator) -> None:
    with pytest.raises(BadChain):
        verify(sim.quote(), tee="tdx", at=AT, collateral=Collateral(dcap=sim.collateral()))


def test_status_with_advisories_needs_reference_values_naming_them(sim: TdxSimulator) -> None:
    claims = _verify(sim, sim.quote(REPORT_DATA), tcb_status="SWHardeningNeeded", advisory_ids=["INTEL-SA-00615"])
    assert claims.vendor["tcb_status"] == "SWHardeningNeeded"
    assert claims.vendor["advisory_ids"] == ("INTEL-SA-00615",)
    with pytest.raises(ReferenceValueViolation):
        appraise(claims).raise_for_failure()
    status_only = ReferenceValues.from_yaml("tdx:\n  tcb: {statuses: [SWHardeningNeeded]}\n")
    assert not appraise(claims, status_only).ok
    named = ReferenceValues.from_yaml(
        "tdx:\n  tcb: {statuses: [SWHardeningNeeded], advisories: [INTEL-SA-00615]}\n  mrtd: '"
        + sim.default_mrtd().hex()
        + "'\n"
    )
    assert appraise(claims, named).ok


def test_without_collateral_the_tcb_is_unchecked(sim: TdxSimulator) -> None:
    claims = verify(sim.quote(), tee="tdx", at=AT, roots=[sim.root], unsafe_allow_simulator_roots=True)
    assert "tdx.collateral" in claims.unchecked and "tcb_status" not in claims.vendor
    with pytest.raises(CollateralMissing):
        appraise(claims).raise_for_failure()
