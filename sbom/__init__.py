"""The AI bill of materials: CycloneDX 1.6 ML-BOM and SPDX 3.0.1 (AI and Dataset profiles).

Build a BOM from a model's file digests and its model card (:func:`build_bom`), render it
(:meth:`AiBom.to_cyclonedx_json`, :meth:`AiBom.to_spdx_jsonld`), link later evidence to it
(:func:`add_sealed_artifact`, :func:`add_reference`), validate (:func:`validate_bom`) and compare
(:func:`diff_boms`) documents. This package imports nothing from ccdeploy, enclave or attestation.
"""

from sbom.card import Dataset, ModelCard, load_card, load_dataset
from sbom.diff import BomDiff, FieldChange, diff_boms
from sbom.errors import BomError, BomInvalid, BomUsageError, CardInvalid, InputInvalid
from sbom.link import REFERENCE_KINDS, add_reference, add_sealed_artifact
from sbom.lock import lock_dependencies
from sbom.model import MODEL_REF, AiBom, Dependency, FileDigest, SealedArtifact, build_bom
from sbom.validate import ValidatedBom, validate_bom, validate_cyclonedx, validate_spdx

__all__ = [
    "MODEL_REF",
    "REFERENCE_KINDS",
    "AiBom",
    "BomDiff",
    "BomError",
    "BomInvalid",
    "BomUsageError",
    "CardInvalid",
    "Dataset",
    "Dependency",
    "FieldChange",
    "FileDigest",
    "InputInvalid",
    "ModelCard",
    "SealedArtifact",
    "ValidatedBom",
    "add_reference",
    "add_sealed_artifact",
    "build_bom",
    "diff_boms",
    "load_card",
    "load_dataset",
    "lock_dependencies",
    "validate_bom",
    "validate_cyclonedx",
    "validate_spdx",
]
