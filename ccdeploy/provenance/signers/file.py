"""``file:`` signers: an ECDSA private key in a PEM file (development, air-gapped key ceremonies).

URI forms: ``file:/path/key.pem``, ``file:relative/key.pem``, ``file:///path/key.pem``; percent-encoded
characters in the path are decoded. The key is PEM PKCS#8 or SEC1 ("EC PRIVATE KEY") on P-256, P-384 or
P-521; the signature hash follows the curve (SHA-256/384/512), as OpenSSF model_signing does. Any
other key type is refused with :class:`~ccdeploy.errors.SignerError`.

Decisions:

- An *encrypted* key is refused unless the URI names the environment variable that holds its
  passphrase: ``file:/path/key.pem?passphrase-env=SIGNING_KEY_PASSPHRASE``. The passphrase itself
  never appears in a URI, a message or a log.
- A key file any "other" user may read or write (``mode & 0o007``), or that its group may write, is
  refused, as ssh refuses such keys. Group read stays allowed for ``fsGroup``-style secret mounts.
  ``chmod 600 key.pem`` fixes it.

With :attr:`SignerOptions.certificate_chain` the bundle carries that X.509 chain instead of a key
hint (see also the ``x509:`` scheme).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ccdeploy.errors import SignerError
from ccdeploy.provenance.bundle import ecdsa_hash
from ccdeploy.provenance.signers.base import EcdsaKeySigner, SignerOptions, load_certificate_chain

__all__ = ["FileSigner", "load_private_key", "parse_file_uri"]


def parse_file_uri(uri: str, scheme: str = "file") -> tuple[Path, dict[str, str]]:
    """Split ``SCHEME:PATH[?query]`` into the path and its query attributes.

    Raises:
        SignerError: not a URI of ``scheme``, no path, a remote host, or a repeated query attribute.
    """
    prefix = f"{scheme}:"
    if uri[: len(prefix)].lower() != prefix:
        raise SignerError(f"not a {prefix} signer URI")
    rest, _, query = uri[len(prefix) :].partition("?")
    if rest.startswith("//"):  # file:///path or file://localhost/path
        authority, _, path = rest[2:].partition("/")
        if authority not in ("", "localhost"):
            raise SignerError(f"{prefix} signer URIs name a local file, not a host")
        rest = "/" + path
    if not rest:
        raise SignerError(f"{prefix} signer URI names no key file (expected {prefix}/path/key.pem)")
    attributes: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        if name in attributes:
            raise SignerError(f"{prefix} signer URI attribute {name!r} appears more than once")
        attributes[name] = value
    return Path(unquote(rest)), attributes


def _check_permissions(path: Path) -> None:
    if os.name != "posix":
        return
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise SignerError(f"cannot read the signing key {path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise SignerError(f"the signing key {path} is not a regular file")
    if mode & 0o007 or mode & stat.S_IWGRP:
        raise SignerError(
            f"the signing key {path} is accessible to other users (mode {stat.S_IMODE(mode):04o}); chmod 600 it"
        )


def load_private_key(path: Path, passphrase_env: str | None = None) -> ec.EllipticCurvePrivateKey:
    """Load an ECDSA private key from a PEM file.

    Args:
        path: the PEM file (PKCS#8 or SEC1).
        passphrase_env: the environment variable holding the passphrase of an encrypted key.

    Raises:
        SignerError: unreadable, too permissive, encrypted without a passphrase, wrong passphrase, or
            not an ECDSA P-256/384/521 key.
    """
    _check_permissions(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SignerError(f"cannot read the signing key {path}: {exc.strerror}") from None
    password: bytes | None = None
    if passphrase_env is not None:
        value = os.environ.get(passphrase_env)
        if value is None:
            raise SignerError(f"the passphrase variable {passphrase_env} named by the signer URI is not set")
        password = value.encode()
    try:
        key = serialization.load_pem_private_key(data, password)
    except TypeError:
        if password is None:
            raise SignerError(
                f"the signing key {path} is encrypted: name its passphrase variable with ?passphrase-env=VAR"
            ) from None
        raise SignerError(f"the signing key {path} is not encrypted, but a passphrase was named") from None
    except ValueError:
        # cryptography says "bad decrypt" and "could not deserialize" alike; say both possibilities.
        raise SignerError(f"{path} is not a PEM private key, or its passphrase is wrong") from None
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm for exotic key types
        raise SignerError(f"{path} holds an unsupported private key ({type(exc).__name__})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SignerError(f"signing keys must be ECDSA P-256, P-384 or P-521; {path} holds another key type")
    ecdsa_hash(key.public_key())
    return key


class FileSigner(EcdsaKeySigner):
    """Signs with an ECDSA private key read from a PEM file."""

    scheme = "file"

    def __init__(self, path: Path, key: ec.EllipticCurvePrivateKey, options: SignerOptions) -> None:
        chain = load_certificate_chain(options.certificate_chain) if options.certificate_chain else None
        super().__init__(key.public_key(), chain)
        self._path = path
        self._key = key

    def __repr__(self) -> str:
        return f"FileSigner({str(self._path)!r})"

    @classmethod
    def from_uri(cls, uri: str, options: SignerOptions) -> FileSigner:
        """Load the key a ``file:PATH[?passphrase-env=VAR]`` URI names.

        Raises:
            SignerError: malformed URI, unreadable or unfit key, or a chain that does not match it.
        """
        path, attributes = parse_file_uri(uri, "file")
        passphrase_env = attributes.pop("passphrase-env", None)
        if attributes:
            raise SignerError(f"unknown file: signer URI attribute(s): {', '.join(sorted(attributes))}")
        return cls(path, load_private_key(path, passphrase_env), options)

    def _sign(self, message: bytes) -> bytes:
        return self._key.sign(message, ec.ECDSA(self._hash))

    def describe(self) -> dict[str, Any]:
        """``{"kind": "file", "uri": ..., "algorithm": ..., "public_key_hint": ...}``; never the key."""
        return {"kind": self.scheme, "uri": f"file:{self._path}"} | self._describe_key()
