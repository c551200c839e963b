"""``ccdeploy broker serve`` listening: TLS under uvicorn workers, and no Nagle/delayed-ACK stall per request.

A socket created with protocol 0 (what uvicorn binds for ``--workers N``, and what a test used to hand uvicorn)
gets no TCP_NODELAY from asyncio, and every response then waits ~44 ms for the client's delayed ACK.
"""

from __future__ import annotations

import os
import socket
import ssl
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ccdeploy._cli import main
from ccdeploy.broker.listen import listening_socket
from tests.broker.helpers import Broker, SealedModel, ServeFactory
from tests.broker.test_tls import TlsFiles, tls_files  # noqa: F401 - the fixture

_STALL = 0.015
"""Median request time that means a stall (a stalled request takes ~44 ms; a healthy one ~1 ms)."""


def _median_challenge_seconds(client: httpx.Client, count: int = 25) -> float:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        assert client.post("/v1/challenge").status_code == 200
        times.append(time.perf_counter() - started)
    return statistics.median(times[3:])


def test_listening_socket_is_tcp_with_nodelay() -> None:
    with listening_socket("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_a_served_broker_answers_without_delayed_ack_stalls(broker: Broker, serve: ServeFactory) -> None:
    with httpx.Client(base_url=serve().url) as client:
        assert _median_challenge_seconds(client) < _STALL


def test_serve_with_workers_over_tls(tmp_path: Path, sealed_model: SealedModel, tls_files: TlsFiles) -> None:  # noqa: F811
    state = tmp_path / "state"
    assert main(["broker", "init", str(state)]) == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "ccdeploy", "broker", "serve", "--state", str(state)]
    command += ["--db", f"sqlite:///{tmp_path / 'broker.db'}", "--kek", sealed_model.kek.uri, "--port", str(port)]
    command += ["--workers", "2", "--tls-cert", str(tls_files.cert), "--tls-key", str(tls_files.key)]
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    verify = ssl.create_default_context(cafile=str(tls_files.ca))
    try:
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=verify, timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    info = client.get("/v1/broker").json()
                    break
                except httpx.TransportError:
                    assert process.poll() is None, log_path.read_text()
                    assert time.monotonic() < deadline, "the broker did not start"
                    time.sleep(0.1)
            assert info["broker_id"] == (state / "broker-id").read_text().strip()
            assert _median_challenge_seconds(client) < _STALL
        with pytest.raises(httpx.TransportError):
            httpx.get(f"https://127.0.0.1:{port}/v1/broker", timeout=5)  # the test CA is not the system's
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert f"listening on https://127.0.0.1:{port} with 2 workers" in log_path.read_text()
