"""OCSP responses built in the test under a generated CA: good, revoked, hold, unknown, stale, wrong signer."""

from __future__ import annotations

from datetime import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from attestation.collateral import Collateral
from attestation.errors import BadChain, BadSignature, Expired, MalformedEvidence, NotYetValid, Revoked
from attestation.tee.nvidia import NvidiaGpuVerifier
from attestation.tee.nvidia.chain import ValidatedChain, validate_chain
from attestation.tee.nvidia.ocsp import GOOD, PARTIAL, UNCHECKED, OcspUnknown, check_ocsp
from attestation.verify import verify
from tests.attestation.nvidia.conftest import GEN_AT, GeneratedDevice, Issued, build_report, days, issue, make_device

THIS_UPDATE = GEN_AT - days(1)
NEXT_UPDATE = GEN_AT + days(6)


@pytest.fixture(scope="module")
def device() -> GeneratedDevice:
    return make_device()


@pytest.fixture(scope="module")
def chain(device: GeneratedDevice) -> ValidatedChain:
    return validate_chain(device.chain, [device.root.cert], at=GEN_AT, allow_simulator=True, what="test")


def response(
    cert: x509.Certificate,
    issuer: Issued,
    *,
    status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD,
    reason: x509.ReasonFlags | None = None,
    this_update: datetime = THIS_UPDATE,
    next_update: datetime | None = NEXT_UPDATE,
    signer: Issued | None = None,
    include: tuple[x509.Certificate, ...] = (),
) -> bytes:
    signer = signer or issuer
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=cert,
        issuer=issuer.cert,
        algorithm=hashes.SHA1(),
        cert_status=status,
        this_update=this_update,
        next_update=next_update,
        revocation_time=GEN_AT - days(10) if status is ocsp.OCSPCertStatus.REVOKED else None,
        revocation_reason=reason,
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer.cert)
    if include:
        builder = builder.certificates(list(include))
    return builder.sign(signer.key, hashes.SHA384()).public_bytes(serialization.Encoding.DER)


def both_good(device: GeneratedDevice) -> tuple[bytes, bytes]:
    return (
        response(device.leaf.cert, device.intermediate),
        response(device.intermediate.cert, device.root),
    )


def test_no_response_is_unchecked(chain: ValidatedChain) -> None:
    result = check_ocsp((), [chain], at=GEN_AT)
    assert result.status == UNCHECKED
    assert result.revocation == "not checked (no OCSP response)"


def test_every_certificate_good(device: GeneratedDevice, chain: ValidatedChain) -> None:
    result = check_ocsp(both_good(device), [chain], at=GEN_AT)
    assert result.status == GOOD
    assert result.missing == ()
    assert "all 2 certificates good" in result.revocation


def test_only_the_leaf_is_partial(device: GeneratedDevice, chain: ValidatedChain) -> None:
    result = check_ocsp((response(device.leaf.cert, device.intermediate),), [chain], at=GEN_AT)
    assert result.status == PARTIAL
    assert result.missing == (device.intermediate.cert.subject.rfc4514_string(),)


def test_response_for_another_certificate_is_not_counted(device: GeneratedDevice, chain: ValidatedChain) -> None:
    stranger = issue("Someone", issuer=device.intermediate)
    result = check_ocsp((response(stranger.cert, device.intermediate),), [chain], at=GEN_AT)
    assert result.status == UNCHECKED


def test_revoked(device: GeneratedDevice, chain: ValidatedChain) -> None:
    revoked = response(
        device.leaf.cert,
        device.intermediate,
        status=ocsp.OCSPCertStatus.REVOKED,
        reason=x509.ReasonFlags.key_compromise,
    )
    with pytest.raises(Revoked, match="key_compromise"):
        check_ocsp((revoked,), [chain], at=GEN_AT)


def test_hold_is_revoked_unless_allowed(device: GeneratedDevice, chain: ValidatedChain) -> None:
    held = response(
        device.leaf.cert,
        device.intermediate,
        status=ocsp.OCSPCertStatus.REVOKED,
        reason=x509.ReasonFlags.certificate_hold,
    )
    with pytest.raises(Revoked, match="certificate_hold"):
        check_ocsp((held,), [chain], at=GEN_AT)
    assert check_ocsp((held,), [chain], at=GEN_AT, allow_hold=True).status == PARTIAL


def test_unknown_is_could_not_verify(device: GeneratedDevice, chain: ValidatedChain) -> None:
    unknown = response(device.leaf.cert, device.intermediate, status=ocsp.OCSPCertStatus.UNKNOWN)
    with pytest.raises(OcspUnknown) as caught:
        check_ocsp((unknown,), [chain], at=GEN_AT)
    assert caught.value.exit_code == 3


def test_unsuccessful_response_is_could_not_verify(chain: ValidatedChain) -> None:
    failed = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER)
    with pytest.raises(OcspUnknown, match="TRY_LATER"):
        check_ocsp((failed.public_bytes(serialization.Encoding.DER),), [chain], at=GEN_AT)


def test_stale_response_is_expired(device: GeneratedDevice, chain: ValidatedChain) -> None:
    with pytest.raises(Expired, match="OCSP answer"):
        check_ocsp((response(device.leaf.cert, device.intermediate),), [chain], at=GEN_AT + days(7))


def test_response_from_the_future_is_not_yet_valid(device: GeneratedDevice, chain: ValidatedChain) -> None:
    future = response(device.leaf.cert, device.intermediate, this_update=GEN_AT + days(1), next_update=GEN_AT + days(2))
    with pytest.raises(NotYetValid):
        check_ocsp((future,), [chain], at=GEN_AT)


def test_response_without_next_update_is_refused(device: GeneratedDevice, chain: ValidatedChain) -> None:
    with pytest.raises(Expired, match="no nextUpdate"):
        check_ocsp((response(device.leaf.cert, device.intermediate, next_update=None),), [chain], at=GEN_AT)


def test_wrong_signer_is_refused(device: GeneratedDevice, chain: ValidatedChain) -> None:
    impostor = issue("Impostor OCSP", ca=True)
    forged = response(device.leaf.cert, device.intermediate, signer=impostor)
    with pytest.raises(BadChain, match="signed neither"):
        check_ocsp((forged,), [chain], at=GEN_AT)


def test_wrong_signer_in_the_issuers_name_is_a_bad_signature(device: GeneratedDevice, chain: ValidatedChain) -> None:
    good = bytearray(response(device.leaf.cert, device.intermediate))
    good[-1] ^= 1  # the last byte of the signature (no certificates follow it)
    with pytest.raises(BadSignature):
        check_ocsp((bytes(good),), [chain], at=GEN_AT)


def _responder(issuer: Issued, *, ocsp_signing: bool) -> Issued:
    usage = [ExtendedKeyUsageOID.OCSP_SIGNING if ocsp_signing else ExtendedKeyUsageOID.CLIENT_AUTH]
    return issue("Delegated OCSP responder", issuer=issuer, extensions=[(x509.ExtendedKeyUsage(usage), False)])


def test_delegated_responder(device: GeneratedDevice, chain: ValidatedChain) -> None:
    delegate = _responder(device.intermediate, ocsp_signing=True)
    good = response(device.leaf.cert, device.intermediate, signer=delegate, include=(delegate.cert,))
    assert check_ocsp((good,), [chain], at=GEN_AT).good == (device.leaf.cert.subject.rfc4514_string(),)


def test_delegate_without_ocsp_signing_is_refused(device: GeneratedDevice, chain: ValidatedChain) -> None:
    delegate = _responder(device.intermediate, ocsp_signing=False)
    forged = response(device.leaf.cert, device.intermediate, signer=delegate, include=(delegate.cert,))
    with pytest.raises(BadChain, match="not an OCSP signer"):
        check_ocsp((forged,), [chain], at=GEN_AT)


def test_delegate_of_another_issuer_is_refused(device: GeneratedDevice, chain: ValidatedChain) -> None:
    delegate = _responder(device.root, ocsp_signing=True)
    forged = response(device.leaf.cert, device.intermediate, signer=delegate, include=(delegate.cert,))
    with pytest.raises(BadChain):
        check_ocsp((forged,), [chain], at=GEN_AT)


def test_garbage_is_malformed(chain: ValidatedChain) -> None:
    with pytest.raises(MalformedEvidence):
        check_ocsp((b"\x30\x03\x0a\x01\x00garbage",), [chain], at=GEN_AT)


def test_verifier_reports_ocsp_good_only_when_every_certificate_is_covered(device: GeneratedDevice) -> None:
    report = build_report(device.leaf.key)
    collateral = Collateral(certificates=device.chain, ocsp=both_good(device))
    claims = verify(
        report,
        tee="nvidia-gpu",
        at=GEN_AT,
        roots=[device.root.cert],
        collateral=collateral,
        unsafe_allow_simulator_roots=True,
    )
    assert claims.vendor["ocsp"] == GOOD
    assert claims.signer.revocation.startswith("OCSP: all 2 certificates good")
    partial = Collateral(certificates=device.chain, ocsp=both_good(device)[:1])
    claims = verify(
        report,
        tee="nvidia-gpu",
        at=GEN_AT,
        roots=[device.root.cert],
        collateral=partial,
        unsafe_allow_simulator_roots=True,
    )
    assert claims.vendor["ocsp"] == PARTIAL


def test_verifier_allow_hold_option(device: GeneratedDevice) -> None:
    held = response(
        device.leaf.cert,
        device.intermediate,
        status=ocsp.OCSPCertStatus.REVOKED,
        reason=x509.ReasonFlags.certificate_hold,
    )
    report = build_report(device.leaf.key)
    collateral = Collateral(certificates=device.chain, ocsp=(held,))
    kwargs = {"tee": "nvidia-gpu", "at": GEN_AT, "roots": [device.root.cert], "collateral": collateral}
    with pytest.raises(Revoked):
        verify(report, unsafe_allow_simulator_roots=True, **kwargs)  # type: ignore[arg-type]
    claims = verify(report, unsafe_allow_simulator_roots=True, verifier=NvidiaGpuVerifier(allow_hold=True), **kwargs)  # type: ignore[arg-type]
    assert claims.vendor["ocsp"] == PARTIAL
