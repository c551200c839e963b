"""The broker's configuration: where its state lives, which KEKs it holds, how it listens and throttles."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from ccdeploy.broker.listen import check_transport
from ccdeploy.errors import BrokerConfigError

__all__ = ["DEFAULT_NONCE_TTL", "DEFAULT_PORT", "BrokerConfig", "parse_rate"]

DEFAULT_PORT = 8440
DEFAULT_NONCE_TTL = timedelta(seconds=60)
_RATE = re.compile(r"\A\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute))?\s*\Z")


def parse_rate(text: str) -> float:
    """Parse ``N/s``, ``N/min`` or a bare ``N`` (per second) into calls per second.

    Raises:
        BrokerConfigError: not a positive rate.
    """
    match = _RATE.match(text)
    if match is None:
        raise BrokerConfigError(f"rate limit {text!r} is not of the form N/s or N/min")
    value = float(match.group(1))
    if match.group(2) in ("m", "min", "minute"):
        value /= 60
    if value <= 0:
        raise BrokerConfigError("a rate limit must be positive")
    return value


@dataclass(frozen=True)
class BrokerConfig:
    """Everything ``ccdeploy broker serve`` is told on its command line.

    Attributes:
        state_dir: the directory ``ccdeploy broker init`` wrote (signing keys, admin token, broker id).
        db_url: the store: ``sqlite:///abs.db``, a plain path, or ``postgresql://...``.
        kek_uris: the KEKs the broker unwraps data keys with (``ccdeploy.kek`` URIs).
        host: the address to listen on.
        port: the TCP port.
        workers: uvicorn worker processes.
        nonce_ttl: how long a challenge nonce stays usable.
        rate_limit: challenge and release calls per second per client.
        rate_burst: how many calls a client may make at once.
        admin_failure_rate: failed admin authentications allowed per second per client (burst 5).
        trust_proxy: take the client address from ``X-Forwarded-For`` (only behind a proxy that sets it); the
            proxy terminates TLS, so plain HTTP is allowed on a non-loopback host.
        tls_cert: the PEM certificate (chain) the broker serves HTTPS with (None: plain HTTP).
        tls_key: the PEM private key of ``tls_cert`` (mode 0600, like the state directory's secrets).
        insecure_plain_http: accept plain HTTP on a non-loopback host without a TLS-terminating proxy.
        max_body_bytes: the largest challenge/release request body.
        max_admin_body_bytes: the largest admin request body (a registration carries the sealed head).
        fetch_collateral: fetch attestation collateral the evidence does not carry (an SEV-SNP VCEK from AMD KDS,
            Intel PCS collateral for TDX, an Azure Attestation provider's key set from the policy's issuer), cached
            under the state directory. Off: such evidence is unverifiable unless the request brings the collateral
            (RIMs, OCSP answers and DCAP collateral are signed by their vendors, so an enclave may send them).
    """

    state_dir: Path
    db_url: str
    kek_uris: tuple[str, ...]
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workers: int = 1
    nonce_ttl: timedelta = DEFAULT_NONCE_TTL
    rate_limit: float = 50.0
    rate_burst: float = 100.0
    admin_failure_rate: float = 0.2
    trust_proxy: bool = False
    max_body_bytes: int = 1 << 20
    max_admin_body_bytes: int = 64 << 20
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure_plain_http: bool = False
    fetch_collateral: bool = False

    def __post_init__(self) -> None:
        if not self.kek_uris:
            raise BrokerConfigError("the broker needs at least one KEK (--kek URI) to unwrap data keys")
        if not 0 < self.port < 65536:
            raise BrokerConfigError(f"port {self.port} is out of range")
        if self.workers < 1:
            raise BrokerConfigError("at least one worker is needed")
        if not timedelta(seconds=1) <= self.nonce_ttl <= timedelta(hours=1):
            raise BrokerConfigError("the nonce TTL must be between 1 s and 1 h")
        if self.rate_limit <= 0 or self.rate_burst < 1 or self.admin_failure_rate <= 0:
            raise BrokerConfigError("rate limits must be positive")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise BrokerConfigError("TLS needs both a certificate (--tls-cert) and its key (--tls-key)")
        check_transport(
            self.host,
            tls=self.tls_cert is not None,
            trust_proxy=self.trust_proxy,
            insecure_plain_http=self.insecure_plain_http,
        )

    def to_json(self) -> str:
        """The configuration as JSON (handed to uvicorn worker processes through the environment)."""
        document = asdict(self)
        document["state_dir"] = str(self.state_dir)
        document["kek_uris"] = list(self.kek_uris)
        document["nonce_ttl"] = self.nonce_ttl.total_seconds()
        for name in ("tls_cert", "tls_key"):
            value = getattr(self, name)
            document[name] = None if value is None else str(value)
        return json.dumps(document)

    @classmethod
    def from_json(cls, text: str) -> BrokerConfig:
        """The inverse of :meth:`to_json`.

        Raises:
            BrokerConfigError: not a configuration document.
        """
        try:
            document = json.loads(text)
            document["state_dir"] = Path(document["state_dir"])
            document["kek_uris"] = tuple(document["kek_uris"])
            document["nonce_ttl"] = timedelta(seconds=float(document["nonce_ttl"]))
            for name in ("tls_cert", "tls_key"):
                if document.get(name) is not None:
                    document[name] = Path(document[name])
            return cls(**document)
        except (ValueError, KeyError, TypeError) as exc:
            raise BrokerConfigError(f"unreadable broker configuration: {type(exc).__name__}") from None
