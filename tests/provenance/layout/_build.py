"""Build and sign small in-toto layouts and links for the tests (real keys, real in-toto)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from in_toto.models.layout import Inspection, Layout, Step
from in_toto.models.metadata import Envelope, Metablock
from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]

FAR_FUTURE = "2099-01-01T00:00:00Z"
AT = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Party:
    """A signer and where its PEM public key lies."""

    signer: Any
    pem: Path

    @property
    def keyid(self) -> str:
        return str(self.signer.public_key.keyid)

    def key_dict(self) -> dict[str, Any]:
        return {**self.signer.public_key.to_dict(), "keyid": self.keyid}


def party(tmp_path: Path, name: str, kind: str = "ecdsa") -> Party:
    """A fresh key pair of ``kind`` (ecdsa, ed25519, rsa) with its public PEM written to ``tmp_path``."""
    signer = {
        "ecdsa": CryptoSigner.generate_ecdsa,
        "ed25519": CryptoSigner.generate_ed25519,
        "rsa": CryptoSigner.generate_rsa,
    }[kind]()
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

    private = load_pem_private_key(signer.private_bytes, password=None)
    pem = tmp_path / f"{name}.pub"
    pem.write_bytes(private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return Party(signer, pem)


def step(name: str, functionaries: Sequence[Party], **fields: Any) -> Any:
    return Step(name=name, pubkeys=[p.keyid for p in functionaries], **fields)


def inspection(name: str, run: list[str], **fields: Any) -> Any:
    return Inspection(name=name, run=run, **fields)


def write_layout(
    path: Path,
    owners: Sequence[Party],
    steps: Sequence[Any],
    inspections: Sequence[Any] = (),
    functionaries: Sequence[Party] = (),
    *,
    expires: str = FAR_FUTURE,
    dsse: bool = True,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Sign a layout with every owner and write it to ``path``.

    ``extra`` adds raw fields to the signed object (a metablock only), signed as received.
    """
    layout = Layout(
        steps=list(steps),
        inspect=list(inspections),
        keys={p.keyid: p.key_dict() for p in functionaries},
        expires=expires,
    )
    if extra is not None:
        assert not dsse
        return _write_raw_metablock(path, layout, owners, extra)
    metadata = Envelope.from_signable(layout) if dsse else Metablock(signed=layout)
    for owner in owners:
        metadata.create_signature(owner.signer)
    metadata.dump(str(path))
    return path


def _write_raw_metablock(path: Path, layout: Any, owners: Sequence[Party], extra: dict[str, Any]) -> Path:
    from attr import asdict
    from securesystemslib.formats import encode_canonical

    signed = {**asdict(layout), **extra}
    data = str(encode_canonical(signed)).encode()
    signatures = [owner.signer.sign(data).to_dict() for owner in owners]
    path.write_text(json.dumps({"signatures": signatures, "signed": signed}))
    return path
