"""Model card parsing: strict keys and types, and property tests over valid cards and random junk."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sbom import CardInvalid, FileDigest, build_bom, load_card, load_dataset, validate_cyclonedx
from sbom.card import DIGEST_ALGORITHMS
from tests.sbom.conftest import CREATED, EXAMPLE_CARD, SERIAL


def test_example_card_parses() -> None:
    card = load_card(EXAMPLE_CARD.read_text())
    assert card.name == "mobilenetv3-small-flowers"
    assert [d.role for d in card.datasets] == ["training", "testing"]
    assert card.architecture is not None and card.architecture.parameters == 1528106


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: a\nname: b\nversion: '1'\n", "duplicate key 'name'"),
        ("name: a\nversion: '1'\ncolour: red\n", "colour"),
        ("name: a\nversion: 1.0\n", "version"),
        ("name: a\n", "version"),
        ("- a\n", "mapping"),
        ("name: [unclosed\n", "not valid YAML"),
        ("name: !!python/object/apply:os.system [ls]\nversion: '1'\n", "not valid YAML"),
        ("name: a\nversion: '1'\ndatasets: [{name: d}, {name: d}]\n", "datasets named twice"),
        ("name: a\nversion: '1'\ndatasets: [{name: d, digests: {md5: abc}}]\n", "digests"),
        ("name: a\nversion: '1'\ndatasets: [{name: d, digests: {sha256: ABC}}]\n", "lowercase hex"),
        ("name: a\nversion: '1'\ndatasets: [{name: d, url: 'not a url'}]\n", "url"),
        ("name: a\nversion: '1'\nmetrics: [{type: f1, value: .nan}]\n", "finite"),
        (
            "name: a\nversion: '1'\nmetrics: [{type: f1, value: 1, confidence_interval: {lower: 2, upper: 1}}]\n",
            "lower",
        ),
        ("name: \"a\\u0007\"\nversion: '1'\n", "control characters"),
        ("name: \"two\\nlines\"\nversion: '1'\n", "single line"),
        ("name: a\nversion: '1'\narchitecture: {approach: guessing}\n", "approach"),
    ],
)
def test_bad_cards_are_refused(text: str, message: str) -> None:
    with pytest.raises(CardInvalid, match=message):
        load_card(text)


def test_dataset_description() -> None:
    dataset = load_dataset("name: imagenet-val\nversion: '2012'\nrole: testing\n")
    assert dataset.ref == "dataset:imagenet-val@2012"
    with pytest.raises(CardInvalid, match="role"):
        load_dataset("name: x\nrole: peeking\n")


# hypothesis types fixed_dictionaries with one value type; these dictionaries mix strategies of several.
_fixed: Any = st.fixed_dictionaries
_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(
    lambda s: s.strip() != ""
)
_line = _text.filter(lambda s: "\n" not in s and "\t" not in s)
_hex = st.sampled_from(sorted(DIGEST_ALGORITHMS)).flatmap(
    lambda alg: st.tuples(
        st.just(alg), st.text("0123456789abcdef", min_size=DIGEST_ALGORITHMS[alg], max_size=DIGEST_ALGORITHMS[alg])
    )
)
_dataset_fields: dict[str, st.SearchStrategy[Any]] = {"name": _line}
_dataset: st.SearchStrategy[dict[str, Any]] = _fixed(
    _dataset_fields,
    optional={
        "version": _line,
        "role": st.sampled_from(["training", "validation", "testing"]),
        "url": st.from_regex(r"https://[a-z]{1,10}\.example/[a-z0-9/._-]{0,20}", fullmatch=True),
        "digests": st.lists(_hex, max_size=3).map(dict),
        "licence": _line,
        "description": _text,
        "classification": _line,
        "sensitive_data": st.lists(_text, max_size=2),
    },
)
_number = st.one_of(st.integers(-(10**9), 10**9), st.floats(allow_nan=False, allow_infinity=False, width=32))


def _no_fields() -> dict[str, st.SearchStrategy[Any]]:
    return {}


def _dataset_key(dataset: dict[str, Any]) -> tuple[Any, Any]:
    return dataset["name"], dataset.get("version")


_card_fields: dict[str, st.SearchStrategy[Any]] = {"name": _line, "version": _line}
_card = _fixed(
    _card_fields,
    optional={
        "description": _text,
        "task": _line,
        "architecture": _fixed(
            _no_fields(),
            optional={
                "family": _line,
                "name": _line,
                "parameters": st.integers(0, 10**12),
                "approach": st.sampled_from(["supervised", "self-supervised"]),
                "inputs": st.lists(_line, max_size=2),
                "outputs": st.lists(_line, max_size=2),
            },
        ),
        "datasets": st.lists(_dataset, max_size=3).filter(lambda ds: len({_dataset_key(d) for d in ds}) == len(ds)),
        "metrics": st.lists(
            _fixed({"type": _line, "value": st.one_of(_number, _line)}, optional={"slice": _line}),
            max_size=3,
        ),
        "limitations": st.lists(_text, max_size=2),
        "intended_use": _fixed(
            _no_fields(), optional={"users": st.lists(_line, max_size=2), "out_of_scope": st.lists(_text, max_size=2)}
        ),
        "ethical_considerations": st.lists(_fixed({"name": _text}, optional={"mitigation": _text}), max_size=2),
        "licences": st.lists(st.one_of(st.sampled_from(["MIT", "Apache-2.0"]), _line), max_size=2),
        "authors": st.lists(_fixed({"name": _line}), max_size=2),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_card)
def test_valid_cards_give_schema_valid_boms(data: dict[str, object]) -> None:
    card = load_card(yaml.safe_dump(data, allow_unicode=True))
    bom = build_bom(
        card.name,
        card.version,
        [FileDigest(path="m.onnx", sha256="a" * 64, size=1)],
        card,
        serial=SERIAL,
        created=CREATED,
    )
    document = json.loads(bom.to_cyclonedx_json())
    assert validate_cyclonedx(bom.to_cyclonedx_json()).components == 2 + len(card.datasets)
    assert document["metadata"]["component"]["name"] == card.name
    bom.to_spdx_jsonld()


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_junk_gives_card_invalid_only(junk: str | bytes) -> None:
    with pytest.raises(CardInvalid):
        load_card(junk)


_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["name", "version", "datasets", "metrics", "architecture", "x"]), _json))
def test_structured_junk_gives_card_invalid_only(data: dict[str, object]) -> None:
    with contextlib.suppress(CardInvalid):
        load_card(yaml.safe_dump(data))
