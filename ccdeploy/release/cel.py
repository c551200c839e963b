"""CEL expressions of a release policy (cel-python): compiled once at load, evaluated per release, fail closed.

An expression sees two variables:

* ``claims``: the verified claims, as :meth:`attestation.Claims.to_dict` writes them (bytes as lower-case hex,
  times as RFC 3339 text), e.g. ``claims.measurements.pcr0``, ``claims.tcb.snp``, ``claims.vendor.module_id``;
* ``model``: ``{"name": ..., "artifact_id": ...}`` of the model being released.

Only a CEL ``true`` passes. ``false``, any other value (a string, a number) and every evaluation error (a missing
field, a type mismatch, a division by zero) fail the check, with the expression's text in the detail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel

__all__ = ["CelError", "CelExpression", "CelOutcome", "compile_expression"]

MAX_EXPRESSION_LENGTH = 4096
"""Longer expressions are refused at load: a policy is reviewed by people, and the parser recurses."""

_ENVIRONMENT = celpy.Environment()


class CelError(Exception):
    """An expression does not compile (raised at policy load; the loader turns it into PolicyInvalid)."""


@dataclass(frozen=True)
class CelOutcome:
    """The result of evaluating one expression: passed only on a CEL ``true``."""

    ok: bool
    detail: str


@dataclass(frozen=True, eq=False)
class CelExpression:
    """A compiled CEL expression and its source text."""

    text: str
    _program: Any = field(repr=False)

    def evaluate(self, claims: Mapping[str, Any], model: Mapping[str, Any]) -> CelOutcome:
        """Evaluate over ``claims`` (JSON of the claims) and ``model``; never raises for what the expression does.

        Args:
            claims: ``Claims.to_dict()``.
            model: ``{"name", "artifact_id"}``.

        Returns:
            ``ok`` only when the result is the CEL boolean ``true``.
        """
        try:
            activation = {"claims": json_to_cel(dict(claims)), "model": json_to_cel(dict(model))}
            result = self._program.evaluate(activation)
        except Exception as exc:  # cel-python raises many types; each one fails closed
            return CelOutcome(False, f"{self.text!r} could not be evaluated: {_describe(exc)}")
        if isinstance(result, Exception):  # cel-python may return an error value instead of raising it
            return CelOutcome(False, f"{self.text!r} could not be evaluated: {_describe(result)}")
        if isinstance(result, celtypes.BoolType):
            if bool(result):
                return CelOutcome(True, f"{self.text!r} is true")
            return CelOutcome(False, f"{self.text!r} is false")
        return CelOutcome(False, f"{self.text!r} gave {type(result).__name__}, not a boolean")


def _describe(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    message = args[0] if args and isinstance(args[0], str) else str(exc)
    return f"{type(exc).__name__}: {message}"[:300]


def compile_expression(text: str) -> CelExpression:
    """Parse and plan ``text``.

    Raises:
        CelError: empty, too long, or not a valid CEL expression.
    """
    if not text.strip():
        raise CelError("an empty expression checks nothing")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise CelError(f"the expression is longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        program = _ENVIRONMENT.program(_ENVIRONMENT.compile(text))
    except Exception as exc:  # parse errors, and RecursionError on deep nesting
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CelError(f"{text!r} is not a valid CEL expression: {first_line}") from None
    return CelExpression(text, program)
