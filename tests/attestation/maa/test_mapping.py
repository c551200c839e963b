"""Claims mapping of verified MAA payloads: SEV-SNP CVM, TDX CVM, vTPM, runtime data, nonce, unknown types."""

from __future__ import annotations

from typing import Any

import pytest

from attestation.claims import SignerChain
from attestation.errors import MalformedEvidence
from attestation.tee.maa.mapping import nonce_bytes, to_claims

SIGNER = SignerChain(subjects=("CN=https://example.attest.azure.net",), root_sha256="00" * 32)
SNP: dict[str, Any] = {
    "x-ms-attestation-type": "sevsnpvm",
    "x-ms-sevsnpvm-launchmeasurement": "ab" * 48,
    "x-ms-sevsnpvm-reportdata": "cd" * 64,
    "x-ms-sevsnpvm-is-debuggable": False,
    "x-ms-sevsnpvm-bootloader-svn": 3,
    "x-ms-sevsnpvm-tee-svn": 0,
    "x-ms-sevsnpvm-snpfw-svn": 8,
    "x-ms-sevsnpvm-microcode-svn": 115,
    "x-ms-sevsnpvm-chipid": "ef" * 64,
}


def test_sev_snp_cvm_at_top_level() -> None:
    claims = to_claims({"iat": 1, **SNP}, SIGNER)
    assert claims.platform == "azure-attestation/sevsnpvm"
    assert claims.measurements == {"measurement": bytes.fromhex("ab" * 48)}
    assert claims.report_data == bytes.fromhex("cd" * 64) and not claims.debug
    assert claims.tcb == {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}
    assert claims.hardware_id == "ef" * 64


def test_azure_vm_guest_token_reads_the_isolation_tee_and_keeps_vtpm_claims() -> None:
    payload = {
        "x-ms-attestation-type": "azurevm",
        "x-ms-azurevm-vmid": "6e1b8b5e-0000-0000-0000-000000000000",
        "x-ms-azurevm-pcrs": [0, 1, 2],
        "x-ms-isolation-tee": {**SNP, "x-ms-sevsnpvm-is-debuggable": True},
        "x-ms-runtime": {"keys": [{"kid": "TpmEphemeralEncryptionKey"}], "user-data": "00ff"},
    }
    claims = to_claims(payload, SIGNER)
    assert claims.platform == "azure-attestation/azurevm" and claims.debug
    assert claims.measurements == {"measurement": bytes.fromhex("ab" * 48)}
    assert claims.hardware_id == "ef" * 64
    assert claims.vendor["x-ms-azurevm-pcrs"] == (0, 1, 2)
    assert claims.vendor["runtime_keys"] == ({"kid": "TpmEphemeralEncryptionKey"},)
    assert claims.vendor["runtime_user_data"] == "00ff"


def test_tdx_cvm_measurements_and_debug_attribute() -> None:
    payload = {
        "x-ms-attestation-type": "tdxvm",
        "tdx_mrtd": "11" * 48,
        **{f"tdx_rtmr{i}": f"{i}{i}" * 48 for i in range(4)},
        "tdx_mrseam": "22" * 48,
        "tdx_report_data": "33" * 64,
        "tdx_td_attributes": "0000000000000000",
    }
    claims = to_claims(payload, SIGNER)
    assert set(claims.measurements) == {"mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "mrseam"}
    assert claims.report_data == bytes.fromhex("33" * 64) and not claims.debug
    assert to_claims({**payload, "tdx_td_attributes": "0100000000000000"}, SIGNER).debug
    assert to_claims({**payload, "dbgstat": "enabled"}, SIGNER).debug
    assert not to_claims({**payload, "dbgstat": "disabled-since-boot"}, SIGNER).debug


def test_unknown_type_verifies_with_no_measurements() -> None:
    claims = to_claims({"x-ms-attestation-type": "vbsenclave", "x-ms-custom": 1}, SIGNER)
    assert claims.measurements == {} and claims.vendor["x-ms-custom"] == 1 and not claims.debug


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        ("00112233", bytes.fromhex("00112233")),
        ("ABcd", b"\xab\xcd"),
        ("hello", b"hello"),
        ("abc", b"abc"),
        (None, None),
    ],
)
def test_nonce_hex_text_is_hex_other_text_is_utf8(claim: str | None, expected: bytes | None) -> None:
    assert nonce_bytes(claim) == expected


@pytest.mark.parametrize("payload", [{"x-ms-attestation-type": "sgx", "x-ms-sgx-mrenclave": "xyz"}, {"nonce": 5}])
def test_malformed_signed_claims_are_typed_errors(payload: dict[str, Any]) -> None:
    with pytest.raises(MalformedEvidence):
        to_claims(payload, SIGNER)
