"""Azure confidential VMs (SEV-SNP behind the paravisor): the HCL report from the vTPM.

On Azure CVMs the guest does not own VMPL0, so ``/dev/sev-guest`` is not usable; the paravisor (HCL) obtains the
SNP report and exposes it through the vTPM. The guest writes 64 bytes of user data to NV index ``0x01400002``; the
HCL then refreshes the *HCL report* at NV index ``0x01400001``. Layout implemented here (little-endian; sources:
Microsoft's "Guest attestation for confidential VMs: attestation report format" and the ``az-cvm-vtpm`` crate's
``hcl`` module):

====================  ======  =============================================================================
offset                size    field
====================  ======  =============================================================================
0                     32      header: signature ``"HCLA"`` (0x414C4348), version, report_size, request_type,
                              status, 3 reserved u32
32                    1184    the hardware report (SEV-SNP ATTESTATION_REPORT; a TDX TD report is padded)
1216                  20      IGVM request data: data_size, version, report_type (2 = SNP, 4 = TDX),
                              report_data_hash_type (1 = SHA-256), variable_data_size
1236                  n       variable data: the *runtime claims* JSON (vTPM keys ``HCLAkPub``/``HCLEkPub``,
                              ``vm-configuration``, and ``user-data``: the 64 written bytes as hex)
====================  ======  =============================================================================

The SNP report's REPORT_DATA is ``SHA-256(runtime claims) || 32 zero bytes``, so our 64-byte report data is bound
only *indirectly*: through the ``user-data`` runtime claim whose hash the hardware signs. :meth:`collect` checks
both links. The broker's binding rule compares the verified REPORT_DATA itself with ``report_data(nonce, keys)``;
a bare SNP report from Azure can never satisfy it, and the runtime claims are not part of ``sev-snp`` evidence.
Until the attestation library verifies an Azure HCL evidence type (report + runtime claims), :meth:`attest`
refuses with :class:`AttesterUnavailable` rather than send evidence that is bound to nothing the broker checks.

Not run on Azure: tested against a fake ``tpm2-tools`` runner answering with synthetic HCL reports.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from enclave.attesters.base import check_report_data
from enclave.errors import AttestationFailed, AttesterUnavailable

__all__ = [
    "HCL_REPORT_NV_INDEX",
    "HCL_SIGNATURE",
    "USER_DATA_NV_INDEX",
    "AzureHclEvidence",
    "AzureVtpmAttester",
    "CommandResult",
    "CommandRunner",
    "parse_hcl_report",
    "run_command",
]

HCL_REPORT_NV_INDEX = 0x01400001
USER_DATA_NV_INDEX = 0x01400002
HCL_SIGNATURE = 0x414C4348  # "HCLA" little-endian
SNP_REPORT_TYPE = 2
TDX_REPORT_TYPE = 4
SHA256_HASH_TYPE = 1
_HW_REPORT = slice(32, 32 + 1184)
_REQUEST_DATA = 1216
_VARIABLE_DATA = 1236
_SNP_REPORT_DATA = slice(0x50, 0x90)
_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a finished command returned."""

    returncode: int
    stdout: bytes
    stderr: bytes


#: Runs ``argv`` (no shell) with ``stdin`` and returns its result.
CommandRunner = Callable[[Sequence[str], bytes | None], CommandResult]


def run_command(argv: Sequence[str], stdin: bytes | None) -> CommandResult:
    """Run a tpm2-tools command without a shell, with a 30 s limit.

    Raises:
        AttesterUnavailable: The program is not installed or did not finish in time.
    """
    try:
        done = subprocess.run(list(argv), input=stdin, capture_output=True, timeout=_TIMEOUT_SECONDS, check=False)
    except FileNotFoundError:
        raise AttesterUnavailable(f"{argv[0]} is not installed (the Azure vTPM path needs tpm2-tools)") from None
    except subprocess.TimeoutExpired:
        raise AttesterUnavailable(f"{argv[0]} did not finish within {_TIMEOUT_SECONDS:.0f} s") from None
    return CommandResult(done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True, slots=True)
class AzureHclEvidence:
    """An HCL report whose links to the requested report data were checked.

    Attributes:
        hcl_report: The whole NV index ``0x01400001`` contents.
        snp_report: The 1184-byte SEV-SNP report inside it (verify it as ``sev-snp``).
        runtime_claims: The runtime-claims JSON bytes exactly as hashed into REPORT_DATA.
        user_data: The 64 bytes the ``user-data`` claim holds (our report data).
    """

    hcl_report: bytes
    snp_report: bytes
    runtime_claims: bytes
    user_data: bytes


def parse_hcl_report(hcl: bytes) -> AzureHclEvidence:
    """Split an HCL report and check REPORT_DATA = SHA-256(runtime claims) || zeros.

    Raises:
        AttesterUnavailable: The report wraps a TDX TD report (Azure TDX CVMs need a quote, not collected here).
        AttestationFailed: Bad signature word, truncated, unknown hash type, or the hash link does not hold.
    """
    if len(hcl) < _VARIABLE_DATA:
        raise AttestationFailed(f"the HCL report is {len(hcl)} bytes, shorter than its fixed part ({_VARIABLE_DATA})")
    signature = _u32(hcl, 0)
    if signature != HCL_SIGNATURE:
        raise AttestationFailed(f"the HCL report starts with {signature:#010x}, not the HCLA signature")
    report_type = _u32(hcl, _REQUEST_DATA + 8)
    if report_type == TDX_REPORT_TYPE:
        raise AttesterUnavailable("this Azure CVM is TDX-based; its HCL report holds a TD report, not a quote")
    if report_type != SNP_REPORT_TYPE:
        raise AttestationFailed(f"the HCL report's hardware report type is {report_type}, not SEV-SNP (2)")
    hash_type = _u32(hcl, _REQUEST_DATA + 12)
    if hash_type != SHA256_HASH_TYPE:
        raise AttestationFailed(f"the HCL report's runtime-data hash type is {hash_type}, not SHA-256 (1)")
    size = _u32(hcl, _REQUEST_DATA + 16)
    if len(hcl) < _VARIABLE_DATA + size:
        raise AttestationFailed(f"the HCL report is truncated: {size} bytes of runtime claims announced")
    claims = hcl[_VARIABLE_DATA : _VARIABLE_DATA + size]
    snp = hcl[_HW_REPORT]
    expected = hashlib.sha256(claims).digest() + bytes(32)
    if not hmac.compare_digest(snp[_SNP_REPORT_DATA], expected):
        raise AttestationFailed("the SNP report's REPORT_DATA is not SHA-256 of the HCL runtime claims")
    return AzureHclEvidence(hcl_report=hcl, snp_report=snp, runtime_claims=claims, user_data=_user_data(claims))


def _user_data(claims: bytes) -> bytes:
    try:
        document = json.loads(claims.rstrip(b"\x00"))
        text = document["user-data"]
        value = bytes.fromhex(text)
    except (ValueError, KeyError, TypeError):
        raise AttestationFailed("the HCL runtime claims hold no readable user-data claim") from None
    if len(value) != 64:
        raise AttestationFailed(f"the HCL user-data claim is {len(value)} bytes, not 64")
    return value


def _u32(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 4], "little")


class AzureVtpmAttester:
    """The Azure CVM vTPM path through ``tpm2_nvdefine``/``tpm2_nvwrite``/``tpm2_nvread``.

    Args:
        runner: Runs a tpm2-tools command (injectable for tests).
        tcti: ``TPM2TOOLS_TCTI``-style target passed as ``-T`` (default: the tools' own default, the resource
            manager ``/dev/tpmrm0``).
    """

    name = "azure-vtpm"
    evidence_type = "sev-snp"

    def __init__(self, *, runner: CommandRunner | None = None, tcti: str | None = None) -> None:
        self._run = runner or run_command
        self._tcti = ["-T", tcti] if tcti else []

    def collect(self, report_data: bytes) -> AzureHclEvidence:
        """Write ``report_data`` as the vTPM user data and read back the HCL report that binds it.

        Raises:
            ValueError: ``report_data`` is not 64 bytes.
            AttesterUnavailable: tpm2-tools or the vTPM NV indices are missing.
            AttestationFailed: A TPM command failed, or the report does not bind ``report_data``.
        """
        data = check_report_data(report_data)
        index = f"{USER_DATA_NV_INDEX:#x}"
        if self._tpm("tpm2_nvreadpublic", [index], None, check=False).returncode != 0:
            attributes = "ownerread|ownerwrite|authread|authwrite"
            self._tpm("tpm2_nvdefine", ["-C", "o", "-s", "64", "-a", attributes, index], None)
        self._tpm("tpm2_nvwrite", ["-C", "o", "-i", "-", index], data)
        hcl = self._tpm("tpm2_nvread", ["-C", "o", f"{HCL_REPORT_NV_INDEX:#x}"], None).stdout
        evidence = parse_hcl_report(hcl)
        if not hmac.compare_digest(evidence.user_data, data):
            raise AttestationFailed("the HCL report's user-data claim is not the report data just written")
        return evidence

    def attest(self, report_data: bytes, nonce: bytes) -> bytes:
        """Refuse: no evidence type the broker verifies can carry the runtime-claims binding yet.

        Raises:
            ValueError: ``report_data`` is not 64 bytes.
            AttesterUnavailable: Always, naming what is missing.
        """
        check_report_data(report_data)
        raise AttesterUnavailable(
            "the Azure vTPM path binds report data through the HCL runtime claims (REPORT_DATA = SHA-256(runtime "
            "claims) || zeros), but sev-snp evidence carries only the SNP report, so the broker's binding check "
            "(REPORT_DATA == report_data(nonce, keys)) cannot pass; an Azure HCL evidence type in the attestation "
            "library (SNP report + runtime claims + user-data check) is missing. AzureVtpmAttester.collect() "
            "gathers and checks that evidence for when it lands"
        )

    def _tpm(self, program: str, arguments: list[str], stdin: bytes | None, *, check: bool = True) -> CommandResult:
        result = self._run([program, *self._tcti, *arguments], stdin)
        if check and result.returncode != 0:
            message = result.stderr.decode("utf-8", "replace").strip().splitlines()
            detail = message[-1][:200] if message else "no message"
            raise AttestationFailed(f"{program} failed with exit code {result.returncode}: {detail}")
        return result
