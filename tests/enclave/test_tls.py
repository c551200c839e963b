"""The enclave's TLS identity: a self-signed P-256 certificate, and a key handed to uvicorn through memfds only."""

from __future__ import annotations

import ipaddress
import os
import ssl
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from ccdeploy.release.binding import report_data, spki_der
from ccdeploy.release.hpke import HpkeSuite
from enclave.keys import EnclaveKeys
from enclave.tls import TlsIdentity
from tests.enclave.conftest import running_uvicorn

AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_certificate_fields() -> None:
    identity = TlsIdentity.generate(lambda: AT, san_names=["enclave.example", "10.0.0.7", "localhost"])
    cert = identity.certificate
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "ccdeploy-enclave"
    assert cert.issuer == cert.subject
    assert cert.not_valid_before_utc == AT - timedelta(minutes=5)
    assert cert.not_valid_after_utc == AT + timedelta(days=1)
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "enclave.example"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("10.0.0.7"),
    ]
    assert identity.spki_der == spki_der(public)
    assert x509.load_pem_x509_certificate(identity.certificate_pem.encode()) == cert
    cert.verify_directly_issued_by(cert)  # self-signed, and the signature holds
    assert "PRIVATE" not in repr(identity)


def test_each_identity_is_fresh() -> None:
    assert TlsIdentity.generate(lambda: AT).spki_der != TlsIdentity.generate(lambda: AT).spki_der


def test_keys_binding_commits_to_both_public_keys() -> None:
    keys = EnclaveKeys.generate(lambda: AT, suite=HpkeSuite.X25519)
    nonce = os.urandom(32)
    assert keys.binding(nonce) == report_data(nonce, keys.hpke.public, keys.tls.spki_der)
    other = EnclaveKeys.generate(lambda: AT, suite=HpkeSuite.X25519)
    assert keys.binding(nonce) != other.binding(nonce)
    assert len(EnclaveKeys.generate(lambda: AT).hpke.public) == HpkeSuite.XWING.public_key_size


def _files_under(*roots: Path) -> set[Path]:
    return {Path(d, f) for root in roots for d, _, files in os.walk(root) for f in files}


def test_uvicorn_loads_key_from_memfds_and_no_file_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work, temp = tmp_path / "cwd", tmp_path / "tmp"
    work.mkdir()
    temp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    identity = TlsIdentity.generate(lambda: datetime.now(UTC))
    with identity.uvicorn_ssl_files() as (certfile, keyfile):
        assert certfile.startswith("/proc/self/fd/") and keyfile.startswith("/proc/self/fd/")
        assert os.readlink(keyfile).startswith("/memfd:")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        fds = [int(certfile.rsplit("/", 1)[1]), int(keyfile.rsplit("/", 1)[1])]
    for fd in fds:  # closed once the block ends
        with pytest.raises(OSError):
            os.fstat(fd)
    assert _files_under(work, temp) == set()


def test_real_tls_server_presents_the_pinned_certificate(tmp_path: Path) -> None:
    identity = TlsIdentity.generate(lambda: datetime.now(UTC))
    app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))])

    def load_ssl(config: uvicorn.Config) -> None:
        with identity.uvicorn_ssl_files() as (certfile, keyfile):
            config.ssl_certfile, config.ssl_keyfile = certfile, keyfile
            config.load()

    with running_uvicorn(app, config_hook=load_ssl) as port:
        client_context = ssl.create_default_context(cadata=identity.certificate_pem)
        response = httpx.get(f"https://127.0.0.1:{port}/", verify=client_context)
        assert response.text == "ok"
        pinned_elsewhere = ssl.create_default_context(
            cadata=TlsIdentity.generate(lambda: datetime.now(UTC)).certificate_pem
        )
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"https://127.0.0.1:{port}/", verify=pinned_elsewhere)
