"""Unusable recipient keys are refused with HpkeError (the broker maps it to a typed denial), never a bare ValueError."""

from __future__ import annotations

import pytest

from ccdeploy.release.hpke import HpkeError, HpkeKeyPair, HpkeSuite, release_info, seal_to

# Low-order X25519 points (RFC 7748 §7; the list from libsodium / Wycheproof): the shared secret would be all zeros.
LOW_ORDER = [
    bytes(32),
    bytes([1]) + bytes(31),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]
INFO = release_info("m", bytes(32))


@pytest.mark.parametrize("point", LOW_ORDER)
def test_low_order_x25519_key(point: bytes) -> None:
    with pytest.raises(HpkeError, match="cannot be sealed to"):
        seal_to(HpkeSuite.X25519, point, b"k" * 32, INFO)


@pytest.mark.parametrize("point", LOW_ORDER[:2])
def test_low_order_x25519_half_of_an_xwing_key(point: bytes) -> None:
    good = HpkeKeyPair.generate(HpkeSuite.XWING).public
    with pytest.raises(HpkeError):
        seal_to(HpkeSuite.XWING, good[:-32] + point, b"k" * 32, INFO)


def test_wrong_length_is_still_hpke_error() -> None:
    with pytest.raises(HpkeError, match="bytes"):
        seal_to(HpkeSuite.X25519, bytes(31), b"k" * 32, INFO)


def test_a_good_key_still_seals_from_a_bytearray() -> None:
    pair = HpkeKeyPair.generate(HpkeSuite.X25519)
    dek = bytearray(b"k" * 32)
    assert pair.open(seal_to(HpkeSuite.X25519, pair.public, dek, INFO), INFO) == b"k" * 32
