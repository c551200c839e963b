"""The release client: what an enclave uses to take a challenge from the key broker and ask for a release.

It imports nothing of the broker or the KEK providers, so an enclave image can carry it alone. A refusal
comes back as :class:`~ccdeploy.errors.ReleaseDenied` with the problem document's typed reason and status;
a broker that cannot be reached, or answers 5xx other than ``key-unavailable``, as
:class:`~ccdeploy.errors.BrokerUnavailable`.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic import ValidationError

from ccdeploy.errors import BrokerUnavailable, ReleaseDenied
from ccdeploy.release.protocol import Challenge, DenialReason, Problem, ReleaseGrant, ReleaseRequest

__all__ = ["ReleaseClient"]


def _problem(response: httpx.Response) -> Problem | None:
    try:
        return Problem.model_validate(response.json())
    except (ValueError, ValidationError):
        return None


class ReleaseClient:
    """A client of ``POST /v1/challenge`` and ``POST /v1/release``.

    Args:
        base_url: the broker, e.g. ``https://broker.example:8440``.
        transport: an httpx transport (tests, custom TLS); default: httpx's own.
        timeout: seconds for each call.
        ca_file: PEM certificates to trust for an ``https`` broker instead of the system store (a private CA).
    """

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        ca_file: Path | None = None,
    ) -> None:
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            try:
                verify = ssl.create_default_context(cafile=str(ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise BrokerUnavailable(f"cannot use the broker CA file {ca_file}: {exc}") from None
        self._http = httpx.Client(base_url=base_url.rstrip("/"), transport=transport, timeout=timeout, verify=verify)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _post(self, path: str, document: dict[str, Any] | None) -> httpx.Response:
        try:
            content = b"" if document is None else json.dumps(document).encode()
            return self._http.post(path, content=content, headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            raise BrokerUnavailable(f"the key broker cannot be reached: {type(exc).__name__}") from None

    def _check(self, response: httpx.Response) -> Any:
        if response.status_code == 200:
            try:
                return response.json()
            except ValueError:
                raise BrokerUnavailable("the key broker answered something that is not JSON") from None
        problem = _problem(response)
        if problem is None:
            raise BrokerUnavailable(f"the key broker answered HTTP {response.status_code} without a problem document")
        if response.status_code >= 500 and problem.reason is not DenialReason.KEY_UNAVAILABLE:
            raise BrokerUnavailable(f"the key broker is unavailable ({problem.reason.value}): {problem.detail}")
        raise ReleaseDenied(
            f"the key broker refused: {problem.reason.value}: {problem.detail}", problem.reason.value, problem.status
        )

    def challenge(self) -> Challenge:
        """A fresh single-use nonce.

        Raises:
            ReleaseDenied: refused (rate limited).
            BrokerUnavailable: unreachable or unusable answer.
        """
        document = self._check(self._post("/v1/challenge", None))
        try:
            return Challenge.model_validate(document)
        except ValidationError:
            raise BrokerUnavailable("the key broker's challenge is malformed") from None

    def release(self, request: ReleaseRequest) -> ReleaseGrant:
        """Ask for a release.

        Raises:
            ReleaseDenied: refused; ``reason`` is the typed reason, ``status`` the HTTP status.
            BrokerUnavailable: unreachable, or a 5xx other than ``key-unavailable``.
        """
        document = self._check(self._post("/v1/release", request.model_dump(mode="json")))
        try:
            return ReleaseGrant.model_validate(document)
        except ValidationError:
            raise BrokerUnavailable("the key broker's grant is malformed") from None
