"""Test harness for the inference server: a TLS identity, the tiny model, and real uvicorn on loopback."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from attestation.simulator.nitro import NitroSimulator
from ccdeploy.release.binding import report_data, spki_der
from enclave.runtime import ModelSession, load_session
from enclave.server import AttestationDocument

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
from tiny_model import build_tiny_model

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
"""The fixed time of every simulated document and every appraisal in these tests."""


@dataclass(frozen=True)
class Tls:
    """A self-signed ECDSA P-256 identity written to files, as uvicorn wants them."""

    certfile: Path
    keyfile: Path
    pem: str
    certificate: x509.Certificate

    @property
    def spki(self) -> bytes:
        return spki_der(self.certificate.public_key())


def make_tls(directory: Path, name: str = "enclave") -> Tls:
    """A fresh self-signed certificate and key under ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - timedelta(days=1))
        .not_valid_after(datetime.now(UTC) + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    (directory / f"{name}.crt").write_bytes(pem)
    (directory / f"{name}.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Tls(directory / f"{name}.crt", directory / f"{name}.key", pem.decode(), certificate)


def tiny_session() -> ModelSession:
    """The tiny MLP (x: FP32 [-1, 4] -> y: FP32 [-1, 3]) on the CPU."""
    return load_session(build_tiny_model()[0])


def nitro_attestation(
    simulator: NitroSimulator,
    *,
    hpke_public_key: bytes,
    tls_pem: str,
    bind_nonce: Callable[[bytes], bytes] = lambda nonce: nonce,
    pcrs: dict[int, bytes] | None = None,
) -> Callable[[bytes], AttestationDocument]:
    """An attestation function over simulated Nitro documents; ``bind_nonce`` lets a test bind another nonce."""
    spki = spki_der(x509.load_pem_x509_certificate(tls_pem.encode()).public_key())

    def attest(nonce: bytes) -> AttestationDocument:
        bound = bind_nonce(nonce)
        evidence = simulator.document(
            timestamp=AT, user_data=report_data(bound, hpke_public_key, spki), nonce=bound, pcrs=pcrs
        )
        return AttestationDocument(evidence, "nitro", "X25519", hpke_public_key, tls_pem, nonce)

    return attest


@contextlib.contextmanager
def running(app: Any, tls: Tls | None = None) -> Iterator[str]:
    """Serve ``app`` with real uvicorn on a free loopback port (TLS when ``tls`` is given); yield its base URL."""
    ssl: dict[str, Any] = {} if tls is None else {"ssl_certfile": str(tls.certfile), "ssl_keyfile": str(tls.keyfile)}
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", access_log=False, **ssl)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"{'http' if tls is None else 'https'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
