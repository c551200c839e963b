"""Acceptance 5: no model plaintext on disk, and no key material in logs, for a whole enclave run.

The enclave bootstraps against the real key broker (``ccdeploy.broker`` on SQLite, under a real uvicorn
on loopback), serves over TLS, answers an attestation request and an inference, in a fresh working
directory with ``TMPDIR`` inside it. Every file written there is then scanned for any 64-byte window of
the model's plaintext (graph and external weights), ``/dev/shm`` must hold nothing new, and all captured
logs are searched for the DEK and the KEK in hex and base64.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue

import httpx
import numpy as np
import pytest
import uvicorn
from cryptography import x509

from attestation import verify
from attestation.simulator.nitro import NitroSimulator
from ccdeploy.kek import KeyWrapper
from ccdeploy.release.binding import report_data_matches, spki_der
from ccdeploy.release.client import ReleaseClient
from enclave.attesters.simulator import SimulatorNitroAttester, write_simulator_state
from enclave.bootstrap import bootstrap
from enclave.config import EnclaveConfig
from tests.enclave.conftest import (
    MODEL,
    SealedMlp,
    now,
    real_broker,
    register_model,
    running_uvicorn,
    seal_mlp,
    simulator_policy,
)

WINDOW = 64
SHM = Path("/dev/shm")
X = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)


def find_window(data: bytes, plaintext: bytes, window: int = WINDOW) -> int | None:
    """Offset in ``data`` of any ``window``-byte substring of ``plaintext``, or ``None``.

    A ``window``-byte match always contains one of the ``window // 2``-byte blocks of ``plaintext`` that
    start at multiples of ``window // 2``: search for those, then confirm a full window around each hit.
    """
    half = window // 2
    for block in range(0, len(plaintext) - half + 1, half):
        hit = data.find(plaintext[block : block + half])
        while hit != -1:
            for start in range(max(0, block - half + 1), block + 1):
                begin = hit - (block - start)
                if (
                    start + window <= len(plaintext)
                    and begin >= 0
                    and data[begin : begin + window] == plaintext[start : start + window]
                ):
                    return begin
            hit = data.find(plaintext[block : block + half], hit + 1)
    return None


def test_find_window_can_fail() -> None:
    # No "x" or "y" in the plaintext: otherwise a match may begin one byte early (a 1-in-256 flake per window).
    plaintext = bytes(byte for byte in os.urandom(2000) if byte not in b"xy")[:1000]
    for start in (0, 17, 500, 936):
        assert find_window(b"x" * 5 + plaintext[start : start + 64] + b"y", plaintext) == 5
    assert find_window(plaintext[300:363] + b"\0" + plaintext[363:426], plaintext) is None  # 63-byte pieces only
    assert find_window(b"", plaintext) is None


def secret_spellings(secret: bytes) -> list[str]:
    """How a key could show up in text: hex (both cases) and base64 (standard, URL-safe, with or without padding)."""
    spellings = [secret.hex(), secret.hex().upper()]
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        text = encode(secret).decode()
        spellings += [text, text.rstrip("=")]
    return spellings


def assert_no_secrets(logs: str, *secrets: bytes) -> None:
    assert logs.strip(), "no logs were captured: the search would prove nothing"
    for secret in secrets:
        for spelling in secret_spellings(secret):
            assert spelling not in logs, "key material in the logs"


def files_under(root: Path) -> list[Path]:
    return [Path(d, f) for d, _, names in os.walk(root) for f in names]


def assert_no_plaintext(root: Path, sealed: SealedMlp) -> None:
    written = files_under(root)
    assert written, "nothing was written: the scan would prove nothing"
    for file in written:
        data = file.read_bytes()
        for name, plaintext in sealed.plaintexts.items():
            offset = find_window(data, plaintext)
            assert offset is None, f"{file} holds plaintext of {name} at offset {offset}"


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh working directory with TMPDIR inside it."""
    run = tmp_path / "run"
    (run / "tmp").mkdir(parents=True)
    monkeypatch.chdir(run)
    monkeypatch.setenv("TMPDIR", str(run / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", None)
    yield run


@pytest.fixture
def staging_root() -> Iterator[Path]:
    """A private directory on /dev/shm for this run's staging: it must be empty afterwards.

    Private, so that other processes on the machine creating their own entries in /dev/shm cannot disturb the check.
    """
    if not SHM.is_dir():
        pytest.skip("/dev/shm is not available here")
    root = Path(tempfile.mkdtemp(prefix="ccdeploy-test-staging-", dir=SHM))
    try:
        yield root
        assert sorted(os.listdir(root)) == [], "staging entries left on /dev/shm"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def prepared(tmp_path: Path, kek: KeyWrapper) -> SealedMlp:
    """The sealed model, made before the run (outside the scanned directory)."""
    prep = tmp_path / "prep"
    prep.mkdir()
    return seal_mlp(prep, kek, hidden=256)


def check_enclave(base: str, tls_pem: str, simulator: NitroSimulator, sealed: SealedMlp) -> dict[str, object]:
    """Act as a client: verify the attestation binding with a pinned TLS key, infer, fetch the receipt."""
    context = ssl.create_default_context(cadata=tls_pem)
    with httpx.Client(base_url=base, verify=context, timeout=30) as http:
        nonce = os.urandom(32)
        document = http.get("/v1/attestation", params={"nonce": nonce.hex()}).json()
        claims = verify(
            base64.b64decode(document["evidence"]),
            tee=document["evidence_type"],
            at=None,
            roots=[simulator.root],
            unsafe_allow_simulator_roots=True,
        )
        tls = spki_der(x509.load_pem_x509_certificate(document["tls_certificate"].encode()).public_key())
        assert document["tls_certificate"] == tls_pem
        assert report_data_matches(claims.report_data, nonce, base64.b64decode(document["hpke_public_key"]), tls)
        request = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": X.ravel().tolist()}]}
        answer = http.post(f"/v2/models/{MODEL}/infer", json=request)
        assert answer.status_code == 200, answer.text
        output = np.array(answer.json()["outputs"][0]["data"], dtype=np.float32).reshape(2, 3)
        assert np.allclose(output, sealed.expected(X), atol=1e-4)
        receipt: dict[str, object] = http.get("/v1/receipt").json()
        return receipt


def test_in_process_enclave_leaves_no_plaintext_and_logs_no_keys(
    run_dir: Path,
    staging_root: Path,
    prepared: SealedMlp,
    kek: KeyWrapper,
    simulator: NitroSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    with real_broker(run_dir / "broker", run_dir / "broker.db", kek.uri) as (url, token):
        register_model(url, token, prepared.path, simulator_policy(simulator))
        config = EnclaveConfig(broker_url=url, model=MODEL, sealed_path=prepared.path, staging_root=staging_root)
        with ReleaseClient(url) as client:
            enclave = bootstrap(
                config, attester=SimulatorNitroAttester(simulator, now), release_client=client, clock=now
            )
        assert "staged 1 external-data file(s) on tmpfs" in caplog.text  # the tmpfs route really ran

        def load_ssl(server: uvicorn.Config) -> None:
            with enclave.keys.tls.uvicorn_ssl_files() as (certfile, keyfile):
                server.ssl_certfile, server.ssl_keyfile = certfile, keyfile
                server.load()

        with running_uvicorn(enclave.app(), config_hook=load_ssl) as port:
            receipt = check_enclave(f"https://127.0.0.1:{port}", enclave.keys.tls.certificate_pem, simulator, prepared)
    assert receipt == enclave.receipt and "dsseEnvelope" in receipt
    assert_no_plaintext(run_dir, prepared)
    assert_no_secrets(caplog.text, prepared.dek, prepared.kek)


def _read_lines(stream: object, queue: Queue[str], sink: list[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        sink.append(line)
        queue.put(line)


def test_enclave_process_leaves_no_plaintext_logs_no_keys_and_stops_on_sigterm(
    run_dir: Path, staging_root: Path, prepared: SealedMlp, kek: KeyWrapper, simulator: NitroSimulator, tmp_path: Path
) -> None:
    state = write_simulator_state(tmp_path / "simulator", simulator)
    with real_broker(run_dir / "broker", run_dir / "broker.db", kek.uri) as (url, token):
        register_model(url, token, prepared.path, simulator_policy(simulator))
        command = [sys.executable, "-m", "enclave", "--broker", url, "--model", MODEL, "--sealed", str(prepared.path)]
        command += ["--simulator-state", str(state), "--staging-root", str(staging_root), "--port", "0", "-v"]
        env = {**os.environ, "TMPDIR": str(run_dir / "tmp"), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        process = subprocess.Popen(command, cwd=run_dir, env=env, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        queue: Queue[str] = Queue()
        reader = threading.Thread(target=_read_lines, args=(process.stderr, queue, lines), daemon=True)
        reader.start()
        try:
            port = None
            while port is None:
                try:
                    line = queue.get(timeout=60)
                except Empty:
                    pytest.fail("the enclave did not start serving:\n" + "".join(lines))
                found = re.search(r"serving model .* on https://127\.0\.0\.1:(\d+)", line)
                port = int(found.group(1)) if found else None
                assert process.poll() is None, "".join(lines)
            tls_pem = ssl.get_server_certificate(("127.0.0.1", port))
            check_enclave(f"https://127.0.0.1:{port}", tls_pem, simulator, prepared)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0, "".join(lines)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            reader.join(10)
            if process.stderr is not None:
                process.stderr.close()
    logs = "".join(lines)
    assert "release granted" in logs and "stopped (SIGTERM)" in logs
    assert_no_plaintext(run_dir, prepared)
    assert_no_secrets(logs, prepared.dek, prepared.kek)
