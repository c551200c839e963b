"""The broker's admin side as a client: read what a registration needs from a sealed artifact, and call the API.

:func:`sealed_registration` reads only the artifact's head part and its stream digests: from the seal-time
digest record while it still describes the file (no payload byte read), else by hashing the streams.
:class:`AdminClient` calls the admin routes with the bearer token.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from ccdeploy.broker.service import Registration
from ccdeploy.errors import ArtifactCorrupt, BrokerUnavailable, ReleaseDenied, UsageError
from ccdeploy.release.protocol import Problem, b64
from ccdeploy.seal import _header
from ccdeploy.seal._io import os_error
from ccdeploy.seal.digest import (
    read_digest_record,
    sealed_digest_cached,
    sealed_digest_from_parts,
    sealed_head_and_parts,
)

__all__ = ["AdminClient", "head_and_stream_digests", "read_head", "sealed_registration", "tls_verification"]

_SEALED_SUFFIX = ".ccseal"


def read_head(path: Path) -> bytes:
    """The head part of a sealed artifact: preamble, header JSON and header MAC, exactly as on disk.

    Raises:
        ArtifactCorrupt: not a sealed artifact or truncated in its head.
        UsageError: the file cannot be read.
    """
    try:
        with path.open("rb") as handle:
            preamble = handle.read(_header.PREAMBLE_SIZE)
            length = _header.decode_preamble(preamble)
            rest = handle.read(length + _header.MAC_SIZE)
    except OSError as exc:
        raise os_error(exc, f"read {path}") from None
    if len(rest) != length + _header.MAC_SIZE:
        raise ArtifactCorrupt("sealed artifact is truncated inside its header")
    return preamble + rest


def head_and_stream_digests(path: Path) -> tuple[bytes, tuple[str, ...]]:
    """An artifact's head part and the hex BLAKE3 digests of its streams.

    The stream digests come from the seal-time digest record while it still describes the file (no
    payload byte is read), else from hashing the streams.

    Raises:
        ArtifactCorrupt: not a well-formed sealed artifact, or it changed while being read.
    """
    digest, from_record = sealed_digest_cached(path)
    record = read_digest_record(path) if from_record else None
    if record is not None:
        head, parts = read_head(path), record.parts[1:]
    else:
        head, parts = sealed_head_and_parts(path)
    if sealed_digest_from_parts(head, parts).value != digest.value:
        raise ArtifactCorrupt(f"{path} changed while it was being read")
    return head, tuple(parts)


def default_name(sealed: Path) -> str:
    """The registration name of ``NAME.ccseal``: ``NAME``."""
    return sealed.name.removesuffix(_SEALED_SUFFIX) or sealed.name


def sealed_registration(
    sealed: Path, policy: bytes, *, provenance: bytes | None = None, name: str | None = None
) -> Registration:
    """What ``POST /v1/models`` needs to register ``sealed`` under ``policy``.

    Raises:
        ArtifactCorrupt: not a well-formed sealed artifact.
        UsageError: the file cannot be read.
    """
    head, parts = head_and_stream_digests(sealed)
    return Registration(
        name=name or default_name(sealed),
        head=head,
        part_digests=parts,
        policy=policy,
        provenance=provenance,
    )


def tls_verification(ca_file: Path | None) -> ssl.SSLContext | bool:
    """How an https broker's certificate is verified: against ``ca_file`` (PEM), else the system's trust store.

    Raises:
        UsageError: ``ca_file`` cannot be read or holds no usable certificate.
    """
    if ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load the CA file {ca_file}: {type(exc).__name__}") from None


class AdminClient:
    """Calls the broker's admin routes with its bearer token.

    Args:
        base_url: the broker, e.g. ``https://broker.internal:8440`` (or ``http://127.0.0.1:8440`` on loopback).
        token: the admin token.
        transport: an httpx transport (tests); default: httpx's own.
        timeout: seconds for each call.
        ca_file: PEM CA certificate(s) an https broker's certificate must chain to (default: the system's).

    Raises:
        UsageError: ``ca_file`` is unusable.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        ca_file: Path | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            transport=transport,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
            verify=tls_verification(ca_file),
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _call(self, method: str, path: str, document: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, path, json=document)
        except httpx.HTTPError as exc:
            raise BrokerUnavailable(f"the key broker cannot be reached: {type(exc).__name__}") from None
        if response.is_success:
            try:
                return response.json()
            except ValueError:
                raise BrokerUnavailable("the key broker answered something that is not JSON") from None
        try:
            problem = Problem.model_validate(response.json())
        except ValueError:
            raise BrokerUnavailable(f"the key broker answered HTTP {response.status_code}") from None
        if response.status_code >= 500 and response.status_code != 503:
            raise BrokerUnavailable(f"the key broker failed: {problem.detail}")
        if response.status_code == 503 and problem.reason.value == "internal-error":
            raise BrokerUnavailable(f"the key broker is unavailable: {problem.detail}")
        raise ReleaseDenied(f"{problem.reason.value}: {problem.detail}", problem.reason.value, problem.status)

    def register(self, registration: Registration) -> dict[str, Any]:
        """Register a model; returns the broker's description of it (name, digests, policy digest, log index).

        Raises:
            ReleaseDenied: refused (401 token, 400 policy or head, 422 key unavailable).
            BrokerUnavailable: unreachable.
        """
        document = {
            "name": registration.name,
            "head": b64(registration.head),
            "part_digests": list(registration.part_digests),
            "policy": b64(registration.policy),
            "provenance": None if registration.provenance is None else b64(registration.provenance),
        }
        result: dict[str, Any] = self._call("POST", "/v1/models", document)
        return result

    def models(self) -> list[dict[str, Any]]:
        """The registered models."""
        result: list[dict[str, Any]] = self._call("GET", "/v1/models")["models"]
        return result

    def audit(self, after: int = 0) -> list[dict[str, Any]]:
        """Audit entries after sequence number ``after`` (one page)."""
        result: list[dict[str, Any]] = self._call("GET", f"/v1/audit?after={int(after)}")["entries"]
        return result


def require_file(path: Path, what: str) -> bytes:
    """Read a small input file, or raise :class:`UsageError` naming it."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the {what} {path}: {exc.strerror}") from None
