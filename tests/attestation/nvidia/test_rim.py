"""RIM verification: the real NVIDIA RIMs, tampered copies, hostile XML and RIMs signed in the test."""

from __future__ import annotations

import contextlib

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureConstructionMethod, SignatureMethod
from signxml.signer import XMLSigner

from attestation._x509 import SIMULATOR_ORGANIZATION
from attestation.errors import (
    AttestationError,
    BadChain,
    BadSignature,
    Expired,
    MalformedEvidence,
    UntrustedSimulatorRoot,
)
from attestation.roots import pinned_rim_roots
from attestation.tee.nvidia.rim import SHA384_NS, SWID_NS, RimKind, RimMalformed, verify_rim
from tests.attestation.nvidia.conftest import GEN_AT, LATE_AT, REAL_AT, Issued, issue

_FIXTURES = [HealthCheck.function_scoped_fixture]


def check(document: bytes, **kwargs: object) -> object:
    options: dict[str, object] = {"at": REAL_AT, "roots": pinned_rim_roots(), "allow_simulator": False, **kwargs}
    return verify_rim(document, **options)  # type: ignore[arg-type]


def test_real_rims_verify_and_are_classified(driver_rim: bytes, vbios_rim: bytes) -> None:
    driver = verify_rim(driver_rim, at=REAL_AT, roots=pinned_rim_roots(), allow_simulator=False)
    vbios = verify_rim(vbios_rim, at=REAL_AT, roots=pinned_rim_roots(), allow_simulator=False)
    assert (driver.kind, driver.version, driver.name) == (RimKind.DRIVER, "545.00", "GH100")
    assert (vbios.kind, vbios.version) == (RimKind.VBIOS, "96.00.5E.00.01")
    assert sum(m.active for m in driver.measurements.values()) == 21
    assert sum(m.active for m in vbios.measurements.values()) == 12
    assert driver.chain.path[0].subject.rfc4514_string().startswith("CN=HCC RIM L4 Signer")
    assert driver.chain.anchor == pinned_rim_roots()[0]


def test_real_rims_expired_in_2025(driver_rim: bytes, vbios_rim: bytes) -> None:
    for rim in (driver_rim, vbios_rim):
        with pytest.raises(Expired, match="HCC RIM L4 Signer"):
            check(rim, at=LATE_AT)


def _alter_first_active_hash(document: bytes) -> bytes:
    root = etree.fromstring(document)
    for resource in root.iter(f"{{{SWID_NS}}}Resource"):
        if resource.get("active") == "True":
            resource.set(f"{{{SHA384_NS}}}Hash0", "ab" * 48)
            break
    return bytes(etree.tostring(root))


def test_altered_measurement_fails_the_signature(driver_rim: bytes) -> None:
    with pytest.raises(BadSignature):
        check(_alter_first_active_hash(driver_rim))


def test_unsigned_extra_payload_fails_the_signature(vbios_rim: bytes) -> None:
    root = etree.fromstring(vbios_rim)
    payload = root.find(f"{{{SWID_NS}}}Payload")
    assert payload is not None
    root.insert(0, etree.fromstring(etree.tostring(payload)))
    with pytest.raises((BadSignature, RimMalformed)):
        check(bytes(etree.tostring(root)))


def test_doctype_and_entities_are_refused(driver_rim: bytes) -> None:
    hostile = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>' + driver_rim
    with pytest.raises(RimMalformed, match="document type"):
        check(hostile)


def test_not_xml_is_malformed() -> None:
    with pytest.raises(RimMalformed):
        check(b"not xml at all")


def test_rim_chain_to_another_root_is_refused(driver_rim: bytes) -> None:
    other = issue("Other Root", ca=True)
    with pytest.raises(BadChain, match="trusted root"):
        check(driver_rim, roots=[other.cert])


# --- RIMs signed in the test ---------------------------------------------------------------------------------------

_TEMPLATE = """<SoftwareIdentity xmlns="{swid}" xmlns:h="{sha}" name="GH100" tagId="test-rim" version="1.0">
<Meta colloquialVersion="{version}" product="GH100"/>
<Payload>
<Resource type="Measurement" index="0" active="True" alternatives="2" h:Hash0="{a}" h:Hash1="{b}" size="48"/>
<Resource type="Measurement" index="1" active="False" alternatives="1" h:Hash0="{a}" size="48"/>
</Payload>
</SoftwareIdentity>"""


def _pem(issued: Issued) -> str:
    return issued.cert.public_bytes(serialization.Encoding.PEM).decode()


def sign_rim(signer: Issued, chain: list[Issued], *, version: str = "550.90.07") -> bytes:
    root = etree.fromstring(
        _TEMPLATE.format(swid=SWID_NS, sha=SHA384_NS, version=version, a="01" * 48, b="02" * 48).encode()
    )
    signed = XMLSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=SignatureMethod.ECDSA_SHA384,
        digest_algorithm=DigestAlgorithm.SHA384,
        c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_1,
    ).sign(root, key=signer.key, cert=[_pem(c) for c in chain])
    return bytes(etree.tostring(signed))


@pytest.fixture(scope="module")
def sim_pki() -> tuple[Issued, Issued]:
    root = issue("Test RIM Root", ca=True, organization=SIMULATOR_ORGANIZATION)
    leaf = issue("Test RIM Signer", issuer=root, organization=SIMULATOR_ORGANIZATION)
    return root, leaf


def test_generated_rim_verifies_under_an_allowed_simulator_root(sim_pki: tuple[Issued, Issued]) -> None:
    root, leaf = sim_pki
    rim = verify_rim(sign_rim(leaf, [leaf, root]), at=GEN_AT, roots=[root.cert], allow_simulator=True)
    assert rim.kind is RimKind.DRIVER
    assert rim.chain.simulated
    assert rim.measurements[0].alternatives == (b"\x01" * 48, b"\x02" * 48)
    assert not rim.measurements[1].active


def test_simulator_rim_root_is_refused_by_default(sim_pki: tuple[Issued, Issued]) -> None:
    root, leaf = sim_pki
    with pytest.raises(UntrustedSimulatorRoot):
        verify_rim(sign_rim(leaf, [leaf, root]), at=GEN_AT, roots=[root.cert], allow_simulator=False)


def test_rim_signed_by_a_key_other_than_its_keyinfo_leaf_fails(sim_pki: tuple[Issued, Issued]) -> None:
    root, leaf = sim_pki
    other = issue("Other signer", issuer=root, organization=SIMULATOR_ORGANIZATION)
    forged = sign_rim(Issued(leaf.cert, other.key), [leaf, root])
    with pytest.raises(BadSignature):
        verify_rim(forged, at=GEN_AT, roots=[root.cert], allow_simulator=True)


def test_rim_without_keyinfo_certificate_is_refused(sim_pki: tuple[Issued, Issued]) -> None:
    root, leaf = sim_pki
    document = sign_rim(leaf, [leaf, root])
    tree = etree.fromstring(document)
    for cert in tree.iter("{http://www.w3.org/2000/09/xmldsig#}X509Certificate"):
        cert.getparent().remove(cert)
    with pytest.raises(BadChain, match="no X509Certificate"):
        verify_rim(bytes(etree.tostring(tree)), at=GEN_AT, roots=[root.cert], allow_simulator=True)


def test_rim_of_unknown_version_form_is_malformed(sim_pki: tuple[Issued, Issued]) -> None:
    root, leaf = sim_pki
    with pytest.raises(RimMalformed, match="neither a driver nor a VBIOS"):
        verify_rim(sign_rim(leaf, [leaf, root], version="latest"), at=GEN_AT, roots=[root.cert], allow_simulator=True)


def test_vbios_version_form_is_a_vbios_rim(sim_pki: tuple[Issued, Issued]) -> None:
    root, leaf = sim_pki
    rim = verify_rim(
        sign_rim(leaf, [leaf, root], version="96.00.9F.00.01"), at=GEN_AT, roots=[root.cert], allow_simulator=True
    )
    assert rim.kind is RimKind.VBIOS


# --- fuzzing -------------------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2048))
def test_rim_parser_on_arbitrary_bytes(data: bytes) -> None:
    with pytest.raises(AttestationError):
        check(data)


@settings(max_examples=60, deadline=None, suppress_health_check=_FIXTURES)
@given(changes=st.lists(st.tuples(st.integers(0, 20_000), st.integers(0, 255)), min_size=1, max_size=4))
def test_rim_verifier_on_mutated_real_rims(driver_rim: bytes, changes: list[tuple[int, int]]) -> None:
    data = bytearray(driver_rim)
    for offset, value in changes:
        data[offset % len(data)] = value
    with contextlib.suppress(AttestationError):
        check(bytes(data))


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="<>/=\"' abcdefgxyzRsourceMeasurementPayloadMeta0123456789", max_size=400))
def test_rim_parser_on_xmlish_text(text: str) -> None:
    with pytest.raises((MalformedEvidence, BadChain, BadSignature)):
        check(text.encode())
