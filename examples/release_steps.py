"""Demo steps 12-18: attested key release and confidential serving, on one machine, through the real processes.

A key broker (`ccdeploy broker serve`, SQLite), an enclave (`python -m enclave`, simulator TEE) and a client
(`ccdeploy infer`) run as separate processes on loopback, as they would on separate machines. Steps 16-17 add a
confidential-GPU enclave: a simulated TDX guest with two simulated NVIDIA GPUs, released to, and the same enclave
with a tampered GPU, denied. What each step proves is printed; the receipt, the audit database and the broker's
public keys are kept in the output folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import yaml
from provenance_steps import ok, run

from attestation.simulator.nitro import NitroSimulator
from attestation.simulator.nvidia import DEFAULT_DRIVER_VERSION, NvidiaGpuSimulator
from attestation.simulator.tdx import TdxSimulator
from enclave.attesters.simulator import write_simulator_state
from enclave.attesters.simulator_nvidia import TAMPERED_RIM_INDEX, write_gpu_state
from enclave.attesters.simulator_tdx import write_tdx_state
from enclave.bootstrap import GPU_STATE, TDX_STATE

_SERVING = re.compile(r"serving model '(?P<model>[^']+)' on (?P<url>https://[\d.]+:\d+)")
_POLICY_EXAMPLE = Path(__file__).with_name("release-policy.yaml")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A background process whose output goes to ``log``; stopped (SIGTERM, then SIGKILL) on exit."""
    with log.open("wb") as sink:
        process = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _wait_for(predicate: Callable[[], bool], what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if predicate():
            return
        if process.poll() is not None:
            raise SystemExit(f"{what} exited {process.returncode}:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start within 60 s:\n{log.read_text(errors='replace')}")


def _broker_up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v1/broker", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _demo_policy(root_pem: str, signer_public: Path) -> str:
    """The example policy with this run's simulator root and signing key in place of the samples."""
    policy = yaml.safe_load(_POLICY_EXAMPLE.read_text())
    policy["trust_roots"] = {"nitro": [root_pem]}
    policy["provenance"]["key"] = signer_public.read_text()
    return yaml.safe_dump(policy, sort_keys=False)


def _gpu_policy(tdx: TdxSimulator, gpu: NvidiaGpuSimulator, signer_public: Path) -> str:
    """The example policy for a TDX guest with two confidential GPUs, trusting this run's simulators."""
    policy = yaml.safe_load(_POLICY_EXAMPLE.read_text())
    policy["platforms"] = {"tdx": {"mrtd": tdx.default_mrtd().hex()}}
    policy["trust_roots"] = {
        "tdx": [tdx.root_pem().decode()],
        "nvidia-gpu": [gpu.device_root_pem().decode()],
        "nvidia-rim": [gpu.rim_root_pem().decode()],
    }
    policy["gpu"] = {"required": True, "count": 2, "drivers": [DEFAULT_DRIVER_VERSION], "require_ocsp": True}
    policy["provenance"]["key"] = signer_public.read_text()
    policy["cel"] = ['claims.tee == "tdx" && claims.debug == false']
    return yaml.safe_dump(policy, sort_keys=False)


def _enclave_args(
    broker: str, sealed: Path, state: Path, *extra: str, model: str = "mlp", attester: str = "simulator-nitro"
) -> list[str]:
    return [
        sys.executable, "-m", "enclave", "--broker", broker, "--model", model, "--sealed", str(sealed),
        "--attester", attester, "--simulator-state", str(state), "--port", "0", *extra,
    ]  # fmt: skip


def _serving(log: Path, process: subprocess.Popen[bytes], what: str) -> str:
    """Wait until the enclave logs that it serves; its URL."""
    match: list[re.Match[str]] = []

    def serving() -> bool:
        found = _SERVING.search(log.read_text(errors="replace"))
        if found:
            match.append(found)
        return found is not None

    _wait_for(serving, what, process, log)
    return match[0]["url"]


def _show(log: Path, *words: str) -> None:
    for line in log.read_text().splitlines():
        if any(word in line for word in words):
            print("      " + line.split(" ", 2)[-1][:150])


def gpu_enclave(
    work: Path,
    broker: str,
    sealed: Path,
    token: Path,
    signer_public: Path,
    step: Callable[[int, str], None],
    proved: Callable[[str], None],
) -> None:
    """Steps 16-17: a simulated TDX guest with two simulated GPUs is released to; one with a tampered GPU is not."""
    step(16, "A confidential-GPU enclave: a simulated TDX guest and two simulated NVIDIA GPUs, one nonce")
    now = datetime.now(UTC)
    tdx, gpu = TdxSimulator.create(at=now), NvidiaGpuSimulator.create(at=now)
    state = work / "enclave-gpu-simulator"
    write_tdx_state(state / TDX_STATE, tdx)
    write_gpu_state(state / GPU_STATE, gpu, now)
    policy = work / "mlp-gpu.release-policy.yaml"
    policy.write_text(_gpu_policy(tdx, gpu, signer_public))
    ok("broker", "register", str(sealed), "--policy", str(policy), "--url", broker, "--name", "mlp-gpu",
       "--token-file", str(token), "--json")  # fmt: skip
    proved(
        f"model 'mlp-gpu' registered: tdx mrtd pinned; gpu: required, count 2, driver {DEFAULT_DRIVER_VERSION}, "
        "OCSP required; simulated Intel, NVIDIA device and RIM roots trusted"
    )
    args = _enclave_args(broker, sealed, state, model="mlp-gpu", attester="simulator-tdx+2gpu")
    log = work / "enclave-gpu.log"
    with _process(args, log) as process:
        url = _serving(log, process, "the GPU enclave")
        _show(log, "evidence", "collateral", "granted")
    proved(
        "the TDX quote verified to the (simulated) Intel root with the DCAP collateral the enclave sent, TCB UpToDate"
    )
    proved(
        "GPU-0 and GPU-1: SPDM reports signed by their device keys, chains to the NVIDIA device root, each nonce "
        "= SHA-256(domain || TDX report data): both are bound to this TD and this challenge"
    )
    proved(
        "every GPU measurement equals NVIDIA's signed driver and VBIOS RIMs; OCSP good; "
        f"the key was released and the model is served at {url}"
    )

    step(17, "The same enclave with a tampered GPU-1 (one measurement differs from its RIM): denied")
    denied = subprocess.run(
        _enclave_args(broker, sealed, state, "--simulator-bad-gpu", "1", model="mlp-gpu",
                      attester="simulator-tdx+2gpu"),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    (work / "enclave-gpu-denied.log").write_text(denied.stdout + denied.stderr)
    assert denied.returncode == 1, denied.stderr
    reason = re.search(r"release denied \((?P<reason>[a-z-]+), HTTP (?P<status>\d+)\): (?P<detail>.*)", denied.stderr)
    assert reason is not None and reason["reason"] == "measurement-mismatch", denied.stderr
    assert "GPU-1" in reason["detail"] and f"indices {TAMPERED_RIM_INDEX}" in reason["detail"], reason["detail"]
    named = reason["detail"].split("GPU-1: ", 1)[1][:110]
    proved(f"denied: {reason['reason']} (HTTP {reason['status']}); the broker names the GPU: GPU-1: {named}")


def release_and_serve(
    work: Path,
    output: Path,
    sealed: Path,
    kek_uri: str,
    signer_public: Path,
    reference: Callable[[np.ndarray], np.ndarray],
    step: Callable[[int, str], None],
    proved: Callable[[str], None],
) -> tuple[Path, Path]:
    """Steps 12-18. Returns the receipt and the audit database (both kept in ``output``)."""
    step(12, "Start the key broker (SQLite) and register the sealed model under its release policy")
    state = output / "broker-state"
    shutil.rmtree(state, ignore_errors=True)
    ok("broker", "init", str(state))
    database = output / "broker.db"
    for stale in output.glob("broker.db*"):
        stale.unlink()
    broker = f"http://127.0.0.1:{_free_port()}"
    broker_log = work / "broker.log"
    serve = [sys.executable, "-m", "ccdeploy", "broker", "serve", "--state", str(state)]
    serve += ["--db", f"sqlite:///{database}", "--kek", kek_uri, "--port", broker.rsplit(":", 1)[1]]
    with _process(serve, broker_log) as broker_process:
        _wait_for(lambda: _broker_up(broker), "the broker", broker_process, broker_log)
        info = httpx.get(f"{broker}/v1/broker").json()
        (output / "broker-receipt-key.pem").write_text(info["receipt_public_key"])
        (output / "broker-log.vkey").write_text(info["log_verifier_key"] + "\n")
        proved(f"broker {info['broker_id']} is up at {broker}; suites {', '.join(info['hpke_suites'])}")

        simulator_state = work / "enclave-simulator"
        simulator = NitroSimulator.create(at=datetime.now(UTC))
        write_simulator_state(simulator_state, simulator)
        policy = work / "mlp.release-policy.yaml"
        policy.write_text(_demo_policy(simulator.root_pem().decode(), signer_public))
        lint = run("policy", "lint", str(policy))
        warnings = [line.strip() for line in lint.stdout.splitlines() if line.strip().startswith("warn")]
        proved(f"policy lint: exit {lint.returncode}, {len(warnings)} warning(s): {warnings[0][6:70]}…")
        answer = json.loads(
            ok("broker", "register", str(sealed), "--policy", str(policy), "--url", broker, "--name", "mlp",
               "--token-file", str(state / "admin-token"), "--json")
        )  # fmt: skip
        registered = answer["model"]
        digest = registered["policy_digest"][:23]
        proved(f"model 'mlp' registered with the admin token: policy {digest}…; the broker unwrapped its DEK")
        unauthorized = run("broker", "register", str(sealed), "--policy", str(policy), "--url", broker,
                           "--token-file", str(policy))  # fmt: skip
        assert unauthorized.returncode != 0, unauthorized.stdout
        proved(f"registration without the admin token is refused (exit {unauthorized.returncode})")

        step(13, "Start the enclave on the simulator TEE: attest, receive the key, unseal in memory, serve")
        enclave_log = work / "enclave.log"
        with _process(_enclave_args(broker, sealed, simulator_state), enclave_log) as enclave_process:
            url = _serving(enclave_log, enclave_process, "the enclave")
            _show(enclave_log, "challenge", "evidence", "granted", "loaded", "serving")
            proved("the key left the broker HPKE-sealed (X-Wing) to the enclave's ephemeral key, bound in its evidence")
            proved(f"the weights were decrypted into memory only; ONNX Runtime serves them at {url}")

            step(14, "The client verifies the enclave before sending data, then runs an inference")
            x = [[0.5, -1.0, 2.0, 0.25]]
            done = run("infer", url, "--model", "mlp", "--policy", str(policy), "--input", f"x=@{json.dumps(x)}",
                       "--broker-key", str(output / "broker-receipt-key.pem"),
                       "--log-key", f"@{output / 'broker-log.vkey'}", "--json")  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(f"ccdeploy infer exited {done.returncode}:\n{done.stdout}{done.stderr}")
            result = json.loads(done.stdout)
            y = np.array(result["outputs"]["y"]["data"], dtype=np.float32).reshape(result["outputs"]["y"]["shape"])
            assert np.allclose(y, reference(np.array(x, dtype=np.float32)), atol=1e-5), y
            pinned_key = result["verified"]["tls_public_key_sha256"][:16]
            proved(f"evidence verified and appraised against the policy; TLS key pinned: sha256:{pinned_key}…")
            released = result["receipt"]
            proved(
                f"the enclave's release receipt verified: model {released['model']}, log index {released['log_index']},"
                " issued to this enclave's HPKE and TLS keys"
            )
            shown = [round(float(v), 4) for v in y.ravel()]
            proved(f"inference over the pinned TLS connection: y = {shown}, equal to the numpy reference")

            receipt = output / "mlp.release-receipt.json"
            pinned = _pinned_client(result["verified"]["tls_certificate_pem"])
            receipt.write_bytes(pinned.get(f"{url}/v1/receipt").content)

        step(15, "An enclave with a different measurement (PCR0) asks for the same key: denied")
        other_pcr0 = "ab" * 48
        denied_log = work / "enclave-denied.log"
        denied = subprocess.run(
            _enclave_args(broker, sealed, simulator_state, "--simulator-pcr", f"0={other_pcr0}"),
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        denied_log.write_text(denied.stdout + denied.stderr)
        assert denied.returncode == 1, denied_log.read_text()
        reason = re.search(r"release denied \((?P<reason>[a-z-]+), HTTP (?P<status>\d+)\)", denied.stderr)
        assert reason is not None and reason["reason"] == "measurement-mismatch", denied.stderr
        proved(f"denied: {reason['reason']} (HTTP {reason['status']}); the enclave exited {denied.returncode}")

        gpu_enclave(work, broker, sealed, state / "admin-token", signer_public, step, proved)

        step(18, "Audit: the receipt verifies offline, the audit chain and the transparency log are intact")
        checked = json.loads(
            ok("receipt", "verify", str(receipt), "--broker-key", str(output / "broker-receipt-key.pem"),
               "--log-key", f"@{output / 'broker-log.vkey'}", "--json")
        )  # fmt: skip
        proved(f"release receipt: {checked['verdict']}; model {checked['model']}, log index {checked['log_index']}")
        audit = json.loads(ok("broker", "audit", "verify", "--db", f"sqlite:///{database}", "--state", str(state),
                              "--json"))  # fmt: skip
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(audit["kinds"].items()))
        proved(f"audit chain: {audit['entries']} entries verified ({kinds}); "
               f"transparency log: {audit['log_size']} leaves, root {audit['root_hash'][:16]}…")  # fmt: skip
    print(f"    receipt:   {receipt}")
    print(f"    audit log: {database} (verify: ccdeploy broker audit verify --db sqlite:///{database})")
    return receipt, database


def _pinned_client(certificate_pem: str) -> httpx.Client:
    """An HTTPS client trusting exactly the enclave certificate the attested client pinned."""
    import ssl  # noqa: PLC0415

    context = ssl.create_default_context(cadata=certificate_pem)
    context.check_hostname = False
    return httpx.Client(verify=context)


def output_folder() -> Path:
    """Where the demo keeps what an auditor would look at afterwards (created; ignored by git)."""
    folder = Path(os.environ.get("CCDEPLOY_DEMO_OUTPUT", Path.cwd() / "demo-output"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
