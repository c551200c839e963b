"""CEL expressions: only a CEL true passes; false, errors and other values fail closed."""

from __future__ import annotations

import pytest

from ccdeploy.release.cel import CelError, compile_expression

CLAIMS = {
    "tee": "nitro",
    "debug": False,
    "measurements": {"pcr0": "ab" * 48},
    "tcb": {},
    "issued_at": "2030-01-01T00:10:00.123Z",
    "vendor": {"module_id": "i-0", "user_data": None},
}
MODEL = {"name": "tiny", "artifact_id": "00" * 32}


@pytest.mark.parametrize(
    "text",
    [
        "claims.debug == false",
        'claims.tee == "nitro" && claims.measurements.pcr0.startsWith("abab")',
        'model.name == "tiny" && size(model.artifact_id) == 64',
        '"pcr0" in claims.measurements',
        'claims.vendor.module_id.matches("^i-")',
    ],
)
def test_true_passes(text: str) -> None:
    outcome = compile_expression(text).evaluate(CLAIMS, MODEL)
    assert outcome.ok, outcome.detail
    assert text in outcome.detail


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("claims.debug == true", "is false"),
        ('model.name == "other"', "is false"),
        ("claims.nope == 1", "could not be evaluated"),
        ("1 / 0 == 1", "could not be evaluated"),
        ("claims.tee + 1 == 2", "could not be evaluated"),
        ("claims.tee", "not a boolean"),
        ("1", "not a boolean"),
        ("claims.measurements", "not a boolean"),
    ],
)
def test_everything_else_fails_closed(text: str, says: str) -> None:
    outcome = compile_expression(text).evaluate(CLAIMS, MODEL)
    assert not outcome.ok
    assert says in outcome.detail
    assert repr(text) in outcome.detail


def test_missing_model_fails_closed() -> None:
    outcome = compile_expression('model.name == "tiny"').evaluate(CLAIMS, {})
    assert not outcome.ok and "could not be evaluated" in outcome.detail


@pytest.mark.parametrize("text", ["claims.(", "", "   ", "a &&", "x" * 5000, "(" * 3000 + "1" + ")" * 3000])
def test_bad_expressions_do_not_compile(text: str) -> None:
    with pytest.raises(CelError):
        compile_expression(text)
