"""A local NRAS double: a real HTTP server on 127.0.0.1 that appraises nothing and signs detached EATs (ES384).

It serves ``/.well-known/jwks.json`` (one P-384 key with a self-signed x5c certificate) and answers
``POST /v3/attest/gpu`` the way NRAS does, with knobs to forge the answer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

KID = "nras-double-key"
ISSUED = datetime(2025, 6, 1, tzinfo=UTC)


@dataclass
class Knobs:
    """How the double forges its next answers."""

    overall_result: bool = True
    answer_nonce: str | None = None
    tamper_gpu: str | None = None
    wrong_digest: str | None = None
    issuer: str | None = None
    digest_after_tamper: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)


def _b64url(value: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes(48, "big")).rstrip(b"=").decode()


class NrasDouble:
    """Keys and token minting of the double."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP384R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "NRAS double")])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(1)
            .not_valid_before(datetime(2025, 1, 1, tzinfo=UTC))
            .not_valid_after(datetime(2026, 1, 1, tzinfo=UTC))
            .sign(self.key, hashes.SHA384())
        )
        self.knobs = Knobs()
        self.base_url = ""

    def jwks(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        der = self.cert.public_bytes(serialization.Encoding.DER)
        entry = {
            "kty": "EC",
            "crv": "P-384",
            "kid": KID,
            "x": _b64url(numbers.x),
            "y": _b64url(numbers.y),
            "x5c": [base64.b64encode(der).decode()],
        }
        return json.dumps({"keys": [entry]}).encode()

    def _sign(self, claims: dict[str, Any]) -> str:
        base = {
            "iss": self.knobs.issuer or self.base_url,
            "iat": int(ISSUED.timestamp()),
            "nbf": int(ISSUED.timestamp()),
            "exp": int((ISSUED + timedelta(hours=1)).timestamp()),
        }
        return jwt.encode({**base, **claims}, self.key, algorithm="ES384", headers={"kid": KID})

    def answer(self, request: dict[str, Any]) -> bytes:
        self.knobs.requests.append(request)
        nonce = self.knobs.answer_nonce or request["nonce"]
        gpus: dict[str, str] = {}
        for i, _ in enumerate(request["evidence_list"]):
            gpus[f"GPU-{i}"] = self._sign(
                {
                    "eat_nonce": nonce,
                    "measres": "success",
                    "dbgstat": "disabled",
                    "secboot": True,
                    "x-nvidia-gpu-driver-version": "550.54.15",
                    "x-nvidia-gpu-vbios-version": "96.00.9F.00.04",
                    "hwmodel": "GH100 A01 GSP BROM",
                }
            )
        if self.knobs.digest_after_tamper:
            self._tamper(gpus)
        digests = {
            name: ["DIGEST", ["SHA256", hashlib.sha256(token.encode()).hexdigest()]] for name, token in gpus.items()
        }
        if self.knobs.wrong_digest:
            digests[self.knobs.wrong_digest] = ["DIGEST", ["SHA256", "00" * 32]]
        overall = self._sign(
            {
                "eat_nonce": nonce,
                "submods": digests,
                "x-nvidia-ver": "2.0",
                "x-nvidia-overall-att-result": self.knobs.overall_result,
            }
        )
        if not self.knobs.digest_after_tamper:
            self._tamper(gpus)
        return json.dumps([["JWT", overall], gpus]).encode()

    def _tamper(self, gpus: dict[str, str]) -> None:
        if not self.knobs.tamper_gpu:
            return
        head, payload, signature = gpus[self.knobs.tamper_gpu].split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["measres"] = "fails"
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        gpus[self.knobs.tamper_gpu] = f"{head}.{forged}.{signature}"


@contextmanager
def nras_double() -> Iterator[NrasDouble]:
    """Run the double on an ephemeral loopback port."""
    double = NrasDouble()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._send(200, double.jwks()) if self.path == "/.well-known/jwks.json" else self._send(404, b"")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != "/v3/attest/gpu":
                self._send(404, b"")
                return
            self._send(200, double.answer(json.loads(body)))

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    double.base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
