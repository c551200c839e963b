"""Loading DCAP collateral (dcap-qvl JSON, raw PCS responses): exact signed bytes, typed failures, fuzzing."""

from __future__ import annotations

import contextlib
import json
import urllib.parse

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestation.claims import Tee
from attestation.collateral import Collateral
from attestation.errors import AttestationError, MalformedEvidence
from attestation.tee.dcap import DcapCollateral, MalformedCollateral
from attestation.tee.dcap.collateral import load_crl
from attestation.verify import verify
from tests.attestation.dcap.conftest import DcapVector


def test_both_forms_hold_the_same_signed_bytes(tdx_v4: DcapVector) -> None:
    from_json = tdx_v4.collateral()
    from_pcs = DcapCollateral.from_pcs(**tdx_v4.pcs_bodies())
    assert from_json == from_pcs
    assert from_json.tcb_info_json == tdx_v4.fields["tcb_info"].encode()
    assert from_json.tcb_info.id == "TDX" and from_json.tcb_info.fmspc.hex() == "b0c06f000000"
    assert from_json.qe_identity.id == "TD_QE"
    assert [c.subject.rfc4514_string().split(",")[-1] for c in from_json.tcb_issuer_chain] == [
        "CN=Intel SGX TCB Signing",
        "CN=Intel SGX Root CA",
    ]


def test_pcs_bodies_are_cut_exactly_whatever_the_layout(tdx_v4: DcapVector) -> None:
    f = tdx_v4.fields
    body = (
        '{\n  "signature" : "' + f["tcb_info_signature"] + '",\n  "other": {"tcbInfo": [1, "}"]},\n'
        '  "tcbInfo" :  ' + f["tcb_info"] + "  \n}\n"
    ).encode()
    pieces = tdx_v4.pcs_bodies()
    pieces["tcb_info"] = body
    collateral = DcapCollateral.from_pcs(**pieces)
    assert collateral.tcb_info_json == f["tcb_info"].encode()
    verify(tdx_v4.quote, tee=Tee.TDX, at=tdx_v4.at, collateral=Collateral(dcap=collateral))


def test_pcs_headers_may_be_url_encoded_and_crls_pem(tdx_v4: DcapVector) -> None:
    pieces = tdx_v4.pcs_bodies()
    for key in ("tcb_issuer_chain", "qe_identity_issuer_chain", "pck_crl_issuer_chain"):
        pieces[key] = urllib.parse.quote(pieces[key].decode()).encode()
    from cryptography.hazmat.primitives.serialization import Encoding

    for key in ("pck_crl", "root_ca_crl"):
        pieces[key] = x509.load_der_x509_crl(pieces[key]).public_bytes(Encoding.PEM)
    del pieces["qe_identity_issuer_chain"]  # defaults to the TCB Info chain, as PCS sends the same one
    collateral = DcapCollateral.from_pcs(**pieces)
    assert collateral == tdx_v4.collateral()


def test_hex_encoded_crl_as_pccs_serves_it(tdx_v4: DcapVector) -> None:
    der = tdx_v4.pcs_bodies()["root_ca_crl"]
    assert load_crl(der.hex().encode() + b"\n", "crl") == x509.load_der_x509_crl(der)


def _broken(vector: DcapVector, key: str, value: object) -> bytes:
    fields: dict[str, object] = dict(vector.fields)
    if value is None:
        del fields[key]
    else:
        fields[key] = value
    return json.dumps(fields).encode()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("tcb_info", None, "'tcb_info' must be a string"),
        ("tcb_info", "{", "TCB Info is not JSON"),
        ("tcb_info", '{"id":"TDX"}', "has no 'version'"),
        ("tcb_info", '{"id":"AMD","version":3}', "not supported"),
        ("tcb_info_signature", "zz", "not hex"),
        ("tcb_info_signature", "00" * 10, "64 bytes"),
        ("qe_identity", '{"id":"TD_QE","version":2}', "has no 'issueDate'"),
        ("pck_crl", "00" * 8, "PCK CRL is not a DER or PEM CRL"),
        ("root_ca_crl", 5, "must be a string"),
        ("tcb_info_issuer_chain", "not pem", "not PEM certificates"),
        ("pck_crl_issuer_chain", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "certificate"),
    ],
)
def test_malformed_dcap_qvl_json(tdx_v4: DcapVector, key: str, value: object, message: str) -> None:
    with pytest.raises(MalformedCollateral, match=message):
        DcapCollateral.from_dcap_qvl_json(_broken(tdx_v4, key, value))


def test_malformed_documents_inside(tdx_v4: DcapVector) -> None:
    info = json.loads(tdx_v4.fields["tcb_info"])
    info["tcbLevels"][0]["tcbStatus"] = "Fine"
    with pytest.raises(MalformedCollateral, match="not a known TCB status"):
        DcapCollateral.from_dcap_qvl_json(_broken(tdx_v4, "tcb_info", json.dumps(info)))
    info = json.loads(tdx_v4.fields["tcb_info"])
    info["tcbLevels"][0]["tcb"]["sgxtcbcomponents"].pop()
    with pytest.raises(MalformedCollateral, match="16 sgxtcbcomponents"):
        DcapCollateral.from_dcap_qvl_json(_broken(tdx_v4, "tcb_info", json.dumps(info)))
    info = json.loads(tdx_v4.fields["tcb_info"])
    info["nextUpdate"] = "2025-07-19T10:16:03"
    with pytest.raises(MalformedCollateral, match="no time zone"):
        DcapCollateral.from_dcap_qvl_json(_broken(tdx_v4, "tcb_info", json.dumps(info)))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", "must be a JSON object"),
        (b'{"tcbInfo": {}}', "'signature'"),
        (b'{"tcbInfo": {}, "tcbInfo": {}, "signature": "00"}', "duplicate member"),
        (b"\xff", "not UTF-8"),
    ],
)
def test_malformed_pcs_bodies(tdx_v4: DcapVector, body: bytes, message: str) -> None:
    pieces = tdx_v4.pcs_bodies()
    pieces["tcb_info"] = body
    with pytest.raises(MalformedCollateral, match=message):
        DcapCollateral.from_pcs(**pieces)


def test_malformed_collateral_is_malformed_evidence() -> None:
    assert issubclass(MalformedCollateral, MalformedEvidence)
    with pytest.raises(MalformedCollateral, match="larger than"):
        DcapCollateral.from_dcap_qvl_json(b" " * (2 << 20))


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_collateral_json(data: st.DataObject, tdx_v4: DcapVector) -> None:
    fields: dict[str, object] = dict(tdx_v4.fields)
    key = data.draw(st.sampled_from(sorted(fields)))
    if key in ("tcb_info", "qe_identity") and data.draw(st.booleans()):
        document = json.loads(str(fields[key]))
        inner = data.draw(st.sampled_from(sorted(document)))
        document[inner] = data.draw(_JSON)
        fields[key] = json.dumps(document)
    else:
        fields[key] = data.draw(_JSON)
    with contextlib.suppress(AttestationError):
        DcapCollateral.from_dcap_qvl_json(json.dumps(fields).encode())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_pcs_bodies_and_crls(data: st.DataObject, sgx_v3: DcapVector) -> None:
    pieces = sgx_v3.pcs_bodies()
    key = data.draw(st.sampled_from(sorted(pieces)))
    raw = bytearray(pieces[key])
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    pieces[key] = bytes(raw[: data.draw(st.integers(0, len(raw)))])
    try:
        collateral = DcapCollateral.from_pcs(**pieces)
        verify(sgx_v3.quote, tee=Tee.SGX, at=sgx_v3.at, collateral=Collateral(dcap=collateral))
    except AttestationError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_verification_of_mutated_quotes(data: st.DataObject, tdx_v4: DcapVector) -> None:
    quote = bytearray(tdx_v4.quote)
    position = data.draw(st.integers(0, len(quote) - 1))
    quote[position] = data.draw(st.integers(0, 255))
    collateral = Collateral(dcap=tdx_v4.collateral())
    with contextlib.suppress(AttestationError):
        verify(bytes(quote), tee=Tee.TDX, at=tdx_v4.at, collateral=collateral)
