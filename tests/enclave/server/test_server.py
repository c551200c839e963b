"""The OIP v2 server over real uvicorn with TLS: health, metadata, JSON and binary inference, input checks, attestation."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest

from attestation import verify
from ccdeploy.release.binding import report_data
from enclave.server import create_app, parse_nonce
from enclave.tensors import HEADER_LENGTH, InputLimits
from tests.enclave.server.conftest import LIMITS, Served
from tests.enclave.server.harness import running, tiny_session

X = np.arange(8, dtype=np.float32).reshape(2, 4) / 7
SECRET = 98765.4321  # a tensor value that must never come back in an error message


def _binary_body(header: dict[str, Any], *chunks: bytes) -> tuple[bytes, dict[str, str]]:
    head = json.dumps(header).encode()
    return head + b"".join(chunks), {HEADER_LENGTH: str(len(head)), "Content-Type": "application/octet-stream"}


def test_health_and_metadata(served: Served) -> None:
    with served.client() as client:
        assert client.get("/v2/health/live").status_code == 200
        assert client.get("/v2/health/ready").status_code == 200
        assert client.get("/v2").json()["extensions"] == ["binary_tensor_data"]
        metadata = client.get("/v2/models/tiny").json()
        assert metadata == {
            "name": "tiny",
            "versions": ["1"],
            "platform": "onnxruntime_onnx",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
            "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}],
        }
        assert client.get("/v2/models/tiny/versions/1").json() == metadata
        assert client.get("/v2/models/tiny/ready").status_code == 200
        for path in ("/v2/models/other", "/v2/models/other/ready", "/v2/models/tiny/versions/2"):
            response = client.get(path)
            assert response.status_code == 404 and "error" in response.json()
        assert client.post("/v2/models/other/infer", json={"inputs": []}).status_code == 404


def test_json_inference_equals_session_run(served: Served) -> None:
    expected = served.session.run({"x": X})["y"]
    request: dict[str, Any] = {
        "id": "r1",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 4], "data": X.ravel().tolist()}],
    }
    with served.client() as client:
        response = client.post("/v2/models/tiny/versions/1/infer", json=request)
    assert response.status_code == 200 and HEADER_LENGTH not in response.headers
    body = response.json()
    assert body["id"] == "r1" and body["model_name"] == "tiny" and body["model_version"] == "1"
    (output,) = body["outputs"]
    assert output["name"] == "y" and output["datatype"] == "FP32" and output["shape"] == [2, 3]
    np.testing.assert_array_equal(np.asarray(output["data"], dtype=np.float32).reshape(2, 3), expected)
    # nested JSON lists are accepted too
    request["inputs"][0]["data"] = X.tolist()
    with served.client() as client:
        nested = client.post("/v2/models/tiny/infer", json=request).json()
    assert nested["outputs"][0]["data"] == output["data"]


@pytest.mark.parametrize("how", ["request-default", "per-output"])
def test_binary_inference_equals_session_run(served: Served, how: str) -> None:
    expected = served.session.run({"x": X})["y"]
    header: dict[str, Any] = {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 4], "parameters": {"binary_data_size": X.nbytes}}]
    }
    if how == "request-default":
        header["parameters"] = {"binary_data_output": True}
    else:
        header["outputs"] = [{"name": "y", "parameters": {"binary_data": True}}]
    body, headers = _binary_body(header, X.tobytes())
    with served.client() as client:
        response = client.post("/v2/models/tiny/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    split = int(response.headers[HEADER_LENGTH])
    head = json.loads(response.content[:split])
    (output,) = head["outputs"]
    assert output["parameters"] == {"binary_data_size": 24} and "data" not in output
    assert response.content[split:] == expected.tobytes()


def test_binary_input_json_output(served: Served) -> None:
    header = {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 4], "parameters": {"binary_data_size": 32}}],
        "outputs": [{"name": "y"}],
    }
    body, headers = _binary_body(header, X.tobytes())
    with served.client() as client:
        response = client.post("/v2/models/tiny/infer", content=body, headers=headers)
    assert response.status_code == 200 and HEADER_LENGTH not in response.headers
    got = np.asarray(response.json()["outputs"][0]["data"], dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(got, served.session.run({"x": X})["y"])


def _x(**overrides: Any) -> dict[str, Any]:
    tensor = {"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [SECRET, 1.0, 2.0, 3.0]}
    tensor.update(overrides)
    return tensor


INVALID_JSON_REQUESTS: dict[str, tuple[Any, str]] = {
    "unknown input": ({"inputs": [_x(), _x(name="z")]}, "no input 'z'"),
    "missing input": ({"inputs": [_x(name="z")]}, "no input 'z'"),
    "no inputs": ({"inputs": []}, "non-empty"),
    "datatype mismatch": ({"inputs": [_x(datatype="INT32", data=[1, 2, 3, 4])]}, "must be FP32"),
    "unknown datatype": ({"inputs": [_x(datatype="FP128")]}, "unknown datatype"),
    "rank mismatch": ({"inputs": [_x(shape=[4])]}, "shape [4]"),
    "fixed dim mismatch": ({"inputs": [_x(shape=[2, 2])]}, "the model takes [-1, 4]"),
    "count vs data": ({"inputs": [_x(shape=[2, 4])]}, "needs 8 elements"),
    "negative dim": ({"inputs": [_x(shape=[-1, 4])]}, "non-negative"),
    "strings for floats": ({"inputs": [_x(data=["a", "b", "c", "d"])]}, "not a regular array"),
    "booleans for floats": ({"inputs": [_x(data=[True, False, True, False])]}, "not a regular array"),
    "ragged": ({"inputs": [_x(data=[[SECRET, 1.0], [2.0]])]}, "not a regular array"),
    "too many elements": ({"inputs": [_x(shape=[2000, 4])]}, "more tensor elements"),
    "no data": ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4]}]}, "neither data"),
    "unknown output": ({"inputs": [_x()], "outputs": [{"name": "q"}]}, "no output(s) 'q'"),
    "duplicate input": ({"inputs": [_x(), _x()]}, "twice"),
    "not an object": ([1, 2], "JSON object"),
    "shared memory": ({"inputs": [_x(parameters={"shared_memory_region": "r"})]}, "shared-memory"),
}


@pytest.mark.parametrize("case", sorted(INVALID_JSON_REQUESTS))
def test_invalid_json_requests_are_400(served: Served, case: str) -> None:
    request, expected = INVALID_JSON_REQUESTS[case]
    with served.client() as client:
        response = client.post("/v2/models/tiny/infer", json=request)
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    assert expected in message
    assert "98765" not in message


def _binary_case(size: int, data: bytes, header_length: str | None = None, datatype: str = "FP32") -> Any:
    header = {
        "inputs": [{"name": "x", "datatype": datatype, "shape": [1, 4], "parameters": {"binary_data_size": size}}]
    }
    body, headers = _binary_body(header, data)
    if header_length is not None:
        headers[HEADER_LENGTH] = header_length
    return body, headers


INVALID_BINARY_REQUESTS: dict[str, tuple[Any, str]] = {
    "size vs shape": (_binary_case(12, bytes(12)), "needs 16 bytes"),
    "size past body": (_binary_case(32, bytes(16)), "does not fit"),
    "trailing bytes": (_binary_case(16, bytes(20)), "longer than"),
    "header length not int": (_binary_case(16, bytes(16), "abc"), "not an integer"),
    "header length past body": (_binary_case(16, bytes(16), "100000"), "outside the body"),
    "header length cuts JSON": (_binary_case(16, bytes(16), "10"), "not valid JSON"),
    # the model's datatype is checked before any data is decoded (the codec's own checks: test_tensors.py)
    "BOOL for FP32": (_binary_case(4, bytes([0, 1, 2, 1]), datatype="BOOL"), "must be FP32, not BOOL"),
    "BYTES for FP32": (_binary_case(6, b"\x05\x00\x00\x00ab", datatype="BYTES"), "must be FP32, not BYTES"),
}


@pytest.mark.parametrize("case", sorted(INVALID_BINARY_REQUESTS))
def test_invalid_binary_requests_are_400(served: Served, case: str) -> None:
    (body, headers), expected = INVALID_BINARY_REQUESTS[case]
    with served.client() as client:
        response = client.post("/v2/models/tiny/infer", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert expected in response.json()["error"]


def test_body_too_large_is_413(served: Served) -> None:
    big = np.zeros((LIMITS.max_request_bytes // 16 + 1, 4), dtype=np.float32)
    body, headers = _binary_body(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": "FP32",
                    "shape": list(big.shape),
                    "parameters": {"binary_data_size": big.nbytes},
                }
            ]
        },
        big.tobytes(),
    )
    with served.client() as client:
        response = client.post("/v2/models/tiny/infer", content=body, headers=headers)
        assert response.status_code == 413 and "larger than" in response.json()["error"]

        def chunks() -> Any:  # no Content-Length: the limit is enforced while streaming
            yield body[: len(body) // 2]
            yield body[len(body) // 2 :]

        streamed = client.post("/v2/models/tiny/infer", content=chunks(), headers=headers)
        assert streamed.status_code == 413


def test_attestation_binds_nonce_hpke_and_tls_key(served: Served) -> None:
    nonce = bytes(range(32))
    for text in (nonce.hex(), base64.urlsafe_b64encode(nonce).decode().rstrip("=")):
        with served.client() as client:
            response = client.get("/v1/attestation", params={"nonce": text})
        assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
        document = response.json()
        assert set(document) == {
            "evidence",
            "evidence_type",
            "hpke_suite",
            "hpke_public_key",
            "tls_certificate",
            "nonce",
        }
        assert base64.b64decode(document["nonce"]) == nonce
        assert document["tls_certificate"] == served.tls.pem and document["evidence_type"] == "nitro"
        assert base64.b64decode(document["hpke_public_key"]) == served.hpke.public
        claims = verify(
            base64.b64decode(document["evidence"]),
            tee="nitro",
            at=None,
            roots=[served.simulator.root],
            unsafe_allow_simulator_roots=True,
        )
        assert claims.report_data == report_data(nonce, served.hpke.public, served.tls.spki)
        assert claims.nonce == nonce


@pytest.mark.parametrize("nonce", ["", "00" * 15, "00" * 65, "not-a-nonce!", "abc"])
def test_bad_nonce_is_400(served: Served, nonce: str) -> None:
    with served.client() as client:
        response = client.get("/v1/attestation", params={"nonce": nonce} if nonce else None)
    assert response.status_code == 400 and "nonce" in response.json()["error"]


def test_parse_nonce_bounds() -> None:
    assert parse_nonce("ab" * 16) == b"\xab" * 16
    assert parse_nonce(base64.urlsafe_b64encode(b"\xff" * 64).decode()) == b"\xff" * 64
    with pytest.raises(ValueError, match="16 to 64"):
        parse_nonce("ab" * 65)


def test_no_attestation_is_404() -> None:
    app = create_app(tiny_session(), model_name="tiny", attestation=None, limits=InputLimits())
    with running(app) as url:
        import httpx

        response = httpx.get(f"{url}/v1/attestation", params={"nonce": "00" * 32})
    assert response.status_code == 404 and "no attestation" in response.json()["error"]


def test_failing_attester_is_503_without_details(served: Served) -> None:
    def broken(nonce: bytes) -> Any:
        raise OSError("/dev/nsm: secret detail")

    app = create_app(served.session, model_name="tiny", attestation=broken, limits=InputLimits())
    with running(app) as url:
        import httpx

        response = httpx.get(f"{url}/v1/attestation", params={"nonce": "00" * 32})
    assert response.status_code == 503 and response.json() == {"error": "attestation failed"}
