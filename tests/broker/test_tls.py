"""The broker over HTTPS: uvicorn with a certificate from a test CA, clients that verify it with ``--ca-file``,
and the refusal of plain HTTP off loopback."""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ccdeploy._cli import main
from ccdeploy.broker.admin import AdminClient
from ccdeploy.broker.config import BrokerConfig
from ccdeploy.broker.listen import check_transport, is_loopback
from ccdeploy.broker.service import Registration
from ccdeploy.errors import BrokerConfigError, BrokerUnavailable, UsageError
from ccdeploy.release.client import ReleaseClient
from ccdeploy.release.hpke import release_info
from tests.broker.helpers import Broker, Served, broker_app, dump, policy_document, public_pem


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A test CA and a server certificate for 127.0.0.1 / localhost it issued (key mode 0600)."""
    directory = tmp_path_factory.mktemp("tls")
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("ccdeploy test CA"))
        .issuer_name(_name("ccdeploy test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("broker.test"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(_pem_key(key))
    files.key.chmod(0o600)
    return files


def _registration(broker: Broker, name: str) -> Registration:
    policy = dump(policy_document(broker.simulator, provenance={"key": public_pem(broker.model.signer)}))
    return Registration(name, broker.model.head, broker.model.parts, policy, broker.model.provenance)


def test_register_and_release_over_https(broker: Broker, tls_files: TlsFiles) -> None:
    token = broker.state.admin_token_path.read_text().strip()
    with Served(broker_app(broker), tls=(tls_files.cert, tls_files.key)) as served:
        assert served.url.startswith("https://")
        with AdminClient(served.url, token, ca_file=tls_files.ca) as admin:
            registered = admin.register(_registration(broker, "tiny"))
        assert registered["name"] == "tiny"
        verify = ssl.create_default_context(cafile=str(tls_files.ca))
        enclave = broker.enclave()
        with ReleaseClient(served.url, transport=httpx.HTTPTransport(verify=verify)) as client:
            nonce = client.challenge().nonce
            grant = client.release(enclave.request("tiny", nonce))
        assert len(enclave.hpke.open(grant.sealed_key, release_info("tiny", nonce))) == 32
        # The enclave's way (python -m enclave --broker-ca-file): the client trusts the private CA it is given.
        with ReleaseClient(served.url, ca_file=tls_files.ca) as client:
            assert client.challenge().nonce
        with ReleaseClient(served.url) as client, pytest.raises(BrokerUnavailable):
            client.challenge()
        # Without the CA the certificate is refused: the token is never sent to an unverified server.
        with AdminClient(served.url, token) as admin, pytest.raises(BrokerUnavailable, match="cannot be reached"):
            admin.models()
        # Plain HTTP to the TLS port gets no answer.
        with pytest.raises(httpx.HTTPError):
            httpx.get(served.url.replace("https://", "http://") + "/v1/broker", timeout=5)


def test_cli_register_takes_a_ca_file(
    broker: Broker, tls_files: TlsFiles, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_bytes(dump(policy_document(broker.simulator, provenance={"key": public_pem(broker.model.signer)})))
    with Served(broker_app(broker), tls=(tls_files.cert, tls_files.key)) as served:
        args = ["broker", "register", str(broker.model.sealed), "--policy", str(policy), "--url", served.url]
        args += ["--token-file", str(broker.state.admin_token_path)]
        assert main(args) == 3  # the system trust store does not know the test CA
        assert "cannot be reached" in capsys.readouterr().err
        assert main([*args, "--ca-file", str(tls_files.ca), "--json"]) == 0
    assert broker.store.model_names() == ["tiny"]


def test_a_release_client_with_an_unreadable_ca_file_cannot_check(tmp_path: Path) -> None:
    with pytest.raises(BrokerUnavailable, match="CA file"):
        ReleaseClient("https://127.0.0.1:1", ca_file=tmp_path / "missing.pem")


def test_an_unusable_ca_file_is_a_usage_error(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    with pytest.raises(UsageError):
        AdminClient("https://127.0.0.1:1", "token", ca_file=bogus)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("broker.internal", False),
    ],
)
def test_plain_http_is_refused_off_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    if loopback:
        check_transport(host, tls=False, trust_proxy=False, insecure_plain_http=False)
    else:
        with pytest.raises(BrokerConfigError, match="refusing plain HTTP"):
            check_transport(host, tls=False, trust_proxy=False, insecure_plain_http=False)
    for allowed in ({"tls": True}, {"trust_proxy": True}, {"insecure_plain_http": True}):
        check_transport(host, **{"tls": False, "trust_proxy": False, "insecure_plain_http": False, **allowed})


def test_config_needs_both_tls_files_and_round_trips_them(tls_files: TlsFiles, tmp_path: Path) -> None:
    base = {"state_dir": tmp_path, "db_url": "sqlite:x.db", "kek_uris": ("file:/k",)}
    with pytest.raises(BrokerConfigError, match="both"):
        BrokerConfig(**base, host="0.0.0.0", tls_cert=tls_files.cert)  # type: ignore[arg-type]
    with pytest.raises(BrokerConfigError, match="refusing plain HTTP"):
        BrokerConfig(**base, host="0.0.0.0")  # type: ignore[arg-type]
    config = BrokerConfig(**base, host="0.0.0.0", tls_cert=tls_files.cert, tls_key=tls_files.key)  # type: ignore[arg-type]
    assert BrokerConfig.from_json(config.to_json()) == config


def test_serve_refuses_plain_http_off_loopback_and_a_readable_tls_key(
    broker: Broker, tls_files: TlsFiles, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serve = ["broker", "serve", "--state", str(broker.state.directory), "--db", broker.db_url]
    serve += ["--kek", broker.model.kek.uri, "--port", "1"]
    assert main([*serve, "--host", "0.0.0.0"]) == 2
    assert "refusing plain HTTP on 0.0.0.0" in capsys.readouterr().err
    readable = tmp_path / "readable.key"
    readable.write_bytes(tls_files.key.read_bytes())
    readable.chmod(0o644)
    assert main([*serve, "--host", "0.0.0.0", "--tls-cert", str(tls_files.cert), "--tls-key", str(readable)]) == 2
    assert "readable by other users" in capsys.readouterr().err
    assert main([*serve, "--host", "0.0.0.0", "--tls-cert", str(tls_files.cert)]) == 2
    assert "--tls-key" in capsys.readouterr().err
