"""Property tests: the layout readers raise only ccdeploy errors, whatever they are given."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ccdeploy.errors import LayoutInvalid, UsageError
from ccdeploy.provenance._layout_document import LayoutDocument, parse_layout, read_layout_file

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
_fields = st.sampled_from(["_type", "steps", "inspect", "keys", "expires", "readme", "rootcas", "signed", "payload"])
_layoutish = st.dictionaries(_fields, _json, max_size=6).map(lambda d: {**d, "_type": "layout"})


@settings(max_examples=150, deadline=None)
@given(st.one_of(_json, st.dictionaries(st.sampled_from(["signed", "signatures", "payload", "payloadType"]), _json)))
def test_read_layout_file_raises_only_usage_errors(value: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.layout"
        path.write_text(json.dumps(value))
        try:
            document = read_layout_file(path)
        except UsageError:
            return
    assert document.kind in ("dsse", "metablock")


@settings(max_examples=150, deadline=None)
@given(_layoutish)
def test_parse_layout_raises_only_layout_invalid(signed: dict[str, Any]) -> None:
    document = LayoutDocument("metablock", (), b"", signed)
    try:
        layout, _ignored = parse_layout(document, "layout")
    except LayoutInvalid:
        return
    assert layout.type_ == "layout"


@given(st.binary(max_size=64))
@settings(max_examples=50, deadline=None)
def test_dsse_payload_bytes_raise_only_layout_invalid(payload: bytes) -> None:
    with contextlib.suppress(LayoutInvalid):
        parse_layout(LayoutDocument("dsse", (), b"", payload), "layout")


def test_missing_expiry_is_never_defaulted() -> None:
    # in-toto's Layout() would set expires = now + 1 month
    for signed in ({"_type": "layout"}, {"_type": "layout", "expires": ""}, {"_type": "layout", "expires": None}):
        try:
            parse_layout(LayoutDocument("metablock", (), b"", signed), "layout")
        except LayoutInvalid as exc:
            assert "expires" in exc.message
        else:
            raise AssertionError(f"accepted {signed}")
