"""The NVIDIA rows of MANIFEST §4 through :func:`attestation.verify.verify`, and negatives derived from them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import pytest

from attestation.claims import Claims
from attestation.collateral import Collateral
from attestation.errors import BadChain, BadSignature, CollateralMissing, Expired, MalformedEvidence
from attestation.roots import pinned_rim_roots
from attestation.tee.nvidia import MeasurementMismatch, NvidiaGpuVerifier, RimVersionMismatch
from attestation.tee.nvidia.fwid import FwidMismatch
from attestation.tee.nvidia.measurements import DuplicateRim, check_comparisons, compare
from attestation.tee.nvidia.rim import verify_rim
from attestation.tee.nvidia.spdm import parse_spdm_report
from attestation.verify import verify
from tests.attestation.nvidia.conftest import LATE_AT, REAL_AT, RealEvidence, make_device

FWID_2023 = "80e48f4e7c8ff8f2681bc90cfb7018719049cc7e488dd76962fa0bf60a2f56a8a4d1de980f87236158c3b5119c6817f7"
FWID_2025 = "f5c384aebb579217a2c66b17ed0f28e6a9b8d639041acd7b4721cec004f7275494ba94bb5cdfdb3055ee051762b1f75d"
DEVICE_ROOT_SHA256 = "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48"


def run(
    evidence: RealEvidence, *, rims: tuple[bytes, ...] = (), at: datetime | None = REAL_AT, report: bytes | None = None
) -> Claims:
    collateral = Collateral(certificates=evidence.chain, rims=rims)
    return verify(report if report is not None else evidence.report, tee="nvidia-gpu", at=at, collateral=collateral)


def test_2023_report_with_both_rims_passes_in_2024(
    real_2023: RealEvidence, driver_rim: bytes, vbios_rim: bytes
) -> None:
    claims = run(real_2023, rims=(driver_rim, vbios_rim))
    assert claims.platform == "nvidia/GH100"
    assert claims.nonce == bytes.fromhex("4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e")
    assert claims.vendor["driver_version"] == "545.00"
    assert claims.vendor["vbios_version"] == "96.00.5E.00.01"
    assert claims.hardware_id == FWID_2023
    assert claims.vendor["fwid"] == bytes.fromhex(FWID_2023)
    rims = claims.vendor["rims"]
    assert isinstance(rims, dict)
    assert {kind: (rim["version"], rim["matched"]) for kind, rim in rims.items()} == {
        "driver": ("545.00", 21),
        "vbios": ("96.00.5E.00.01", 12),
    }
    assert claims.unchecked == {}
    assert len(claims.measurements) == 64
    assert claims.signer.root_sha256 == DEVICE_ROOT_SHA256
    assert claims.signer.subjects[0].startswith("CN=GH100 A01 GSP FMC LF")
    assert not claims.signer.simulated
    assert claims.vendor["ocsp"] == "unchecked"
    assert claims.signer.revocation == "not checked (no OCSP response)"
    assert claims.debug is False
    assert len(claims.report_data or b"") == 0


def test_rim_summaries_count_every_active_measurement(
    real_2023: RealEvidence, driver_rim: bytes, vbios_rim: bytes
) -> None:
    rims = run(real_2023, rims=(vbios_rim, driver_rim)).vendor["rims"]
    assert isinstance(rims, dict)
    assert (rims["driver"]["compared"], rims["driver"]["matched"]) == (21, 21)
    assert (rims["vbios"]["compared"], rims["vbios"]["matched"]) == (12, 12)
    assert rims["driver"]["id"].startswith("f0d3a263")


def test_2023_report_fails_today_on_rim_signer_expiry(
    real_2023: RealEvidence, driver_rim: bytes, vbios_rim: bytes
) -> None:
    with pytest.raises(Expired, match="HCC RIM L4 Signer"):
        run(real_2023, rims=(driver_rim, vbios_rim), at=LATE_AT)


def test_2023_report_alone_is_valid_today_with_measurements_unchecked(real_2023: RealEvidence) -> None:
    claims = run(real_2023, at=LATE_AT)
    reason = claims.unchecked["nvidia-gpu.measurements"]
    assert "driver RIM (driver 545.00)" in reason
    assert "VBIOS RIM (VBIOS 96.00.5E.00.01)" in reason


def test_one_rim_missing_is_named(real_2023: RealEvidence, driver_rim: bytes) -> None:
    claims = run(real_2023, rims=(driver_rim,))
    reason = claims.unchecked["nvidia-gpu.measurements"]
    assert "VBIOS RIM" in reason
    assert "driver RIM" not in reason
    rims = claims.vendor["rims"]
    assert isinstance(rims, Mapping)
    assert list(rims) == ["driver"]


def test_2025_report_verifies(real_2025: RealEvidence) -> None:
    claims = run(real_2025)
    assert claims.nonce == bytes.fromhex("931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb")
    assert claims.vendor["driver_version"] == "550.90.07"
    assert claims.vendor["vbios_version"] == "96.00.9F.00.01"
    assert claims.hardware_id == FWID_2025
    assert "nvidia-gpu.measurements" in claims.unchecked


def test_2025_claims_agree_with_trustee(real_2025: RealEvidence, vectors: Path) -> None:
    expected = json.loads((vectors / "nvidia-gpu" / "trustee-nvtrust-2025-report.expected-claims.json").read_text())
    claims = run(real_2025)
    config = expected["config"]
    assert claims.vendor["driver_version"] == config["driver_version"]
    assert str(claims.vendor["vbios_version"]).lower() == config["vbios_version"].lower()
    assert claims.hardware_id == config["fwid"]
    for name in ("chip_sku", "project", "project_sku"):
        assert claims.vendor[name] == config[name]
    opaque = claims.vendor["opaque"]
    assert isinstance(opaque, Mapping)
    assert opaque["board_id"].hex() == config["board_id"]
    assert opaque["gpu_info"].hex() == config["gpu_info"]
    assert opaque["cpr_info"].hex() == config["cpr_info"]
    assert opaque["chip_sku_mod"] == config["chip_sku_mod"]
    assert opaque["project_sku_mod"].hex() == config["project_sku_mod"]
    assert opaque["nvdec0_status"] == config["nvdec0_status"]
    assert opaque["protected_pcie_status"] == config["protected_pcie_status"]
    counts = {str(i): n for i, n in enumerate(opaque["msrscnt"], start=1)}
    assert counts == {k: v for k, v in config["measurement_count"].items()}
    measurements = {name.removeprefix("spdm"): value.hex() for name, value in claims.measurements.items()}
    assert measurements == expected["measurements"]


def test_2025_report_with_2023_rims_is_a_measurement_mismatch(
    real_2025: RealEvidence, driver_rim: bytes, vbios_rim: bytes
) -> None:
    with pytest.raises(MeasurementMismatch) as caught:
        run(real_2025, rims=(driver_rim, vbios_rim))
    message = caught.value.message
    assert caught.value.check == "measurements"
    assert "driver RIM 545.00: 15 of 21 active measurements differ" in message
    assert "VBIOS RIM 96.00.5E.00.01: 5 of 12 active measurements differ" in message
    assert "RIM indices 1, 2, 3, 9, 11;" in message
    assert "RIM indices 7, 21, 22, 25, 26, 27, 29, 30, 31, 32, 34, 36, 37, 39, 40;" in message
    assert "the report states 550.90.07" in message


def test_rim_for_another_version_with_equal_measurements_is_a_version_mismatch(
    real_2023: RealEvidence, driver_rim: bytes
) -> None:
    """A RIM whose measurements all match but whose version is not the report's is still refused."""
    rim = verify_rim(driver_rim, at=REAL_AT, roots=pinned_rim_roots(), allow_simulator=False)
    blocks = parse_spdm_report(real_2023.report).blocks
    check_comparisons([compare(rim, blocks, "545.00")])
    with pytest.raises(RimVersionMismatch, match=r"for 545\.00, the report states 545\.01"):
        check_comparisons([compare(rim, blocks, "545.01")])


def test_two_driver_rims_are_refused(real_2023: RealEvidence, driver_rim: bytes) -> None:
    with pytest.raises(DuplicateRim):
        run(real_2023, rims=(driver_rim, driver_rim))


def test_trailing_bytes_after_the_signature_are_accepted(real_2023: RealEvidence) -> None:
    claims = run(real_2023, report=real_2023.report + b"\x00" * 7 + b"trailer")
    assert claims.vendor["trailing_bytes"] == 14


def test_truncated_report_is_malformed(real_2023: RealEvidence) -> None:
    with pytest.raises(MalformedEvidence, match="signature"):
        run(real_2023, report=real_2023.report[:-1])


def test_flipped_measurement_breaks_the_signature(real_2023: RealEvidence) -> None:
    report = bytearray(real_2023.report)
    report[37 + 8 + 7 + 10] ^= 1  # inside the first block's value
    with pytest.raises(BadSignature):
        run(real_2023, report=bytes(report))


def test_report_with_another_devices_chain_fails_signature(real_2023: RealEvidence, real_2025: RealEvidence) -> None:
    with pytest.raises((BadSignature, FwidMismatch)):
        verify(real_2025.report, tee="nvidia-gpu", at=REAL_AT, collateral=Collateral(certificates=real_2023.chain))


def test_reordered_chain_is_a_bad_chain(real_2023: RealEvidence) -> None:
    chain = real_2023.chain
    reordered = (chain[0], chain[2], chain[1], *chain[3:])
    with pytest.raises(BadChain, match="not issued by the next one"):
        verify(real_2023.report, tee="nvidia-gpu", at=REAL_AT, collateral=Collateral(certificates=reordered))


def test_root_first_chain_is_a_bad_chain(real_2023: RealEvidence) -> None:
    with pytest.raises(BadChain):
        verify(
            real_2023.report,
            tee="nvidia-gpu",
            at=REAL_AT,
            collateral=Collateral(certificates=tuple(reversed(real_2023.chain))),
        )


def test_wrong_root_is_a_bad_chain(real_2023: RealEvidence) -> None:
    other = make_device(organization="Someone Else")
    with pytest.raises(BadChain, match="trusted root"):
        verify(
            real_2023.report,
            tee="nvidia-gpu",
            at=REAL_AT,
            roots=[other.root.cert],
            collateral=Collateral(certificates=real_2023.chain),
        )


def test_rim_signed_under_the_device_root_is_refused(real_2023: RealEvidence, driver_rim: bytes) -> None:
    """Device identity roots never anchor RIM signer chains."""
    verifier = NvidiaGpuVerifier(rim_roots=[real_2023.chain[-1]])
    with pytest.raises(BadChain):
        verify(
            real_2023.report,
            tee="nvidia-gpu",
            at=REAL_AT,
            collateral=Collateral(certificates=real_2023.chain, rims=(driver_rim,)),
            verifier=verifier,
        )


def test_missing_chain_is_collateral_missing(real_2023: RealEvidence) -> None:
    with pytest.raises(CollateralMissing):
        verify(real_2023.report, tee="nvidia-gpu", at=REAL_AT)


def test_no_time_is_collateral_missing(real_2023: RealEvidence) -> None:
    with pytest.raises(CollateralMissing, match="state no time"):
        run(real_2023, at=None)


def test_decode_and_looks_like(real_2023: RealEvidence) -> None:
    verifier = NvidiaGpuVerifier()
    decoded = verifier.decode(real_2023.report)
    assert decoded["nonce"] == bytes.fromhex("4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e")
    assert verifier.looks_like(real_2023.report)
    assert not verifier.looks_like(b"\x11\xe0")
    assert not verifier.looks_like(b"{" + real_2023.report)


def test_claims_serialize_to_json(real_2023: RealEvidence, driver_rim: bytes, vbios_rim: bytes) -> None:
    data = run(real_2023, rims=(driver_rim, vbios_rim)).to_dict()
    json.dumps(data)
    assert data["vendor"]["opaque"]["driver_version"] == "545.00"
