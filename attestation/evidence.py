"""Evidence as it arrives in files: raw binary, base64 or hex text, auto-detected; and TEE type detection."""

from __future__ import annotations

import base64
import binascii
import re

from attestation.claims import Tee
from attestation.errors import MalformedEvidence
from attestation.verify import verifier_for

#: No supported evidence comes close to this; larger input is refused before decoding.
MAX_EVIDENCE_BYTES = 4 << 20

_HEX = re.compile(rb"[0-9a-fA-F]+")
_BASE64 = re.compile(rb"[A-Za-z0-9+/_-]+={0,2}")
_WHITESPACE = re.compile(rb"\s+")


def decode_evidence(data: bytes) -> bytes:
    """Return the evidence bytes from ``data``: raw binary, or hex / base64 (standard or URL-safe) text.

    Text is recognised when the whole input (whitespace ignored) is one hex or base64 string; hex wins when both
    fit, since every hex string is also base64 and real binary evidence is never all hex digits.

    Raises:
        MalformedEvidence: Empty or oversized input.
    """
    if not data:
        raise MalformedEvidence("the evidence is empty")
    if len(data) > MAX_EVIDENCE_BYTES:
        raise MalformedEvidence(f"the evidence is larger than {MAX_EVIDENCE_BYTES} bytes")
    text = _WHITESPACE.sub(b"", data)
    if text and len(text) % 2 == 0 and _HEX.fullmatch(text):
        return bytes.fromhex(text.decode("ascii"))
    if text and _BASE64.fullmatch(text):
        padded = text + b"=" * (-len(text) % 4)
        try:
            if b"-" in text or b"_" in text:
                return base64.urlsafe_b64decode(padded)
            return base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            pass
    return data


def detect_tee(evidence: bytes) -> Tee:
    """Guess the TEE type from the evidence's structure.

    Raises:
        MalformedEvidence: No supported type matches.
    """
    matches = [tee for tee in Tee if verifier_for(tee).looks_like(evidence)]
    if len(matches) != 1:
        raise MalformedEvidence(
            "cannot tell the evidence type (" + ("no" if not matches else "more than one") + " format matches); "
            "pass --type"
        )
    return matches[0]
