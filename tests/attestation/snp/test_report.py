"""The ATTESTATION_REPORT parser: field offsets on real reports, every version, reserved-field policy, TCB layouts."""

from __future__ import annotations

import pytest

from attestation.errors import MalformedEvidence
from attestation.simulator.snp import SnpSimulator
from attestation.tee.sev_snp import Product, SevSnpVerifier, SigningKey, TcbLayout, TcbVersion, parse_report
from attestation.tee.sev_snp.report import REPORT_SIZE
from attestation.tee.sev_snp.tcb import product_from_cpuid
from tests.attestation.snp.conftest import RealReport

GOSEVGUEST_MEASUREMENT = bytes.fromhex(
    "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01"
)
GOSEVGUEST_CHIP_ID = bytes.fromhex(
    "3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea4"
    "64cdce40c05f63c9b610c5068b006b5d"
)


def with_bytes(report: bytes, offset: int, value: bytes) -> bytes:
    return report[:offset] + value + report[offset + len(value) :]


def test_real_report_fields_are_at_the_spec_offsets(gosevguest: RealReport) -> None:
    report = parse_report(gosevguest.report)
    assert (report.version, report.guest_svn, report.policy.raw, report.vmpl) == (2, 0, 0xB0000, 0)
    assert report.report_data == bytes.fromhex("0102030405") + bytes(59)
    assert report.measurement == GOSEVGUEST_MEASUREMENT
    assert report.chip_id == GOSEVGUEST_CHIP_ID
    assert report.reported_tcb.to_bytes(8, "little").hex() == "0200000000000544"
    assert TcbVersion.decode(report.reported_tcb, TcbLayout.MILAN_GENOA) == TcbVersion(2, 0, 5, 68)
    assert report.signing_key is SigningKey.VCEK and report.signature_algo == 1
    assert report.cpuid_fam_id is None and report.launch_mit_vector is None
    assert report.report_id_ma == b"\xff" * 32
    assert (report.current_major, report.current_minor, report.current_build) == (1, 0x31, 3)
    assert report.signed_bytes == gosevguest.report[:0x2A0]


def test_policy_bits_are_named(gosevguest: RealReport, trustee: RealReport) -> None:
    # 0xB0000: SMT (16), reserved-one (17), DEBUG (19): go-sev-guest's sample is a debug guest.
    flags = parse_report(gosevguest.report).policy.flags()
    assert flags["smt"] and flags["debug"] and not flags["migrate_ma"] and not flags["single_socket"]
    policy = parse_report(trustee.report).policy
    assert (policy.abi_major, policy.abi_minor, policy.debug, policy.smt) == (0, 0x1F, False, True)


@pytest.mark.parametrize("version", [2, 3, 4, 5])
def test_each_version_has_its_fields(milan: SnpSimulator, version: int) -> None:
    report = parse_report(milan.report(version=version).report)
    assert report.version == version
    assert (report.cpuid_fam_id, report.cpuid_mod_id, report.cpuid_step) == (
        (0x19, 0x01, 0x01) if version >= 3 else (None, None, None)
    )
    assert (report.launch_mit_vector is not None) is (version >= 5)
    fields = SevSnpVerifier().decode(milan.report(version=version).report)
    assert ("cpuid_fam_id" in fields) is (version >= 3)
    assert ("current_mit_vector" in fields) is (version >= 5)


def test_mitigation_vectors_are_read_in_version_5(milan: SnpSimulator) -> None:
    raw = with_bytes(milan.report(version=5).report, 0x1F8, (7).to_bytes(8, "little") + (9).to_bytes(8, "little"))
    report = parse_report(raw)
    assert (report.launch_mit_vector, report.current_mit_vector) == (7, 9)


@pytest.mark.parametrize("version", [0, 1, 6, 0xFFFFFFFF])
def test_unknown_versions_are_refused(gosevguest: RealReport, version: int) -> None:
    with pytest.raises(MalformedEvidence, match="version"):
        parse_report(with_bytes(gosevguest.report, 0, version.to_bytes(4, "little")))


@pytest.mark.parametrize("size", [0, REPORT_SIZE - 1, REPORT_SIZE + 1, 4000])
def test_the_size_is_exact(gosevguest: RealReport, size: int) -> None:
    data = (gosevguest.report * 4)[:size]
    with pytest.raises(MalformedEvidence, match="1184 bytes"):
        parse_report(data)


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (0x34, (2).to_bytes(4, "little"), "SIGNATURE_ALGO"),
        (0x08, (0x10000).to_bytes(8, "little"), "bit 17"),  # reserved-one bit cleared
        (0x08, (0x30000 | 1 << 26).to_bytes(8, "little"), "63:26"),
        (0x48, (3 << 2).to_bytes(4, "little"), "SIGNING_KEY 3 is reserved"),
        (0x48, (1 << 5).to_bytes(4, "little"), "31:5"),
        (0x4A0 - 1, b"\x01", "unsigned bytes"),
    ],
)
def test_fields_that_decide_verification_must_be_as_the_spec_says(
    milan: SnpSimulator, offset: int, value: bytes, message: str
) -> None:
    with pytest.raises(MalformedEvidence, match=message):
        parse_report(with_bytes(milan.report().report, offset, value))


def test_reserved_bytes_in_the_signed_area_and_platform_bits_are_tolerated(milan: SnpSimulator) -> None:
    raw = milan.report(version=3).report
    for offset in (0x4C, 0x18B, 0x1EB, 0x1EF, 0x1F8, 0x29F):
        raw = with_bytes(raw, offset, b"\x5a")
    raw = with_bytes(raw, 0x40, (1 << 6 | 1 << 40 | 1).to_bytes(8, "little"))
    info = parse_report(raw).platform_info
    assert info.smt_en and info.reserved == 1 << 6 | 1 << 40


def test_signing_key_none_decodes_but_does_not_verify(milan: SnpSimulator) -> None:
    raw = with_bytes(milan.report().report, 0x48, (7 << 2).to_bytes(4, "little"))
    assert parse_report(raw).signing_key is SigningKey.NONE
    assert SevSnpVerifier().decode(raw)["signing_key"] == "none"


def test_tcb_layouts() -> None:
    tcb = TcbVersion(bootloader=1, tee=2, snp=3, microcode=4, fmc=5)
    assert tcb.encode(TcbLayout.TURIN).to_bytes(8, "little") == bytes([5, 1, 2, 3, 0, 0, 0, 4])
    assert TcbVersion.decode(tcb.encode(TcbLayout.TURIN), TcbLayout.TURIN) == tcb
    milan = TcbVersion(bootloader=1, tee=2, snp=3, microcode=4)
    assert milan.encode(TcbLayout.MILAN_GENOA).to_bytes(8, "little") == bytes([1, 2, 0, 0, 0, 0, 3, 4])
    assert TcbVersion.decode(milan.encode(TcbLayout.MILAN_GENOA), TcbLayout.MILAN_GENOA) == milan
    assert tcb.components() == {"bootloader": 1, "tee": 2, "snp": 3, "microcode": 4, "fmc": 5}
    assert "fmc" not in milan.components()


@pytest.mark.parametrize(
    ("family", "model", "product"),
    [
        (0x19, 0x01, Product.MILAN),
        (0x19, 0x11, Product.GENOA),
        (0x19, 0xA0, Product.GENOA),
        (0x1A, 0x02, Product.TURIN),
        (0x1A, 0x11, Product.TURIN),
        (0x19, 0x30, None),
        (0x1A, 0x50, None),
        (0x17, 0x31, None),
    ],
)
def test_products_from_cpuid(family: int, model: int, product: Product | None) -> None:
    assert product_from_cpuid(family, model) is product


def test_decode_guesses_the_layout_of_a_version_2_report(sims: dict[str, SnpSimulator]) -> None:
    turin, milan = sims["Turin"], sims["Milan"]
    decoded = SevSnpVerifier().decode(turin.report(version=2).report)
    assert decoded["tcb_layout"] == "turin"
    assert decoded["reported_tcb"] == turin.default_tcb().components()
    assert SevSnpVerifier().decode(milan.report(version=2).report)["tcb_layout"] == "milan-genoa"


def test_looks_like(gosevguest: RealReport) -> None:
    verifier = SevSnpVerifier()
    assert verifier.looks_like(gosevguest.report)
    assert not verifier.looks_like(gosevguest.report[:-1])
    assert not verifier.looks_like(with_bytes(gosevguest.report, 0, (9).to_bytes(4, "little")))
