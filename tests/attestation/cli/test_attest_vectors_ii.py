"""``ccdeploy attest verify`` on every TDX, SGX, MAA and NVIDIA row of ../shared/vectors/MANIFEST.md (§2, §4, §5).

Each row is run through the CLI at the time the manifest states, with the verdict, exit code and key claims it
states; the JSON shape is the contract of ``attest verify --json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ccdeploy._cli import main
from tests.attestation.cli.test_attest_vectors import check_shape

TDX_V4_T = "2025-07-19T10:00:34Z"
TDX_V4_STALE = "2025-07-19T10:00:36Z"
TDX_V5_T = "2026-03-20T10:41:14Z"
SGX_T = "2025-07-19T10:01:17Z"
MAA_IAT = "2022-05-31T22:47:56Z"
MAA_AFTER_EXP = "2022-06-01T06:49:00Z"
NVIDIA_RIM_T = "2024-06-01T00:00:00Z"
TODAY = "2026-11-22T00:00:00Z"

MRTD_V4 = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
RTMR0_V4 = "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0"
REPORT_DATA_V4 = (
    "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9"
    "eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20"
)
MRENCLAVE_SGX = "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"
MRSIGNER_SGX = "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6"
MAA_MRENCLAVE = "292a1f4b519e46627eb2478a3d9851405653c5b4b0a6925de843834d9216850e"
MAA_MRSIGNER = "4aea5f9a0ed04b11f889aadfe6a1d376213a29a95a85ce7337ae6f7fece6610c"
MAA_PROVIDERS = {
    "sharedwus": "https://sharedwus.wus.attest.azure.net",
    "isolated": "https://cplarryoattestationiso.wus.attest.azure.net",
    "aad": "https://cplarryoattestationaad.wus.attest.azure.net",
}
GPU_NONCE_2023 = "4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e"
GPU_FWID_2023 = "80e48f4e7c8ff8f2681bc90cfb7018719049cc7e488dd76962fa0bf60a2f56a8a4d1de980f87236158c3b5119c6817f7"
GPU_FWID_2025 = "f5c384aebb579217a2c66b17ed0f28e6a9b8d639041acd7b4721cec004f7275494ba94bb5cdfdb3055ee051762b1f75d"


def attest(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict[str, Any]]:
    code = main(["attest", "verify", *map(str, args), "--json"])
    out, _err = capsys.readouterr()
    doc = json.loads(out)
    check_shape(doc)
    return code, doc


def write_reference(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "reference.yaml"
    path.write_text(text)
    return path


# --- Intel TDX and SGX (MANIFEST §5) ------------------------------------------------------------------------------


def tdx(vectors: Path, name: str) -> tuple[Path, Path]:
    return vectors / f"intel-tdx/dcapqvl-{name}-quote.bin", vectors / f"intel-tdx/dcapqvl-{name}-collateral.json"


def test_tdx_v4_is_up_to_date_at_its_time(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quote, collateral = tdx(vectors, "tdx-v4")
    code, doc = attest(capsys, quote, "--type", "tdx", "--collateral", collateral, "--at", TDX_V4_T, "--offline")
    assert (code, doc["verdict"], doc["error"]) == (0, "verified", None), doc["error"]
    claims = doc["claims"]
    assert claims["tee"] == "tdx"
    assert claims["measurements"]["mrtd"] == MRTD_V4
    assert claims["measurements"]["rtmr0"] == RTMR0_V4
    assert claims["report_data"] == REPORT_DATA_V4
    assert claims["vendor"]["fmspc"] == "b0c06f000000"
    assert claims["vendor"]["pce_svn"] == 11
    assert claims["vendor"]["tcb_status"] == "UpToDate"
    assert claims["vendor"]["advisory_ids"] == []
    assert claims["vendor"]["qe_tcb_status"] == "UpToDate"
    assert claims["vendor"]["tdx_module_tcb_status"] == "UpToDate"
    assert claims["debug"] is False
    assert {"name": "tdx.tcb-status", "ok": True, "detail": "TCB status UpToDate"} in doc["checks"]


def test_tdx_v4_collateral_is_stale_two_seconds_later(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quote, collateral = tdx(vectors, "tdx-v4")
    code, doc = attest(capsys, quote, "--type", "tdx", "--collateral", collateral, "--at", TDX_V4_STALE, "--offline")
    assert (code, doc["verdict"], doc["error"]["type"]) == (1, "invalid", "Expired")


def test_tdx_v4_without_collateral_could_not_be_checked(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quote, _ = tdx(vectors, "tdx-v4")
    code, doc = attest(capsys, quote, "--type", "tdx", "--at", TDX_V4_T, "--offline")
    assert (code, doc["verdict"], doc["error"]["type"]) == (3, "unverifiable", "CollateralMissing")
    assert doc["claims"]["unchecked"].keys() == {"tdx.collateral"}
    assert doc["claims"]["measurements"]["mrtd"] == MRTD_V4  # the quote itself was verified


def test_tdx_v4_without_collateral_is_accepted_when_waived(
    vectors: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    quote, _ = tdx(vectors, "tdx-v4")
    reference = write_reference(tmp_path, f"tdx: {{mrtd: '{MRTD_V4}'}}\nwaive: [tdx.collateral]\n")
    code, doc = attest(capsys, quote, "--type", "tdx", "--at", TDX_V4_T, "--offline", "--reference", reference)
    assert (code, doc["verdict"]) == (0, "verified"), doc["error"]
    assert any(c["name"] == "tdx.collateral" and c["ok"] and "waived" in c["detail"] for c in doc["checks"])


def test_tdx_v4_through_raw_pcs_responses(vectors: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    quote, collateral = tdx(vectors, "tdx-v4")
    qvl = json.loads(collateral.read_text())
    files = {
        "--tcb-info": '{"tcbInfo":' + qvl["tcb_info"] + ',"signature":"' + qvl["tcb_info_signature"] + '"}',
        "--qe-identity": '{"enclaveIdentity":'
        + qvl["qe_identity"]
        + ',"signature":"'
        + qvl["qe_identity_signature"]
        + '"}',
        "--tcb-issuer-chain": qvl["tcb_info_issuer_chain"],
        "--qe-identity-issuer-chain": qvl["qe_identity_issuer_chain"],
        "--pck-crl-issuer-chain": qvl["pck_crl_issuer_chain"],
    }
    args: list[str | Path] = []
    for option, text in files.items():
        path = tmp_path / option.strip("-")
        path.write_text(text)
        args += [option, path]
    for option, key in (("--pck-crl", "pck_crl"), ("--root-ca-crl", "root_ca_crl")):
        path = tmp_path / key
        path.write_bytes(bytes.fromhex(qvl[key]))
        args += [option, path]
    code, doc = attest(capsys, quote, "--type", "tdx", *args, "--at", TDX_V4_T, "--offline")
    assert (code, doc["verdict"]) == (0, "verified"), doc["error"]
    assert doc["claims"]["vendor"]["tcb_status"] == "UpToDate"


def test_incomplete_pcs_collateral_is_a_usage_error(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quote, collateral = tdx(vectors, "tdx-v4")
    code = main(["attest", "verify", str(quote), "--type", "tdx", "--tcb-info", str(collateral), "--offline"])
    _out, err = capsys.readouterr()
    assert code == 2 and "--qe-identity" in err


def test_tdx_v5_has_no_matching_tcb_level(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quote, collateral = tdx(vectors, "tdx-v5-nomatch")
    code, doc = attest(capsys, quote, "--type", "tdx", "--collateral", collateral, "--at", TDX_V5_T, "--offline")
    assert (code, doc["verdict"]) == (1, "invalid")
    assert "No matching TCB level found" in doc["error"]["message"]


def test_sgx_quote_needs_its_advisories_named(
    vectors: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    quote, collateral = tdx(vectors, "sgx-v3")
    base: list[str | Path] = [quote, "--type", "sgx", "--collateral", collateral, "--at", SGX_T, "--offline"]
    code, doc = attest(capsys, *base)
    assert (code, doc["verdict"], doc["error"]["type"]) == (1, "invalid", "ReferenceValueViolation")
    vendor = doc["claims"]["vendor"]
    assert vendor["tcb_status"] == "ConfigurationAndSWHardeningNeeded"
    assert vendor["advisory_ids"] == ["INTEL-SA-00289", "INTEL-SA-00615"]
    assert vendor["qe_tcb_status"] == "UpToDate"
    assert doc["claims"]["measurements"] == {"mrenclave": MRENCLAVE_SGX, "mrsigner": MRSIGNER_SGX}
    assert bytes.fromhex(doc["claims"]["report_data"]).rstrip(b"\0") == b"Hello, world!"

    one = write_reference(
        tmp_path, "sgx:\n  tcb: {statuses: [ConfigurationAndSWHardeningNeeded], advisories: [INTEL-SA-00289]}\n"
    )
    code, doc = attest(capsys, *base, "--reference", one)
    assert code == 1 and "INTEL-SA-00615" in doc["error"]["message"]

    both = write_reference(
        tmp_path,
        f"sgx:\n  mrenclave: '{MRENCLAVE_SGX}'\n"
        "  tcb: {statuses: [ConfigurationAndSWHardeningNeeded], advisories: [INTEL-SA-00289, INTEL-SA-00615]}\n",
    )
    code, doc = attest(capsys, *base, "--reference", both)
    assert (code, doc["verdict"]) == (0, "verified"), doc["error"]


def test_a_tdx_quote_is_not_an_sgx_quote(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quote, collateral = tdx(vectors, "tdx-v4")
    code, doc = attest(capsys, quote, "--type", "sgx", "--collateral", collateral, "--at", TDX_V4_T, "--offline")
    assert (code, doc["error"]["type"]) == (1, "MalformedEvidence")


# --- Azure Attestation (MANIFEST §2) ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MAA_PROVIDERS))
def test_maa_token_is_valid_at_iat_but_debuggable(vectors: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    stem = vectors / f"azure-maa/azsdkcpp-sgx-{name}-2022-05-31"
    base: list[str | Path] = [
        Path(f"{stem}.jwt"), "--type", "maa", "--jwks", Path(f"{stem}.jwks.json"), "--issuer", MAA_PROVIDERS[name],
        "--at", MAA_IAT,
    ]  # fmt: skip
    code, doc = attest(capsys, *base)
    assert (code, doc["error"]["type"]) == (1, "DebugNotAllowed")
    code, doc = attest(capsys, *base, "--allow-debug")
    assert (code, doc["verdict"]) == (0, "verified"), doc["error"]
    claims = doc["claims"]
    assert claims["measurements"] == {"mrenclave": MAA_MRENCLAVE, "mrsigner": MAA_MRSIGNER}
    assert claims["debug"] is True
    assert claims["vendor"]["x-ms-attestation-type"] == "sgx"
    assert claims["vendor"]["x-ms-policy-hash"] == "bROrN897ZfWmWY2V0FLUlu3uwk5xatGnKYHn3zBbSlw"
    assert claims["issued_at"] == MAA_IAT


def test_maa_token_is_invalid_after_exp(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stem = vectors / "azure-maa/azsdkcpp-sgx-sharedwus-2022-05-31"
    code, doc = attest(
        capsys, Path(f"{stem}.jwt"), "--type", "maa", "--jwks", Path(f"{stem}.jwks.json"),
        "--issuer", MAA_PROVIDERS["sharedwus"], "--at", MAA_AFTER_EXP, "--allow-debug",
    )  # fmt: skip
    assert (code, doc["error"]["type"]) == (1, "Expired")


def test_maa_token_of_another_provider_is_rejected_though_its_key_verifies(
    vectors: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = vectors / "azure-maa/azsdkcpp-sgx-sharedwus-2022-05-31.jwt"
    jwks = vectors / "azure-maa/azsdkcpp-sgx-isolated-2022-05-31.jwks.json"  # the same regional key signs both
    code, doc = attest(
        capsys, token, "--type", "maa", "--jwks", jwks, "--issuer", MAA_PROVIDERS["isolated"], "--at", MAA_IAT,
        "--allow-debug",
    )  # fmt: skip
    assert (code, doc["verdict"]) == (1, "invalid")
    assert doc["error"]["type"] in ("IssuerMismatch", "KeySetUrlMismatch")
    assert "another provider" in doc["error"]["message"]


def test_maa_without_jwks_could_not_be_checked(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = vectors / "azure-maa/azsdkcpp-sgx-sharedwus-2022-05-31.jwt"
    code, doc = attest(
        capsys, token, "--type", "maa", "--issuer", MAA_PROVIDERS["sharedwus"], "--at", MAA_IAT, "--offline"
    )
    assert (code, doc["verdict"], doc["error"]["type"]) == (3, "unverifiable", "CollateralMissing")


# --- NVIDIA H100 (MANIFEST §4) ------------------------------------------------------------------------------------


def nvidia(vectors: Path) -> dict[str, Path]:
    base = vectors / "nvidia-gpu"
    return {
        "report23": base / "nvtrust-2023-h100-report.hex",
        "chain23": base / "nvtrust-2023-h100-ak-cert-chain.pem",
        "report25": base / "nvtrust-2025-h100-report.hex",
        "chain25": base / "nvtrust-2025-h100-cert-chain.pem",
        "driver": base / "nvtrust-driver-rim-545.00-test-no-gpu.swidtag",
        "vbios": base / "nvtrust-vbios-rim-96.00.5E.00.01-test-no-gpu.swidtag",
    }


def test_nvidia_2023_report_passes_with_its_rims_in_2024(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    v = nvidia(vectors)
    code, doc = attest(
        capsys, v["report23"], "--type", "nvidia-gpu", "--chain", v["chain23"], "--rim", v["driver"],
        "--rim", v["vbios"], "--at", NVIDIA_RIM_T, "--nonce", GPU_NONCE_2023,
    )  # fmt: skip
    assert (code, doc["verdict"]) == (0, "verified"), doc["error"]
    claims = doc["claims"]
    assert claims["nonce"] == GPU_NONCE_2023
    assert claims["vendor"]["driver_version"] == "545.00"
    assert claims["vendor"]["vbios_version"].upper() == "96.00.5E.00.01"
    assert claims["vendor"]["fwid"] == GPU_FWID_2023
    assert claims["vendor"]["ocsp"] == "unchecked"


def test_nvidia_2023_rims_have_expired_today(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    v = nvidia(vectors)
    code, doc = attest(
        capsys, v["report23"], "--type", "nvidia-gpu", "--chain", v["chain23"], "--rim", v["driver"],
        "--rim", v["vbios"], "--at", TODAY,
    )  # fmt: skip
    assert (code, doc["verdict"], doc["error"]["type"]) == (1, "invalid", "Expired")


def test_nvidia_2025_report_with_2023_rims_names_the_differing_indices(
    vectors: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v = nvidia(vectors)
    code, doc = attest(
        capsys, v["report25"], "--type", "nvidia-gpu", "--chain", v["chain25"], "--rim", v["driver"],
        "--rim", v["vbios"], "--at", NVIDIA_RIM_T,
    )  # fmt: skip
    assert (code, doc["verdict"], doc["error"]["type"]) == (1, "invalid", "MeasurementMismatch")
    assert "indices" in doc["error"]["message"] or "index" in doc["error"]["message"]


def test_nvidia_2025_report_verifies_but_measurements_are_unchecked_without_rims(
    vectors: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v = nvidia(vectors)
    code, doc = attest(capsys, v["report25"], "--type", "nvidia-gpu", "--chain", v["chain25"], "--at", TODAY)
    assert (code, doc["verdict"], doc["error"]["type"]) == (3, "unverifiable", "CollateralMissing")
    claims = doc["claims"]
    assert claims["vendor"]["fwid"] == GPU_FWID_2025
    assert claims["vendor"]["driver_version"] == "550.90.07"
    assert "nvidia-gpu.measurements" in claims["unchecked"]
