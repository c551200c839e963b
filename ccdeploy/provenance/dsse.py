"""DSSE envelopes (https://github.com/secure-systems-lab/dsse, protocol v1) as JSON documents.

Written by hand rather than with ``securesystemslib.dsse``: its Envelope signs through its own
``Signer`` key model, while ccdeploy signers produce raw signatures (file keys, PKCS#11 tokens) and
need only the pre-authentication encoding and the JSON shape, a dozen lines.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

__all__ = ["envelope", "pae", "sign_envelope"]


def pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding: what is actually signed.

    ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``, lengths in bytes as ASCII decimal.
    """
    encoded_type = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(encoded_type), encoded_type, len(payload), payload)


def envelope(payload: bytes, payload_type: str, signatures: list[tuple[bytes, str]]) -> dict[str, Any]:
    """A DSSE envelope as JSON: ``signatures`` are ``(signature bytes, keyid)`` pairs."""
    return {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": payload_type,
        "signatures": [{"sig": base64.b64encode(sig).decode(), "keyid": keyid} for sig, keyid in signatures],
    }


def sign_envelope(payload: bytes, payload_type: str, sign: Callable[[bytes], bytes]) -> dict[str, Any]:
    """Sign ``payload`` with ``sign`` (over its PAE) into a one-signature envelope.

    The keyid is empty, as OpenSSF model_signing writes it: the bundle's verification material names
    the key.
    """
    return envelope(payload, payload_type, [(sign(pae(payload_type, payload)), "")])
