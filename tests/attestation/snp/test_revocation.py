"""The ARK's CRL: revoked ASK/ASVK, stale CRLs, CRLs from anyone but the chain's ARK."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from attestation.claims import Claims
from attestation.collateral import Collateral
from attestation.errors import BadChain, CollateralMissing, Revoked
from attestation.simulator.snp import SnpSimulator
from attestation.verify import verify
from tests.attestation.snp.conftest import SIM_AT, RealReport
from tests.tools.make_forgeries_snp import NOT_BEFORE

LAST, NEXT = datetime(2024, 12, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)


def check(
    sim: SnpSimulator, *crls: x509.CertificateRevocationList, signing_key: str = "vcek", at: datetime = SIM_AT
) -> Claims:
    made = sim.report(signing_key=signing_key)
    return verify(
        made.report,
        tee="sev-snp",
        at=at,
        roots=[sim.ark],
        collateral=Collateral(certificates=made.chain, signing_cert=made.signing_cert, crls=crls),
        unsafe_allow_simulator_roots=True,
    )


def test_a_crl_listing_the_ask_revokes(milan: SnpSimulator) -> None:
    with pytest.raises(Revoked, match="SEV-Milan"):
        check(milan, milan.crl((milan.ask.serial_number,), last_update=LAST, next_update=NEXT))


def test_a_crl_listing_the_asvk_revokes_vlek_reports_only(milan: SnpSimulator) -> None:
    crl = milan.crl((milan.asvk.serial_number,), last_update=LAST, next_update=NEXT)
    with pytest.raises(Revoked, match="SEV-VLEK-Milan"):
        check(milan, crl, signing_key="vlek")
    assert check(milan, crl).signer.revocation.startswith("checked against")


def test_a_clean_crl_is_reported_in_words(milan: SnpSimulator) -> None:
    claims = check(milan, milan.crl((12345,), last_update=LAST, next_update=NEXT))
    assert claims.signer.revocation == "checked against the ARK-Milan CRL of 2024-12-01T00:00:00+00:00"
    assert check(milan).signer.revocation == "not checked: no CRL given"


@pytest.mark.parametrize(
    ("last", "following"),
    [(datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC)), (datetime(2025, 6, 1, tzinfo=UTC), None)],
    ids=["expired", "issued-after-the-time-of-check"],
)
def test_a_crl_not_current_at_the_time_is_collateral_missing(
    milan: SnpSimulator, last: datetime, following: datetime | None
) -> None:
    crl = milan.crl((), last_update=last, next_update=following or last.replace(year=2026))
    with pytest.raises(CollateralMissing, match="fetch the CRL current at that time") as caught:
        check(milan, crl)
    assert caught.value.exit_code == 3


def test_a_crl_of_another_ark_is_a_bad_chain(sims: dict[str, SnpSimulator], milan: SnpSimulator) -> None:
    genoa = sims["Genoa"]
    with pytest.raises(BadChain, match="not from this chain's ARK"):
        check(milan, genoa.crl((), last_update=LAST, next_update=NEXT))


def test_a_crl_with_the_arks_name_but_another_key_is_a_bad_chain(
    sims: dict[str, SnpSimulator], milan: SnpSimulator
) -> None:
    impostor = SnpSimulator(sims["Genoa"].keys, product="Milan", not_before=NOT_BEFORE)
    assert impostor.ark.subject == milan.ark.subject
    with pytest.raises(BadChain, match="not signed by the ARK"):
        check(milan, impostor.crl((), last_update=LAST, next_update=NEXT))


def test_a_crl_not_signed_with_pss_is_a_bad_chain(milan: SnpSimulator) -> None:
    builder = x509.CertificateRevocationListBuilder().issuer_name(milan.ark.subject)
    crl = (
        builder.last_update(LAST)
        .next_update(NEXT)
        .sign(milan.keys.ark, hashes.SHA384(), rsa_padding=padding.PKCS1v15())
    )
    with pytest.raises(BadChain, match="RSASSA-PSS"):
        check(milan, crl)


def test_a_simulator_crl_cannot_revoke_a_real_chain(gosevguest: RealReport, milan: SnpSimulator) -> None:
    crl = milan.crl((gosevguest.ask.serial_number,), last_update=LAST, next_update=NEXT)
    collateral = Collateral(signing_cert=gosevguest.vcek, crls=(crl,))
    with pytest.raises(BadChain, match="not from this chain's ARK"):
        verify(gosevguest.report, tee="sev-snp", at=SIM_AT, collateral=collateral)
