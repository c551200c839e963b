"""The SPDM parser and opaque decoder on real and built reports, plus fuzzing (typed errors only)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestation.claims import Claims
from attestation.collateral import Collateral
from attestation.errors import (
    AttestationError,
    BadChain,
    CertificateMismatch,
    MalformedEvidence,
    UntrustedSimulatorRoot,
)
from attestation.tee.nvidia import NvidiaGpuVerifier, SpdmMalformed, parse_spdm_report
from attestation.tee.nvidia.fwid import FwidMismatch
from attestation.tee.nvidia.opaque import OpaqueDataMalformed, parse_opaque_data, vbios_version
from attestation.verify import verify
from tests.attestation.nvidia.conftest import (
    GEN_AT,
    REAL_AT,
    GeneratedDevice,
    RealEvidence,
    build_report,
    dice_extension,
    issue,
    make_device,
    opaque_field,
)

_FIXTURES = [HealthCheck.function_scoped_fixture]


@pytest.fixture(scope="module")
def device() -> GeneratedDevice:
    return make_device()


def test_real_report_layout(real_2023: RealEvidence) -> None:
    report = parse_spdm_report(real_2023.report)
    assert len(report.blocks) == 64
    assert all(len(block.value) == 48 and block.value_type == 1 for block in report.blocks.values())
    assert sorted(report.blocks) == list(range(1, 65))
    assert len(report.signature) == 96
    assert report.trailing == b""
    assert report.signed == real_2023.report[:-96]
    assert report.opaque.text("driver_version") == "545.00"
    assert report.opaque.fwid is None  # the 2023 driver did not report the FWID; the certificate carries it


def test_vbios_version_format() -> None:
    assert vbios_version(bytes.fromhex("005e009601000000")) == "96.00.5E.00.01"
    with pytest.raises(ValueError):
        vbios_version(b"\x00" * 7)


@pytest.mark.parametrize("cut", [0, 1, 4, 36, 37, 40, 45, 100, 3565, 3600, 3952, 4000, 4048])
def test_every_truncation_is_malformed_with_an_offset(real_2023: RealEvidence, cut: int) -> None:
    with pytest.raises(SpdmMalformed, match="offset"):
        parse_spdm_report(real_2023.report[:cut])


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (0, 0x12, "SPDM version 0x12"),
        (1, 0xE1, "GET_MEASUREMENTS"),
        (2, 0x00, "signed response"),
        (37, 0x10, "differs from the request"),
        (38, 0x61, "MEASUREMENTS"),
        (41, 63, "take"),
        (38 + 7 + 1, 0x00, "DMTF format"),
    ],
)
def test_header_faults(real_2023: RealEvidence, offset: int, value: int, message: str) -> None:
    data = bytearray(real_2023.report)
    data[offset] = value
    with pytest.raises(SpdmMalformed, match=message):
        parse_spdm_report(bytes(data))


def test_block_size_disagreeing_with_dmtf_size(device: GeneratedDevice) -> None:
    data = bytearray(build_report(device.leaf.key))
    data[37 + 8 + 5] = 47  # DMTF value size of block 1
    with pytest.raises(SpdmMalformed, match="does not match block size"):
        parse_spdm_report(bytes(data))


def test_repeated_block_index(device: GeneratedDevice) -> None:
    data = bytearray(build_report(device.leaf.key))
    data[37 + 8 + 55] = 1  # second block claims index 1
    with pytest.raises(SpdmMalformed, match="repeated"):
        parse_spdm_report(bytes(data))


def test_opaque_faults() -> None:
    with pytest.raises(OpaqueDataMalformed, match="truncated field header"):
        parse_opaque_data(b"\x03\x00\x05")
    with pytest.raises(OpaqueDataMalformed, match="past the end"):
        parse_opaque_data(opaque_field(3, b"545.00")[:-1])
    with pytest.raises(OpaqueDataMalformed, match="repeated"):
        parse_opaque_data(opaque_field(3, b"1.0") * 2)
    with pytest.raises(OpaqueDataMalformed, match="feature flag"):
        parse_opaque_data(opaque_field(36, b"\x07\x00\x00\x00"))
    with pytest.raises(OpaqueDataMalformed, match="u32"):
        parse_opaque_data(opaque_field(12, b"\x00" * 5))


def test_opaque_decodes_known_and_keeps_unknown_fields() -> None:
    data = (
        opaque_field(3, b"550.90.07\x00")
        + opaque_field(36, b"\x01\x00\x00\x00")
        + opaque_field(35, b"GB100\x00\x00")
        + opaque_field(34, b"\x01\x00\x00\x00")
        + opaque_field(22, b"\x01" * 16)
        + opaque_field(99, b"\xaa")
    )
    fields = parse_opaque_data(data).fields
    assert fields["driver_version"] == "550.90.07"
    assert fields["feature_flag"] == "MPT"
    assert fields["chip_info"] == "GB100"
    assert fields["opaque_data_version"] == 1
    assert fields["switch_pdi"] == (b"\x01" * 8, b"\x01" * 8)
    assert fields["field_99"] == b"\xaa"


# --- built reports through the verifier ----------------------------------------------------------------------------


def run(device: GeneratedDevice, report: bytes, *, allow_simulator: bool = True) -> Claims:
    return verify(
        report,
        tee="nvidia-gpu",
        at=GEN_AT,
        roots=[device.root.cert],
        collateral=Collateral(certificates=device.chain),
        unsafe_allow_simulator_roots=allow_simulator,
    )


def test_simulator_device_root_is_refused_unless_allowed(device: GeneratedDevice) -> None:
    report = build_report(device.leaf.key, opaque=opaque_field(20, device.fwid))
    with pytest.raises(UntrustedSimulatorRoot):
        run(device, report, allow_simulator=False)
    claims = run(device, report)
    assert claims.signer.simulated
    assert claims.hardware_id == device.fwid.hex()
    assert claims.platform == "nvidia/GH100"


def test_report_fwid_must_match_the_certificate(device: GeneratedDevice) -> None:
    report = build_report(device.leaf.key, opaque=opaque_field(20, b"\xee" * 48))
    with pytest.raises(FwidMismatch):
        run(device, report)


def test_leaf_without_dice_extension_is_refused() -> None:
    root = issue("Root", ca=True)
    leaf = issue("Leaf", issuer=root)
    with pytest.raises(CertificateMismatch, match="DICE"):
        verify(
            build_report(leaf.key),
            tee="nvidia-gpu",
            at=GEN_AT,
            roots=[root.cert],
            collateral=Collateral(certificates=(leaf.cert,)),
        )


def test_non_ca_intermediate_is_refused(device: GeneratedDevice) -> None:
    not_a_ca = issue("Not a CA", issuer=device.root)
    leaf = issue("GH100 leaf", issuer=not_a_ca, extensions=[dice_extension(device.fwid)])
    with pytest.raises(BadChain, match="not a CA"):
        verify(
            build_report(leaf.key),
            tee="nvidia-gpu",
            at=GEN_AT,
            roots=[device.root.cert],
            collateral=Collateral(certificates=(leaf.cert, not_a_ca.cert)),
            unsafe_allow_simulator_roots=True,
        )


# --- fuzzing -------------------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_parser_on_arbitrary_bytes(data: bytes) -> None:
    with contextlib.suppress(MalformedEvidence):
        parse_spdm_report(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=37, max_size=37), st.binary(max_size=300))
def test_parser_on_plausible_headers(request: bytes, rest: bytes) -> None:
    data = b"\x11\xe0\x01\xff" + request[4:] + b"\x11\x60" + rest
    with contextlib.suppress(MalformedEvidence):
        parse_spdm_report(data)


@settings(max_examples=200, deadline=None, suppress_health_check=_FIXTURES)
@given(changes=st.lists(st.tuples(st.integers(0, 4048), st.integers(0, 255)), min_size=1, max_size=4))
def test_verifier_on_mutated_real_reports(real_2023: RealEvidence, changes: list[tuple[int, int]]) -> None:
    data = bytearray(real_2023.report)
    for offset, value in changes:
        data[offset] = value
    verifier = NvidiaGpuVerifier()
    with contextlib.suppress(AttestationError):
        verifier.decode(bytes(data))
    with contextlib.suppress(AttestationError):
        verify(bytes(data), tee="nvidia-gpu", at=REAL_AT, collateral=Collateral(certificates=real_2023.chain))


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_opaque_decoder_on_arbitrary_bytes(data: bytes) -> None:
    with contextlib.suppress(OpaqueDataMalformed):
        parse_opaque_data(data)
