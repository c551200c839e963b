"""NitroVerifier on the real AWS documents, at the validity boundaries, and on hand-made malformed variants."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from attestation import _cbor
from attestation.claims import Claims, Tee
from attestation.collateral import Collateral
from attestation.errors import (
    BadChain,
    BadSignature,
    CertificateMismatch,
    Expired,
    MalformedEvidence,
    NotYetValid,
)
from attestation.simulator.nitro import NitroSimulator
from attestation.tee.nitro import REVOCATION, NitroVerifier
from attestation.verify import verifier_for, verify
from tests.attestation.nitro.conftest import (
    REAL_NOT_AFTER,
    REAL_NOT_BEFORE,
    REAL_TIMESTAMP,
    SIM_TIMESTAMP,
    envelope,
    payload_of,
    sign_raw,
)

PCR0 = "e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a"
PCR1 = "0343b056cd8485ca7890ddd833476d78460aed2aa161548e4e26bedf321726696257d623e8805f3f605946b3d8b0c6aa"
PCR2 = "d5dcbdea0aa39c802f9d55ced2ea6e4d74ecec5f08fe40c508882639c9090642669106a062a3e24ee2805a3024b9b75c"
PCR4 = "45706d7b621e4620a332e147a5ddb000b049f73d47d3e61f6b03d2069152d4df6a4a786ad1c10102b955799a9dc96b44"
AWS_ROOT_SHA256 = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
ZERO_PCR = bytes(48)
SECOND = timedelta(seconds=1)


def _verify_real(document: bytes, at: datetime | None = None) -> Claims:
    return verify(document, tee=Tee.NITRO, at=at)


def _verify_sim(document: bytes, sim: NitroSimulator, at: datetime | None = None) -> Claims:
    return verify(document, tee="nitro", at=at, roots=[sim.root], unsafe_allow_simulator_roots=True)


# --- the real documents ---------------------------------------------------------------------------------------


def test_real_document_verifies_at_its_timestamp(real_doc: bytes) -> None:
    claims = _verify_real(real_doc)
    assert claims.tee is Tee.NITRO
    assert claims.platform == "aws-nitro-enclaves"
    assert claims.hardware_id == "i-0a22e5c5f24d22174-enc0191cceb4289903f"
    assert claims.issued_at == REAL_TIMESTAMP
    assert list(claims.measurements) == [f"pcr{i}" for i in range(16)]
    assert claims.measurements["pcr0"].hex() == PCR0
    assert claims.measurements["pcr1"].hex() == PCR1
    assert claims.measurements["pcr2"].hex() == PCR2
    assert claims.measurements["pcr3"] == ZERO_PCR
    assert claims.measurements["pcr4"].hex() == PCR4
    assert claims.measurements["pcr8"] == ZERO_PCR
    assert claims.report_data == claims.nonce == b"\x01" * 1024
    assert claims.vendor["public_key"] == b"\x01" * 1024
    assert claims.debug is False
    assert claims.tcb == {}


def test_real_document_signer_and_vendor_fields(real_doc: bytes) -> None:
    claims = _verify_real(real_doc)
    assert claims.signer.root_sha256 == AWS_ROOT_SHA256
    assert claims.signer.simulated is False
    assert claims.signer.revocation == REVOCATION
    assert claims.signer.subjects[0].startswith("CN=i-0a22e5c5f24d22174-enc0191cceb4289903f.us-east-1.aws,")
    assert claims.signer.subjects[-1] == "CN=aws.nitro-enclaves,OU=AWS,O=Amazon,C=US"
    assert len(claims.signer.subjects) == 5
    assert set(claims.vendor) == {"module_id", "digest", "timestamp", "pcrs", "nonce", "user_data", "public_key"}
    assert claims.vendor["timestamp"] == 1725719859545
    assert claims.vendor["digest"] == "SHA384"
    pcrs = claims.vendor["pcrs"]
    assert isinstance(pcrs, Mapping)
    assert list(pcrs) == [str(i) for i in range(16)]
    assert pcrs["0"].hex() == PCR0
    assert claims.to_dict()["issued_at"] == "2024-09-07T14:37:39.545Z"


def test_real_debug_document_verifies_and_reports_debug(debug_doc: bytes) -> None:
    claims = _verify_real(debug_doc)
    assert claims.debug is True
    assert claims.hardware_id == "i-0a22e5c5f24d22174-enc0191ccebaf8feaba"
    assert claims.issued_at == datetime(2024, 9, 7, 14, 38, 6, 508_000, tzinfo=UTC)
    assert all(claims.measurements[f"pcr{i}"] == ZERO_PCR for i in (0, 1, 2))
    assert claims.measurements["pcr4"].hex() == PCR4
    assert claims.report_data == claims.nonce == claims.vendor["public_key"] == b"\x01" * 1024


def test_tagged_form_verifies(real_doc: bytes) -> None:
    assert real_doc[0] == 0x84  # untagged, as the Nitro Secure Module emits it
    assert _verify_real(b"\xd2" + real_doc) == _verify_real(real_doc)
    cose = NitroVerifier().decode(b"\xd2" + real_doc)["cose"]
    assert isinstance(cose, Mapping)
    assert cose["tagged"] is True


@pytest.mark.parametrize(
    ("at", "error"),
    [
        (REAL_NOT_BEFORE, None),
        (REAL_NOT_AFTER, None),
        (REAL_NOT_AFTER + SECOND, Expired),
        (REAL_NOT_BEFORE - SECOND, NotYetValid),
        (datetime(2024, 9, 7, 14, 37, 35, tzinfo=UTC), NotYetValid),
        (datetime(2049, 10, 28, 14, 28, 6, tzinfo=UTC), Expired),
    ],
)
def test_validity_boundaries(real_doc: bytes, at: datetime, error: type[Exception] | None) -> None:
    if error is None:
        assert _verify_real(real_doc, at).issued_at == REAL_TIMESTAMP
        return
    with pytest.raises(error) as caught:
        _verify_real(real_doc, at)
    assert type(caught.value) is error
    assert at.isoformat() in str(caught.value)


def test_exact_times_in_expiry_message(real_doc: bytes) -> None:
    with pytest.raises(
        Expired, match=r"expired at 2024-09-07T17:37:39\+00:00 \(checked at 2024-09-07T17:37:40\+00:00\)"
    ):
        _verify_real(real_doc, REAL_NOT_AFTER + SECOND)
    with pytest.raises(NotYetValid, match=r"not valid before 2024-09-07T14:37:36\+00:00"):
        _verify_real(real_doc, REAL_NOT_BEFORE - SECOND)


def test_non_utc_instant_is_compared_as_an_instant(real_doc: bytes) -> None:
    plus_two = datetime(2024, 9, 7, 19, 37, 39, tzinfo=timezone(timedelta(hours=2)))  # = REAL_NOT_AFTER
    assert _verify_real(real_doc, plus_two).debug is False
    with pytest.raises(Expired):
        _verify_real(real_doc, plus_two + SECOND)


def test_naive_instant_is_a_caller_error(real_doc: bytes) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _verify_real(real_doc, datetime(2024, 9, 7, 15, 0, 0))


def test_verifier_ignores_collateral_and_fetcher(real_doc: bytes, aws_root: x509.Certificate) -> None:
    claims = NitroVerifier().verify(
        real_doc, at=None, roots=[aws_root], collateral=Collateral(), fetcher=None, allow_simulator=False
    )
    assert claims.measurements["pcr0"].hex() == PCR0


def test_registered_for_nitro() -> None:
    verifier = verifier_for("nitro")
    assert isinstance(verifier, NitroVerifier)
    assert verifier.tee is Tee.NITRO


# --- decode and looks_like ------------------------------------------------------------------------------------


def test_decode_reports_every_field_without_verifying(real_doc: bytes, debug_doc: bytes) -> None:
    flipped = real_doc[:-1] + bytes([real_doc[-1] ^ 1])
    fields = NitroVerifier().decode(flipped)
    assert fields["module_id"] == "i-0a22e5c5f24d22174-enc0191cceb4289903f"
    assert fields["timestamp"] == 1725719859545
    assert dict(fields["pcrs"])["0"].hex() == PCR0  # type: ignore[arg-type]
    assert isinstance(fields["certificate"], bytes)
    assert isinstance(fields["cabundle"], tuple)
    assert len(fields["cabundle"]) == 4
    cose = fields["cose"]
    assert isinstance(cose, dict)
    assert cose == {"tagged": False, "protected": {"1": -35}, "unprotected": {}, "signature": flipped[-96:]}
    assert NitroVerifier().decode(debug_doc)["module_id"] == "i-0a22e5c5f24d22174-enc0191ccebaf8feaba"


def test_decode_works_on_an_expired_document(real_doc: bytes) -> None:
    with pytest.raises(Expired):
        _verify_real(real_doc, datetime(2030, 1, 1, tzinfo=UTC))
    assert NitroVerifier().decode(real_doc)["digest"] == "SHA384"


def test_decode_refuses_what_is_not_a_document(real_doc: bytes) -> None:
    with pytest.raises(MalformedEvidence):
        NitroVerifier().decode(real_doc[:100])


def test_looks_like(real_doc: bytes, vectors: Any) -> None:
    verifier = NitroVerifier()
    assert verifier.looks_like(real_doc)
    assert verifier.looks_like(b"\xd2" + real_doc)
    assert not verifier.looks_like(real_doc[:-1])
    assert not verifier.looks_like(b"")
    assert not verifier.looks_like((vectors / "amd-sev-snp/trustee-milan-vcek-report.bin").read_bytes())
    assert not verifier.looks_like(_cbor.encode([b"", {}, _cbor.encode({"a": 1}), b""]))


# --- the COSE envelope ----------------------------------------------------------------------------------------


def _rewrap(document: bytes, *, protected: Any = None, unprotected: Any = None, signature: Any = None) -> bytes:
    original = envelope(document)
    return _cbor.encode(
        [
            original[0] if protected is None else protected,
            original[1] if unprotected is None else unprotected,
            original[2],
            original[3] if signature is None else signature,
        ]
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"protected": b""}, "no algorithm"),
        ({"protected": b"", "unprotected": {1: -35}}, "only in the unprotected header"),
        ({"protected": _cbor.encode({}), "unprotected": {1: -35}}, "only in the unprotected header"),
        ({"unprotected": {1: -35}}, "both protected and unprotected"),
        ({"protected": _cbor.encode({1: -7})}, "ES384"),
        ({"protected": _cbor.encode({1: -36})}, "ES384"),
        ({"protected": _cbor.encode({1: "ES384"})}, "ES384"),
        ({"protected": _cbor.encode({1: True})}, "ES384"),
        ({"protected": _cbor.encode([1, -35])}, "wrapping a map"),
        ({"protected": {1: -35}}, "wrapping a map"),
        ({"protected": _cbor.encode({1: -35, 2: [99]})}, "critical"),
        ({"protected": _cbor.encode({1: -35, 2: [[1]]})}, "critical"),  # unhashable labels: a TypeError once
        ({"protected": _cbor.encode({1: -35, 2: [{1: 2}]})}, "critical"),
        ({"protected": _cbor.encode({1: -35, 2: "alg"})}, "not an array"),
        ({"unprotected": {2: [1]}}, "must be in the protected header"),
        ({"unprotected": []}, "unprotected header is not a map"),
        ({"signature": b"\x00" * 95}, "95 bytes"),
        ({"signature": b"\x00" * 97}, "97 bytes"),
        ({"signature": None}, "signature is not a byte string"),
    ],
)
def test_header_and_signature_shape(real_doc: bytes, change: dict[str, Any], message: str) -> None:
    if change.get("signature", 0) is None:
        forged = _cbor.encode([*envelope(real_doc)[:3], None])
    else:
        forged = _rewrap(real_doc, **change)
    with pytest.raises(MalformedEvidence, match=message):
        _verify_real(forged)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (lambda parts: _cbor.encode(parts[:3]), "array of four"),
        (lambda parts: _cbor.encode([*parts, b""]), "array of four"),
        (lambda parts: _cbor.encode([parts[0], parts[1], None, parts[3]]), "attached byte string"),
        (lambda parts: _cbor.encode({"0": parts[0]}), "array of four"),
        (lambda parts: _cbor.encode(_cbor.Tagged(98, parts)), "tag 98"),
        (lambda parts: _cbor.encode(_cbor.Tagged(18, _cbor.Tagged(18, parts))), "tag 18"),
        (lambda parts: _cbor.encode(parts) + b"\x00", "trailing"),
    ],
)
def test_envelope_shape(real_doc: bytes, document: Any, message: str) -> None:
    with pytest.raises(MalformedEvidence, match=message):
        _verify_real(document(envelope(real_doc)))


def test_flipped_signature_and_payload(real_doc: bytes) -> None:
    with pytest.raises(BadSignature):
        _verify_real(real_doc[:-1] + bytes([real_doc[-1] ^ 0x80]))
    offset = real_doc.index(bytes.fromhex(PCR4))
    with pytest.raises(BadSignature):
        _verify_real(real_doc[:offset] + bytes([real_doc[offset] ^ 1]) + real_doc[offset + 1 :])


def test_oversized_document(real_doc: bytes) -> None:
    with pytest.raises(MalformedEvidence, match="262144"):
        _verify_real(real_doc + bytes(256 * 1024))


def test_critical_alg_is_understood(sim: NitroSimulator) -> None:
    payload = envelope(sim.document(timestamp=SIM_TIMESTAMP))[2]
    document = sign_raw(sim.keys.leaf, _cbor.encode({1: -35, 2: [1]}), {}, payload)
    assert _verify_sim(document, sim).issued_at == SIM_TIMESTAMP
    with pytest.raises(MalformedEvidence, match="critical"):
        _verify_sim(sign_raw(sim.keys.leaf, _cbor.encode({1: -35, 2: [1, 4]}), {}, payload), sim)


def test_other_header_parameters_are_tolerated(sim: NitroSimulator) -> None:
    payload = envelope(sim.document(timestamp=SIM_TIMESTAMP))[2]
    document = sign_raw(sim.keys.leaf, _cbor.encode({1: -35, 4: b"kid"}), {5: b"iv"}, payload)
    assert _verify_sim(document, sim).issued_at == SIM_TIMESTAMP


# --- payload fields (signed by the simulator, so the field check is what fails) --------------------------------


def _with_fields(sim: NitroSimulator, **changes: Any) -> bytes:
    payload = payload_of(sim.document(timestamp=SIM_TIMESTAMP, nonce=b"n"))
    for name, value in changes.items():
        if value is _DROP:
            del payload[name]
        else:
            payload[name] = value
    return sim.sign(_cbor.encode(payload))


_DROP = object()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"module_id": b"i-1"}, "module_id"),
        ({"module_id": ""}, "module_id"),
        ({"digest": "SHA256"}, "digest is 'SHA256'"),
        ({"digest": b"SHA384"}, "digest"),
        ({"timestamp": True}, "timestamp"),
        ({"timestamp": 0}, "timestamp"),
        ({"timestamp": -5}, "timestamp"),
        ({"timestamp": "1725719859545"}, "timestamp"),
        ({"timestamp": (1 << 64) - 1}, "timestamp"),
        ({"pcrs": {}}, "pcrs is not a map of 1 to 32"),
        ({"pcrs": [ZERO_PCR]}, "pcrs is not a map"),
        ({"pcrs": {i: ZERO_PCR for i in range(33)}}, "pcrs is not a map"),
        ({"pcrs": {0: ZERO_PCR, 1: ZERO_PCR, 2: ZERO_PCR, 32: ZERO_PCR}}, "index 32"),
        ({"pcrs": {0: ZERO_PCR, 1: ZERO_PCR, 2: ZERO_PCR, -1: ZERO_PCR}}, "index -1"),
        ({"pcrs": {0: ZERO_PCR, 1: ZERO_PCR, 2: ZERO_PCR, "3": ZERO_PCR}}, "index '3'"),
        ({"pcrs": {0: bytes(32), 1: ZERO_PCR, 2: ZERO_PCR}}, "PCR0 is not a 48-byte"),
        ({"pcrs": {0: bytes(64), 1: ZERO_PCR, 2: ZERO_PCR}}, "PCR0 is not a 48-byte"),
        ({"pcrs": {0: "00" * 48, 1: ZERO_PCR, 2: ZERO_PCR}}, "PCR0 is not a 48-byte"),
        ({"pcrs": {0: ZERO_PCR, 2: ZERO_PCR, 4: ZERO_PCR}}, "lacks PCR1"),
        ({"certificate": b""}, "certificate"),
        ({"certificate": [b"x"]}, "certificate"),
        ({"certificate": b"\x30" * 5000}, "certificate"),
        ({"certificate": b"not DER"}, "not a DER X.509 certificate"),
        ({"cabundle": []}, "cabundle"),
        ({"cabundle": b"x"}, "cabundle"),
        ({"cabundle": [b"x"] * 9}, "cabundle"),
        ({"cabundle": [b"not DER"]}, r"cabundle\[0\] is not a DER"),
        ({"cabundle": [1]}, r"cabundle\[0\]"),
        ({"nonce": b"\x00" * 1025}, "nonce"),
        ({"nonce": "text"}, "nonce"),
        ({"user_data": b"\x00" * 1025}, "user_data"),
        ({"public_key": 7}, "public_key"),
        ({"module_id": _DROP}, r"lacks the required fields \['module_id'\]"),
        ({"pcrs": _DROP, "cabundle": _DROP}, r"\['pcrs', 'cabundle'\]"),
        ({"extra": 1}, r"unknown fields \['extra'\]"),
    ],
)
def test_payload_field_types(sim: NitroSimulator, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedEvidence, match=message):
        _verify_sim(_with_fields(sim, **changes), sim)


def test_payload_that_is_not_a_map(sim: NitroSimulator) -> None:
    with pytest.raises(MalformedEvidence, match="not a CBOR map"):
        _verify_sim(sim.sign(_cbor.encode([1, 2])), sim)
    with pytest.raises(MalformedEvidence, match="map key of type list"):
        _verify_sim(sim.sign(bytes.fromhex("a1800100")), sim)
    with pytest.raises(MalformedEvidence, match="duplicate map key 'nonce'"):
        _verify_sim(sim.sign(b"\xa2\x65nonce\xf6\x65nonce\xf6"), sim)


def test_optional_fields_at_their_limits(sim: NitroSimulator) -> None:
    document = _with_fields(sim, nonce=b"\xff" * 1024, user_data=None, public_key=b"")
    claims = _verify_sim(document, sim)
    assert claims.nonce == b"\xff" * 1024
    assert claims.report_data is None
    assert claims.vendor["public_key"] == b""
    bare = _with_fields(sim, nonce=_DROP, user_data=_DROP, public_key=_DROP)
    claims = _verify_sim(bare, sim)
    assert (claims.nonce, claims.report_data, claims.vendor["user_data"]) == (None, None, None)


def test_pcr_map_may_be_sparse_and_unordered(sim: NitroSimulator) -> None:
    pcr = bytes(range(48))
    claims = _verify_sim(_with_fields(sim, pcrs={8: pcr, 2: pcr, 0: pcr, 1: ZERO_PCR}), sim)
    assert list(claims.measurements) == ["pcr0", "pcr1", "pcr2", "pcr8"]
    assert claims.debug is False


# --- the signing certificate and the chain ------------------------------------------------------------------


def _custom_leaf(
    sim: NitroSimulator,
    *,
    key: ec.EllipticCurvePrivateKey | None = None,
    ca: bool = False,
    usage: x509.KeyUsage | None = None,
    extra: x509.ExtensionType | None = None,
) -> bytes:
    reference = sim.leaf_certificate(timestamp=SIM_TIMESTAMP)
    public = (key or sim.keys.leaf).public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(reference.subject)
        .issuer_name(reference.issuer)
        .public_key(public)
        .serial_number(7)
        .not_valid_before(reference.not_valid_before_utc)
        .not_valid_after(reference.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(usage, critical=False)
    if extra is not None:
        builder = builder.add_extension(extra, critical=True)
    der = builder.sign(sim.keys.instance, hashes.SHA384()).public_bytes(Encoding.DER)
    return _with_fields(sim, certificate=der)


_SIGNING = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
_NOT_SIGNING = x509.KeyUsage(False, False, True, False, False, False, False, False, False)


def test_custom_leaf_like_aws_verifies(sim: NitroSimulator) -> None:
    assert _verify_sim(_custom_leaf(sim, usage=_SIGNING), sim).signer.simulated is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ca": True, "usage": _SIGNING}, "CA certificate"),
        ({"usage": _NOT_SIGNING}, "lacks digitalSignature"),
        ({"usage": None}, "missing required extension"),
        (
            {"usage": _SIGNING, "extra": x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4"), b"\x05\x00")},
            "unaccounted-for critical",
        ),
    ],
)
def test_leaf_policy(sim: NitroSimulator, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(BadChain, match=message):
        _verify_sim(_custom_leaf(sim, **kwargs), sim)


def test_leaf_must_hold_a_p384_key(sim: NitroSimulator) -> None:
    with pytest.raises(CertificateMismatch, match="P-384"):
        _verify_sim(_custom_leaf(sim, key=ec.generate_private_key(ec.SECP256R1()), usage=_SIGNING), sim)


def test_cabundle_with_a_certificate_off_the_path(sim: NitroSimulator) -> None:
    root = sim.root.public_bytes(Encoding.DER)
    payload = payload_of(sim.document(timestamp=SIM_TIMESTAMP))
    document = _with_fields(sim, cabundle=[root, *payload["cabundle"]])
    with pytest.raises(BadChain, match="off the path"):
        _verify_sim(document, sim)


def test_cabundle_missing_an_intermediate(sim: NitroSimulator) -> None:
    bundle = payload_of(sim.document(timestamp=SIM_TIMESTAMP))["cabundle"]
    with pytest.raises(BadChain, match=r"the signing certificate .* is issued by .*, not by cabundle\[2\]"):
        _verify_sim(_with_fields(sim, cabundle=bundle[:3]), sim)


def test_name_chained_bundle_with_wrong_keys(sim: NitroSimulator) -> None:
    # Same names, different keys: the order check passes, the path validation must not.
    other = NitroSimulator.from_keys(
        type(sim.keys)(
            sim.keys.root, sim.keys.regional, sim.keys.zonal, ec.generate_private_key(ec.SECP384R1()), sim.keys.leaf
        ),
        at=SIM_TIMESTAMP - timedelta(hours=1),
    )
    bundle = payload_of(sim.document(timestamp=SIM_TIMESTAMP))["cabundle"]
    swapped = [*bundle[:3], other.cabundle[3].public_bytes(Encoding.DER)]
    with pytest.raises(BadChain, match="does not validate"):
        _verify_sim(_with_fields(sim, cabundle=swapped), sim)


def test_no_roots_at_all(real_doc: bytes) -> None:
    with pytest.raises(BadChain, match="not one of the 0 trusted root"):
        verify(real_doc, tee="nitro", at=None, roots=[])


def test_roots_compared_by_der_not_by_name(real_doc: bytes, aws_root: x509.Certificate, sim: NitroSimulator) -> None:
    assert _verify_real(real_doc).signer.root_sha256 == AWS_ROOT_SHA256
    claims = verify(real_doc, tee="nitro", at=None, roots=[sim.root, aws_root])
    assert claims.signer.root_sha256 == AWS_ROOT_SHA256


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("a003020102", "a003020105", "not a valid X509 version"),  # x509.InvalidVersion, not a ValueError
        ("0603551d13", "0603551d0f", "Duplicate 2.5.29.15 extension"),  # x509.DuplicateExtension
        ("060355040b0c03", "06035504060c03", "length must be >= 2"),  # a 3-letter country: only a warning
        ("0c03415753", "0303415753", "BitString"),  # a TypeError from the name parser
    ],
)
def test_certificates_cryptography_chokes_on(sim: NitroSimulator, old: str, new: str, message: str) -> None:
    # Regressions found by fuzzing: each used to escape as something other than an AttestationError.
    bundle = list(payload_of(sim.document(timestamp=SIM_TIMESTAMP))["cabundle"])
    assert bytes.fromhex(old) in bundle[1]
    bundle[1] = bundle[1].replace(bytes.fromhex(old), bytes.fromhex(new), 1)
    with pytest.raises(
        MalformedEvidence, match=rf"cabundle\[1\] is not a DER X.509 certificate that parses: .*{message}"
    ):
        _verify_sim(_with_fields(sim, cabundle=bundle), sim)
