"""The two OIP codecs (server: enclave.tensors, client: ccdeploy.client._oip) against each other and tritonclient."""

from __future__ import annotations

import contextlib
import json
from typing import Any, Literal

import numpy as np
import pytest
import tritonclient.http as triton
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ccdeploy.client import _oip
from enclave.tensors import (
    DATATYPES,
    InputLimits,
    TensorError,
    TensorSpec,
    check_inputs,
    decode_request,
    encode_response,
)

NUMERIC = [name for name in DATATYPES if name != "BYTES"]
LIMITS = InputLimits()


def _arrays(datatype: str) -> st.SearchStrategy[np.ndarray[Any, Any]]:
    shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
    if datatype == "BYTES":
        return shapes.flatmap(
            lambda shape: st.lists(st.text(max_size=6), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))).map(
                lambda items: np.array(items, dtype=object).reshape(shape)
            )
        )
    dtype = DATATYPES[datatype]
    widths: dict[int, Literal[16, 32, 64]] = {2: 16, 4: 32, 8: 64}
    elements = st.floats(width=widths[dtype.itemsize], allow_nan=False) if dtype.kind == "f" else None
    return hnp.arrays(dtype, shapes, elements=elements)


tensors = st.sampled_from([*NUMERIC, "BYTES"]).flatmap(_arrays)


@settings(max_examples=150, deadline=None)
@given(arrays=st.lists(tensors, min_size=1, max_size=3), binary=st.booleans())
def test_client_request_decodes_on_the_server(arrays: list[np.ndarray[Any, Any]], binary: bool) -> None:
    inputs = {f"in{i}": a for i, a in enumerate(arrays)}
    body, header_length = _oip.encode_request(inputs, binary=binary)
    decoded = decode_request(body, None if header_length is None else str(header_length), LIMITS)
    assert list(decoded.inputs) == list(inputs)
    for name, array in inputs.items():
        got = decoded.inputs[name]
        assert got.shape == array.shape
        if array.dtype == object:
            assert got.ravel().tolist() == array.ravel().tolist()
        else:
            assert got.dtype == array.dtype
            np.testing.assert_array_equal(got, array)
    assert decoded.binary("anything") is binary


@settings(max_examples=150, deadline=None)
@given(arrays=st.lists(tensors, min_size=1, max_size=3), binary=st.booleans())
def test_server_response_decodes_on_the_client(arrays: list[np.ndarray[Any, Any]], binary: bool) -> None:
    outputs = {f"out{i}": a for i, a in enumerate(arrays)}
    body, header_length = encode_response(
        model_name="m", model_version="1", request_id=None, outputs=outputs, binary=dict.fromkeys(outputs, binary)
    )
    decoded = _oip.decode_response(body, None if header_length is None else str(header_length))
    for name, array in outputs.items():
        got = decoded[name]
        assert got.shape == array.shape
        if array.dtype == object:
            assert [g.decode() if isinstance(g, bytes) else g for g in got.ravel()] == array.ravel().tolist()
        else:
            np.testing.assert_array_equal(got, array)


@settings(max_examples=100, deadline=None)
@given(array=st.sampled_from(NUMERIC).flatmap(_arrays), binary=st.booleans())
def test_tritonclient_request_decodes_on_the_server(array: np.ndarray[Any, Any], binary: bool) -> None:
    tensor = triton.InferInput("x", list(array.shape), _oip.datatype_of(array))
    tensor.set_data_from_numpy(array, binary_data=binary)
    outputs = [triton.InferRequestedOutput("y", binary_data=binary)]
    body, header_length = triton.InferenceServerClient.generate_request_body([tensor], outputs=outputs)
    decoded = decode_request(body, None if header_length is None else str(header_length), LIMITS)
    np.testing.assert_array_equal(decoded.inputs["x"], array)
    assert decoded.inputs["x"].dtype == array.dtype and decoded.binary("y") is binary


@settings(max_examples=100, deadline=None)
@given(array=st.sampled_from(NUMERIC).flatmap(_arrays), binary=st.booleans())
def test_server_response_decodes_in_tritonclient(array: np.ndarray[Any, Any], binary: bool) -> None:
    body, header_length = encode_response(
        model_name="m", model_version="1", request_id="7", outputs={"y": array}, binary={"y": binary}
    )
    result = triton.InferResult.from_response_body(body, header_length=header_length)
    got = result.as_numpy("y")
    assert got is not None and got.shape == array.shape
    np.testing.assert_array_equal(got.astype(array.dtype), array)


def test_bytes_round_trip_with_tritonclient() -> None:
    array = np.array([["héllo", ""], ["a", "bc"]], dtype=object)
    tensor = triton.InferInput("s", [2, 2], "BYTES")
    tensor.set_data_from_numpy(array, binary_data=True)
    body, header_length = triton.InferenceServerClient.generate_request_body([tensor])
    decoded = decode_request(body, str(header_length), LIMITS)
    assert decoded.inputs["s"].tolist() == array.tolist()
    out, split = encode_response(
        model_name="m", model_version="1", request_id=None, outputs={"s": array}, binary={"s": True}
    )
    got = triton.InferResult.from_response_body(out, header_length=split).as_numpy("s")
    assert got is not None and [g.decode() for g in got.ravel()] == array.ravel().tolist()


def test_check_inputs() -> None:
    specs = (TensorSpec("a", "FP32", (None, 2)), TensorSpec("b", "INT64", ()))
    ok: dict[str, np.ndarray[Any, Any]] = {"a": np.zeros((3, 2), np.float32), "b": np.array(1, np.int64)}
    check_inputs(ok, specs)
    with pytest.raises(TensorError, match=r"missing input.*b"):
        check_inputs({"a": ok["a"]}, specs)
    with pytest.raises(TensorError, match="must be INT64, not INT32"):
        check_inputs({**ok, "b": np.array(1, np.int32)}, specs)


@pytest.mark.parametrize(
    ("datatype", "data", "message"),
    [
        ("INT8", [1, 200], "out of range"),
        ("UINT8", [-1, 2], "out of range"),
        ("INT32", [1.5, 2.0], "not a regular array"),
        ("BOOL", [1, 0], "not a regular array"),
        ("BYTES", [1, 2], "must be strings"),
    ],
)
def test_json_values_must_fit_the_datatype(datatype: str, data: list[Any], message: str) -> None:
    body = json.dumps({"inputs": [{"name": "v", "datatype": datatype, "shape": [2], "data": data}]}).encode()
    with pytest.raises(TensorError, match=message):
        decode_request(body, None, LIMITS)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200), header=st.one_of(st.none(), st.integers(-5, 250).map(str)))
def test_garbage_never_escapes_as_anything_but_tensor_error(body: bytes, header: str | None) -> None:
    with contextlib.suppress(TensorError):
        decode_request(body, header, LIMITS)


# -- shape validation before allocation (security review) -------------------------------------------------------


def _json_request(datatype: str, shape: list[int], data: list[Any]) -> bytes:
    return json.dumps({"inputs": [{"name": "x", "datatype": datatype, "shape": shape, "data": data}]}).encode()


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ([0, 10**30], "dimension is larger"),
        ([0, 2**62, 2**62], "dimension is larger"),
        ([0, 2**31], "dimension is larger"),
        ([1] * 100, "100 dimensions; at most 32"),
        ([1] * 33, "33 dimensions"),
        ([0, LIMITS.max_elements + 1], "dimension is larger"),
        ([4096, 4096, 2], "more tensor elements"),
    ],
)
def test_declared_shapes_are_bounded_before_any_allocation(shape: list[int], message: str) -> None:
    with pytest.raises(TensorError, match=message):
        decode_request(_json_request("FP32", shape, []), None, LIMITS)


def test_rank_32_and_zero_sized_tensors_still_decode() -> None:
    assert decode_request(_json_request("FP32", [1] * 32, [1.0]), None, LIMITS).inputs["x"].ndim == 32
    assert decode_request(_json_request("FP32", [0, 7], []), None, LIMITS).inputs["x"].shape == (0, 7)


def test_bytes_elements_are_capped() -> None:
    limits = InputLimits(max_bytes_elements=8)
    n = 9
    head = json.dumps(
        {"inputs": [{"name": "s", "datatype": "BYTES", "shape": [n], "parameters": {"binary_data_size": 4 * n}}]}
    ).encode()
    with pytest.raises(TensorError, match="more BYTES elements"):
        decode_request(head + bytes(4 * n), str(len(head)), limits)
    two = json.dumps(
        {
            "inputs": [
                {"name": "a", "datatype": "BYTES", "shape": [5], "data": ["x"] * 5},
                {"name": "b", "datatype": "BYTES", "shape": [4], "data": ["y"] * 4},
            ]
        }
    ).encode()
    with pytest.raises(TensorError, match="input 'b': the request has more BYTES"):  # summed over inputs
        decode_request(two, None, limits)
    assert decode_request(_json_request("BYTES", [8], ["z"] * 8), None, limits).inputs["x"].size == 8


def test_bytes_count_needs_its_length_prefixes_before_allocation() -> None:
    head = json.dumps(
        {"inputs": [{"name": "s", "datatype": "BYTES", "shape": [1000], "parameters": {"binary_data_size": 8}}]}
    ).encode()
    with pytest.raises(TensorError, match="need at least 4000 bytes"):
        decode_request(head + bytes(8), str(len(head)), LIMITS)


def test_the_review_bytes_flood_is_refused_quickly() -> None:
    n = 4_000_000
    head = json.dumps(
        {"inputs": [{"name": "x", "datatype": "BYTES", "shape": [n], "parameters": {"binary_data_size": 4 * n}}]}
    ).encode()
    with pytest.raises(TensorError, match="more BYTES elements"):
        decode_request(head + bytes(4 * n), str(len(head)), LIMITS)


def test_numpy_errors_become_tensor_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    import enclave.tensors as tensors

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("numpy internals")

    monkeypatch.setattr(tensors, "_from_json", explode)
    with pytest.raises(TensorError, match=r"cannot be decoded \(ValueError\)"):
        decode_request(_json_request("FP32", [1], [1.0]), None, LIMITS)


SPECS = (TensorSpec("x", "FP32", (None, 4)),)


@pytest.mark.parametrize(
    ("datatype", "shape", "message"),
    [
        ("FP64", [1, 4], "must be FP32, not FP64"),
        ("FP32", [1, 4, 1], r"has shape \[1, 4, 1\]; the model takes \[-1, 4\]"),
        ("FP32", [2, 3], "the model takes"),
    ],
)
def test_model_specs_are_checked_before_decoding(
    datatype: str, shape: list[int], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import enclave.tensors as tensors

    def must_not_decode(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("data decoded before the shape was compared with the model")

    monkeypatch.setattr(tensors, "_from_json", must_not_decode)
    count = int(np.prod(shape))
    with pytest.raises(TensorError, match=message):
        decode_request(_json_request(datatype, shape, [0.0] * count), None, LIMITS, SPECS)
    body = json.dumps({"inputs": [{"name": "y", "datatype": "FP32", "shape": [1, 4], "data": [0.0] * 4}]}).encode()
    with pytest.raises(TensorError, match="the model has no input 'y'"):
        decode_request(body, None, LIMITS, SPECS)


@settings(max_examples=200, deadline=None)
@given(
    shape=st.lists(st.one_of(st.integers(0, 3), st.integers(0, 2**70)), max_size=70),
    datatype=st.sampled_from([*NUMERIC, "BYTES"]),
    binary=st.booleans(),
)
def test_any_declared_shape_is_tensor_error_or_decodes(shape: list[int], datatype: str, binary: bool) -> None:
    if binary:
        head = json.dumps(
            {"inputs": [{"name": "x", "datatype": datatype, "shape": shape, "parameters": {"binary_data_size": 0}}]}
        ).encode()
        body, header = head, str(len(head))
    else:
        body, header = _json_request(datatype, shape, []), None
    with contextlib.suppress(TensorError):
        decode_request(body, header, LIMITS, SPECS if datatype == "FP32" else None)


@pytest.mark.parametrize(
    ("datatype", "data", "message"),
    [("BOOL", bytes([0, 1, 2, 1]), "0 or 1"), ("BYTES", b"\x05\x00\x00\x00ab", "runs past")],
)
def test_binary_element_checks(datatype: str, data: bytes, message: str) -> None:
    shape = [4] if datatype == "BOOL" else [1]
    head = json.dumps(
        {"inputs": [{"name": "x", "datatype": datatype, "shape": shape, "parameters": {"binary_data_size": len(data)}}]}
    ).encode()
    with pytest.raises(TensorError, match=message):
        decode_request(head + data, str(len(head)), LIMITS)


def test_json_bytes_outputs_keep_trailing_nul_characters() -> None:
    """numpy's str dtype strips trailing NULs; the client must keep BYTES elements exactly."""
    array = np.array(["\x00", "ab\x00", ""], dtype=object).reshape(3, 1)
    body, header_length = encode_response(
        model_name="m", model_version="1", request_id=None, outputs={"o": array}, binary={"o": False}
    )
    assert header_length is None
    assert _oip.decode_response(body, None)["o"].tolist() == [["\x00"], ["ab\x00"], [""]]
