"""What a verification found, check by check: the record the CLI turns into ``--json`` and human text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ccdeploy._checks import Check

__all__ = ["Check", "Report", "SubjectMatch", "VerificationResult"]


@dataclass(frozen=True)
class SubjectMatch:
    """A subject of the signed statement and whether a digest recomputed from the files matched it."""

    name: str
    digest: dict[str, str]
    matched: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{name, digest, matched}``."""
        return {"name": self.name, "digest": dict(self.digest), "matched": self.matched}


@dataclass
class Report:
    """A recorder the verifier fills as it goes, so a failed run can still show what passed before it failed.

    It holds only output: verification never reads it back to decide anything.
    """

    checks: list[Check] = field(default_factory=list)
    signer: dict[str, Any] = field(default_factory=dict)
    subjects: list[SubjectMatch] = field(default_factory=list)

    def passed(self, name: str, detail: str) -> None:
        """Record a check that held."""
        self.checks.append(Check(name, True, detail))

    def failed(self, name: str, detail: str) -> None:
        """Record a check that did not hold."""
        self.checks.append(Check(name, False, detail))


@dataclass(frozen=True)
class VerificationResult:
    """A verified bundle: who signed it, what it covers, and every check that ran (all of them held)."""

    signer: dict[str, Any]
    subjects: tuple[SubjectMatch, ...]
    checks: tuple[Check, ...]
    payload_type: str | None
    statement: dict[str, Any] | None
    """The verified in-toto statement (``None`` for a message signature)."""

    def to_dict(self) -> dict[str, Any]:
        """The ``ccdeploy verify --json`` document of a successful verification."""
        return {
            "verdict": "verified",
            "signer": self.signer,
            "subjects": [s.to_dict() for s in self.subjects],
            "checks": [c.to_dict() for c in self.checks],
            "error": None,
        }
