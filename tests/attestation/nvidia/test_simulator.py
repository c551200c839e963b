"""The NVIDIA GPU simulator: its output has the real artifacts' shapes, and it round-trips through the verifier."""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509 import ocsp
from lxml import etree  # type: ignore[import-untyped, unused-ignore]
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.verifier import SignatureConfiguration, XMLVerifier

from attestation._x509 import SIMULATOR_ORGANIZATION, is_simulator_certificate
from attestation.claims import Claims
from attestation.collateral import Collateral
from attestation.errors import UntrustedSimulatorRoot
from attestation.simulator.nvidia import (
    DRIVER_ACTIVE,
    TCB_INFO_OID,
    VBIOS_ACTIVE,
    NvidiaGpuSimulator,
    NvidiaGpuSimulatorKeys,
    default_measurements,
)
from attestation.tee.nvidia import MeasurementMismatch, NvidiaGpuVerifier
from attestation.verify import verify

AT = datetime(2025, 3, 1, tzinfo=UTC)
NONCE = bytes(range(100, 132))
SWID = "{http://standards.iso.org/iso/19770/-2/2015/schema.xsd}"
HASH = "{http://www.w3.org/2001/04/xmlenc#sha384}Hash"


@pytest.fixture(scope="module")
def sim() -> NvidiaGpuSimulator:
    return NvidiaGpuSimulator.create(at=AT)


@dataclass
class Decoded:
    request: bytes
    header: bytes
    blocks: dict[int, bytes]
    responder_nonce: bytes
    tlvs: list[tuple[int, bytes]]
    signed: bytes
    signature: bytes


def decode(report: bytes) -> Decoded:
    """An independent decoding of request || response (SPDM 1.1), by lengths."""
    request, response = report[:37], report[37:]
    count, record_length = response[4], int.from_bytes(response[5:8], "little")
    blocks, at = {}, 8
    for _ in range(count):
        index, spec, size = response[at], response[at + 1], int.from_bytes(response[at + 2 : at + 4], "little")
        value_type, value_size = response[at + 4], int.from_bytes(response[at + 5 : at + 7], "little")
        assert (spec, size, value_type, value_size) == (1, 51, 1, 48)
        blocks[index] = response[at + 7 : at + 7 + value_size]
        at += 4 + size
    assert at == 8 + record_length
    responder_nonce, at = response[at : at + 32], at + 32
    opaque_length = int.from_bytes(response[at : at + 2], "little")
    opaque, at = response[at + 2 : at + 2 + opaque_length], at + 2 + opaque_length
    tlvs, offset = [], 0
    while offset < len(opaque):
        kind, length = struct.unpack_from("<HH", opaque, offset)
        tlvs.append((kind, opaque[offset + 4 : offset + 4 + length]))
        offset += 4 + length
    return Decoded(request, response[:4], blocks, responder_nonce, tlvs, report[: 37 + at], response[at:])


def test_report_has_the_real_layout(sim: NvidiaGpuSimulator, vectors: Path) -> None:
    real = bytes.fromhex((vectors / "nvidia-gpu/nvtrust-2025-h100-report.hex").read_text())
    report = sim.report(NONCE)
    ours, theirs = decode(report), decode(real)
    assert len(report) == len(real) == 4117
    assert ours.request == bytes.fromhex("11e001ff") + NONCE + b"\0"
    assert ours.header == theirs.header == bytes.fromhex("11600000")
    assert [k for k, _ in ours.tlvs] == [k for k, _ in theirs.tlvs]
    assert [len(v) for _, v in ours.tlvs] == [len(v) for _, v in theirs.tlvs]
    assert ours.blocks == default_measurements() and ours.responder_nonce != theirs.responder_nonce
    tlvs = dict(ours.tlvs)
    assert tlvs[3] == b"550.90.07\0" and tlvs[6] == bytes.fromhex("009f009601000000") and tlvs[20] == sim.fwid


def test_report_signature_is_the_leaf_keys_over_request_and_response(sim: NvidiaGpuSimulator) -> None:
    parts = decode(sim.report(NONCE))
    signature = parts.signature
    assert len(signature) == 96
    der = encode_dss_signature(int.from_bytes(signature[:48], "big"), int.from_bytes(signature[48:], "big"))
    key = sim.device_chain[0].public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(der, parts.signed, ec.ECDSA(hashes.SHA384()))


def test_report_options(sim: NvidiaGpuSimulator) -> None:
    bad = sim.report(NONCE, driver_version="1.2", vbios_version="01.02.03.04.05", measurements={64: b"\1" * 48})
    parts = decode(bad)
    tlvs = dict(parts.tlvs)
    assert tlvs[3] == b"1.2\0" and tlvs[6] == bytes.fromhex("0403020105000000")
    assert parts.blocks[64] == b"\1" * 48
    with pytest.raises(ValueError, match="32 bytes"):
        sim.report(b"short")
    with pytest.raises(ValueError, match="block 65"):
        sim.report(NONCE, measurements={65: bytes(48)})


def test_device_chain_is_shaped_like_nvidias(sim: NvidiaGpuSimulator) -> None:
    chain = sim.device_chain
    names = [cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value for cert in chain]
    assert names == [
        "GH100 A01 GSP FMC LF",
        "GH100 A01 GSP BROM",
        "NVIDIA GH100 Provisioner ICA 1",
        "NVIDIA GH100 Identity",
        "NVIDIA Device Identity CA",
    ]
    for cert, issuer in itertools.pairwise(chain):
        cert.verify_directly_issued_by(issuer)
    assert all(is_simulator_certificate(cert) for cert in chain + sim.rim_chain)
    assert chain[0].not_valid_after_utc.year == 9999
    tcb_info = chain[0].extensions.get_extension_for_oid(TCB_INFO_OID).value
    assert isinstance(tcb_info, x509.UnrecognizedExtension) and tcb_info.value[-48:] == sim.fwid
    assert x509.load_pem_x509_certificates(sim.certificate_chain_pem()) == list(chain)
    assert sim.device_root is chain[-1] and sim.rim_root is sim.rim_chain[-1]
    assert x509.load_pem_x509_certificate(sim.device_root_pem()) == sim.device_root
    assert x509.load_pem_x509_certificate(sim.rim_root_pem()) == sim.rim_root
    organizations = {cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value for cert in chain}
    assert organizations == {SIMULATOR_ORGANIZATION}


def _verified_rim(sim: NvidiaGpuSimulator, document: bytes) -> etree._Element:
    signer = sim.rim_chain[0].public_bytes(serialization.Encoding.PEM).decode()
    config = SignatureConfiguration(
        signature_methods=frozenset({SignatureMethod.ECDSA_SHA384}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA384}),
    )
    result = XMLVerifier().verify(document, x509_cert=signer, expect_config=config)
    assert not isinstance(result, list)
    return result.signed_xml


@pytest.mark.parametrize(("kind", "active"), [("driver", DRIVER_ACTIVE), ("vbios", VBIOS_ACTIVE)])
def test_rims_are_signed_swid_tags_with_the_golden_values(
    sim: NvidiaGpuSimulator, kind: str, active: tuple[int, ...]
) -> None:
    document = sim.driver_rim() if kind == "driver" else sim.vbios_rim()
    signed = _verified_rim(sim, document)
    meta = signed.find(f"{SWID}Meta")
    assert meta.get("colloquialVersion") == ("550.90.07" if kind == "driver" else "96.00.9F.00.01")
    resources = signed.find(f"{SWID}Payload").findall(f"{SWID}Resource")
    assert [int(r.get("index")) for r in resources] == list(range(64))
    blocks = default_measurements()
    for resource in resources:
        index = int(resource.get("index"))
        assert resource.get("active") == str(index in active)
        values = [bytes.fromhex(resource.get(f"{HASH}{n}")) for n in range(int(resource.get("alternatives")))]
        if index in active:
            assert blocks[index + 1] in values
    key_info = etree.fromstring(document).findall(".//{http://www.w3.org/2000/09/xmldsig#}X509Certificate")
    assert len(key_info) == 4  # signer, L3, CA, root: the real RIMs' KeyInfo


def test_some_rim_indices_list_alternatives(sim: NvidiaGpuSimulator) -> None:
    assert b'alternatives="2"' in sim.driver_rim() and b'alternatives="4"' in sim.vbios_rim()


def test_ocsp_responses_cover_every_non_root_certificate(sim: NvidiaGpuSimulator) -> None:
    responses = [ocsp.load_der_ocsp_response(der) for der in sim.ocsp_responses(at=AT)]
    pairs = [
        *zip(sim.device_chain, sim.device_chain[1:], strict=False),
        *zip(sim.rim_chain, sim.rim_chain[1:], strict=False),
    ]
    assert len(responses) == len(pairs) == 7
    for response, (cert, issuer) in zip(responses, pairs, strict=True):
        assert response.serial_number == cert.serial_number
        assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert response.produced_at_utc == AT - timedelta(hours=1) and response.next_update_utc == AT + timedelta(
            hours=23
        )
        key = issuer.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA384()))
    revoked = ocsp.load_der_ocsp_response(sim.ocsp_responses(at=AT, revoked=(sim.device_chain[0],))[0])
    assert revoked.certificate_status is ocsp.OCSPCertStatus.REVOKED


def test_fixed_keys_reproduce_every_byte(sim: NvidiaGpuSimulator) -> None:
    again = NvidiaGpuSimulator.from_keys(NvidiaGpuSimulatorKeys.from_pem(sim.keys.to_pem()), at=AT)
    assert again.report(NONCE) == sim.report(NONCE)
    assert again.certificate_chain_pem() == sim.certificate_chain_pem()
    assert (again.driver_rim(), again.vbios_rim()) == (sim.driver_rim(), sim.vbios_rim())
    assert again.ocsp_responses(at=AT) == sim.ocsp_responses(at=AT)


def _verify(sim: NvidiaGpuSimulator, report: bytes, *, allow: bool = True, ocsp_: bool = True) -> Claims:
    return verify(
        report,
        tee="nvidia-gpu",
        at=AT,
        roots=[sim.device_root],
        collateral=Collateral(
            certificates=sim.device_chain,
            rims=(sim.driver_rim(), sim.vbios_rim()),
            ocsp=sim.ocsp_responses(at=AT) if ocsp_ else (),
        ),
        unsafe_allow_simulator_roots=allow,
        verifier=NvidiaGpuVerifier(rim_roots=[sim.rim_root]),
    )


def test_round_trip_through_the_verifier(sim: NvidiaGpuSimulator) -> None:
    claims = _verify(sim, sim.report(NONCE))
    assert claims.nonce == NONCE
    assert claims.signer.simulated
    assert claims.platform == "nvidia/GH100"
    assert claims.hardware_id == sim.fwid.hex()
    assert claims.measurements["spdm8"] == default_measurements()[8]
    vendor: Any = claims.vendor
    assert (vendor["driver_version"], vendor["vbios_version"], vendor["ocsp"]) == (
        "550.90.07",
        "96.00.9F.00.01",
        "good",
    )
    assert vendor["rims"]["driver"]["matched"] == len(DRIVER_ACTIVE)
    assert vendor["rims"]["vbios"]["matched"] == len(VBIOS_ACTIVE)
    assert _verify(sim, sim.report(NONCE), ocsp_=False).vendor["ocsp"] == "unchecked"


def test_a_bad_gpu_is_a_measurement_mismatch_naming_the_index(sim: NvidiaGpuSimulator) -> None:
    with pytest.raises(MeasurementMismatch, match=r"driver RIM 550\.90\.07: 1 of 21 .*RIM indices 7;"):
        _verify(sim, sim.report(NONCE, measurements={8: bytes(48)}))


def test_simulator_roots_are_refused_unless_allowed(sim: NvidiaGpuSimulator) -> None:
    with pytest.raises(UntrustedSimulatorRoot):
        _verify(sim, sim.report(NONCE), allow=False)
