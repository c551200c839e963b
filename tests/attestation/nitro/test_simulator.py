"""The Nitro evidence simulator: real-format documents that verify only under its explicitly trusted root."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attestation import _cbor
from attestation._x509 import SIMULATOR_ORGANIZATION, fingerprint
from attestation.claims import Claims
from attestation.errors import BadChain, Expired, UntrustedSimulatorRoot
from attestation.simulator.nitro import (
    DEFAULT_MODULE_ID,
    NitroSimulator,
    NitroSimulatorKeys,
    default_pcrs,
)
from attestation.verify import verify
from tests.attestation.nitro.conftest import SIM_AT, SIM_TIMESTAMP, envelope, payload_of


def _verify(document: bytes, sim: NitroSimulator, at: datetime | None = None) -> Claims:
    return verify(document, tee="nitro", at=at, roots=[sim.root], unsafe_allow_simulator_roots=True)


def test_document_claims_are_what_was_asked(sim: NitroSimulator) -> None:
    pcrs = {0: b"\x10" * 48, 4: b"\x44" * 48, 20: b"\x20" * 48}
    document = sim.document(
        timestamp=SIM_TIMESTAMP,
        pcrs=pcrs,
        nonce=b"nonce",
        user_data=b"user data",
        public_key=b"key",
        module_id="i-0123456789abcdef0-enc0123456789abcdef",
    )
    claims = verify(document, tee="nitro", at=None, roots=[sim.root], unsafe_allow_simulator_roots=True)
    expected = {f"pcr{i}": value for i, value in sorted((default_pcrs() | pcrs).items())}
    assert dict(claims.measurements) == expected
    assert (claims.nonce, claims.report_data, claims.vendor["public_key"]) == (b"nonce", b"user data", b"key")
    assert claims.hardware_id == "i-0123456789abcdef0-enc0123456789abcdef"
    assert claims.issued_at == SIM_TIMESTAMP
    assert claims.debug is False
    assert claims.signer.simulated is True
    assert claims.signer.root_sha256 == fingerprint(sim.root)
    assert len(claims.signer.subjects) == 5


def test_debug_document(sim: NitroSimulator) -> None:
    claims = verify(
        sim.document(timestamp=SIM_TIMESTAMP, pcrs={0: b"\x01" * 48}, debug=True),
        tee="nitro",
        at=None,
        roots=[sim.root],
        unsafe_allow_simulator_roots=True,
    )
    assert claims.debug is True
    assert all(claims.measurements[f"pcr{i}"] == bytes(48) for i in (0, 1, 2))
    assert claims.measurements["pcr4"] == default_pcrs()[4]


def test_refused_without_its_root_or_without_the_unsafe_flag(sim: NitroSimulator) -> None:
    document = sim.document(timestamp=SIM_TIMESTAMP)
    with pytest.raises(BadChain) as caught:
        verify(document, tee="nitro", at=None)  # the pinned AWS root
    assert type(caught.value) is BadChain
    with pytest.raises(UntrustedSimulatorRoot):
        verify(document, tee="nitro", at=None, roots=[sim.root])


def test_same_shape_as_a_real_document(sim: NitroSimulator, real_doc: bytes) -> None:
    document = sim.document(timestamp=SIM_TIMESTAMP, nonce=b"\x01" * 1024, user_data=b"\x01", public_key=b"\x01")
    assert document[0] == real_doc[0] == 0x84  # untagged
    assert envelope(document)[:2] == envelope(real_doc)[:2] == [bytes.fromhex("a1013822"), {}]
    ours, theirs = payload_of(document), payload_of(real_doc)
    assert list(ours) == list(theirs)
    assert list(ours["pcrs"]) == list(theirs["pcrs"]) == list(range(16))
    assert {len(value) for value in ours["pcrs"].values()} == {48}
    assert len(ours["cabundle"]) == len(theirs["cabundle"]) == 4
    assert len(envelope(document)[3]) == 96


def test_chain_shape(sim: NitroSimulator) -> None:
    leaf = sim.leaf_certificate(timestamp=SIM_TIMESTAMP)
    chain = (*sim.cabundle, leaf)
    for cert in chain:
        names = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
        assert [name.value for name in names] == [SIMULATOR_ORGANIZATION]
        assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    for issuer, cert in itertools.pairwise(chain):
        cert.verify_directly_issued_by(issuer)
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert [c.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length for c in sim.cabundle] == [
        None,
        2,
        1,
        0,
    ]
    assert leaf.not_valid_before_utc == datetime(2030, 1, 1, 0, 9, 57, tzinfo=UTC)
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(hours=3, seconds=3)
    assert sim.root_pem().startswith(b"-----BEGIN CERTIFICATE-----")


def test_leaf_expiry_gives_expired(sim: NitroSimulator) -> None:
    document = sim.document(timestamp=SIM_TIMESTAMP)
    leaf = sim.leaf_certificate(timestamp=SIM_TIMESTAMP)
    assert _verify(document, sim, leaf.not_valid_after_utc)
    with pytest.raises(Expired):
        _verify(document, sim, leaf.not_valid_after_utc + timedelta(seconds=1))


def test_reproducible_from_fixed_keys(sim: NitroSimulator) -> None:
    again = NitroSimulator.from_keys(NitroSimulatorKeys.from_pem(sim.keys.to_pem()), at=SIM_AT)
    assert again.document(timestamp=SIM_TIMESTAMP, nonce=b"x") == sim.document(timestamp=SIM_TIMESTAMP, nonce=b"x")
    assert again.root_pem() == sim.root_pem()


def test_create_makes_fresh_keys() -> None:
    first, second = NitroSimulator.create(at=SIM_AT), NitroSimulator.create(at=SIM_AT)
    assert fingerprint(first.root) != fingerprint(second.root)
    document = first.document(timestamp=SIM_AT + timedelta(minutes=1))
    with pytest.raises(BadChain):
        _verify(document, second)
    assert _verify(document, first)


def test_reordered_cabundle_option(sim: NitroSimulator) -> None:
    document = sim.document(timestamp=SIM_TIMESTAMP, cabundle_order=(0, 2, 1, 3))
    with pytest.raises(BadChain, match="not in the order root"):
        _verify(document, sim)


def test_misuse_is_a_value_error(sim: NitroSimulator) -> None:
    with pytest.raises(ValueError, match="PCR32"):
        sim.document(timestamp=SIM_TIMESTAMP, pcrs={32: bytes(48)})
    with pytest.raises(ValueError, match="PCR1"):
        sim.document(timestamp=SIM_TIMESTAMP, pcrs={1: bytes(32)})
    with pytest.raises(ValueError, match="timezone-aware"):
        sim.document(timestamp=datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        NitroSimulator.create(at=datetime(2030, 1, 1))
    pems = sim.keys.to_pem()
    pems["leaf"] = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="leaf key is not an EC P-384"):
        NitroSimulatorKeys.from_pem(pems)


def test_default_module_id_and_sign(sim: NitroSimulator) -> None:
    document = sim.document(timestamp=SIM_TIMESTAMP)
    assert payload_of(document)["module_id"] == DEFAULT_MODULE_ID
    payload = envelope(document)[2]
    assert sim.sign(payload) == document
    assert _cbor.decode(document, what="simulated") == envelope(document)
