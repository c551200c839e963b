"""Composite evidence documents: strict parsing, the encoder's round trip, and fuzzing (typed errors only)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attestation.claims import Tee
from attestation.composite import (
    COMPOSITE_FORMAT,
    MAX_GPUS,
    CompositeEvidence,
    CompositeVerifier,
    GpuEvidence,
    compose,
    gpu_nonce,
    parse_composite,
)
from attestation.errors import AttestationError, MalformedEvidence

CHAIN = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": COMPOSITE_FORMAT,
        "cpu": {"type": "sev-snp", "evidence": base64.b64encode(b"cpu").decode()},
        "gpus": [{"id": "GPU-0", "evidence": base64.b64encode(b"gpu").decode(), "certificate_chain": CHAIN.decode()}],
    }
    doc.update(changes)
    return doc


def encoded(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def test_gpu_nonce_is_sha256_of_the_domain_and_report_data() -> None:
    report_data = bytes(range(64))
    assert gpu_nonce(report_data) == hashlib.sha256(b"ccdeploy/gpu-nonce/v1" + report_data).digest()
    assert gpu_nonce(report_data) != gpu_nonce(bytes(64))


def test_round_trip() -> None:
    gpus = [GpuEvidence("GPU-0", b"\x11\xe0", CHAIN), GpuEvidence("GPU-1", b"\x11\xe1", CHAIN)]
    data = compose("tdx", b"quote", gpus)
    parsed = parse_composite(data)
    assert parsed == CompositeEvidence(Tee.TDX, b"quote", tuple(gpus))
    assert parsed.to_json() == data
    assert CompositeVerifier().looks_like(data)
    assert not CompositeVerifier().looks_like(b"\x01\x02")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (document(format="ccdeploy-composite/v2"), "format"),
        (document(extra=1), "extra"),
        (document(gpus=[]), "non-empty"),
        (document(cpu={"type": "nvidia-gpu", "evidence": "AA=="}), "not CPU evidence"),
        (document(cpu={"type": "composite", "evidence": "AA=="}), "not CPU evidence"),
        (document(cpu={"type": "sparc", "evidence": "AA=="}), "not a known evidence type"),
        (document(cpu={"type": "tdx", "evidence": "not base64!"}), "base64"),
        (document(cpu={"type": "tdx", "evidence": ""}), "empty"),
        (document(cpu={"type": "tdx"}), "missing"),
        (document(gpus=[{"id": "", "evidence": "AA==", "certificate_chain": ""}]), "printable"),
        (document(gpus=[{"id": "GPU\x1b", "evidence": "AA==", "certificate_chain": ""}]), "printable"),
        (
            document(
                gpus=[
                    {"id": "GPU-0", "evidence": "AA==", "certificate_chain": ""},
                    {"id": "GPU-0", "evidence": "AQ==", "certificate_chain": ""},
                ]
            ),
            "same id",
        ),
        (
            document(gpus=[{"id": f"G{i}", "evidence": "AA==", "certificate_chain": ""} for i in range(MAX_GPUS + 1)]),
            "more than",
        ),
        (document(gpus="GPU-0"), "non-empty list"),
        (document(gpus=[{"id": "GPU-0", "evidence": "AA==", "certificate_chain": "é"}]), "PEM"),
    ],
)
def test_malformed_documents_are_refused(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedEvidence, match=message):
        parse_composite(encoded(doc))


@pytest.mark.parametrize("data", [b"", b"[]", b"{", b"\xff\xfe", b'"text"', b"null"])
def test_non_objects_are_refused(data: bytes) -> None:
    with pytest.raises(MalformedEvidence):
        parse_composite(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["format", "cpu", "gpus", "x"]), json_values, max_size=4))
def test_fuzzed_documents_raise_only_typed_errors(doc: dict[str, Any]) -> None:
    with pytest.raises(AttestationError):  # a random mapping never has the exact format string
        parse_composite(encoded(doc))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzzed_bytes_raise_only_typed_errors(data: bytes) -> None:
    with pytest.raises(AttestationError):
        parse_composite(data)
