"""HPKE interop: ccdeploy.release.hpke (cryptography) against pyhpke, an independent RFC 9180 implementation.

pyhpke has no X-Wing, so the X25519 suite is checked in both directions; X-Wing is checked for round trips,
wrong context and wrong keys (tests/release for the broker's use of it).
"""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from hypothesis import given, settings
from hypothesis import strategies as st
from pyhpke import AEADId, CipherSuite, KDFId, KEMId, KEMKey

from ccdeploy.release.hpke import HpkeError, HpkeKeyPair, HpkeSuite, release_info, seal_to

_PYHPKE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES256_GCM)
_ENC = 32


@settings(max_examples=25, deadline=None)
@given(dek=st.binary(min_size=1, max_size=64), model=st.text(min_size=1, max_size=20), nonce=st.binary(min_size=1))
def test_pyhpke_opens_what_we_seal(dek: bytes, model: str, nonce: bytes) -> None:
    private = x25519.X25519PrivateKey.generate()
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    info = release_info(model, nonce)
    sealed = seal_to(HpkeSuite.X25519, public, dek, info)
    recipient = _PYHPKE.create_recipient_context(sealed[:_ENC], KEMKey.from_pyca_cryptography_key(private), info=info)
    assert recipient.open(sealed[_ENC:]) == dek


@settings(max_examples=25, deadline=None)
@given(dek=st.binary(min_size=1, max_size=64), nonce=st.binary(min_size=1, max_size=64))
def test_we_open_what_pyhpke_seals(dek: bytes, nonce: bytes) -> None:
    pair = HpkeKeyPair.generate(HpkeSuite.X25519)
    info = release_info("mlp", nonce)
    enc, sender = _PYHPKE.create_sender_context(_PYHPKE.kem.deserialize_public_key(pair.public), info=info)
    assert pair.open(enc + sender.seal(dek), info) == dek


@pytest.mark.parametrize("suite", list(HpkeSuite))
def test_another_release_context_or_key_does_not_open(suite: HpkeSuite) -> None:
    pair, other = HpkeKeyPair.generate(suite), HpkeKeyPair.generate(suite)
    dek = os.urandom(32)
    sealed = seal_to(suite, pair.public, dek, release_info("mlp", b"n1"))
    assert len(pair.public) == suite.public_key_size
    assert pair.open(sealed, release_info("mlp", b"n1")) == dek
    for wrong_info in (release_info("mlp", b"n2"), release_info("other", b"n1")):
        with pytest.raises(HpkeError):
            pair.open(sealed, wrong_info)
    with pytest.raises(HpkeError):
        other.open(sealed, release_info("mlp", b"n1"))


@pytest.mark.parametrize("suite", list(HpkeSuite))
def test_public_keys_of_the_wrong_length_are_refused(suite: HpkeSuite) -> None:
    with pytest.raises(HpkeError, match="public key"):
        seal_to(suite, b"\x01" * (suite.public_key_size - 1), b"k" * 32, b"info")
