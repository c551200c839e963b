"""AMD KDS: URL builders, cache policy, and fetching through a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from attestation.claims import Claims, Tee
from attestation.collateral import Collateral
from attestation.errors import CollateralMissing, FetchFailed, Revoked
from attestation.fetch import CachingFetcher, HttpFetcher
from attestation.roots import pinned_intermediates, pinned_roots
from attestation.simulator.snp import SnpSimulator
from attestation.tee.sev_snp import Product, SevSnpVerifier, TcbVersion
from attestation.tee.sev_snp.certs import KeyKind
from attestation.tee.sev_snp.kds import (
    CRL_MAX_AGE,
    KDS_URL,
    cert_chain_url,
    crl_url,
    fetch_cert_chain,
    fetch_crl,
    kds_cache_max_age,
    vcek_url,
)
from tests.attestation.http_server import LoopbackServer, Route, loopback_server
from tests.attestation.snp.conftest import REAL_AT, SIM_AT, RealReport

TRUSTEE_TCB = "blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115"


def test_vcek_url_milan() -> None:
    chip = bytes(range(64))
    url = vcek_url(Product.MILAN, chip, TcbVersion(bootloader=2, tee=0, snp=5, microcode=68))
    assert url == f"{KDS_URL}/vcek/v1/Milan/{chip.hex()}?blSPL=02&teeSPL=00&snpSPL=05&ucodeSPL=68"


def test_vcek_url_turin_uses_fmc_and_the_first_8_bytes_of_the_chip_id() -> None:
    chip = bytes(range(1, 9)) + bytes(56)
    url = vcek_url(
        Product.TURIN, chip, TcbVersion(bootloader=1, tee=2, snp=3, microcode=4, fmc=5), base_url="http://m/"
    )
    assert url == "http://m/vcek/v1/Turin/0102030405060708?fmcSPL=05&blSPL=01&teeSPL=02&snpSPL=03&ucodeSPL=04"
    with pytest.raises(ValueError, match="FMC"):
        vcek_url(Product.TURIN, chip, TcbVersion(bootloader=1, tee=2, snp=3, microcode=4))


def test_chain_and_crl_urls() -> None:
    assert cert_chain_url(Product.GENOA, KeyKind.VCEK) == f"{KDS_URL}/vcek/v1/Genoa/cert_chain"
    assert cert_chain_url(Product.GENOA, KeyKind.VLEK) == f"{KDS_URL}/vlek/v1/Genoa/cert_chain"
    assert crl_url(Product.MILAN, KeyKind.VCEK, base_url="http://x") == "http://x/vcek/v1/Milan/crl"
    assert crl_url(Product.TURIN, KeyKind.VLEK) == f"{KDS_URL}/vlek/v1/Turin/crl"


def test_cache_policy() -> None:
    chip = bytes(64)
    assert kds_cache_max_age(vcek_url(Product.MILAN, chip, TcbVersion(1, 2, 3, 4))) is None
    assert kds_cache_max_age(cert_chain_url(Product.MILAN, KeyKind.VLEK)) is None
    assert kds_cache_max_age(crl_url(Product.MILAN, KeyKind.VCEK)) == CRL_MAX_AGE
    assert kds_cache_max_age("https://example.com/other") == CRL_MAX_AGE


def vcek_path(sample: RealReport) -> str:
    return f"/vcek/v1/Milan/{sample.report[0x1A0:0x1E0].hex()}?{TRUSTEE_TCB}"


def verify_online(
    server: LoopbackServer,
    sample_report: bytes,
    cache: Path,
    *,
    fetch_crls: bool = False,
    signing_cert: x509.Certificate | None = None,
) -> Claims:
    fetcher = CachingFetcher(HttpFetcher(timeout=5), cache, max_age=kds_cache_max_age)
    return SevSnpVerifier(kds_base_url=server.base_url, fetch_crls=fetch_crls).verify(
        sample_report,
        at=REAL_AT,
        roots=pinned_roots(Tee.SEV_SNP),
        collateral=Collateral(certificates=pinned_intermediates(Tee.SEV_SNP), signing_cert=signing_cert),
        fetcher=fetcher,
        allow_simulator=False,
    )


def test_the_vcek_is_fetched_once_then_cached(trustee: RealReport, tmp_path: Path) -> None:
    der = trustee.vcek.public_bytes(serialization.Encoding.DER)
    with loopback_server({vcek_path(trustee): Route(body=der)}) as server:
        claims = verify_online(server, trustee.report, tmp_path)
        assert server.requests == [vcek_path(trustee)]
        again = verify_online(server, trustee.report, tmp_path)
        assert server.requests == [vcek_path(trustee)]  # answered from the on-disk cache
    assert claims.tcb == again.tcb == {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}


def test_a_version_2_report_tries_the_trusted_products_in_turn(gosevguest: RealReport, tmp_path: Path) -> None:
    chip = gosevguest.report[0x1A0:0x1E0].hex()
    tcb = "blSPL=02&teeSPL=00&snpSPL=05&ucodeSPL=68"
    genoa_path = f"/vcek/v1/Genoa/{chip}?{tcb}"
    der = gosevguest.vcek.public_bytes(serialization.Encoding.DER)
    with loopback_server({f"/vcek/v1/Milan/{chip}?{tcb}": Route(404), genoa_path: Route(body=der)}) as server:
        # KDS would never give Milan's VCEK under Genoa; the chain then says what it really is.
        claims = verify_online(server, gosevguest.report, tmp_path)
        assert server.requests == [f"/vcek/v1/Milan/{chip}?{tcb}", genoa_path]
    assert claims.platform == "amd-sev-snp/Milan"


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (Route(404), "HTTP 404"),
        (Route(429, headers={"Retry-After": "10"}), "rate limited"),
        (Route(body=b"<html>"), "unexpected answer"),
    ],
    ids=["404", "429", "not-a-certificate"],
)
def test_kds_failures_are_fetch_failed(trustee: RealReport, tmp_path: Path, route: Route, message: str) -> None:
    with loopback_server({vcek_path(trustee): route}) as server, pytest.raises(FetchFailed, match=message) as caught:
        verify_online(server, trustee.report, tmp_path)
    assert caught.value.exit_code == 3


def test_a_vlek_cannot_be_fetched(milan: SnpSimulator, tmp_path: Path) -> None:
    with loopback_server() as server, pytest.raises(CollateralMissing, match="VLEK"):
        verify_online(server, milan.report(signing_key="vlek").report, tmp_path)
    assert server.requests == []


def test_a_masked_chip_id_cannot_be_looked_up(milan: SnpSimulator, tmp_path: Path) -> None:
    with loopback_server() as server, pytest.raises(CollateralMissing, match="masked"):
        verify_online(server, milan.report(chip_id=bytes(64)).report, tmp_path)


def test_an_unreachable_crl_fails_closed_when_crls_are_fetched(trustee: RealReport, tmp_path: Path) -> None:
    with loopback_server() as server, pytest.raises(FetchFailed, match="crl"):
        verify_online(server, trustee.report, tmp_path, fetch_crls=True, signing_cert=trustee.vcek)
    assert server.requests == ["/vcek/v1/Milan/crl"]


def test_crl_fetched_from_kds_is_checked(milan: SnpSimulator, tmp_path: Path) -> None:
    made = milan.report()
    chip, tcb = made.report[0x1A0:0x1E0].hex(), milan.default_tcb()
    path = f"/vcek/v1/Milan/{chip}?blSPL={tcb.bootloader:02d}&teeSPL={tcb.tee:02d}&snpSPL={tcb.snp:02d}&ucodeSPL={tcb.microcode}"
    crl = milan.crl(
        (milan.ask.serial_number,), last_update=SIM_AT.replace(month=1, day=1), next_update=SIM_AT.replace(year=2026)
    )
    routes = {
        path: Route(body=made.signing_cert.public_bytes(serialization.Encoding.DER)),
        "/vcek/v1/Milan/crl": Route(body=crl.public_bytes(serialization.Encoding.DER)),
    }
    fetcher = CachingFetcher(HttpFetcher(timeout=5), tmp_path, max_age=kds_cache_max_age)
    with loopback_server(routes) as server, pytest.raises(Revoked):
        SevSnpVerifier(kds_base_url=server.base_url, fetch_crls=True).verify(
            made.report,
            at=SIM_AT,
            roots=[milan.ark],
            collateral=Collateral(certificates=made.chain),
            fetcher=fetcher,
            allow_simulator=True,
        )
    assert server.requests == [path, "/vcek/v1/Milan/crl"]


def test_fetch_helpers_parse_kds_answers(milan: SnpSimulator, tmp_path: Path) -> None:
    crl = milan.crl((), last_update=SIM_AT, next_update=SIM_AT.replace(year=2026))
    routes = {
        "/vlek/v1/Milan/cert_chain": Route(body=milan.chain_pem("vlek")),
        "/vlek/v1/Milan/crl": Route(body=crl.public_bytes(serialization.Encoding.DER)),
        "/vcek/v1/Milan/crl": Route(body=b"garbage"),
    }
    with loopback_server(routes) as server:
        fetcher = HttpFetcher(timeout=5)
        assert fetch_cert_chain(fetcher, Product.MILAN, KeyKind.VLEK, base_url=server.base_url) == milan.chain("vlek")
        assert fetch_crl(fetcher, Product.MILAN, KeyKind.VLEK, base_url=server.base_url) == crl
        with pytest.raises(FetchFailed, match="not a DER CRL"):
            fetch_crl(fetcher, Product.MILAN, KeyKind.VCEK, base_url=server.base_url)
        with pytest.raises(FetchFailed, match="HTTP 404"):
            fetch_cert_chain(fetcher, Product.GENOA, KeyKind.VCEK, base_url=server.base_url)
