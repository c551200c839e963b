"""Property tests: whatever the bytes, the Nitro verifier ends in a typed AttestationError, or in the real claims."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestation import _cbor
from attestation.claims import Claims
from attestation.errors import AttestationError, MalformedEvidence
from attestation.simulator.nitro import NitroSimulator
from attestation.tee.nitro import NitroVerifier
from attestation.verify import verify
from tests.attestation.nitro.conftest import SIM_TIMESTAMP, envelope, payload_of

_PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_NITRO_FIELDS = (
    "module_id",
    "digest",
    "timestamp",
    "pcrs",
    "certificate",
    "cabundle",
    "public_key",
    "user_data",
    "nonce",
)

_INTS = st.integers(min_value=-(1 << 64), max_value=(1 << 64) - 1)
_KEYS = st.one_of(st.sampled_from(_NITRO_FIELDS), _INTS, st.text(max_size=6), st.binary(max_size=6))
_VALUES = st.recursive(
    st.one_of(_INTS, st.binary(max_size=64), st.text(max_size=10), st.booleans(), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=5)),
    max_leaves=20,
)


def _outcome(evidence: bytes, *, roots: Any = None, unsafe: bool = False, at: datetime | None = None) -> Claims | None:
    """Verify, decode and guess; return the claims if it verifies, None if a typed error was raised."""
    verifier = NitroVerifier()
    assert isinstance(verifier.looks_like(evidence), bool)
    with contextlib.suppress(MalformedEvidence):
        verifier.decode(evidence)
    try:
        return verify(evidence, tee="nitro", at=at, roots=roots, unsafe_allow_simulator_roots=unsafe)
    except AttestationError:
        return None


@given(st.binary(max_size=2048))
@_PROFILE
def test_arbitrary_bytes(data: bytes) -> None:
    assert _outcome(data) is None
    assert _outcome(b"\x84" + data) is None


@given(st.data())
@_PROFILE
def test_mutations_of_the_real_document(real_doc: bytes, data: st.DataObject) -> None:
    mutated = bytearray(real_doc)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        offset = data.draw(st.integers(0, len(mutated)), label="offset")
        kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete"]), label="kind")
        if kind == "flip" and offset < len(mutated):
            mutated[offset] ^= data.draw(st.integers(1, 255), label="xor")
        elif kind == "truncate":
            del mutated[offset:]
        elif kind == "insert":
            mutated[offset:offset] = data.draw(st.binary(min_size=1, max_size=8), label="inserted")
        else:
            del mutated[offset : offset + data.draw(st.integers(1, 8), label="deleted")]
    claims = _outcome(bytes(mutated))
    if claims is not None:  # e.g. a tag-18 prefix inserted: still the same, genuinely signed document
        assert claims == verify(real_doc, tee="nitro", at=None)


@given(_VALUES)
@_PROFILE
def test_random_cbor_structures(value: _cbor.CborValue) -> None:
    assert _outcome(_cbor.encode(value)) is None


@given(
    st.one_of(st.dictionaries(_KEYS, _VALUES, max_size=4), st.binary(max_size=8)),
    st.dictionaries(_KEYS, _VALUES, max_size=3),
    st.dictionaries(_KEYS, _VALUES, max_size=10),
    st.binary(min_size=94, max_size=98),
)
@_PROFILE
def test_cose_shaped_structures(protected: Any, unprotected: Any, payload: Any, signature: bytes) -> None:
    protected_bytes = protected if isinstance(protected, bytes) else _cbor.encode(protected)
    assert _outcome(_cbor.encode([protected_bytes, unprotected, _cbor.encode(payload), signature])) is None


@given(st.data())
@_PROFILE
def test_validly_signed_payloads_with_random_fields(sim: NitroSimulator, data: st.DataObject) -> None:
    # Signed by the simulator's leaf key, so these reach every check after the signature.
    payload: dict[Any, Any] = payload_of(sim.document(timestamp=SIM_TIMESTAMP, nonce=b"n"))
    for name in data.draw(st.lists(st.sampled_from(_NITRO_FIELDS), max_size=3, unique=True), label="replaced"):
        payload[name] = data.draw(_VALUES, label=name)
    document = sim.sign(_cbor.encode(payload))
    claims = _outcome(document, roots=[sim.root], unsafe=True)
    if claims is not None:
        assert claims.signer.simulated is True


@given(st.data())
@_PROFILE
def test_validly_signed_documents_with_mutated_certificates(sim: NitroSimulator, data: st.DataObject) -> None:
    payload: dict[str, Any] = payload_of(sim.document(timestamp=SIM_TIMESTAMP))
    chain: list[bytes] = [*payload["cabundle"], payload["certificate"]]
    index = data.draw(st.integers(0, len(chain) - 1), label="certificate")
    der = bytearray(chain[index])
    offset = data.draw(st.integers(0, len(der) - 1), label="offset")
    der[offset] ^= data.draw(st.integers(1, 255), label="xor")
    chain[index] = bytes(der)
    payload["cabundle"], payload["certificate"] = chain[:-1], chain[-1]
    claims = _outcome(sim.sign(_cbor.encode(payload)), roots=[sim.root], unsafe=True)
    if claims is not None:  # a flip in a part nothing checks (e.g. a certificate's unused bits) is possible
        assert claims.signer.simulated is True


@pytest.mark.parametrize("tagged", [False, True])
def test_every_truncation_of_the_real_document(real_doc: bytes, tagged: bool) -> None:
    document = b"\xd2" + real_doc if tagged else real_doc
    for length in range(len(document)):
        with pytest.raises(MalformedEvidence):
            NitroVerifier().decode(document[:length])


def test_every_envelope_byte_flip(real_doc: bytes) -> None:
    # The COSE framing around the payload: every single flip there is refused.
    head = len(real_doc) - len(envelope(real_doc)[2]) - 96 - 2
    for offset in [*range(head), *range(len(real_doc) - 98, len(real_doc))]:
        flipped = real_doc[:offset] + bytes([real_doc[offset] ^ 0x01]) + real_doc[offset + 1 :]
        assert _outcome(flipped) is None, offset
