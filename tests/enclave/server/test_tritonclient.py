"""Acceptance 6: tritonclient's HTTP client, unchanged, against the server (over TLS), binary extension included."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.enclave.server.conftest import Served


@pytest.fixture
def client(served: Served) -> Iterator[Any]:
    def pinned() -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(served.tls.certfile))
        context.check_hostname = False
        return context

    host = served.url.removeprefix("https://")
    # insecure=True only turns hostname checking off (the enclave's certificate names no host); the context
    # from the factory keeps CERT_REQUIRED and trusts exactly the server's certificate.
    with triton.InferenceServerClient(host, ssl=True, ssl_context_factory=pinned, insecure=True) as triton_client:
        yield triton_client


def test_health_and_metadata(client: Any) -> None:
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("tiny")
    assert not client.is_model_ready("other")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata("tiny")
    assert metadata["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    assert metadata["platform"] == "onnxruntime_onnx"


@pytest.mark.parametrize(("binary_in", "binary_out"), [(True, True), (False, False), (True, False), (False, True)])
def test_infer(client: Any, served: Served, binary_in: bool, binary_out: bool) -> None:
    x = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)
    tensor = triton.InferInput("x", [5, 4], "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary_in)
    result = client.infer("tiny", [tensor], outputs=[triton.InferRequestedOutput("y", binary_data=binary_out)])
    np.testing.assert_array_equal(result.as_numpy("y"), served.session.run({"x": x})["y"])
    assert ("binary_data_size" in str(result.get_response())) is binary_out


def test_infer_without_outputs_uses_binary(client: Any, served: Served) -> None:
    x = np.ones((1, 4), dtype=np.float32)
    tensor = triton.InferInput("x", [1, 4], "FP32")
    tensor.set_data_from_numpy(x)
    result = client.infer("tiny", [tensor], request_id="abc")
    assert result.get_response()["id"] == "abc"
    np.testing.assert_array_equal(result.as_numpy("y"), served.session.run({"x": x})["y"])


def test_errors_surface_as_triton_exceptions(client: Any) -> None:
    tensor = triton.InferInput("x", [1, 3], "FP32")
    tensor.set_data_from_numpy(np.ones((1, 3), dtype=np.float32))
    with pytest.raises(InferenceServerException, match="the model takes") as caught:
        client.infer("tiny", [tensor])
    assert caught.value.status() == "400"


def test_tls_context_really_verifies(served: Served, tmp_path: Any) -> None:
    from tests.enclave.server.harness import make_tls

    other = make_tls(tmp_path)

    def trusts_another() -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(other.certfile))

    host = served.url.removeprefix("https://")
    with (
        triton.InferenceServerClient(host, ssl=True, ssl_context_factory=trusts_another, insecure=True) as client,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        client.is_server_live()
