"""Admin authentication: one bearer token, compared in constant time, failures throttled per client.

The token file holds a single token (``ccdeploy broker init`` writes it, mode 0600). Only its SHA-256
digest is kept in memory; a presented token is hashed and the digests compared with
:func:`hmac.compare_digest`, so neither its length nor its prefix leaks through timing. Failed attempts
take a token from a per-client bucket: once a client has failed too often it is answered 429 without
its guess being checked.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from pathlib import Path

from ccdeploy.broker.problems import Denied
from ccdeploy.broker.ratelimit import RateLimiter
from ccdeploy.errors import BrokerConfigError
from ccdeploy.release.protocol import DenialReason

__all__ = ["AdminAuth", "read_token_file"]

_BEARER = "bearer "


def read_token_file(path: Path) -> str:
    """The token a token file holds (surrounding whitespace removed).

    Raises:
        BrokerConfigError: the file cannot be read or holds no single token.
    """
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise BrokerConfigError(f"cannot read the admin token file {path}: {type(exc).__name__}") from None
    if not text or any(char.isspace() for char in text):
        raise BrokerConfigError(f"the admin token file {path} must hold exactly one token")
    return text


class AdminAuth:
    """Checks ``Authorization: Bearer <token>`` headers of admin calls.

    Args:
        token: the admin token.
        failures: the bucket failed attempts draw from (per client).
    """

    def __init__(self, token: str, failures: RateLimiter) -> None:
        self._digest = hashlib.sha256(token.encode()).digest()
        self._failures = failures
        self._lock = threading.Lock()
        self.failure_count = 0
        """How many admin calls failed authentication (for metrics and tests)."""

    def check(self, authorization: str | None, client: str) -> None:
        """Accept the call or raise.

        Raises:
            Denied: RATE_LIMITED (429) when the client failed too often lately; UNAUTHORIZED (401) for a
                missing, malformed or wrong token.
        """
        wait = self._failures.wait_time(client)
        if wait > 0:
            raise Denied(DenialReason.RATE_LIMITED, "too many failed admin authentications", retry_after=wait)
        presented = ""
        if authorization is not None and authorization[: len(_BEARER)].lower() == _BEARER:
            presented = authorization[len(_BEARER) :].strip()
        candidate = hashlib.sha256(presented.encode()).digest()
        if presented and hmac.compare_digest(candidate, self._digest):
            return
        with self._lock:
            self.failure_count += 1
        self._failures.acquire(client)
        detail = "a bearer token is required" if not presented else "the bearer token is not valid"
        raise Denied(DenialReason.UNAUTHORIZED, detail)
