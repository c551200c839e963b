"""Collateral in the release request: the wire model's limits, and how the broker merges it with its own."""

from __future__ import annotations

import base64
import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from attestation import Collateral
from ccdeploy.broker.problems import Denied
from ccdeploy.broker.service import merge_collateral
from ccdeploy.release.protocol import (
    MAX_OCSP_BYTES,
    MAX_OCSP_RESPONSES,
    MAX_RIM_BYTES,
    MAX_RIMS,
    DenialReason,
    RequestCollateral,
)
from tests.release.simulated import Simulated


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    "document",
    [
        {"rims": [b64(b"x" * (MAX_RIM_BYTES + 1))]},
        {"rims": [b64(b"x")] * (MAX_RIMS + 1)},
        {"rims": [""]},
        {"ocsp": [b64(b"x" * (MAX_OCSP_BYTES + 1))]},
        {"ocsp": [b64(b"x")] * (MAX_OCSP_RESPONSES + 1)},
        {"ocsp": ["not base64!"]},
        {"dcap": "x" * (256 * 1024 + 1)},
        {"dcap": 7},
        {"dcap": "\ud800"},
        {"vcek": "…"},
    ],
)
def test_limits(document: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RequestCollateral.model_validate(document)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["rims", "ocsp", "dcap", "other"]), st.text(max_size=40) | st.lists(st.text())))
def test_parsing_never_raises_anything_else(document: dict[str, Any]) -> None:
    with contextlib.suppress(ValidationError):
        RequestCollateral.model_validate(document)


def test_merge() -> None:
    own = Collateral(rims=(b"a",), ocsp=(b"o",))
    sent = RequestCollateral(rims=(b"a", b"b"), ocsp=(b"p",))
    merged = merge_collateral(own, sent)
    assert merged is not None and merged.rims == (b"a", b"b") and merged.ocsp == (b"o", b"p")
    assert merge_collateral(own, None) is own
    assert merge_collateral(None, None) is None


def test_dcap_from_the_request_and_the_broker() -> None:
    sim = Simulated.create()
    text = sim.tdx.collateral_json().decode()
    merged = merge_collateral(None, RequestCollateral(dcap=text))
    assert merged is not None and merged.dcap is not None
    theirs = merge_collateral(Collateral(dcap=merged.dcap), RequestCollateral(dcap='{"not": "parsed"}'))
    assert theirs is not None and theirs.dcap is merged.dcap  # the broker's own wins (and the request's is unused)


@pytest.mark.parametrize("dcap", ["{}", "[1]", "not json", '{"tcb_info": 1}', "{" * 5000])
def test_malformed_dcap_is_a_400(dcap: str) -> None:
    with pytest.raises(Denied) as raised:
        merge_collateral(None, RequestCollateral(dcap=dcap))
    assert raised.value.denial is DenialReason.MALFORMED_REQUEST and raised.value.status == 400
