"""The in-memory AI bill of materials: a model's files, card, datasets and runtime dependencies.

:class:`AiBom` is the single source of truth; CycloneDX 1.6 and SPDX 3.0.1 documents are renderings of it.
Building one reads no clock and draws no randomness: the serial number and creation time are arguments,
so the same inputs always give the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sbom.card import ModelCard
from sbom.errors import InputInvalid

__all__ = [
    "MODEL_REF",
    "AiBom",
    "Dependency",
    "FileDigest",
    "SealedArtifact",
    "build_bom",
    "normalize_package_name",
]

MODEL_REF = "model"
"""The bom-ref of the model component (``metadata.component``) in every CycloneDX BOM we write."""

Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


def normalize_package_name(name: str) -> str:
    """A Python package name normalised as PEP 503 (and purl's pypi type) want it: ``Foo_Bar`` -> ``foo-bar``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _file_path(value: str) -> str:
    if not value or value.startswith("/") or any(part in ("", ".", "..") for part in value.split("/")):
        raise ValueError("must be a relative POSIX path without empty, '.' or '..' components")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise ValueError("must not contain control characters")
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FileDigest(_Frozen):
    """One file of the model: its path inside the model, SHA-256 and size."""

    path: Annotated[str, AfterValidator(_file_path)]
    sha256: Hex64
    size: int = Field(ge=0)


class Dependency(_Frozen):
    """A Python package of the enclave's runtime, pinned to a version, with the SHA-256 of its distributions."""

    name: str = Field(pattern=r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.+!_-]*$", max_length=128)
    hashes: tuple[Hex64, ...] = ()
    marker: str | None = Field(default=None, max_length=1024, pattern=r"^[^\n\r\\]+$")
    """PEP 508 environment marker under which the lock installs this version (universal locks pin several)."""

    @field_validator("name")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return normalize_package_name(value)

    @field_validator("hashes")
    @classmethod
    def _sorted(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(set(value)))

    @property
    def purl(self) -> str:
        """The package URL, ``pkg:pypi/<name>@<version>`` (also the component's bom-ref)."""
        return f"pkg:pypi/{self.name}@{self.version}"


class SealedArtifact(_Frozen):
    """A sealed (encrypted) artifact of the model, named by its ccdeploy digest set."""

    name: str = Field(min_length=1, max_length=1024)
    digest_set: Mapping[str, str]
    """The in-toto ``DigestSet`` of the artifact, e.g. ``{"ccseal.v1.blake3": hex}``."""
    artifact_id: Hex64
    header_sha256: Hex64

    @field_validator("digest_set")
    @classmethod
    def _digests(cls, value: Mapping[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("digest set is empty")
        for algorithm, digest in value.items():
            if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]{0,63}", algorithm) or not re.fullmatch(
                r"[0-9a-f]{32,128}", digest
            ):
                raise ValueError("digest set entries must be 'algorithm': lowercase hex")
        return dict(sorted(value.items()))

    @property
    def ref(self) -> str:
        """The artifact's stable bom-ref, ``sealed:<artifact id>``."""
        return f"sealed:{self.artifact_id}"


class AiBom(_Frozen):
    """An AI bill of materials, kept as our own model and rendered to CycloneDX 1.6 or SPDX 3.0.1 on demand.

    cyclonedx-python-lib 11.12 does not model ``modelCard``, component ``data`` or ``formulation`` (and drops
    them when it parses a document), so the ML parts live here and are merged into the library's output.
    """

    model_name: str = Field(min_length=1, max_length=1024)
    model_version: str = Field(min_length=1, max_length=256)
    files: tuple[FileDigest, ...] = Field(min_length=1)
    card: ModelCard
    dependencies: tuple[Dependency, ...] = ()
    sealed: tuple[SealedArtifact, ...] = ()
    serial: UUID
    created: datetime
    """Creation time, timezone-aware; kept in UTC to the second (SPDX allows no finer)."""

    @field_validator("created")
    @classmethod
    def _utc_seconds(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("creation time must be timezone-aware")
        return value.astimezone(UTC).replace(microsecond=0)

    @field_validator("files")
    @classmethod
    def _files_sorted(cls, value: tuple[FileDigest, ...]) -> tuple[FileDigest, ...]:
        return tuple(sorted(value, key=lambda f: f.path))

    @field_validator("dependencies")
    @classmethod
    def _dependencies_sorted(cls, value: tuple[Dependency, ...]) -> tuple[Dependency, ...]:
        return tuple(sorted(value, key=lambda d: (d.name, d.version)))

    @model_validator(mode="after")
    def _unique(self) -> AiBom:
        for what, keys in (
            ("file", [f.path for f in self.files]),
            ("dependency", [d.purl for d in self.dependencies]),
            ("sealed artifact", [s.artifact_id for s in self.sealed]),
        ):
            twice = sorted({key for key in keys if keys.count(key) > 1})
            if twice:
                raise ValueError(f"{what} listed twice: {', '.join(twice)}")
        return self

    def to_cyclonedx_json(self) -> bytes:
        """The BOM as a CycloneDX 1.6 JSON document, validated against the 1.6 strict schema.

        Deterministic: keys and arrays sorted, bom-refs derived from names and digests.

        Raises:
            BomInvalid: the document fails the schema (a bug, or card text the schema refuses).
        """
        from sbom._cyclonedx import render_cyclonedx  # noqa: PLC0415 - the renderers import this module

        return render_cyclonedx(self)

    def to_spdx_jsonld(self) -> bytes:
        """The BOM as an SPDX 3.0.1 JSON-LD document (AI and Dataset profiles), checked by re-reading it.

        Raises:
            BomInvalid: the document does not read back as valid SPDX 3.0.1.
        """
        from sbom._spdx import render_spdx  # noqa: PLC0415 - the renderers import this module

        return render_spdx(self)


def build_bom(
    model_name: str,
    model_version: str,
    files: Sequence[FileDigest],
    card: ModelCard,
    dependencies: Sequence[Dependency] = (),
    *,
    serial: UUID,
    created: datetime,
    sealed: Sequence[SealedArtifact] = (),
) -> AiBom:
    """Assemble an AI BOM from a model's file digests, its card and the runtime's dependencies.

    Args:
        model_name: The model's name (usually ``card.name``).
        model_version: The model's version.
        files: The model's files with their SHA-256 digests (as ``compute_manifest`` gives them).
        card: The parsed model card; its datasets become dataset components.
        dependencies: Python packages of the serving runtime (see :func:`sbom.lock.lock_dependencies`).
        serial: The BOM's serial number (a fresh ``uuid4()`` for a new BOM).
        created: Creation time, timezone-aware.
        sealed: Sealed artifacts of the model to list as components.

    Raises:
        InputInvalid: a field is malformed (naive time, duplicate file, bad digest).
    """
    try:
        return AiBom(
            model_name=model_name,
            model_version=model_version,
            files=tuple(files),
            card=card,
            dependencies=tuple(dependencies),
            sealed=tuple(sealed),
            serial=serial,
            created=created,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()[:5]
        )
        raise InputInvalid(f"cannot build the BOM: {problems}") from None
