"""Fetching collateral: the one place in :mod:`attestation` that touches the network or the disk.

Verifiers never fetch by themselves; they take a :class:`Fetcher` argument. ``None`` means offline.
:class:`HttpFetcher` does plain HTTPS GETs; :class:`CachingFetcher` keeps answers on disk so that repeated
verifications do not call a rate-limited service (AMD's KDS allows about one request per 10 s per address) again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import httpx

from attestation.errors import FetchFailed

#: Collateral documents are small (certificates, CRLs); anything larger is refused.
MAX_COLLATERAL_BYTES = 1 << 20

#: Seconds a cached copy of changing collateral (Intel TCB Info, QE Identity, CRLs) stays fresh. Intel reissues
#: them at least daily and they are valid for about 30 days, so an hour keeps PCS traffic low without serving a
#: document long after a newer one (a revocation, a TCB recovery) appeared.
COLLATERAL_MAX_AGE_S = 3600.0

_CHANGING_COLLATERAL = ("/certification/v4/tcb", "/qe/identity", "/pckcrl", "/rootcacrl", "IntelSGXRootCA.der")


def collateral_max_age(url: str) -> float | None:
    """A ``max_age`` for :class:`CachingFetcher`: an hour for Intel PCS/PCCS collateral, forever for the rest."""
    return COLLATERAL_MAX_AGE_S if any(part in url for part in _CHANGING_COLLATERAL) else None


@dataclass(frozen=True, slots=True)
class FetchedDocument:
    """A fetched body with the response headers (names lower-cased) that some services put collateral in."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "headers", MappingProxyType({name.lower(): value for name, value in self.headers.items()})
        )


class Fetcher(Protocol):
    """Something that returns the bytes at a URL or raises :class:`~attestation.errors.FetchFailed`."""

    def fetch(self, url: str) -> bytes:
        """Return the body found at ``url``."""
        ...


@runtime_checkable
class DocumentFetcher(Fetcher, Protocol):
    """A fetcher that can also return response headers (Intel PCS sends issuer chains in headers)."""

    def fetch_document(self, url: str) -> FetchedDocument:
        """Return the body and headers found at ``url``."""
        ...


class HttpFetcher:
    """HTTP(S) GET with a timeout, a size cap, and no redirects to other places.

    Args:
        timeout: Seconds for connecting and for each read.
        transport: An httpx transport, for tests against a local server or a double.
    """

    def __init__(self, *, timeout: float = 20.0, transport: httpx.BaseTransport | None = None) -> None:
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, transport=transport)

    def fetch(self, url: str) -> bytes:
        return self.fetch_document(url).body

    def fetch_document(self, url: str) -> FetchedDocument:
        """The body and the response headers at ``url``."""
        try:
            with self._client.stream("GET", url) as response:
                if response.status_code == httpx.codes.TOO_MANY_REQUESTS:
                    retry = response.headers.get("retry-after", "unknown")
                    raise FetchFailed(f"{url}: rate limited by the server (retry after {retry} s)")
                if response.status_code != httpx.codes.OK:
                    raise FetchFailed(f"{url}: HTTP {response.status_code}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_COLLATERAL_BYTES:
                        raise FetchFailed(f"{url}: answer larger than {MAX_COLLATERAL_BYTES} bytes")
                return FetchedDocument(bytes(body), dict(response.headers.items()))
        except httpx.HTTPError as exc:
            raise FetchFailed(f"{url}: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._client.close()


class CachingFetcher:
    """Keep every successful answer of ``inner`` on disk, keyed by URL.

    Args:
        inner: The fetcher to ask on a cache miss (``None``: cache only, fail with FetchFailed on a miss).
        directory: Cache directory, created with mode 0700.
        max_age: Seconds an answer for a URL stays fresh, or ``None`` for forever (immutable documents such as a
            VCEK for one chip and TCB). Defaults to forever for every URL.
        validate: Called with (url, body) before an answer is stored; raises FetchFailed for an answer that must not
            be kept (an HTML error page served with status 200, say), so a bad answer is never cached forever.
        clock: Seconds since the epoch; injected for tests.
    """

    def __init__(
        self,
        inner: Fetcher | None,
        directory: str | os.PathLike[str],
        *,
        max_age: Callable[[str], float | None] = lambda _url: None,
        validate: Callable[[str, bytes], None] = lambda _url, _body: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._inner = inner
        self._directory = Path(directory)
        self._max_age = max_age
        self._validate = validate
        self._clock = clock

    def path_for(self, url: str) -> Path:
        """Where the answer for ``url`` is kept."""
        return self._directory / hashlib.sha256(url.encode()).hexdigest()

    def fetch(self, url: str) -> bytes:
        path = self.path_for(url)
        cached = self._read_fresh(path, self._max_age(url))
        if cached is not None:
            return cached
        if self._inner is None:
            raise FetchFailed(f"{url}: not in the cache at {self._directory} and fetching is off")
        body = self._inner.fetch(url)
        self._validate(url, body)
        self._store(path, body)
        return body

    def fetch_document(self, url: str) -> FetchedDocument:
        """Like :meth:`fetch`, keeping the response headers in a sidecar file next to the body."""
        path = self.path_for(url)
        sidecar = path.with_name(path.name + ".headers.json")
        max_age = self._max_age(url)
        cached = self._read_fresh(path, max_age)
        cached_headers = self._read_fresh(sidecar, max_age)
        if cached is not None and cached_headers is not None:
            try:
                headers = json.loads(cached_headers)
            except ValueError:
                headers = None
            if isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values()):
                return FetchedDocument(cached, headers)
        if self._inner is None:
            raise FetchFailed(f"{url}: not in the cache at {self._directory} and fetching is off")
        if not isinstance(self._inner, DocumentFetcher):
            raise FetchFailed(f"{url}: the inner fetcher cannot return response headers")
        document = self._inner.fetch_document(url)
        self._validate(url, document.body)
        self._store(sidecar, json.dumps(dict(document.headers), sort_keys=True).encode())
        self._store(path, document.body)
        return document

    def _read_fresh(self, path: Path, max_age: float | None) -> bytes | None:
        try:
            if max_age is not None and self._clock() - path.stat().st_mtime > max_age:
                return None
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise FetchFailed(f"cache entry {path}: {exc.strerror}") from None

    def _store(self, path: Path, body: bytes) -> None:
        try:
            self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._directory, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(body)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise FetchFailed(f"cannot write the cache entry {path}: {exc.strerror}") from None
