"""The key sets of the evidence simulators: frozen dataclasses of EC private keys of one curve, one per role."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, ClassVar, Self

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

_NIST_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


class EcKeySet:
    """Mixin for a frozen dataclass whose every field is an EC private key on :attr:`curve`, named by its role."""

    __slots__ = ()
    curve: ClassVar[type[ec.EllipticCurve]]

    @classmethod
    def generate(cls) -> Self:
        """Fresh random keys."""
        return cls(*(ec.generate_private_key(cls.curve()) for _ in fields(cls)))  # type: ignore[arg-type]

    @classmethod
    def from_pem(cls, pems: Mapping[str, bytes]) -> Self:
        """Load unencrypted PKCS#8 PEM keys keyed by role (the field names)."""
        keys: list[Any] = []
        for role in (field.name for field in fields(cls)):  # type: ignore[arg-type]
            key = serialization.load_pem_private_key(pems[role], password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, cls.curve):
                name = cls.curve().name
                curve = _NIST_NAMES.get(name, name)
                raise ValueError(f"the {role} key is not an EC {curve} private key")
            keys.append(key)
        return cls(*keys)

    def to_pem(self) -> dict[str, bytes]:
        """The keys as unencrypted PKCS#8 PEM, keyed by role (for test fixtures only)."""
        return {
            field.name: getattr(self, field.name).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            for field in fields(self)  # type: ignore[arg-type]
        }
