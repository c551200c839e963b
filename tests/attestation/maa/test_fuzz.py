"""Random and mutated token text through MaaVerifier and the _jwt parsers raises only AttestationError subclasses."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from attestation import _jwt
from attestation.collateral import Collateral
from attestation.errors import AttestationError
from attestation.tee.maa import MaaVerifier
from tests.tools import make_forgeries_maa

VALID = (make_forgeries_maa.FORGED / "valid.jwt").read_bytes()
JWKS = (make_forgeries_maa.FORGED / "jwks.json").read_bytes()
AT = datetime(2025, 1, 1, 1, tzinfo=UTC)
VERIFIER = MaaVerifier(make_forgeries_maa.PROVIDER)
_JWK_NAMES = ("kid", "kty", "n", "e", "x", "y", "crv", "x5c", "keys")


def _verify(token: bytes, jwks: bytes = JWKS) -> None:
    with contextlib.suppress(AttestationError):
        VERIFIER.verify(token, at=AT, roots=(), collateral=Collateral(jwks=jwks), fetcher=None, allow_simulator=False)
    with contextlib.suppress(AttestationError):
        VERIFIER.decode(token)
    VERIFIER.looks_like(token)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(alphabet='ab.-_=Ae0{}"', max_size=200).map(str.encode))
def test_random_text(token: bytes) -> None:
    _verify(token)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(VALID) - 1), st.integers(0, 255))
def test_mutated_valid_token(position: int, value: int) -> None:
    mutated = bytearray(VALID)
    mutated[position] = value
    _verify(bytes(mutated))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(JWKS) - 1), st.integers(0, 255))
def test_mutated_jwks(position: int, value: int) -> None:
    mutated = bytearray(JWKS)
    mutated[position] = value
    _verify(VALID, bytes(mutated))
    with contextlib.suppress(AttestationError):
        _jwt.parse_jwks(bytes(mutated))


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_JWK_NAMES), inner, max_size=4),
        max_leaves=8,
    )
)
def test_random_jwks_documents(document: object) -> None:
    with contextlib.suppress(AttestationError):
        _jwt.parse_jwks(json.dumps({"keys": document}).encode())
