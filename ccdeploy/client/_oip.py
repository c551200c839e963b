"""Client side of Open Inference Protocol v2 tensors: encode a request, decode a response (JSON or binary).

The binary tensor data extension as Triton defines it: the JSON part first, its length in the
``Inference-Header-Content-Length`` header, then each binary tensor's bytes in order (little-endian,
row-major; BOOL one byte; BYTES a 4-byte little-endian length before each element).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ccdeploy.errors import InferenceRejected

__all__ = ["DATATYPES", "HEADER_LENGTH", "datatype_of", "decode_response", "encode_request"]

HEADER_LENGTH = "Inference-Header-Content-Length"

DATATYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(code)
    for name, code in (
        ("BOOL", "?"),
        ("UINT8", "<u1"),
        ("UINT16", "<u2"),
        ("UINT32", "<u4"),
        ("UINT64", "<u8"),
        ("INT8", "<i1"),
        ("INT16", "<i2"),
        ("INT32", "<i4"),
        ("INT64", "<i8"),
        ("FP16", "<f2"),
        ("FP32", "<f4"),
        ("FP64", "<f8"),
        ("BYTES", "O"),
    )
}
"""OIP datatype name -> numpy dtype of its elements."""
_BY_NUMPY = {dtype.str: name for name, dtype in DATATYPES.items() if name != "BYTES"}


def datatype_of(array: np.ndarray[Any, Any]) -> str:
    """The OIP datatype of a numpy array (strings and objects are BYTES).

    Raises:
        InferenceRejected: The dtype has no OIP datatype.
    """
    if array.dtype.kind in "OUS":
        return "BYTES"
    name = _BY_NUMPY.get(array.dtype.newbyteorder("<").str)
    if name is None:
        raise InferenceRejected(f"numpy dtype {array.dtype} has no Open Inference Protocol datatype")
    return name


def encode_request(
    inputs: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str] | None = None, *, binary: bool = True
) -> tuple[bytes, int | None]:
    """An inference request body, and the JSON part's length when binary tensors follow it.

    Args:
        inputs: Input name -> array.
        outputs: Outputs to ask for (default: all).
        binary: Send inputs and ask for outputs as binary data (else JSON lists).
    """
    tensors: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, value in inputs.items():
        array = np.asarray(value)
        datatype = datatype_of(array)
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary:
            chunks.append(_to_binary(array, datatype))
            tensor["parameters"] = {"binary_data_size": len(chunks[-1])}
        else:
            tensor["data"] = _to_json(array, datatype)
        tensors.append(tensor)
    request: dict[str, Any] = {"inputs": tensors}
    if outputs is not None:
        request["outputs"] = [{"name": name, "parameters": {"binary_data": binary}} for name in outputs]
    else:
        request["parameters"] = {"binary_data_output": binary}
    head = json.dumps(request, separators=(",", ":")).encode()
    if not binary:
        return head, None
    return b"".join([head, *chunks]), len(head)


def decode_response(body: bytes, header_length: str | None) -> dict[str, np.ndarray[Any, Any]]:
    """Decode an inference response into output name -> array.

    Raises:
        InferenceRejected: The response is malformed (it cannot be decoded as the protocol says).
    """
    try:
        split = len(body) if header_length is None else int(header_length)
        document = json.loads(body[:split])
        results: dict[str, np.ndarray[Any, Any]] = {}
        offset = split
        for tensor in document["outputs"]:
            dtype = DATATYPES[tensor["datatype"]]
            shape = [int(d) for d in tensor["shape"]]
            size = (tensor.get("parameters") or {}).get("binary_data_size")
            if size is None:
                data = tensor["data"]
                # numpy's str dtype drops trailing NUL characters: keep BYTES elements as Python strings
                array = _strings(data) if dtype.kind == "O" else np.array(data, dtype=dtype)
            else:
                chunk = body[offset : offset + int(size)]
                if len(chunk) != int(size):
                    raise ValueError("binary data runs past the body")
                offset += int(size)
                array = _from_binary(chunk, dtype)
            results[tensor["name"]] = array.astype(dtype, copy=False).reshape(shape)
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise InferenceRejected(f"the server's inference response is malformed: {type(error).__name__}") from None
    return results


def _to_binary(array: np.ndarray[Any, Any], datatype: str) -> bytes:
    if datatype == "BYTES":
        parts: list[bytes] = []
        for item in array.ravel():
            raw = item if isinstance(item, bytes) else str(item).encode()
            parts += (len(raw).to_bytes(4, "little"), raw)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=DATATYPES[datatype]).tobytes()


def _to_json(array: np.ndarray[Any, Any], datatype: str) -> list[Any]:
    if datatype == "BYTES":
        return [item.decode() if isinstance(item, bytes) else str(item) for item in array.ravel()]
    values: list[Any] = array.ravel().tolist()
    return values


def _strings(data: object) -> np.ndarray[Any, Any]:
    flat: list[str] = []
    pending = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(reversed(item))
        elif isinstance(item, str):
            flat.append(item)
        else:
            raise TypeError("BYTES data must be strings")
    array = np.empty(len(flat), dtype=object)
    array[:] = flat
    return array


def _from_binary(chunk: bytes, dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    if dtype.kind != "O":
        return np.frombuffer(chunk, dtype=dtype)
    items: list[bytes] = []
    offset = 0
    while offset < len(chunk):
        length = int.from_bytes(chunk[offset : offset + 4], "little")
        if offset + 4 + length > len(chunk):
            raise ValueError("a BYTES element runs past its tensor")
        items.append(chunk[offset + 4 : offset + 4 + length])
        offset += 4 + length
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array
