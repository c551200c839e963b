"""How ``ccdeploy broker serve`` listens: TLS or a refusal of plain HTTP off loopback, and a TCP_NODELAY socket.

Plain HTTP would carry the admin bearer token and model registrations in clear, so a broker listening on a
non-loopback address needs TLS (``--tls-cert``/``--tls-key``), or a proxy that terminates TLS in front of it
(``--trust-proxy``), or the loud ``--insecure-plain-http``.

The listening socket is made here, not by uvicorn: a socket uvicorn binds for ``--workers N`` is created with
protocol 0, so asyncio does not set TCP_NODELAY on its connections and each response (headers and body written
separately) waits for the client's delayed ACK: about 44 ms a request on Linux. A socket made with
``IPPROTO_TCP`` and TCP_NODELAY set (which accepted connections inherit) answers in well under a millisecond.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccdeploy.errors import BrokerConfigError

__all__ = ["Listener", "check_transport", "is_loopback", "listening_socket", "serve_uvicorn"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def check_transport(host: str, *, tls: bool, trust_proxy: bool, insecure_plain_http: bool) -> None:
    """Refuse to listen with plain HTTP on a non-loopback address unless told why that is acceptable.

    Args:
        host: the address to listen on.
        tls: the broker terminates TLS itself.
        trust_proxy: a proxy in front of the broker terminates TLS.
        insecure_plain_http: the operator accepts plain HTTP on the network.

    Raises:
        BrokerConfigError: plain HTTP on a non-loopback address without either flag.
    """
    if tls or trust_proxy or insecure_plain_http or is_loopback(host):
        return
    raise BrokerConfigError(
        f"refusing plain HTTP on {host}: the admin token and registrations would cross the network in clear;"
        " give --tls-cert and --tls-key, or --trust-proxy behind a proxy that terminates TLS,"
        " or --insecure-plain-http to accept it"
    )


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket (``IPPROTO_TCP``, SO_REUSEADDR, TCP_NODELAY) for uvicorn to listen on.

    Raises:
        BrokerConfigError: the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise BrokerConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


@dataclass(frozen=True)
class Listener:
    """Where and how the broker listens.

    Attributes:
        host: the address.
        port: the TCP port.
        workers: uvicorn worker processes.
        tls_cert: the PEM certificate chain (None: plain HTTP).
        tls_key: the PEM private key of ``tls_cert``.
    """

    host: str
    port: int
    workers: int = 1
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def scheme(self) -> str:
        """``https`` or ``http``."""
        return "https" if self.tls_cert is not None else "http"


def serve_uvicorn(app: Any, listener: Listener, *, factory: bool = False, log_level: str = "info") -> None:
    """Serve ``app`` under uvicorn on a :func:`listening_socket` until interrupted.

    Args:
        app: the ASGI application, or with ``workers > 1`` an import string (``factory``: of a factory).
        listener: address, workers and TLS files.
        factory: ``app`` names a factory returning the application.
        log_level: uvicorn's log level.

    Raises:
        BrokerConfigError: the address cannot be bound.
    """
    import uvicorn  # noqa: PLC0415 - only a serving broker needs it
    from uvicorn.supervisors import Multiprocess  # noqa: PLC0415

    config = uvicorn.Config(
        app,
        host=listener.host,
        port=listener.port,
        workers=listener.workers,
        factory=factory,
        log_level=log_level,
        server_header=False,
        ssl_certfile=None if listener.tls_cert is None else str(listener.tls_cert),
        ssl_keyfile=None if listener.tls_key is None else str(listener.tls_key),
    )
    sock = listening_socket(listener.host, listener.port)
    run: Callable[[], None]
    try:
        if listener.workers > 1:
            run = Multiprocess(config, sockets=[sock]).run
        else:
            server = uvicorn.Server(config)

            def run() -> None:
                server.run(sockets=[sock])

        with contextlib.suppress(KeyboardInterrupt):
            run()
    finally:
        sock.close()
