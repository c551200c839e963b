"""The sealed model artifact (``.ccseal``): seal, open, unseal and rekey. Format: docs/formats/ccseal.md."""

from ccdeploy.seal._header import HASH_ALGORITHMS, FileEntry, HashAlgorithm, ModelInfo, Recipient, SealedHeader
from ccdeploy.seal.keys import DekKeyProvider, KekKeyProvider, KeyProvider
from ccdeploy.seal.manifest import compute_manifest
from ccdeploy.seal.reader import SealedFileReader, SealedModel, is_sealed_artifact, open_sealed, read_header
from ccdeploy.seal.rekey import rekey
from ccdeploy.seal.writer import seal_model

__all__ = [
    "HASH_ALGORITHMS",
    "DekKeyProvider",
    "FileEntry",
    "HashAlgorithm",
    "KekKeyProvider",
    "KeyProvider",
    "ModelInfo",
    "Recipient",
    "SealedFileReader",
    "SealedHeader",
    "SealedModel",
    "compute_manifest",
    "is_sealed_artifact",
    "open_sealed",
    "read_header",
    "rekey",
    "seal_model",
]
