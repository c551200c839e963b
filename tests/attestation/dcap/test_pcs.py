"""Fetching DCAP collateral from Intel PCS / a PCCS: a real loopback HTTP server serving the real vectors' pieces."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest

from attestation.claims import Tee
from attestation.errors import FetchFailed
from attestation.fetch import CachingFetcher, FetchedDocument, HttpFetcher, collateral_max_age
from attestation.tee.dcap import SgxVerifier, TdxVerifier
from attestation.verify import verify
from tests.attestation.dcap.conftest import DcapVector
from tests.attestation.http_server import Route, loopback_server


def _routes(vector: DcapVector, *, tee: str, fmspc: str, ca: str, pccs: bool = False) -> dict[str, Route]:
    pieces = vector.pcs_bodies()

    def header(key: str) -> str:
        return urllib.parse.quote(pieces[key].decode())

    routes = {
        f"/{tee}/certification/v4/tcb?fmspc={fmspc}": Route(
            body=pieces["tcb_info"], headers={"TCB-Info-Issuer-Chain": header("tcb_issuer_chain")}
        ),
        f"/{tee}/certification/v4/qe/identity": Route(
            body=pieces["qe_identity"],
            headers={"SGX-Enclave-Identity-Issuer-Chain": header("qe_identity_issuer_chain")},
        ),
        f"/sgx/certification/v4/pckcrl?ca={ca}&encoding=der": Route(
            body=pieces["pck_crl"], headers={"SGX-PCK-CRL-Issuer-Chain": header("pck_crl_issuer_chain")}
        ),
    }
    if pccs:
        routes["/sgx/certification/v4/rootcacrl"] = Route(body=pieces["root_ca_crl"].hex().encode())
    else:
        routes["/IntelSGXRootCA.der"] = Route(body=pieces["root_ca_crl"])
    return routes


def test_tdx_collateral_is_fetched_from_pcs_and_cached(tdx_v4: DcapVector, tmp_path: Path) -> None:
    routes = _routes(tdx_v4, tee="tdx", fmspc="B0C06F000000", ca="platform")
    with loopback_server(routes) as server:
        verifier = TdxVerifier(pcs_base_url=server.base_url, root_ca_crl_url=server.base_url + "/IntelSGXRootCA.der")
        fetcher = CachingFetcher(HttpFetcher(), tmp_path, max_age=collateral_max_age)
        for _ in range(2):
            claims = verify(tdx_v4.quote, tee=Tee.TDX, at=tdx_v4.at, fetcher=fetcher, verifier=verifier)
            assert claims.vendor["tcb_status"] == "UpToDate"
            assert claims.unchecked == {}
        assert sorted(server.requests) == sorted(routes)  # the second verification was answered by the cache
    offline = CachingFetcher(None, tmp_path, max_age=collateral_max_age)
    assert verify(tdx_v4.quote, tee=Tee.TDX, at=tdx_v4.at, fetcher=offline, verifier=verifier).vendor["tcb_status"] == (
        "UpToDate"
    )


def test_sgx_collateral_from_a_pccs(sgx_v3: DcapVector) -> None:
    routes = _routes(sgx_v3, tee="sgx", fmspc="00A067110000", ca="processor", pccs=True)
    with loopback_server(routes) as server:
        verifier = SgxVerifier(pcs_base_url=server.base_url + "/", root_ca_crl_url=None)
        claims = verify(sgx_v3.quote, tee=Tee.SGX, at=sgx_v3.at, fetcher=HttpFetcher(), verifier=verifier)
    assert claims.vendor["tcb_status"] == "ConfigurationAndSWHardeningNeeded"
    assert claims.vendor["advisory_ids"] == ("INTEL-SA-00289", "INTEL-SA-00615")


def test_given_collateral_is_used_without_fetching(tdx_v4: DcapVector) -> None:
    from attestation.collateral import Collateral

    with loopback_server() as server:
        verifier = TdxVerifier(pcs_base_url=server.base_url)
        verify(
            tdx_v4.quote,
            tee=Tee.TDX,
            at=tdx_v4.at,
            collateral=Collateral(dcap=tdx_v4.collateral()),
            fetcher=HttpFetcher(),
            verifier=verifier,
        )
        assert server.requests == []


def test_a_missing_issuer_chain_header_fails_to_fetch(tdx_v4: DcapVector) -> None:
    routes = _routes(tdx_v4, tee="tdx", fmspc="B0C06F000000", ca="platform")
    routes["/tdx/certification/v4/qe/identity"].headers.clear()
    with loopback_server(routes) as server, pytest.raises(FetchFailed, match="SGX-Enclave-Identity-Issuer-Chain"):
        verify(
            tdx_v4.quote,
            tee=Tee.TDX,
            at=tdx_v4.at,
            fetcher=HttpFetcher(),
            verifier=TdxVerifier(pcs_base_url=server.base_url, root_ca_crl_url=server.base_url + "/IntelSGXRootCA.der"),
        )


def test_an_unreachable_service_is_fetch_failed(tdx_v4: DcapVector) -> None:
    with loopback_server() as server, pytest.raises(FetchFailed, match="HTTP 404"):
        verify(
            tdx_v4.quote,
            tee=Tee.TDX,
            at=tdx_v4.at,
            fetcher=HttpFetcher(),
            verifier=TdxVerifier(pcs_base_url=server.base_url),
        )


class _BodiesOnly:
    def fetch(self, url: str) -> bytes:
        raise AssertionError("not called")


def test_a_fetcher_without_headers_cannot_fetch_pcs_collateral(tdx_v4: DcapVector) -> None:
    with pytest.raises(FetchFailed, match="response headers"):
        verify(tdx_v4.quote, tee=Tee.TDX, at=tdx_v4.at, fetcher=_BodiesOnly())


def test_fetch_document_returns_and_caches_headers(tmp_path: Path) -> None:
    routes = {"/doc": Route(body=b"body", headers={"X-Chain": "a%20b"})}
    with loopback_server(routes) as server:
        url = server.base_url + "/doc"
        document = HttpFetcher().fetch_document(url)
        assert document.body == b"body" and document.headers["x-chain"] == "a%20b"
        cache = CachingFetcher(HttpFetcher(), tmp_path)
        assert cache.fetch_document(url).headers["x-chain"] == "a%20b"
        assert cache.fetch_document(url) == cache.fetch_document(url)
        assert server.requests == ["/doc", "/doc"]
    cached = CachingFetcher(None, tmp_path).fetch_document(url)
    assert cached.body == b"body" and cached.headers["x-chain"] == "a%20b"
    assert isinstance(cached, FetchedDocument)


def test_a_body_cached_without_headers_is_fetched_again(tmp_path: Path) -> None:
    with loopback_server({"/doc": Route(body=b"body", headers={"X-A": "1"})}) as server:
        url = server.base_url + "/doc"
        cache = CachingFetcher(HttpFetcher(), tmp_path)
        cache.fetch(url)
        assert cache.fetch_document(url).headers["x-a"] == "1"
        assert server.requests == ["/doc", "/doc"]
    with pytest.raises(FetchFailed, match="cannot return response headers"):
        CachingFetcher(_BodiesOnly(), tmp_path / "other").fetch_document(url)


def test_collateral_max_age() -> None:
    assert collateral_max_age("https://api.trustedservices.intel.com/tdx/certification/v4/tcb?fmspc=00") == 3600.0
    assert collateral_max_age("https://certificates.trustedservices.intel.com/IntelSGXRootCA.der") == 3600.0
    assert collateral_max_age("https://kdsintf.amd.com/vcek/v1/Milan/abc") is None
