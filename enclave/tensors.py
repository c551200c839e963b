"""Open Inference Protocol v2 tensors on the server side: JSON tensors and the binary tensor data extension.

A request body is a JSON header, optionally followed by raw tensor bytes (the binary tensor data extension,
as Triton and KServe define it): the ``Inference-Header-Content-Length`` HTTP header gives the JSON part's
length, and each input sent as binary carries ``"parameters": {"binary_data_size": n}``; its bytes follow
the JSON in input order, little-endian, row-major, BOOL one byte per element, BYTES as 4-byte little-endian
length + bytes per element. Outputs are returned the same way when a request output has
``"parameters": {"binary_data": true}``, or by default when the request has
``"parameters": {"binary_data_output": true}``.

This module only decodes and encodes; :func:`check_inputs` compares decoded tensors with a model's input
metadata. Error messages name inputs, datatypes and shapes, never tensor values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DATATYPES",
    "HEADER_LENGTH",
    "DecodedRequest",
    "InputLimits",
    "TensorError",
    "TensorSpec",
    "check_inputs",
    "datatype_of",
    "decode_request",
    "encode_response",
]

HEADER_LENGTH = "Inference-Header-Content-Length"
"""The HTTP header that carries the length of the JSON part of a body with binary tensors."""

DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
"""OIP datatype name -> the numpy dtype of its elements (little-endian, as the binary extension sends them)."""

_BY_NUMPY = {dtype.str: name for name, dtype in DATATYPES.items() if name != "BYTES"}
# numpy kinds a JSON list may decode to for each datatype family (JSON true/false never count as numbers).
_JSON_KINDS = {"b": frozenset("b"), "u": frozenset("iu"), "i": frozenset("iu"), "f": frozenset("iuf")}
_U32 = np.dtype("<u4")
MAX_RANK = 32
"""The most dimensions a request tensor may have (numpy's own limit is 64; ONNX models use a handful)."""
MAX_DIMENSION = 2**31 - 1
"""The largest single dimension (ONNX Runtime and the binary extension's sizes are 32-bit friendly below it)."""
_BYTES_LENGTH_PREFIX = 4


class TensorError(ValueError):
    """A request that does not decode, or does not fit the model: answered with 400 and this message."""


@dataclass(frozen=True, slots=True)
class InputLimits:
    """Size limits applied to every inference request before any tensor is allocated.

    Attributes:
        max_request_bytes: The largest request body accepted (HTTP 413 beyond it).
        max_elements: The largest number of tensor elements, summed over the request's inputs; no single
            dimension may exceed it either (so a zero-sized tensor cannot declare an absurd shape).
        max_bytes_elements: The largest number of BYTES (string) elements, summed over the request's inputs:
            each becomes a Python object, decoded one at a time.
    """

    max_request_bytes: int = 64 * 1024 * 1024
    max_elements: int = 16 * 1024 * 1024
    max_bytes_elements: int = 256 * 1024


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """What a model declares about one input or output tensor.

    Attributes:
        name: The tensor's name in the graph.
        datatype: Its OIP datatype name (``"FP32"``, ``"BYTES"``, ...).
        shape: Its dimensions; ``None`` for a dynamic (symbolic or unknown) dimension.
    """

    name: str
    datatype: str
    shape: tuple[int | None, ...]

    @property
    def dtype(self) -> np.dtype[Any]:
        """The numpy dtype of the tensor's elements."""
        return DATATYPES[self.datatype]

    def metadata(self) -> dict[str, Any]:
        """The OIP ``$metadata_tensor`` object: dynamic dimensions as -1."""
        return {"name": self.name, "datatype": self.datatype, "shape": [-1 if d is None else d for d in self.shape]}


@dataclass(frozen=True, slots=True)
class DecodedRequest:
    """An inference request decoded into numpy arrays.

    Attributes:
        id: The request id to echo, if the client sent one.
        inputs: Input name -> array, in request order.
        outputs: Requested output name -> whether to return it as binary (``None``: the request default);
            ``None`` means every output.
        binary_default: Whether outputs that do not say are returned as binary (``binary_data_output``).
    """

    id: str | None
    inputs: dict[str, np.ndarray[Any, Any]]
    outputs: dict[str, bool | None] | None
    binary_default: bool

    def binary(self, name: str) -> bool:
        """Whether output ``name`` goes back as binary data."""
        choice = None if self.outputs is None else self.outputs.get(name)
        return self.binary_default if choice is None else choice


def datatype_of(array: np.ndarray[Any, Any]) -> str:
    """The OIP datatype name of a numpy array (object and string arrays are BYTES).

    Raises:
        TensorError: The dtype has no OIP datatype (complex numbers, bfloat16, ...).
    """
    if array.dtype.kind in "OUS":
        return "BYTES"
    name = _BY_NUMPY.get(array.dtype.newbyteorder("<").str)
    if name is None:
        raise TensorError(f"tensors of numpy dtype {array.dtype} have no Open Inference Protocol datatype")
    return name


def decode_request(
    body: bytes, header_length: str | None, limits: InputLimits, specs: Sequence[TensorSpec] | None = None
) -> DecodedRequest:
    """Decode an inference request body.

    Every tensor's declared shape is checked (rank, dimension sizes, element budget) and, with ``specs``,
    compared with the model's input before any of its data is decoded or allocated.

    Args:
        body: The whole HTTP body.
        header_length: The ``Inference-Header-Content-Length`` header, if present.
        limits: The element limits to enforce before allocating.
        specs: The model's inputs; when given, unknown inputs, other datatypes, ranks or fixed dimensions are
            refused before decoding (:func:`check_inputs` still checks that none is missing).

    Raises:
        TensorError: Malformed JSON, a malformed tensor, data that does not match its datatype or shape,
            binary sizes that do not add up, too many elements, or (with ``specs``) a tensor the model does
            not take. Any numpy error while decoding is reported as a TensorError too.
    """
    try:
        return _decode_request(body, header_length, limits, specs)
    except TensorError:
        raise
    except (ValueError, OverflowError, MemoryError) as error:  # numpy's own limits: the request is at fault
        raise TensorError(f"the request's tensors cannot be decoded ({type(error).__name__})") from None


def _decode_request(
    body: bytes, header_length: str | None, limits: InputLimits, specs: Sequence[TensorSpec] | None
) -> DecodedRequest:
    split = _header_split(body, header_length)
    try:
        header = json.loads(body[:split])
    except (ValueError, RecursionError):
        raise TensorError("the request is not valid JSON") from None
    if not isinstance(header, dict):
        raise TensorError("the request must be a JSON object")
    raw_inputs = header.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise TensorError('the request must have a non-empty "inputs" list')
    parameters = _parameters(header, "the request")
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise TensorError('"id" must be a string')
    binary = memoryview(body)[split:]
    offset = 0
    heads = _tensor_heads(raw_inputs, limits, specs)  # every declared shape checked before any data is decoded
    inputs: dict[str, np.ndarray[Any, Any]] = {}
    for raw, (name, datatype, shape, count) in zip(raw_inputs, heads, strict=True):
        size = _parameters(raw, f"input {name!r}").get("binary_data_size")
        if size is None:
            if "data" not in raw:
                raise TensorError(f"input {name!r} has neither data nor binary_data_size")
            inputs[name] = _from_json(name, datatype, shape, count, raw["data"])
            continue
        if "data" in raw:
            raise TensorError(f"input {name!r} has both data and binary_data_size")
        if not _is_int(size) or size < 0 or offset + size > len(binary):
            raise TensorError(f"input {name!r}: binary_data_size does not fit the binary part of the body")
        inputs[name] = _from_binary(name, datatype, shape, count, binary[offset : offset + size])
        offset += size
    if offset != len(binary):
        raise TensorError("the binary part of the body is longer than the inputs' binary_data_size say")
    return DecodedRequest(
        request_id,
        inputs,
        _requested_outputs(header.get("outputs")),
        parameters.get("binary_data_output") is True,
    )


def check_inputs(inputs: Mapping[str, np.ndarray[Any, Any]], specs: Sequence[TensorSpec]) -> None:
    """Check decoded inputs against a model's input metadata: names, datatypes, ranks and fixed dimensions.

    Raises:
        TensorError: An unknown or missing input, or a datatype or shape the model does not accept.
    """
    by_name = {spec.name: spec for spec in specs}
    for name, array in inputs.items():
        spec = by_name.get(name)
        if spec is None:
            raise TensorError(f"the model has no input {name!r} (inputs: {', '.join(by_name)})")
        actual = datatype_of(array)
        if actual != spec.datatype:
            raise TensorError(f"input {name!r} must be {spec.datatype}, not {actual}")
        if len(array.shape) != len(spec.shape) or any(
            want is not None and want != got for want, got in zip(spec.shape, array.shape, strict=True)
        ):
            raise TensorError(
                f"input {name!r} has shape {list(array.shape)}; the model takes {spec.metadata()['shape']}"
            )
    missing = [name for name in by_name if name not in inputs]
    if missing:
        raise TensorError(f"missing input(s): {', '.join(missing)}")


def encode_response(
    *,
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: Mapping[str, np.ndarray[Any, Any]],
    binary: Mapping[str, bool],
) -> tuple[bytes, int | None]:
    """Encode an inference response.

    Args:
        model_name: The model's name.
        model_version: The model's version.
        request_id: The request's id, echoed when given.
        outputs: Output name -> array, in the order to send them.
        binary: Output name -> whether to send it as binary data.

    Returns:
        The body, and the JSON part's length when binary data follows it (for ``Inference-Header-Content-Length``).
    """
    tensors: list[dict[str, Any]] = []
    chunks: list[bytes | memoryview] = []
    for name, array in outputs.items():
        datatype = datatype_of(array)
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary.get(name, False):
            data = _binary_of(array, datatype)
            tensor["parameters"] = {"binary_data_size": len(data)}
            chunks.append(data)
        else:
            tensor["data"] = _json_of(array, datatype)
        tensors.append(tensor)
    document: dict[str, Any] = {"model_name": model_name, "model_version": model_version, "outputs": tensors}
    if request_id is not None:
        document["id"] = request_id
    head = json.dumps(document, separators=(",", ":")).encode()
    if not chunks:
        return head, None
    return b"".join([head, *chunks]), len(head)


def _header_split(body: bytes, header_length: str | None) -> int:
    if header_length is None:
        return len(body)
    try:
        split = int(header_length)
    except ValueError:
        raise TensorError(f"{HEADER_LENGTH} is not an integer") from None
    if not 0 < split <= len(body):
        raise TensorError(f"{HEADER_LENGTH} is outside the body")
    return split


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parameters(obj: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    parameters = obj.get("parameters", {})
    if not isinstance(parameters, dict):
        raise TensorError(f'"parameters" of {where} must be an object')
    if "shared_memory_region" in parameters:
        raise TensorError("shared-memory tensors are not supported")
    return parameters


def _tensor_heads(
    raw_inputs: list[Any], limits: InputLimits, specs: Sequence[TensorSpec] | None
) -> list[tuple[str, str, tuple[int, ...], int]]:
    by_name = None if specs is None else {spec.name: spec for spec in specs}
    budget, bytes_budget = limits.max_elements, limits.max_bytes_elements
    heads: list[tuple[str, str, tuple[int, ...], int]] = []
    seen: set[str] = set()
    for raw in raw_inputs:
        name, datatype, shape, count = _tensor_head(raw, budget, limits.max_elements)
        budget -= count
        if datatype == "BYTES":
            if count > bytes_budget:
                raise TensorError(f"input {name!r}: the request has more BYTES elements than this server accepts")
            bytes_budget -= count
        if name in seen:
            raise TensorError(f"input {name!r} appears twice")
        seen.add(name)
        if by_name is not None:
            _check_head(name, datatype, shape, by_name)
        heads.append((name, datatype, shape, count))
    return heads


def _check_head(name: str, datatype: str, shape: tuple[int, ...], specs: Mapping[str, TensorSpec]) -> None:
    spec = specs.get(name)
    if spec is None:
        raise TensorError(f"the model has no input {name!r} (inputs: {', '.join(specs)})")
    if datatype != spec.datatype:
        raise TensorError(f"input {name!r} must be {spec.datatype}, not {datatype}")
    if len(shape) != len(spec.shape) or any(
        want is not None and want != got for want, got in zip(spec.shape, shape, strict=True)
    ):
        raise TensorError(f"input {name!r} has shape {list(shape)}; the model takes {spec.metadata()['shape']}")


def _tensor_head(raw: object, budget: int, max_dimension: int) -> tuple[str, str, tuple[int, ...], int]:
    if not isinstance(raw, dict):
        raise TensorError("each input must be a JSON object")
    name, datatype, shape = raw.get("name"), raw.get("datatype"), raw.get("shape")
    if not isinstance(name, str) or not name:
        raise TensorError('each input needs a "name" string')
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise TensorError(f"input {name!r}: unknown datatype (supported: {', '.join(DATATYPES)})")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise TensorError(f'input {name!r}: "shape" must be a list of non-negative integers')
    if len(shape) > MAX_RANK:
        raise TensorError(f"input {name!r}: {len(shape)} dimensions; at most {MAX_RANK} are accepted")
    if any(d > min(MAX_DIMENSION, max_dimension) for d in shape):
        raise TensorError(f"input {name!r}: a dimension is larger than this server accepts")
    count = math.prod(shape)  # at most 32 factors below 2**31: a bounded Python int
    if count > budget:
        raise TensorError(f"input {name!r}: the request has more tensor elements than this server accepts")
    return name, datatype, tuple(shape), count


def _requested_outputs(raw: object) -> dict[str, bool | None] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise TensorError('"outputs" must be a list')
    requested: dict[str, bool | None] = {}
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise TensorError('each requested output needs a "name" string')
        parameters = _parameters(entry, f"output {entry['name']!r}")
        if "classification" in parameters:
            raise TensorError("the classification extension is not supported")
        binary = parameters.get("binary_data")
        requested[entry["name"]] = None if binary is None else binary is True
    return requested


def _from_json(name: str, datatype: str, shape: tuple[int, ...], count: int, data: object) -> np.ndarray[Any, Any]:
    if not isinstance(data, list):
        raise TensorError(f"input {name!r}: data must be a list")
    if datatype == "BYTES":
        flat = _flatten(data)
        if not all(isinstance(item, str) for item in flat):
            raise TensorError(f"input {name!r}: BYTES data must be strings")
        if len(flat) != count:
            raise TensorError(f"input {name!r}: shape {list(shape)} needs {count} elements, data has {len(flat)}")
        array = np.empty(count, dtype=object)
        array[:] = flat
        return array.reshape(shape)
    dtype = DATATYPES[datatype]
    try:
        values = np.asarray(data)
    except (ValueError, OverflowError):
        raise TensorError(f"input {name!r}: data is not a regular array of {datatype} values") from None
    if values.size != count:
        raise TensorError(f"input {name!r}: shape {list(shape)} needs {count} elements, data has {values.size}")
    if count and values.dtype.kind in "fO" and dtype.kind in "iu":
        # numpy turns a mix of int64 and larger integers into floats or objects: check them as Python ints
        return _big_integers(name, datatype, np.array(data, dtype=object)).reshape(shape)
    if count and values.dtype.kind not in _JSON_KINDS[dtype.kind]:
        raise TensorError(f"input {name!r}: data is not a regular array of {datatype} values")
    if count and dtype.kind in "iu":
        info = np.iinfo(dtype)
        if values.min() < info.min or values.max() > info.max:
            raise TensorError(f"input {name!r}: data is out of range for {datatype}")
    return values.astype(dtype, copy=False).reshape(shape)


def _big_integers(name: str, datatype: str, values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    dtype = DATATYPES[datatype]
    info = np.iinfo(dtype)
    flat = values.ravel().tolist()
    if not all(_is_int(v) for v in flat):
        raise TensorError(f"input {name!r}: data is not a regular array of {datatype} values")
    if not all(info.min <= v <= info.max for v in flat):
        raise TensorError(f"input {name!r}: data is out of range for {datatype}")
    return np.array(flat, dtype=dtype)


def _flatten(data: list[Any]) -> list[Any]:
    if not any(isinstance(item, list) for item in data):
        return data
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _from_binary(
    name: str, datatype: str, shape: tuple[int, ...], count: int, data: memoryview
) -> np.ndarray[Any, Any]:
    if datatype == "BYTES":
        return _bytes_elements(name, data, count).reshape(shape)
    dtype = DATATYPES[datatype]
    if len(data) != count * dtype.itemsize:
        raise TensorError(
            f"input {name!r}: shape {list(shape)} of {datatype} needs {count * dtype.itemsize} bytes, got {len(data)}"
        )
    if datatype == "BOOL":
        octets = np.frombuffer(data, dtype=np.uint8)
        if count and octets.max() > 1:
            raise TensorError(f"input {name!r}: BOOL elements must be bytes 0 or 1")
        return octets.view(np.bool_).reshape(shape)
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def _bytes_elements(name: str, data: memoryview, count: int) -> np.ndarray[Any, Any]:
    if count * _BYTES_LENGTH_PREFIX > len(data):  # before allocating: each element needs its length prefix
        raise TensorError(f"input {name!r}: {count} BYTES elements need at least {count * 4} bytes, got {len(data)}")
    elements = np.empty(count, dtype=object)
    offset = 0
    for index in range(count):
        if offset + 4 > len(data):
            raise TensorError(f"input {name!r}: BYTES data ends before element {index}")
        length = int.from_bytes(data[offset : offset + 4], "little")
        offset += 4
        if offset + length > len(data):
            raise TensorError(f"input {name!r}: BYTES element {index} runs past the data")
        try:
            elements[index] = str(data[offset : offset + length], "utf-8")
        except UnicodeDecodeError:
            raise TensorError(f"input {name!r}: BYTES element {index} is not UTF-8 (ONNX strings are)") from None
        offset += length
    if offset != len(data):
        raise TensorError(f"input {name!r}: BYTES data is longer than its {count} elements")
    return elements


def _binary_of(array: np.ndarray[Any, Any], datatype: str) -> bytes | memoryview:
    if datatype == "BYTES":
        parts: list[bytes] = []
        for item in array.ravel():
            raw = item if isinstance(item, bytes) else str(item).encode()
            parts += (len(raw).to_bytes(4, "little"), raw)
        return b"".join(parts)
    contiguous = np.ascontiguousarray(array, dtype=DATATYPES[datatype])
    return contiguous.reshape(-1).view(np.uint8).data


def _json_of(array: np.ndarray[Any, Any], datatype: str) -> list[Any]:
    if datatype == "BYTES":
        return [item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item) for item in array.ravel()]
    flat: list[Any] = array.ravel().tolist()
    return flat
