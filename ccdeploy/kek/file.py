"""``file:`` KEKs: a 256-bit AES key in a local file, wrapping with AES key wrap with padding (RFC 5649).

For development and single-machine use. The key file is JSON::

    {"format": "ccdeploy-kek", "version": 1, "algorithm": "AES-256", "key": "<base64>"}

The key id is a key check value, ``HMAC-SHA256(key, "ccdeploy/kek-id/v1")`` truncated to 16 bytes:
it tells keys apart without revealing anything about them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

from ccdeploy.errors import KekError, UsageError, WrongKek
from ccdeploy.kek.base import KeyWrapper, WrappedKey

__all__ = ["FileKek", "create_kek_file"]

ALGORITHM = "AES-KWP"
_KEY_SIZE = 32
_FORMAT = "ccdeploy-kek"


def _key_id(key: bytes) -> str:
    return hmac.new(key, b"ccdeploy/kek-id/v1", hashlib.sha256).hexdigest()[:32]


def _path_of(uri: str) -> Path:
    rest = uri.split(":", 1)[1]
    if rest.startswith("//"):
        authority, _, path = rest[2:].partition("/")
        if authority not in ("", "localhost"):
            raise KekError(f"file: KEK URI names a remote host: {uri!r}")
        rest = "/" + path
    if not rest:
        raise KekError("file: KEK URI has no path")
    return Path(rest)


def _encode(key: bytes) -> bytes:
    doc = {"format": _FORMAT, "version": 1, "algorithm": "AES-256", "key": base64.b64encode(key).decode()}
    return (json.dumps(doc, indent=2) + "\n").encode()


def _decode(raw: bytes, path: Path) -> bytes:
    try:
        doc: Any = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT or doc.get("version") != 1:
            raise ValueError
        if doc.get("algorithm") != "AES-256":
            raise ValueError
        key = base64.b64decode(doc["key"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise KekError(f"{path} is not a ccdeploy KEK file") from None
    if len(key) != _KEY_SIZE:
        raise KekError(f"{path} is not a ccdeploy KEK file (key is not 256 bits)")
    return key


def create_kek_file(path: Path) -> str:
    """Write a fresh random KEK to ``path`` (mode 0600, never overwriting). Returns its ``file:`` URI."""
    key = os.urandom(_KEY_SIZE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{path} already exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise UsageError(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(_encode(key))
    return f"file:{path}"


class FileKek(KeyWrapper):
    """A KEK held in a local key file."""

    scheme = "file"

    def __init__(self, uri: str, key: bytes) -> None:
        self._uri = uri
        self._key = key
        self._key_id = _key_id(key)

    @classmethod
    def from_uri(cls, uri: str) -> FileKek:
        """Load the key file named by a ``file:`` URI."""
        path = _path_of(uri)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise KekError(f"cannot read KEK file {path}: {exc.strerror}") from None
        return cls(uri, _decode(raw, path))

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def key_id(self) -> str:
        return self._key_id

    def wrap(self, dek: bytes, context: Mapping[str, str]) -> WrappedKey:
        blob = aes_key_wrap_with_padding(self._key, dek)
        return WrappedKey(self._uri, self._key_id, ALGORITHM, blob, dict(context))

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        if wrapped.algorithm != ALGORITHM:
            raise WrongKek(f"file: KEKs unwrap {ALGORITHM}, not {wrapped.algorithm!r}")
        try:
            return aes_key_unwrap_with_padding(self._key, wrapped.blob)
        except InvalidUnwrap:
            raise WrongKek("the wrapped key does not unwrap under this KEK") from None
