"""The two real Milan reports of MANIFEST §3, their chains, and the Genoa/Turin bundles."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from attestation._x509 import load_certificate_der, load_certificates
from attestation.claims import Tee
from attestation.collateral import Collateral
from attestation.errors import BadChain, BadSignature, CertificateMismatch, CollateralMissing, Expired, NotYetValid
from attestation.roots import pinned_roots
from attestation.tee.sev_snp import SevSnpVerifier
from attestation.tee.sev_snp.chain import common_name, verify_pss_link, walk_chain
from attestation.verify import verify
from tests.attestation.snp.conftest import REAL_AT, RealReport

ARK_MILAN_SHA256 = "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd"
EXPECTED = {
    "gosevguest": {
        "version": 2,
        "guest_svn": 0,
        "policy": 0xB0000,
        "vmpl": 0,
        "report_data": bytes.fromhex("0102030405") + bytes(59),
        "measurement": "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01",
        "tcb": {"bootloader": 2, "tee": 0, "snp": 5, "microcode": 68},
        "chip_id": "3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea4"
        "64cdce40c05f63c9b610c5068b006b5d",
        "id_key_digest": bytes(48),
        "debug": True,
    },
    "trustee": {
        "version": 2,
        "guest_svn": 4,
        "policy": 0x3001F,
        "vmpl": 0,
        "report_data": bytes.fromhex("ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e2") + bytes(32),
        "measurement": "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c",
        "tcb": {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115},
        "chip_id": "c38427a30d4c7af9",
        "id_key_digest": bytes.fromhex(
            "0356215882a825279a85b300b0b742931d113bf7e32dde2e50ffde7ec743ca491ecdd7f336dc28a6e0b2bb57af7a44a3"
        ),
        "debug": False,
    },
}


def real(request: pytest.FixtureRequest, name: str) -> RealReport:
    value: RealReport = request.getfixturevalue(name)
    return value


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("with_bundle", [True, False], ids=["bundle", "pinned-only"])
def test_real_report_verifies_with_the_claims_of_the_manifest(
    request: pytest.FixtureRequest, name: str, with_bundle: bool
) -> None:
    sample, expected = real(request, name), EXPECTED[name]
    bundle = sample.bundle if with_bundle else ()
    claims = verify(
        sample.report,
        tee="sev-snp",
        at=REAL_AT,
        collateral=Collateral(certificates=bundle, signing_cert=sample.vcek),
    )
    assert claims.platform == "amd-sev-snp/Milan"
    assert claims.measurements["measurement"].hex() == expected["measurement"]
    assert claims.report_data == expected["report_data"]
    assert claims.nonce is None and claims.issued_at is None
    assert dict(claims.tcb) == expected["tcb"]
    assert claims.debug is expected["debug"]
    assert claims.hardware_id is not None and claims.hardware_id.startswith(str(expected["chip_id"]))
    for field in ("version", "guest_svn", "policy", "vmpl", "id_key_digest"):
        assert claims.vendor[field] == expected[field], field
    assert claims.vendor["reported_tcb"] == expected["tcb"]
    assert claims.vendor["signing_key"] == "vcek"
    assert claims.signer.root_sha256 == ARK_MILAN_SHA256
    assert [s.split(",")[0] for s in claims.signer.subjects] == ["CN=SEV-VCEK", "CN=SEV-Milan", "CN=ARK-Milan"]
    assert claims.signer.simulated is False
    assert claims.signer.revocation == "not checked: no CRL given"


def test_byte_42_altered_is_a_bad_signature(trustee: RealReport) -> None:
    altered = bytearray(trustee.report)
    altered[42] ^= 0x01
    with pytest.raises(BadSignature):
        verify(bytes(altered), tee="sev-snp", at=REAL_AT, collateral=Collateral(signing_cert=trustee.vcek))


def test_another_chips_vcek_does_not_belong_to_the_report(gosevguest: RealReport, trustee: RealReport) -> None:
    with pytest.raises(CertificateMismatch, match="TCB"):
        verify(gosevguest.report, tee="sev-snp", at=REAL_AT, collateral=Collateral(signing_cert=trustee.vcek))


@pytest.mark.parametrize(
    ("at", "error"),
    [(datetime(2029, 9, 24, 0, 55, 29, tzinfo=UTC), Expired), (datetime(2022, 9, 24, tzinfo=UTC), NotYetValid)],
)
def test_outside_the_vcek_window(gosevguest: RealReport, at: datetime, error: type[Exception]) -> None:
    with pytest.raises(error):
        verify(gosevguest.report, tee="sev-snp", at=at, collateral=Collateral(signing_cert=gosevguest.vcek))


def test_a_report_states_no_time(gosevguest: RealReport) -> None:
    with pytest.raises(CollateralMissing, match="pass an explicit time"):
        verify(gosevguest.report, tee="sev-snp", at=None, collateral=Collateral(signing_cert=gosevguest.vcek))


def test_no_vcek_and_offline_is_collateral_missing(gosevguest: RealReport) -> None:
    with pytest.raises(CollateralMissing, match="offline") as caught:
        verify(gosevguest.report, tee="sev-snp", at=REAL_AT)
    assert caught.value.exit_code == 3


def test_another_products_ark_as_root_is_a_bad_chain(
    gosevguest: RealReport, bundles: dict[str, tuple[x509.Certificate, ...]]
) -> None:
    genoa_ark = bundles["Genoa"][1]
    with pytest.raises(BadChain, match="not a trusted root"):
        verify(
            gosevguest.report,
            tee="sev-snp",
            at=REAL_AT,
            roots=[genoa_ark],
            collateral=Collateral(signing_cert=gosevguest.vcek),
        )


def test_an_ark_in_the_bundle_is_not_trusted_for_itself(
    gosevguest: RealReport, bundles: dict[str, tuple[x509.Certificate, ...]]
) -> None:
    collateral = Collateral(certificates=gosevguest.bundle, signing_cert=gosevguest.vcek)
    with pytest.raises(BadChain, match="given in the chain bundle but is not a trusted root"):
        SevSnpVerifier().verify(
            gosevguest.report,
            at=REAL_AT,
            roots=[bundles["Genoa"][1]],
            collateral=collateral,
            fetcher=None,
            allow_simulator=False,
        )


def test_another_products_ask_is_a_bad_chain(
    gosevguest: RealReport, bundles: dict[str, tuple[x509.Certificate, ...]]
) -> None:
    genoa_ask = bundles["Genoa"][0]
    with pytest.raises(BadChain, match="SEV-Genoa"):
        SevSnpVerifier().verify(
            gosevguest.report,
            at=REAL_AT,
            roots=[gosevguest.ark],
            collateral=Collateral(certificates=(genoa_ask,), signing_cert=gosevguest.vcek),
            fetcher=None,
            allow_simulator=False,
        )


@pytest.mark.parametrize("product", ["Milan", "Genoa", "Turin"])
def test_bundles_verify_through_the_walker(bundles: dict[str, tuple[x509.Certificate, ...]], product: str) -> None:
    ask, ark, asvk = bundles[product]
    assert (common_name(ask), common_name(ark), common_name(asvk)) == (
        f"SEV-{product}",
        f"ARK-{product}",
        f"SEV-VLEK-{product}",
    )
    verify_pss_link(ark, ark)
    verify_pss_link(ask, ark)
    verify_pss_link(asvk, ark)
    assert ark in pinned_roots(Tee.SEV_SNP)


def test_a_link_to_another_products_ark_fails(bundles: dict[str, tuple[x509.Certificate, ...]]) -> None:
    with pytest.raises(BadChain):
        verify_pss_link(bundles["Milan"][0], bundles["Genoa"][1])


def test_the_walker_names_the_product(trustee: RealReport, bundles: dict[str, tuple[x509.Certificate, ...]]) -> None:
    arks = [bundle[1] for bundle in bundles.values()]
    chain = walk_chain(trustee.vcek, candidates=trustee.bundle, roots=arks, at=REAL_AT, allow_simulator=False)
    assert (chain.product, chain.issues, chain.intermediate) == ("Milan", "vcek", trustee.ask)


def test_serial_zero_vcek_loads_without_warnings_but_the_raw_loader_warns(vectors: Path) -> None:
    # Every real VCEK has serial number 0, which RFC 5280 forbids; cryptography warns on loading (and plans to
    # refuse). attestation._x509 silences exactly that warning, so filterwarnings=error does not fail verification.
    der = (vectors / "amd-sev-snp/gosevguest-milan-vcek.der").read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vcek = load_certificate_der(der, "VCEK")
        verify_pss_link(
            vcek, load_certificates((vectors / "amd-sev-snp/gosevguest-ask-ark-milan.pem").read_bytes(), "bundle")[0]
        )
    with pytest.warns(CryptographyDeprecationWarning, match="serial number"):
        x509.load_der_x509_certificate(der)
    # Each later read of the serial warns again: the verifier never reads a VCEK's serial (CRLs list ASKs only).
    with pytest.warns(CryptographyDeprecationWarning, match="serial number"):
        assert vcek.serial_number == 0
