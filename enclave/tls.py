"""The enclave's ephemeral TLS identity: an ECDSA P-256 key and a self-signed certificate, in memory only.

Clients do not trust this certificate through a CA: they pin its public key, which the enclave's
evidence binds (``report_data``). uvicorn wants file paths for the key and certificate, so
:meth:`TlsIdentity.uvicorn_ssl_files` hands it ``/proc/self/fd/N`` paths of memfds (anonymous memory,
no filesystem entry) and closes them once uvicorn has loaded the context.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ccdeploy.release.binding import spki_der
from enclave.errors import RuntimeUnavailable

__all__ = ["COMMON_NAME", "DEFAULT_SAN_NAMES", "TlsIdentity"]

COMMON_NAME = "ccdeploy-enclave"
DEFAULT_SAN_NAMES = ("localhost", "127.0.0.1")
_NOT_BEFORE_SLACK = timedelta(minutes=5)
_LIFETIME = timedelta(days=1)


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in dict.fromkeys([*DEFAULT_SAN_NAMES, *names]):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


@dataclass(frozen=True, repr=False)
class TlsIdentity:
    """An ephemeral TLS key pair and its self-signed certificate; the private key never leaves memory."""

    certificate: x509.Certificate
    _private_key: ec.EllipticCurvePrivateKey = field(repr=False)

    @classmethod
    def generate(cls, clock: Callable[[], datetime], san_names: Sequence[str] = ()) -> TlsIdentity:
        """A fresh P-256 key and a certificate valid from 5 minutes before ``clock()`` for one day.

        Args:
            clock: Returns the current time (timezone-aware).
            san_names: Host names or IP addresses added to ``localhost`` and ``127.0.0.1`` in the SAN.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        now = clock()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, COMMON_NAME)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _NOT_BEFORE_SLACK)
            .not_valid_after(now + _LIFETIME)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_san(san_names), critical=False)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        return cls(builder.sign(key, hashes.SHA256()), key)

    def __repr__(self) -> str:
        return f"TlsIdentity(spki_sha256={hashes_hex(self.spki_der)[:16]}…)"

    @property
    def certificate_pem(self) -> str:
        """The certificate as PEM text (what ``/v1/attestation`` returns)."""
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    @property
    def spki_der(self) -> bytes:
        """The DER SubjectPublicKeyInfo of the TLS key: the value the evidence binds."""
        return spki_der(self._private_key.public_key())

    @contextmanager
    def uvicorn_ssl_files(self) -> Iterator[tuple[str, str]]:
        """``(certfile, keyfile)`` paths to hand to uvicorn; both are memfds, closed on exit.

        Load the SSL context (``uvicorn.Config.load()``) inside the ``with`` block: the paths stop
        working when it ends.

        Raises:
            RuntimeUnavailable: the platform has no ``memfd_create`` (the key would need a file).
        """
        key_pem = self._private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fds: list[int] = []
        try:
            cert_fd = _memfd("ccdeploy-tls-cert", self.certificate.public_bytes(serialization.Encoding.PEM))
            fds.append(cert_fd)
            key_fd = _memfd("ccdeploy-tls-key", key_pem)
            fds.append(key_fd)
            yield f"/proc/self/fd/{cert_fd}", f"/proc/self/fd/{key_fd}"
        finally:
            for fd in fds:
                os.close(fd)


def hashes_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data`` (how keys are named in logs)."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize().hex()


def _memfd(name: str, data: bytes) -> int:
    if not hasattr(os, "memfd_create"):
        raise RuntimeUnavailable("this platform has no memfd_create: the TLS key cannot be handed over without a file")
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd
