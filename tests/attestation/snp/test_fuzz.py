"""Property tests: whatever the bytes, the parser and the verifier raise only AttestationError subclasses."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestation.collateral import Collateral
from attestation.errors import AttestationError, BadSignature, MalformedEvidence
from attestation.tee.sev_snp import SevSnpVerifier, parse_report
from attestation.tee.sev_snp.report import REPORT_SIZE
from attestation.verify import verify
from tests.attestation.snp.conftest import REAL_AT, RealReport

_FIXTURES = [HealthCheck.function_scoped_fixture]
Mutations = list[tuple[int, int]]
mutations = st.lists(st.tuples(st.integers(0, REPORT_SIZE - 1), st.integers(0, 255)), min_size=1, max_size=6)


def mutate(report: bytes, changes: Mutations) -> bytes:
    data = bytearray(report)
    for offset, value in changes:
        data[offset] = value
    return bytes(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=REPORT_SIZE + 16))
def test_parser_on_arbitrary_bytes(data: bytes) -> None:
    with contextlib.suppress(MalformedEvidence):
        parse_report(data)


@settings(max_examples=300, deadline=None, suppress_health_check=_FIXTURES)
@given(changes=mutations)
def test_parser_and_decode_on_mutated_real_reports(trustee: RealReport, changes: Mutations) -> None:
    data = mutate(trustee.report, changes)
    try:
        fields = SevSnpVerifier().decode(data)
    except MalformedEvidence:
        return
    assert fields["version"] in (2, 3, 4, 5)


@settings(max_examples=200, deadline=None, suppress_health_check=_FIXTURES)
@given(changes=mutations)
def test_verify_on_mutated_real_reports(trustee: RealReport, changes: Mutations) -> None:
    data = mutate(trustee.report, changes)
    try:
        claims = verify(data, tee="sev-snp", at=REAL_AT, collateral=Collateral(signing_cert=trustee.vcek))
    except AttestationError as error:
        assert data != trustee.report, error.message
        return
    # A mutation can only pass if it changed nothing the signature covers, i.e. nothing at all.
    assert data == trustee.report
    assert claims.vendor["guest_svn"] == 4


@settings(max_examples=100, deadline=None, suppress_health_check=_FIXTURES)
@given(r=st.integers(0, 2**576 - 1), s=st.integers(0, 2**576 - 1))
def test_verify_on_arbitrary_signatures(trustee: RealReport, r: int, s: int) -> None:
    data = trustee.report[:0x2A0] + r.to_bytes(72, "little") + s.to_bytes(72, "little") + trustee.report[0x330:]
    try:
        verify(data, tee="sev-snp", at=REAL_AT, collateral=Collateral(signing_cert=trustee.vcek))
    except BadSignature:
        return
    assert data == trustee.report
