"""Collateral fetching through a real loopback HTTP server, and the on-disk cache."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from attestation import CachingFetcher, FetchFailed, HttpFetcher
from attestation.fetch import MAX_COLLATERAL_BYTES
from tests.attestation.http_server import Route, loopback_server


def test_http_fetcher_returns_the_body() -> None:
    with loopback_server({"/doc": Route(body=b"hello")}) as server:
        assert HttpFetcher().fetch(server.base_url + "/doc") == b"hello"
        assert server.requests == ["/doc"]


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (Route(404, b"no"), "HTTP 404"),
        (Route(429, b"slow down", {"Retry-After": "10"}), r"rate limited by the server \(retry after 10 s\)"),
        (Route(302, b"", {"Location": "http://example.invalid/"}), "HTTP 302"),
        (Route(200, bytes(MAX_COLLATERAL_BYTES + 1)), "larger than"),
    ],
)
def test_http_fetcher_failures_are_typed(route: Route, message: str) -> None:
    with loopback_server({"/doc": route}) as server, pytest.raises(FetchFailed, match=message):
        HttpFetcher().fetch(server.base_url + "/doc")


def test_unreachable_server_is_fetch_failed() -> None:
    with loopback_server() as server:
        url = server.base_url
    with pytest.raises(FetchFailed, match="ConnectError"):
        HttpFetcher(timeout=2).fetch(url + "/gone")


def test_cache_answers_repeated_fetches_without_the_server(tmp_path: Path) -> None:
    with loopback_server({"/vcek": Route(body=b"cert")}) as server:
        fetcher = CachingFetcher(HttpFetcher(), tmp_path / "cache")
        url = server.base_url + "/vcek"
        assert fetcher.fetch(url) == b"cert"
        assert fetcher.fetch(url) == b"cert"
        assert server.requests == ["/vcek"]
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700
    assert CachingFetcher(None, tmp_path / "cache").fetch(url) == b"cert"


def test_cache_entries_expire_by_url(tmp_path: Path) -> None:
    now = [1_000_000.0]
    with loopback_server({"/crl": Route(body=b"crl-1")}) as server:
        fetcher = CachingFetcher(HttpFetcher(), tmp_path, max_age=lambda url: 60.0, clock=lambda: now[0])
        url = server.base_url + "/crl"
        fetcher.fetch(url)
        fetcher.path_for(url).touch()
        now[0] = fetcher.path_for(url).stat().st_mtime + 30
        fetcher.fetch(url)
        assert len(server.requests) == 1
        now[0] += 61
        server.routes["/crl"] = Route(body=b"crl-2")
        assert fetcher.fetch(url) == b"crl-2"
        assert len(server.requests) == 2


def test_failures_are_not_cached(tmp_path: Path) -> None:
    with loopback_server({"/x": Route(500)}) as server:
        fetcher = CachingFetcher(HttpFetcher(), tmp_path)
        with pytest.raises(FetchFailed):
            fetcher.fetch(server.base_url + "/x")
        assert list(tmp_path.iterdir()) == []


def test_cache_only_miss_is_fetch_failed(tmp_path: Path) -> None:
    with pytest.raises(FetchFailed, match="not in the cache"):
        CachingFetcher(None, tmp_path).fetch("https://kds.invalid/x")


def test_answers_that_fail_validation_are_not_cached(tmp_path: Path) -> None:
    def only_certificates(url: str, body: bytes) -> None:
        if not body.startswith(b"CERT"):
            raise FetchFailed(f"{url}: not a certificate")

    with loopback_server({"/vcek": Route(body=b"<html>maintenance</html>")}) as server:
        fetcher = CachingFetcher(HttpFetcher(), tmp_path, validate=only_certificates)
        with pytest.raises(FetchFailed, match="not a certificate"):
            fetcher.fetch(server.base_url + "/vcek")
        assert list(tmp_path.iterdir()) == []
        server.routes["/vcek"] = Route(body=b"CERT")
        assert fetcher.fetch(server.base_url + "/vcek") == b"CERT"
