"""Intel TDX: quotes through configfs-tsm (provider ``tdx_guest``).

The kernel asks the quoting enclave (through the host) for a quote over a TD report whose REPORTDATA is the
64-byte ``inblob``; ``outblob`` is the quote (Intel TDX DCAP quote format, version 4 or 5). Before handing it on, the
quote is checked to be a TDX quote (TEE type 0x81) carrying exactly the report data asked for.

Not run on TDX hardware: tested against a fake configfs kernel answering with synthetic quotes. The attestation
library has no TDX verifier yet, so a broker cannot appraise ``tdx`` evidence until one lands.
"""

from __future__ import annotations

from enclave.attesters.base import check_report_data
from enclave.attesters.configfs_tsm import TsmReportClient
from enclave.errors import AttestationFailed

__all__ = ["TDX_TEE_TYPE", "TdxAttester", "quote_report_data"]

TDX_TEE_TYPE = 0x81
_HEADER_SIZE = 48
_BODY_SIZES = {2: 584, 3: 648}  # quote v5 body types: TDX 1.0 and TDX 1.5 report bodies
_V4_BODY_SIZE = 584
_REPORT_DATA_IN_BODY = 520  # after TEE_TCB_SVN, MRSEAM, MRSIGNERSEAM, SEAMATTRIBUTES, TDATTRIBUTES, XFAM, MRTD, ...


def quote_report_data(quote: bytes) -> bytes:
    """The REPORTDATA of a TDX quote (v4, or v5 with a TDX 1.0/1.5 body).

    Raises:
        AttestationFailed: The bytes are not a TDX quote of a version we read, or are truncated.
    """
    if len(quote) < _HEADER_SIZE:
        raise AttestationFailed(f"the TDX quote is {len(quote)} bytes, shorter than its header")
    version = int.from_bytes(quote[0:2], "little")
    tee_type = int.from_bytes(quote[4:8], "little")
    if tee_type != TDX_TEE_TYPE:
        raise AttestationFailed(f"the quote's TEE type is {tee_type:#x}, not TDX ({TDX_TEE_TYPE:#x})")
    if version == 4:
        body, size = _HEADER_SIZE, _V4_BODY_SIZE
    elif version == 5:
        if len(quote) < _HEADER_SIZE + 6:
            raise AttestationFailed("the TDX v5 quote is truncated before its body descriptor")
        body_type = int.from_bytes(quote[48:50], "little")
        size = int.from_bytes(quote[50:54], "little")
        if _BODY_SIZES.get(body_type) != size:
            raise AttestationFailed(f"the TDX v5 quote has body type {body_type} of {size} bytes, not a TD report")
        body = _HEADER_SIZE + 6
    else:
        raise AttestationFailed(f"TDX quote version {version} is not 4 or 5")
    if len(quote) < body + size + 4:  # the body, then the u32 length of the signature data
        raise AttestationFailed(f"the TDX quote is truncated ({len(quote)} bytes)")
    start = body + _REPORT_DATA_IN_BODY
    return quote[start : start + 64]


class TdxAttester:
    """TDX quotes with REPORTDATA = report data, from configfs-tsm.

    Args:
        tsm: The configfs-tsm client (default: the real ``/sys/kernel/config/tsm/report``).
    """

    name = "tdx"
    evidence_type = "tdx"

    def __init__(self, *, tsm: TsmReportClient | None = None) -> None:
        self._tsm = tsm if tsm is not None else TsmReportClient()

    def attest(self, report_data: bytes, nonce: bytes) -> bytes:
        """A TDX quote binding ``report_data`` (TDX has no nonce field; the nonce is bound through it).

        Raises:
            ValueError: ``report_data`` is not 64 bytes.
            AttesterUnavailable: configfs-tsm is missing or served by another provider.
            AttestationFailed: No quote was produced, or it carries other report data.
        """
        data = check_report_data(report_data)
        quote = self._tsm.generate(data, expected_provider="tdx_guest").outblob
        if quote_report_data(quote) != data:
            raise AttestationFailed("the TDX quote carries other REPORTDATA than was asked for")
        return quote
