"""Appraisal of claims against reference values: one result per check, typed errors on failure."""

from __future__ import annotations

import pytest

from attestation import (
    DebugNotAllowed,
    NonceMismatch,
    ReferenceValues,
    ReferenceValuesInvalid,
    ReferenceValueViolation,
    appraise,
)
from tests.attestation.core.claims_factory import CHIP_ID, MEASUREMENT, PCR0, nitro_claims, snp_claims


def refs(text: str) -> ReferenceValues:
    return ReferenceValues.from_yaml(text)


def test_no_reference_values_checks_debug_only() -> None:
    appraisal = appraise(nitro_claims())
    assert appraisal.ok
    assert [r.name for r in appraisal.results] == ["debug"]
    appraisal.raise_for_failure()


def test_debug_is_refused_unless_allowed() -> None:
    appraisal = appraise(nitro_claims(debug=True))
    assert not appraisal.ok
    with pytest.raises(DebugNotAllowed, match="debug mode"):
        appraisal.raise_for_failure()
    assert appraise(nitro_claims(debug=True), allow_debug=True).ok
    allowing = refs(f"allow_debug: true\nnitro:\n  pcrs:\n    0: '{'00' * 48}'\n")
    assert appraise(nitro_claims(debug=True), allowing).ok


def test_nitro_nonce_must_equal_the_nonce_field() -> None:
    assert appraise(nitro_claims(nonce=b"abc"), nonce=b"abc").ok
    failed = appraise(nitro_claims(nonce=b"abc"), nonce=b"abd")
    with pytest.raises(NonceMismatch, match="expected 616264"):
        failed.raise_for_failure()
    with pytest.raises(NonceMismatch, match="carries no nonce"):
        appraise(nitro_claims(nonce=None), nonce=b"abc").raise_for_failure()
    # user_data is not a nonce: a Nitro document without a nonce never matches one, whatever its user_data.
    with pytest.raises(NonceMismatch):
        appraise(nitro_claims(nonce=None, report_data=b"abc"), nonce=b"abc").raise_for_failure()


def test_an_empty_nonce_is_refused() -> None:
    with pytest.raises(ValueError, match="empty nonce"):
        appraise(snp_claims(report_data=bytes(64)), nonce=b"")


def test_snp_nonce_is_report_data_with_zero_padding() -> None:
    assert appraise(snp_claims(), nonce=b"\x01\x02").ok
    assert appraise(snp_claims(), nonce=b"\x01\x02" + bytes(62)).ok
    assert not appraise(snp_claims(), nonce=b"\x01").ok
    assert not appraise(snp_claims(), nonce=b"\x01\x02\x03").ok
    assert not appraise(snp_claims(), nonce=bytes(65)).ok


def test_nitro_pcrs_one_or_many_values() -> None:
    good = refs(f"nitro:\n  pcrs:\n    0: {PCR0.hex()}\n    1: ['{'11' * 48}', '{'01' * 48}']\n")
    appraisal = appraise(nitro_claims(), good)
    assert appraisal.ok, appraisal.failures
    assert [r.name for r in appraisal.results] == ["debug", "nitro.pcr0", "nitro.pcr1"]
    bad = refs(f"nitro:\n  pcrs:\n    2: '{'ff' * 48}'\n")
    with pytest.raises(ReferenceValueViolation, match=r"nitro.pcr2: 0202.* is not an accepted value"):
        appraise(nitro_claims(), bad).raise_for_failure()


def test_every_failure_is_listed() -> None:
    bad = refs(f"nitro:\n  pcrs:\n    0: '{'ff' * 48}'\n    1: '{'ff' * 48}'\n")
    appraisal = appraise(nitro_claims(debug=True), bad, nonce=b"x")
    assert [r.name for r in appraisal.failures] == ["debug", "nonce", "nitro.pcr0", "nitro.pcr1"]
    with pytest.raises(DebugNotAllowed) as caught:
        appraisal.raise_for_failure()
    assert "nitro.pcr1" in caught.value.message


def test_reference_values_for_another_tee_fail_closed() -> None:
    only_snp = refs(f"sev-snp:\n  measurement: {MEASUREMENT.hex()}\n")
    with pytest.raises(ReferenceValueViolation, match="no expected values for nitro"):
        appraise(nitro_claims(), only_snp).raise_for_failure()
    with pytest.raises(ReferenceValueViolation, match="no expected values for sev-snp"):
        appraise(snp_claims(), refs("allow_debug: false")).raise_for_failure()


def test_snp_reference_values_all_pass() -> None:
    text = f"""
sev_snp:
  measurement: [{"ff" * 48}, {MEASUREMENT.hex()}]
  minimum_tcb: {{bootloader: 3, tee: 0, snp: 8, microcode: 115}}
  policy: {{smt: true, migrate_ma: false, minimum_abi: [1, 51]}}
  maximum_vmpl: 0
  chip_ids: [{CHIP_ID.hex()}]
  host_data: '{"00" * 32}'
  id_key_digests: '{"00" * 48}'
  author_key_digests: ['{"00" * 48}']
  family_id: '{"00" * 16}'
  image_id: '{"00" * 16}'
  minimum_guest_svn: 4
"""
    appraisal = appraise(snp_claims(), refs(text))
    assert appraisal.ok, appraisal.failures
    assert len(appraisal.results) == 1 + 1 + 4 + 3 + 1 + 1 + 1 + 5


@pytest.mark.parametrize(
    ("yaml_text", "failing"),
    [
        ("minimum_tcb: {snp: 9}", "sev-snp.minimum-tcb.snp"),
        ("minimum_tcb: {fmc: 1}", "sev-snp.minimum-tcb.fmc"),
        ("policy: {smt: false}", "sev-snp.policy.smt"),
        ("policy: {minimum_abi: [1, 52]}", "sev-snp.policy.minimum-abi"),
        ("maximum_vmpl: 0", None),
        ("chip_ids: ['00']", "sev-snp.chip-id"),
        ("host_data: '01'", "sev-snp.host-data"),
        ("minimum_guest_svn: 5", "sev-snp.guest-svn"),
        ("measurement: '00'", "sev-snp.measurement"),
    ],
)
def test_snp_reference_value_violations(yaml_text: str, failing: str | None) -> None:
    appraisal = appraise(snp_claims(), refs("sev-snp:\n  " + yaml_text))
    assert [r.name for r in appraisal.failures] == ([] if failing is None else [failing])


def test_snp_vmpl_above_maximum() -> None:
    appraisal = appraise(snp_claims(vmpl=2), refs("sev-snp: {maximum_vmpl: 1}"))
    assert [r.name for r in appraisal.failures] == ["sev-snp.vmpl"]


@pytest.mark.parametrize(
    "text",
    [
        "- a list",
        "nitro: {pcrs: {}}",
        "nitro: {pcrs: {0: zz}}",
        "nitro: {pcrs: {32: '00'}}",
        "nitro: {pcrs: {0: []}}",
        "unknown: 1",
        "sev-snp: {maximum_vmpl: 4}",
        "sev-snp: {policy: {debug: true}}",
        "nitro: [unclosed",
        "sev-snp: {host_data: 0000}",
        "sev-snp: {}",
        "sev-snp: {policy: {}}",
        "sev-snp: {minimum_tcb: {}}",
        "nitro: {pcrs: {0: 'aa'}}\nnitro: {pcrs: {1: 'bb'}}",
        "nitro: {pcrs: {0: 'aa', '0': 'bb'}}",
    ],
)
def test_bad_reference_files_are_typed_errors(text: str) -> None:
    with pytest.raises(ReferenceValuesInvalid):
        ReferenceValues.from_yaml(text)


def test_reference_values_load_from_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "refs.yaml"
    path.write_text(f"nitro:\n  pcrs:\n    0: {PCR0.hex()}\n")
    assert ReferenceValues.load(path).nitro is not None
    with pytest.raises(ReferenceValuesInvalid, match="cannot read"):
        ReferenceValues.load(tmp_path / "missing.yaml")
