"""The model card: what a model owner writes (YAML) about a model, its data, metrics and intended use.

The card is parsed strictly: unknown keys, duplicate keys, wrong types (YAML's unquoted ``1.0`` is a number,
not a version string) and text with control characters are all refused with :class:`CardInvalid`.
Example: examples/card.yaml.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Hashable
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from sbom.errors import CardInvalid

__all__ = [
    "DIGEST_ALGORITHMS",
    "Architecture",
    "Author",
    "ConfidenceInterval",
    "Dataset",
    "DatasetRole",
    "DigestAlgorithm",
    "IntendedUse",
    "Metric",
    "ModelCard",
    "Risk",
    "load_card",
    "load_dataset",
]

MAX_CARD_BYTES = 1 << 20

DigestAlgorithm = Literal["sha256", "sha384", "sha512", "sha3-256", "sha3-512", "blake3"]
DIGEST_ALGORITHMS: dict[str, int] = {
    "sha256": 64,
    "sha384": 96,
    "sha512": 128,
    "sha3-256": 64,
    "sha3-512": 128,
    "blake3": 64,
}
"""Digest algorithms a card may name, with the length of their hex digests."""

DatasetRole = Literal["training", "validation", "testing"]
LearningApproach = Literal["supervised", "unsupervised", "reinforcement-learning", "semi-supervised", "self-supervised"]


def _clean_text(value: str) -> str:
    for char in value:
        category = unicodedata.category(char)
        if category == "Cs" or (category == "Cc" and char not in "\n\t"):
            raise ValueError("text must not contain control characters or unpaired surrogates")
    if not value.strip():
        raise ValueError("text must not be blank")
    return value


def _one_line(value: str) -> str:
    if "\n" in value or "\t" in value:
        raise ValueError("must be a single line")
    return value


Text = Annotated[StrictStr, Field(min_length=1, max_length=16384), AfterValidator(_clean_text)]
Line = Annotated[StrictStr, Field(min_length=1, max_length=256), AfterValidator(_clean_text), AfterValidator(_one_line)]
Url = Annotated[StrictStr, Field(max_length=2048, pattern=r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s<>\"{}|\\^`]+$")]
Email = Annotated[StrictStr, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Number = Annotated[StrictFloat, Field(allow_inf_nan=False)] | StrictInt


class _Strict(BaseModel):
    # Scalars are strict (StrictStr, StrictInt): YAML's unquoted 1.0 is refused as a version; sequences may be lists.
    model_config = ConfigDict(frozen=True, extra="forbid")


_M = TypeVar("_M", bound=_Strict)


class Architecture(_Strict):
    """What kind of model this is and what it takes and gives."""

    family: Line | None = None
    """Architecture family: "convolutional neural network", "transformer", ..."""
    name: Line | None = None
    """The specific architecture: "ResNet-50", "MobileNetV3-Small", ..."""
    parameters: StrictInt | None = Field(default=None, ge=0)
    """Number of trainable parameters."""
    approach: LearningApproach | None = None
    inputs: tuple[Line, ...] = ()
    """Input formats, e.g. ``"tensor float32[N,3,224,224] (RGB, normalised)"``."""
    outputs: tuple[Line, ...] = ()


class ConfidenceInterval(_Strict):
    """Bounds of a metric's confidence interval."""

    lower: Number
    upper: Number

    @model_validator(mode="after")
    def _ordered(self) -> ConfidenceInterval:
        if self.lower > self.upper:
            raise ValueError("confidence interval lower bound is above its upper bound")
        return self


class Metric(_Strict):
    """One measured performance figure."""

    type: Line
    """accuracy, f1, top-5 error, ..."""
    value: Number | Line
    slice: Line | None = None
    """The data slice the figure was measured on."""
    confidence_interval: ConfidenceInterval | None = None


class Dataset(_Strict):
    """A dataset the model was trained, validated or tested on."""

    name: Line
    version: Line | None = None
    role: DatasetRole = "training"
    url: Url | None = None
    digests: dict[DigestAlgorithm, StrictStr] = Field(default_factory=dict)
    """Hex digests of the dataset (archive or canonical file), by algorithm."""
    licence: Line | None = None
    """An SPDX licence identifier or expression, or a licence name."""
    description: Text | None = None
    classification: Line | None = None
    """Data classification: public, internal, confidential, ..."""
    sensitive_data: tuple[Text, ...] = ()
    """Kinds of sensitive data the dataset holds (e.g. "faces of identifiable people")."""

    @model_validator(mode="after")
    def _hex_digests(self) -> Dataset:
        for algorithm, value in self.digests.items():
            length = DIGEST_ALGORITHMS[algorithm]
            if not re.fullmatch(rf"[0-9a-f]{{{length}}}", value):
                raise ValueError(f"digest {algorithm} must be {length} lowercase hex characters")
        return self

    @property
    def ref(self) -> str:
        """The dataset's stable bom-ref (``dataset:<name>`` or ``dataset:<name>@<version>``)."""
        return f"dataset:{self.name}" + (f"@{self.version}" if self.version else "")


class IntendedUse(_Strict):
    """Who the model is for, what it is for, and what it must not be used for."""

    users: tuple[Line, ...] = ()
    use_cases: tuple[Text, ...] = ()
    out_of_scope: tuple[Text, ...] = ()


class Risk(_Strict):
    """An ethical consideration and how it is mitigated."""

    name: Text
    mitigation: Text | None = None


class Author(_Strict):
    """A person or team responsible for the model."""

    name: Line
    email: Email | None = None


class ModelCard(_Strict):
    """A model card (see examples/card.yaml)."""

    name: Line
    version: Line
    description: Text | None = None
    task: Line | None = None
    """classification, regression, object detection, text generation, ..."""
    architecture: Architecture | None = None
    datasets: tuple[Dataset, ...] = ()
    metrics: tuple[Metric, ...] = ()
    limitations: tuple[Text, ...] = ()
    tradeoffs: tuple[Text, ...] = ()
    intended_use: IntendedUse | None = None
    ethical_considerations: tuple[Risk, ...] = ()
    licences: tuple[Line, ...] = ()
    authors: tuple[Author, ...] = ()

    @model_validator(mode="after")
    def _unique_datasets(self) -> ModelCard:
        refs = [dataset.ref for dataset in self.datasets]
        duplicates = sorted({ref for ref in refs if refs.count(ref) > 1})
        if duplicates:
            raise ValueError(f"datasets named twice: {', '.join(duplicates)}")
        return self

    def with_datasets(self, extra: tuple[Dataset, ...]) -> ModelCard:
        """This card with more datasets (for instance given on the command line).

        Raises:
            CardInvalid: a dataset has the same name and version as one already on the card.
        """
        data = self.model_dump()
        data["datasets"] = [*data["datasets"], *(dataset.model_dump() for dataset in extra)]
        return _parse(ModelCard, data, "model card")


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader keeps the last of duplicate keys silently; a card with two ``name:`` is refused."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                raise yaml.constructor.ConstructorError(None, None, "unhashable key", key_node.start_mark) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _load_yaml(text: str | bytes, what: str) -> Any:
    if len(text) > MAX_CARD_BYTES:
        raise CardInvalid(f"{what} is larger than {MAX_CARD_BYTES} bytes")
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise CardInvalid(f"{what} is not valid YAML: {_one_line_message(str(exc))}") from None
    except (ValueError, RecursionError, OverflowError) as exc:
        # PyYAML's safe constructors raise these for some malformed scalars (bad dates, huge exponents).
        raise CardInvalid(f"{what} is not valid YAML: {type(exc).__name__}") from None


def _one_line_message(text: str) -> str:
    return " ".join(text.split())[:500]


def _parse(model: type[_M], data: Any, what: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}" for error in exc.errors()[:5]
        )
        raise CardInvalid(f"{what} is invalid: {problems}") from None


def load_card(text: str | bytes) -> ModelCard:
    """Parse a model card from YAML.

    Raises:
        CardInvalid: not YAML, not a mapping, unknown or duplicate keys, or a value of the wrong type.
    """
    data = _load_yaml(text, "model card")
    if not isinstance(data, dict):
        raise CardInvalid("model card must be a YAML mapping")
    return _parse(ModelCard, data, "model card")


def load_dataset(text: str | bytes) -> Dataset:
    """Parse one dataset description from YAML (the keys of a card's ``datasets`` entries).

    Raises:
        CardInvalid: as :func:`load_card`.
    """
    data = _load_yaml(text, "dataset description")
    if not isinstance(data, dict):
        raise CardInvalid("dataset description must be a YAML mapping")
    return _parse(Dataset, data, "dataset description")
