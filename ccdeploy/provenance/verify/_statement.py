"""DSSE pre-authentication encoding and the in-toto Statement inside an envelope.

The statement is parsed only after its signature has been checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ccdeploy.errors import BundleMalformed

__all__ = ["IN_TOTO_PAYLOAD_TYPE", "STATEMENT_TYPES", "Statement", "pae", "parse_statement"]

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPES = frozenset({"https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1"})


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what a DSSE signature signs."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class Statement:
    """An in-toto Statement: its subjects (name, digest set), predicate type and predicate."""

    subjects: tuple[tuple[str, dict[str, str]], ...]
    predicate_type: str
    predicate: dict[str, Any]
    raw: dict[str, Any]


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise BundleMalformed("statement has duplicate JSON keys")
    return dict(pairs)


def parse_statement(payload_type: str, payload: bytes) -> Statement:
    """Parse a verified DSSE payload as an in-toto Statement.

    Raises:
        BundleMalformed: wrong payload type, not JSON, or not a Statement.
    """
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise BundleMalformed(f"DSSE payload type {payload_type!r} is not {IN_TOTO_PAYLOAD_TYPE}")
    try:
        document = json.loads(payload, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError):
        raise BundleMalformed("DSSE payload is not JSON") from None
    if not isinstance(document, dict) or document.get("_type") not in STATEMENT_TYPES:
        raise BundleMalformed("DSSE payload is not an in-toto Statement")
    subjects_raw = document.get("subject")
    predicate_type = document.get("predicateType")
    predicate = document.get("predicate", {})
    if not isinstance(subjects_raw, list) or not subjects_raw:
        raise BundleMalformed("statement has no subjects")
    if not isinstance(predicate_type, str) or not isinstance(predicate, dict):
        raise BundleMalformed("statement predicateType/predicate malformed")
    subjects: list[tuple[str, dict[str, str]]] = []
    for subject in subjects_raw:
        if not isinstance(subject, dict):
            raise BundleMalformed("statement subject is not an object")
        name = subject.get("name", "")
        digest = subject.get("digest")
        if not isinstance(name, str) or not isinstance(digest, dict) or not digest:
            raise BundleMalformed("statement subject has no digest")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in digest.items()):
            raise BundleMalformed("statement subject digest is not a string map")
        subjects.append((name, {k: v.lower() for k, v in digest.items()}))
    return Statement(tuple(subjects), predicate_type, predicate, document)
