"""The Azure vTPM path against a fake tpm2-tools runner that keeps NV state and answers with HCL reports."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import pytest

from attestation import verify
from attestation.collateral import Collateral
from attestation.simulator.snp import SnpSimulator
from enclave.attesters.azure_vtpm import (
    HCL_SIGNATURE,
    AzureVtpmAttester,
    CommandResult,
    parse_hcl_report,
    run_command,
)
from enclave.errors import AttestationFailed, AttesterUnavailable
from tests.enclave.attesters.conftest import AT

REPORT_DATA = bytes(range(1, 65))
NONCE = b"\x03" * 32


def hcl_report(simulator: SnpSimulator, claims: bytes, *, report_type: int = 2, hash_type: int = 1) -> bytes:
    """An HCL report as the paravisor writes it: header, SNP report, IGVM request data, runtime claims."""
    snp = simulator.report(report_data=hashlib.sha256(claims).digest() + bytes(32)).report
    header = b"".join(v.to_bytes(4, "little") for v in (HCL_SIGNATURE, 2, 1236 + len(claims), 2, 0, 0, 0, 0))
    request = b"".join(v.to_bytes(4, "little") for v in (20 + len(claims), 1, report_type, hash_type, len(claims)))
    return header + snp + request + claims + bytes(64)  # the NV index is larger than its contents


def runtime_claims(user_data: bytes) -> bytes:
    document = {
        "keys": [{"kid": "HCLAkPub", "kty": "RSA"}],
        "vm-configuration": {},
        "user-data": user_data.hex().upper(),
    }
    return json.dumps(document).encode()


class FakeTpmTools:
    """tpm2_nvreadpublic / nvdefine / nvwrite / nvread over an in-memory NV store, as on an Azure CVM."""

    def __init__(self, simulator: SnpSimulator, *, tamper: bool = False, fail: str | None = None) -> None:
        self.simulator = simulator
        self.tamper = tamper
        self.fail = fail
        self.defined: dict[int, bytes] = {}
        self.commands: list[list[str]] = []

    def __call__(self, argv: Sequence[str], stdin: bytes | None) -> CommandResult:
        argv = list(argv)
        self.commands.append(argv)
        program, index = argv[0], int(argv[-1], 16)
        if program == self.fail:
            return CommandResult(1, b"", b"ERROR: Esys_NV_Read(0x14B) - tpm:handle(1):the handle is not correct\n")
        if program == "tpm2_nvreadpublic":
            return CommandResult(0 if index in self.defined else 1, b"", b"")
        if program == "tpm2_nvdefine":
            assert argv[argv.index("-s") + 1] == "64"
            self.defined[index] = bytes(64)
            return CommandResult(0, b"", b"")
        if program == "tpm2_nvwrite":
            assert argv[argv.index("-i") + 1] == "-" and index in self.defined and stdin is not None
            self.defined[index] = stdin
            return CommandResult(0, b"", b"")
        if program == "tpm2_nvread":
            assert index == 0x01400001
            user = self.defined.get(0x01400002, bytes(64))
            claims = runtime_claims(bytes(64) if self.tamper else user)
            return CommandResult(0, hcl_report(self.simulator, claims), b"")
        raise AssertionError(argv)


def test_collect_binds_report_data_through_runtime_claims(snp_simulator: SnpSimulator) -> None:
    tools = FakeTpmTools(snp_simulator)
    evidence = AzureVtpmAttester(runner=tools).collect(REPORT_DATA)
    assert [command[0] for command in tools.commands] == [
        "tpm2_nvreadpublic",
        "tpm2_nvdefine",
        "tpm2_nvwrite",
        "tpm2_nvread",
    ]
    assert evidence.user_data == REPORT_DATA
    claims = verify(
        evidence.snp_report,
        tee="sev-snp",
        at=AT,
        roots=[snp_simulator.ark],
        collateral=Collateral(certificates=snp_simulator.chain(), signing_cert=snp_simulator.report().signing_cert),
        unsafe_allow_simulator_roots=True,
    )
    assert claims.report_data == hashlib.sha256(evidence.runtime_claims).digest() + bytes(32)
    # A second round finds the index defined and does not define it again.
    AzureVtpmAttester(runner=tools).collect(REPORT_DATA)
    assert [command[0] for command in tools.commands[4:]] == ["tpm2_nvreadpublic", "tpm2_nvwrite", "tpm2_nvread"]


def test_attest_refuses_with_what_is_missing(snp_simulator: SnpSimulator) -> None:
    tools = FakeTpmTools(snp_simulator)
    with pytest.raises(AttesterUnavailable, match="runtime claims") as raised:
        AzureVtpmAttester(runner=tools).attest(REPORT_DATA, NONCE)
    assert raised.value.exit_code == 3
    assert tools.commands == []


def test_stale_user_data_is_refused(snp_simulator: SnpSimulator) -> None:
    with pytest.raises(AttestationFailed, match="not the report data just written"):
        AzureVtpmAttester(runner=FakeTpmTools(snp_simulator, tamper=True)).collect(REPORT_DATA)


def test_tpm_command_failure(snp_simulator: SnpSimulator) -> None:
    with pytest.raises(AttestationFailed, match=r"tpm2_nvread failed with exit code 1: .*handle is not correct"):
        AzureVtpmAttester(runner=FakeTpmTools(snp_simulator, fail="tpm2_nvread")).collect(REPORT_DATA)


def test_claims_not_matching_report_data_hash(snp_simulator: SnpSimulator) -> None:
    report = bytearray(hcl_report(snp_simulator, runtime_claims(REPORT_DATA)))
    report[1236 + 5] ^= 1  # edit the runtime claims after the hardware signed their hash
    with pytest.raises(AttestationFailed, match="not SHA-256 of the HCL runtime claims"):
        parse_hcl_report(bytes(report))


@pytest.mark.parametrize(
    ("mutate", "error", "message"),
    [
        (lambda r: b"XXXX" + r[4:], AttestationFailed, "HCLA signature"),
        (lambda r: r[:1000], AttestationFailed, "shorter than its fixed part"),
        (lambda r: r[:1300], AttestationFailed, "truncated"),
    ],
)
def test_malformed_hcl_reports(snp_simulator: SnpSimulator, mutate: object, error: type, message: str) -> None:
    report = hcl_report(snp_simulator, runtime_claims(REPORT_DATA))
    with pytest.raises(error, match=message):
        parse_hcl_report(mutate(report))  # type: ignore[operator]


def test_tdx_and_hash_types(snp_simulator: SnpSimulator) -> None:
    with pytest.raises(AttesterUnavailable, match="TDX"):
        parse_hcl_report(hcl_report(snp_simulator, runtime_claims(REPORT_DATA), report_type=4))
    with pytest.raises(AttestationFailed, match="hash type"):
        parse_hcl_report(hcl_report(snp_simulator, runtime_claims(REPORT_DATA), hash_type=2))


def test_claims_without_user_data(snp_simulator: SnpSimulator) -> None:
    with pytest.raises(AttestationFailed, match="user-data"):
        parse_hcl_report(hcl_report(snp_simulator, b'{"keys": []}'))


def test_missing_tpm2_tools() -> None:
    with pytest.raises(AttesterUnavailable, match="not installed"):
        run_command(["ccdeploy-no-such-tpm2-tool"], None)


def test_real_runner_passes_stdin() -> None:
    result = run_command(["cat"], b"payload")
    assert (result.returncode, result.stdout) == (0, b"payload")
