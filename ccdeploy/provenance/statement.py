"""in-toto Statement v1 (https://in-toto.io/Statement/v1), built as plain JSON.

Statements are serialized as RFC 8785 canonical JSON, so the same statement is always the same bytes
(and the DSSE signature over it is reproducible from the document alone). They are never built
through protobuf ``Struct`` (``in_toto_attestation``), which turns integers into floats.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import rfc8785

from ccdeploy.errors import UsageError

__all__ = ["PAYLOAD_TYPE", "STATEMENT_TYPE", "Statement", "Subject"]

STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
"""The DSSE payload type of an in-toto statement."""

_ALGORITHM = re.compile(r"[a-z0-9][a-z0-9._-]*")
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class Subject:
    """One in-toto ResourceDescriptor naming a signed thing by its digests."""

    name: str
    digest: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            raise UsageError("an in-toto subject needs a name")
        if not self.digest:
            raise UsageError(f"in-toto subject {self.name!r} has no digest")
        for algorithm, value in self.digest.items():
            if not _ALGORITHM.fullmatch(algorithm) or not _HEX.fullmatch(value):
                raise UsageError(f"in-toto subject {self.name!r} has a malformed digest {algorithm!r}")
        object.__setattr__(self, "digest", dict(sorted(self.digest.items())))

    def to_json(self) -> dict[str, Any]:
        """The ResourceDescriptor as a JSON object."""
        return {"name": self.name, "digest": dict(self.digest)}


@dataclass(frozen=True)
class Statement:
    """An in-toto Statement v1: subjects, a predicate type and the predicate (a JSON object)."""

    subjects: tuple[Subject, ...]
    predicate_type: str
    predicate: Mapping[str, Any]

    def __post_init__(self) -> None:
        if not self.subjects:
            raise UsageError("an in-toto statement needs at least one subject")
        if not self.predicate_type:
            raise UsageError("an in-toto statement needs a predicate type")

    def to_json(self) -> dict[str, Any]:
        """The statement as a JSON object."""
        return {
            "_type": STATEMENT_TYPE,
            "subject": [subject.to_json() for subject in self.subjects],
            "predicateType": self.predicate_type,
            "predicate": dict(self.predicate),
        }

    def to_bytes(self) -> bytes:
        """The statement as RFC 8785 canonical JSON: the DSSE payload.

        Raises:
            UsageError: the predicate holds something JSON cannot carry exactly (an integer beyond
                2^53, NaN, a non-string key).
        """
        try:
            return rfc8785.dumps(self.to_json())
        except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
            raise UsageError(f"the {self.predicate_type} statement is not canonical JSON: {exc}") from None
