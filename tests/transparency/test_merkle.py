"""RFC 9162 Merkle trees: published known answers, exhaustive round trips, forged proofs, properties."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccdeploy.errors import AuditChainBroken
from ccdeploy.transparency.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_inclusion_proof,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

# The RFC 6962 reference data, as published in github.com/transparency-dev/merkle testonly/constants.go
# (LeafInputs, RootHashes, NodeHashes) and proof/verify_test.go (inclusionProofs, consistencyProofs; their
# leaf numbers are 1-based, converted to 0-based indexes here).
LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
LEAF_HASHES_PUBLISHED = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
]
INCLUSION = [
    (0, 8, ["96a296d2", "5f083f0a", "6b47aaf2"]),
    (5, 8, ["bc1a0643", "ca854ea1", "d37ee418"]),
    (2, 3, ["fac54203"]),
    (1, 5, ["6e340b9c", "5f083f0a", "bc1a0643"]),
]
CONSISTENCY = [
    (1, 8, ["96a296d2", "5f083f0a", "6b47aaf2"]),
    (6, 8, ["0ebc5d34", "ca854ea1", "d37ee418"]),
    (2, 5, ["5f083f0a", "bc1a0643"]),
    (6, 7, ["0ebc5d34", "b08693ec", "d37ee418"]),
]
HASHES = [leaf_hash(x) for x in LEAF_INPUTS]


def leaves(n: int, salt: int = 0) -> list[bytes]:
    return [leaf_hash(f"{salt}-{i}".encode()) for i in range(n)]


def test_known_leaf_hashes_and_roots() -> None:
    assert [h.hex() for h in HASHES] == LEAF_HASHES_PUBLISHED
    assert EMPTY_ROOT.hex() == ROOTS[0] == root_hash([]).hex()
    for size in range(1, 9):
        assert root_hash(HASHES[:size]).hex() == ROOTS[size], size


@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION)
def test_known_inclusion_proofs(index: int, size: int, expected: list[str]) -> None:
    proof = inclusion_proof(index, HASHES[:size])
    assert [p.hex()[:8] for p in proof] == expected
    verify_inclusion(HASHES[index], index, size, proof, bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("old", "new", "expected"), CONSISTENCY)
def test_known_consistency_proofs(old: int, new: int, expected: list[str]) -> None:
    proof = consistency_proof(old, HASHES[:new])
    assert [p.hex()[:8] for p in proof] == expected
    verify_consistency(old, new, proof, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]))


def _naive_root(hashes: list[bytes]) -> bytes:
    """RFC 9162 MTH written as the recursion, to cross-check the cached tree."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _naive_root(hashes[:k]) + _naive_root(hashes[k:])).digest()


def test_round_trip_every_size_and_index() -> None:
    hashes = leaves(70)
    tree = MerkleTree()
    roots = [EMPTY_ROOT]
    for size in range(1, 71):
        tree.append(hashes[size - 1])
        roots.append(tree.root())
        assert roots[size] == _naive_root(hashes[:size]) == root_hash(hashes[:size])
    for size in range(1, 71):
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert proof == inclusion_proof(index, hashes[:size])
            verify_inclusion(hashes[index], index, size, proof, roots[size])
        for old in range(size + 1):
            proof = tree.consistency_proof(old, size)
            verify_consistency(old, size, proof, roots[old], roots[size])


def _flip(proof: list[bytes], i: int) -> list[bytes]:
    copy = list(proof)
    copy[i] = bytes([copy[i][0] ^ 8]) + copy[i][1:]
    return copy


def test_forged_inclusion_proofs_fail() -> None:
    """Every corruption transparency-dev's verifier tests for, over every leaf of trees up to 20."""
    hashes = leaves(20, salt=1)
    other = leaf_hash(b"other")
    for size in range(1, 21):
        root = root_hash(hashes[:size])
        for index in range(size):
            proof = inclusion_proof(index, hashes[:size])
            forged: list[tuple[bytes, int, int, list[bytes], bytes]] = [
                (other, index, size, proof, root),
                (hashes[index], index, size, proof, EMPTY_ROOT),
                (hashes[index], index, size, [*proof, root], root),
                (hashes[index], index, size, [root, *proof], root),
                (hashes[index], index + 1, size, proof, root),
                (hashes[index], index, size * 2, proof, root),
            ]
            if index > 0:
                forged.append((hashes[index], index - 1, size, proof, root))
            if index ^ 2 < size and index ^ 2 != index:
                forged.append((hashes[index], index ^ 2, size, proof, root))
            if size > 1:
                forged.append((hashes[index], index, size // 2, proof, root))
            forged += [(hashes[index], index, size, _flip(proof, i), root) for i in range(len(proof))]
            if proof:
                forged.append((hashes[index], index, size, proof[:-1], root))
            for leaf, i, n, p, r in forged:
                with pytest.raises(AuditChainBroken):
                    verify_inclusion(leaf, i, n, p, r)


def test_forged_consistency_proofs_fail() -> None:
    hashes = leaves(20, salt=2)
    roots = [root_hash(hashes[:n]) for n in range(21)]
    for new in range(2, 21):
        for old in range(1, new):
            proof = consistency_proof(old, hashes[:new])
            r1, r2 = roots[old], roots[new]
            forged: list[tuple[int, int, list[bytes], bytes, bytes]] = [
                (old, new, proof, r2, r1),
                (old, new, proof, leaf_hash(b"x"), r2),
                (old, new, proof, r1, leaf_hash(b"x")),
                (old, new, [], r1, r2),
                (old, new, [*proof, r1], r1, r2),
                (old, new, [r2, *proof], r1, r2),
                (old, new, proof[:-1], r1, r2),
                (new, old, proof, r2, r1),
                (old, new * 2, proof, r1, r2),
            ]
            forged += [(old, new, _flip(proof, i), r1, r2) for i in range(len(proof))]
            if old + 1 < new:
                forged.append((old + 1, new, proof, r1, r2))
            if old > 1:
                forged.append((old - 1, new, proof, r1, r2))
            for o, n, p, a, b in forged:
                with pytest.raises(AuditChainBroken):
                    verify_consistency(o, n, p, a, b)


def test_edge_sizes() -> None:
    root = root_hash(HASHES[:3])
    verify_consistency(0, 3, [], EMPTY_ROOT, root)
    verify_consistency(3, 3, [], root, root)
    for args in [
        (3, 3, [], root, EMPTY_ROOT),
        (3, 3, [root], root, root),
        (0, 3, [root], EMPTY_ROOT, root),
        (4, 3, [], root, root),
        (-1, 3, [], root, root),
    ]:
        with pytest.raises(AuditChainBroken):
            verify_consistency(*args)
    for index, size in [(0, 0), (1, 1), (-1, 3), (3, 3)]:
        with pytest.raises(AuditChainBroken):
            verify_inclusion(HASHES[0], index, size, [], root)
    with pytest.raises(AuditChainBroken):
        verify_inclusion(b"short", 0, 1, [], root)
    with pytest.raises(AuditChainBroken):
        verify_inclusion(HASHES[0], 0, 2, [b"short"], root)
    with pytest.raises(AuditChainBroken):
        root_from_inclusion_proof(HASHES[0], 0, 2, [])


@pytest.mark.parametrize(
    "call",
    [
        lambda: inclusion_proof(3, HASHES[:3]),
        lambda: inclusion_proof(-1, HASHES[:3]),
        lambda: inclusion_proof(0, []),
        lambda: consistency_proof(4, HASHES[:3]),
        lambda: consistency_proof(-1, HASHES[:3]),
        lambda: MerkleTree(HASHES[:3]).root(4),
        lambda: MerkleTree(HASHES[:3]).leaf(3),
        lambda: MerkleTree([b"not a hash"]),
    ],
)
def test_programming_errors_are_value_errors(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()


hash_lists = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=300)


@settings(max_examples=60, deadline=None)
@given(hash_lists, st.data())
def test_property_inclusion(hashes: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(hashes) - 1))
    root = root_hash(hashes)
    proof = inclusion_proof(index, hashes)
    assert len(proof) <= (len(hashes) - 1).bit_length()
    verify_inclusion(hashes[index], index, len(hashes), proof, root)
    other = data.draw(st.integers(0, len(hashes) - 1))
    if hashes[other] != hashes[index]:
        with pytest.raises(AuditChainBroken):
            verify_inclusion(hashes[other], index, len(hashes), proof, root)


@settings(max_examples=60, deadline=None)
@given(hash_lists, st.data())
def test_property_consistency(hashes: list[bytes], data: st.DataObject) -> None:
    old = data.draw(st.integers(0, len(hashes)))
    proof = consistency_proof(old, hashes)
    verify_consistency(old, len(hashes), proof, root_hash(hashes[:old]), root_hash(hashes))
    if 0 < old < len(hashes):
        changed = list(hashes)
        position = data.draw(st.integers(0, old - 1))
        changed[position] = hashlib.sha256(changed[position]).digest()
        with pytest.raises(AuditChainBroken):
            verify_consistency(old, len(hashes), proof, root_hash(changed[:old]), root_hash(hashes))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.binary(max_size=40), max_size=8),
    st.integers(-2, 40),
    st.integers(-2, 40),
    st.binary(max_size=40),
)
def test_property_garbage_never_verifies_by_accident(proof: list[bytes], index: int, size: int, root: bytes) -> None:
    """Random proofs raise AuditChainBroken, never anything else, and never pass."""
    with pytest.raises(AuditChainBroken):
        verify_inclusion(leaf_hash(b"x"), index, size, proof, root)
