"""Key-release round trip on loopback, read against the cryptography each release cannot avoid, in the same run.

What is measured, in one run:

* a real broker: ``ccdeploy broker serve`` started as a subprocess (one uvicorn worker unless ``--workers``;
  SQLite in a temporary directory; its rate limit raised out of the way, every other option the default,
  uvicorn's access log included), with a real model (``examples/tiny_model.py``) sealed under a ``file:`` KEK,
  signed with a ``file:`` key and registered with ``ccdeploy broker register`` under a policy that names the
  Nitro simulator's root, its PCRs and the signing key;
* clients: N threads (default 1, 4 and 16), each with its own keep-alive ``ReleaseClient`` (httpx). For every
  release a thread takes a challenge (``POST /v1/challenge``), then asks for the release (``POST /v1/release``)
  with simulator Nitro evidence bound to that nonce and to enclave keys. The evidence is the enclave's cost,
  not the broker's: all challenges of a round are taken first, the evidence for them is made untimed (its
  cost per document is reported on its own line), then all releases are sent. Latency: p50/p99 of release
  and of challenge + release (the sum of each nonce's two calls); throughput: releases per second over the
  release phase's wall time, and full round trips per second over both phases;
* the crypto floor: in one thread, without HTTP or a database, the public-key and key-wrap work of one
  release: :func:`attestation.verify` of the Nitro document (COSE ES384 signature and the 4-link P-384
  chain, as the broker calls it), HPKE X-Wing seal of the 32-byte DEK, the receipt's ECDSA P-256 signature
  (over a DSSE PAE of a receipt-sized statement), the checkpoint's Ed25519 signature and the AES key unwrap
  of the DEK with the KEK.

Ratios: release p50 / floor time (what HTTP, JSON, policy, SQLite and the logs add around the cryptography)
and releases/s / floor rate. Targets, informational: p99 <= 25 ms and >= 100 releases/s on 2 cores (clients
share the cores with the broker here). The exit status is 0 whatever the figures. Usage::

    python bench/bench_release.py [--releases 200] [--clients 1,4,16] [--workers 1] [--quick] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx
import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

REPO: Final = Path(__file__).resolve().parent.parent
for _path in (REPO, REPO / "examples", REPO / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench_attest import rate  # noqa: E402
from tiny_model import build_tiny_model, save_with_external_data  # noqa: E402

import attestation  # noqa: E402
from attestation.claims import Tee  # noqa: E402
from attestation.simulator.nitro import NitroSimulator, default_pcrs  # noqa: E402
from ccdeploy._cli import main as ccdeploy_main  # noqa: E402
from ccdeploy.broker.keys import CHECKPOINT_KEY_FILE, RECEIPT_KEY_FILE  # noqa: E402
from ccdeploy.broker.service import parse_head  # noqa: E402
from ccdeploy.kek import kek_from_uri  # noqa: E402
from ccdeploy.kek.file import create_kek_file  # noqa: E402
from ccdeploy.release.binding import report_data, spki_der  # noqa: E402
from ccdeploy.release.client import ReleaseClient  # noqa: E402
from ccdeploy.release.hpke import HpkeKeyPair, HpkeSuite, release_info, seal_to  # noqa: E402
from ccdeploy.release.protocol import ReleaseRequest  # noqa: E402
from ccdeploy.seal.keys import KekKeyProvider  # noqa: E402

P99_TARGET_MS: Final = 25.0
RATE_TARGET: Final = 100.0
MODEL: Final = "bench-tiny"
KEY_POOL: Final = 8
"""Distinct enclave HPKE key pairs used round-robin (making one is the enclave's cost, not the broker's)."""


# --------------------------------------------------------------------------------------------- helpers


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def cli(*args: str) -> dict[str, Any]:
    """Run the ccdeploy CLI in-process with ``--json``; return its document (fail loudly on a non-zero exit)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = ccdeploy_main([*args, "--json"])
    if code != 0:
        raise SystemExit(f"ccdeploy {' '.join(args[:2])} failed with exit code {code}: {out.getvalue()[-2000:]}")
    document: dict[str, Any] = json.loads(out.getvalue())
    return document


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# --------------------------------------------------------------------------------------------- broker


@dataclass
class BrokerProcess:
    """``ccdeploy broker serve`` as a subprocess on a loopback port, with its state and SQLite in ``work``."""

    work: Path
    kek_uri: str
    workers: int = 1
    url: str = ""
    state_dir: Path = field(init=False)
    _process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.state_dir = self.work / "broker-state"

    def __enter__(self) -> BrokerProcess:
        cli("broker", "init", str(self.state_dir))
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = [
            sys.executable,
            "-m",
            "ccdeploy",
            "broker",
            "serve",
            "--state",
            str(self.state_dir),
            "--db",
            f"sqlite:///{self.work / 'broker.db'}",
            "--kek",
            self.kek_uri,
            "--port",
            str(port),
            "--workers",
            str(self.workers),
            "--nonce-ttl",
            "3600",
            "--rate-limit",
            "1000000/s",  # every client is 127.0.0.1: the per-client limit would measure itself
        ]
        log = (self.work / "broker.log").open("wb")
        self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.work)
        log.close()
        deadline = time.monotonic() + 30
        while True:
            if self._process.poll() is not None:
                raise SystemExit(f"the broker exited: {(self.work / 'broker.log').read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/v1/broker", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the broker did not start within 30 s")
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def register(self, sealed: Path, policy: bytes, name: str) -> dict[str, Any]:
        """``ccdeploy broker register`` (in-process) with the admin token from the state directory."""
        policy_file = self.work / f"{name}.policy.yaml"
        policy_file.write_bytes(policy)
        token = str(self.state_dir / "admin-token")
        return cli("broker", "register", str(sealed), "--policy", str(policy_file), "--url", self.url,
                   "--token-file", token, "--name", name)  # fmt: skip


def simulator_policy(simulator: NitroSimulator, *, signer_pem: str | None) -> bytes:
    """A release policy accepting the simulator's default PCRs under its root (and the signer, if given)."""
    pcrs = default_pcrs()
    document: dict[str, Any] = {
        "version": 1,
        "platforms": {"nitro": {"pcrs": {i: pcrs[i].hex() for i in (0, 1, 2)}}},
        "trust_roots": {"nitro": [simulator.root_pem().decode()]},
        "unsafe_accept_simulator_roots": True,
    }
    if signer_pem is not None:
        document["provenance"] = {"key": signer_pem}
    return yaml.safe_dump(document, sort_keys=False).encode()


@dataclass(frozen=True)
class SignedModel:
    sealed: Path
    signer_pem: str


def seal_and_sign_tiny(work: Path, kek_uri: str) -> SignedModel:
    """The tiny example model (graph + external data), sealed under ``kek_uri`` and signed with a ``file:`` key."""
    model_dir = work / MODEL
    model_dir.mkdir()
    save_with_external_data(build_tiny_model()[0], model_dir)
    sealed = work / f"{MODEL}.ccseal"
    cli("seal", str(model_dir), "--kek", kek_uri, "-o", str(sealed))
    key = ec.generate_private_key(ec.SECP256R1())
    key_file = work / "signer.pem"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_file.chmod(0o600)
    cli("sign", str(sealed), "--signer", f"file:{key_file}")
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return SignedModel(sealed, public.decode())


# --------------------------------------------------------------------------------------------- enclave side


class FakeEnclaves:
    """Enclave keys (a small pool) and simulator evidence for given nonces, made outside any timing."""

    def __init__(self, simulator: NitroSimulator) -> None:
        self.simulator = simulator
        self.keys = [HpkeKeyPair.generate(HpkeSuite.XWING) for _ in range(KEY_POOL)]
        self.tls_spki = spki_der(ec.generate_private_key(ec.SECP256R1()).public_key())
        self.evidence_seconds: list[float] = []

    def request(self, index: int, nonce: bytes) -> ReleaseRequest:
        hpke = self.keys[index % len(self.keys)]
        start = time.perf_counter()
        evidence = self.simulator.document(
            timestamp=datetime.now(UTC), nonce=nonce, user_data=report_data(nonce, hpke.public, self.tls_spki)
        )
        self.evidence_seconds.append(time.perf_counter() - start)
        return ReleaseRequest(
            model=MODEL,
            nonce=nonce,
            evidence=evidence,
            evidence_type="nitro",
            hpke_suite=hpke.suite,
            hpke_public_key=hpke.public,
            tls_public_key=self.tls_spki,
        )


# --------------------------------------------------------------------------------------------- round trips


@dataclass
class Round:
    """One concurrency level: every call's latency and each phase's wall time."""

    clients: int
    challenge_s: list[float] = field(default_factory=list)
    release_s: list[float] = field(default_factory=list)
    both_s: list[float] = field(default_factory=list)
    challenge_wall_s: float = 0.0
    release_wall_s: float = 0.0
    errors: int = 0

    @property
    def releases_per_s(self) -> float:
        return len(self.release_s) / self.release_wall_s

    @property
    def round_trips_per_s(self) -> float:
        return len(self.release_s) / (self.challenge_wall_s + self.release_wall_s)

    def as_json(self) -> dict[str, Any]:
        ms = {
            f"{name}_ms": {"p50": round(percentile(v, 50) * 1e3, 3), "p99": round(percentile(v, 99) * 1e3, 3)}
            for name, v in (("challenge", self.challenge_s), ("release", self.release_s), ("both", self.both_s))
        }
        return {
            "clients": self.clients,
            "releases": len(self.release_s),
            "errors": self.errors,
            **ms,
            "releases_per_s": round(self.releases_per_s, 1),
            "round_trips_per_s": round(self.round_trips_per_s, 1),
        }


def _parallel(clients: list[ReleaseClient], work: Callable[[int, ReleaseClient], None]) -> float:
    """Run ``work(thread_index, client)`` in one thread per client, started together; return the wall time."""
    barrier = threading.Barrier(len(clients) + 1)
    failures: list[BaseException] = []

    def run(index: int, client: ReleaseClient) -> None:
        barrier.wait()
        try:
            work(index, client)
        except BaseException as exc:  # reported after the join
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if failures:
        raise failures[0]
    return wall


def measure_round(url: str, enclaves: FakeEnclaves, clients_n: int, releases: int, check: int = 3) -> Round:
    """``releases`` challenge+release round trips spread over ``clients_n`` keep-alive clients."""
    result = Round(clients_n)
    per = [releases // clients_n + (1 if i < releases % clients_n else 0) for i in range(clients_n)]
    clients = [ReleaseClient(url) for _ in range(clients_n)]
    try:
        for client in clients:  # open the keep-alive connections before timing (the nonce is left unused)
            client.challenge()
        nonces: list[list[tuple[bytes, float]]] = [[] for _ in range(clients_n)]

        def challenge(index: int, client: ReleaseClient) -> None:
            for _ in range(per[index]):
                start = time.perf_counter()
                nonce = client.challenge().nonce
                nonces[index].append((nonce, time.perf_counter() - start))

        result.challenge_wall_s = _parallel(clients, challenge)
        requests = [[enclaves.request(j, n) for j, (n, _) in enumerate(mine)] for mine in nonces]
        timings: list[list[float]] = [[] for _ in range(clients_n)]
        grants: list[list[bytes]] = [[] for _ in range(clients_n)]

        def release(index: int, client: ReleaseClient) -> None:
            for request in requests[index]:
                start = time.perf_counter()
                grant = client.release(request)
                timings[index].append(time.perf_counter() - start)
                grants[index].append(grant.sealed_key)

        result.release_wall_s = _parallel(clients, release)
    finally:
        for client in clients:
            client.close()
    for index in range(clients_n):
        for (_nonce, took_challenge), took_release in zip(nonces[index], timings[index], strict=True):
            result.challenge_s.append(took_challenge)
            result.release_s.append(took_release)
            result.both_s.append(took_challenge + took_release)
    # A few grants opened, so that a fast broker that releases nothing useful cannot pass unnoticed.
    for index, sealed in enumerate(grants[0][:check]):
        request = requests[0][index]
        pair = enclaves.keys[index % len(enclaves.keys)]
        if len(pair.open(sealed, release_info(MODEL, request.nonce))) != 32:
            result.errors += 1
    return result


# --------------------------------------------------------------------------------------------- floor


def crypto_floor(
    broker: BrokerProcess, sealed: Path, enclaves: FakeEnclaves, seconds: float
) -> tuple[float, dict[str, float]]:
    """Seconds of one release's cryptography in one thread, and each part's calls per second."""
    from ccdeploy.broker.admin import read_head  # noqa: PLC0415

    head = parse_head(read_head(sealed))
    provider = KekKeyProvider([kek_from_uri(broker.kek_uri)])
    dek = provider.data_key(head.header)
    receipt_key = serialization.load_pem_private_key((broker.state_dir / RECEIPT_KEY_FILE).read_bytes(), None)
    checkpoint_key = serialization.load_pem_private_key((broker.state_dir / CHECKPOINT_KEY_FILE).read_bytes(), None)
    assert isinstance(receipt_key, ec.EllipticCurvePrivateKey)
    assert isinstance(checkpoint_key, ed25519.Ed25519PrivateKey)
    nonce = os.urandom(32)
    request = enclaves.request(0, nonce)
    root = enclaves.simulator.root
    at = datetime.now(UTC)
    info = release_info(MODEL, nonce)
    # A DSSE PAE of the size of a real receipt statement (about 3 KB of JSON), and a checkpoint note body.
    pae = b"DSSEv1 28 application/vnd.in-toto+json 3000 " + os.urandom(3000)
    checkpoint = f"ccdeploy-broker/bench\n1000\n{os.urandom(32).hex()}\n"
    parts: dict[str, Callable[[], object]] = {
        "attestation.verify (Nitro, ES384 + P-384 chain)": lambda: attestation.verify(
            request.evidence, tee=Tee.NITRO, at=at, roots=[root], unsafe_allow_simulator_roots=True
        ),
        "HPKE X-Wing seal of the DEK": lambda: seal_to(HpkeSuite.XWING, request.hpke_public_key, dek, info),
        "receipt signature (ECDSA P-256)": lambda: receipt_key.sign(pae, ec.ECDSA(hashes.SHA256())),
        "checkpoint signature (Ed25519)": lambda: checkpoint_key.sign(checkpoint.encode()),
        "DEK unwrap with the file: KEK": lambda: provider.data_key(head.header),
    }
    rates = {name: rate(func, seconds / len(parts)) for name, func in parts.items()}
    return sum(1 / r for r in rates.values()), rates


# --------------------------------------------------------------------------------------------- report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--releases", type=int, default=300, help="releases per concurrency level (default 300)")
    parser.add_argument("--clients", default="1,4,16", help="concurrency levels, comma-separated (default 1,4,16)")
    parser.add_argument("--workers", type=int, default=1, help="broker uvicorn worker processes (default 1)")
    parser.add_argument("--seconds", type=float, default=5.0, help="time for the crypto floor (default 5)")
    parser.add_argument("--quick", action="store_true", help="100 releases per level, 2 s floor")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write every figure as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.releases, args.seconds = min(args.releases, 100), min(args.seconds, 2.0)
    levels = [int(part) for part in args.clients.split(",") if part.strip()]
    if args.releases < 1 or not levels or min(levels) < 1:
        parser.error("--releases and --clients must be positive")
    wall_start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="ccdeploy-bench-release-"))
    try:
        kek_uri = create_kek_file(work / "kek.json")
        model = seal_and_sign_tiny(work, kek_uri)
        simulator = NitroSimulator.create(at=datetime.now(UTC))
        enclaves = FakeEnclaves(simulator)
        with BrokerProcess(work, kek_uri, workers=args.workers) as broker:
            broker.register(model.sealed, simulator_policy(simulator, signer_pem=model.signer_pem), MODEL)
            measure_round(broker.url, enclaves, 1, 20)  # warm-up: imports, caches, the SQLite file, the policy
            enclaves.evidence_seconds.clear()
            rounds = [measure_round(broker.url, enclaves, level, args.releases) for level in levels]
            floor_s, floor_rates = crypto_floor(broker, model.sealed, enclaves, args.seconds)
        report(args, rounds, floor_s, floor_rates, enclaves, time.perf_counter() - wall_start)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report(
    args: argparse.Namespace,
    rounds: list[Round],
    floor_s: float,
    floor_rates: dict[str, float],
    enclaves: FakeEnclaves,
    wall_s: float,
) -> None:
    """Print the figures, the ratios and the targets; write the JSON document if asked."""
    evidence_ms = statistics.median(enclaves.evidence_seconds) * 1e3
    print(f"{platform.platform()}; {os.cpu_count()} CPUs; Python {platform.python_version()}")
    print(f"broker: `ccdeploy broker serve` subprocess, {args.workers} worker(s), SQLite; {args.releases} releases")
    print("per level; clients: keep-alive httpx threads on the same machine (they share its cores)")
    print()
    print(f"Crypto floor of one release, one thread, no HTTP or database ({floor_s * 1e3:.2f} ms, {1 / floor_s:.0f}/s)")
    for name, value in floor_rates.items():
        print(f"  {name:<52} {1e3 / value:8.3f} ms")
    print(f"  (enclave side, not timed: simulator evidence {evidence_ms:.2f} ms per document)")
    print()
    header = (
        f"  {'clients':>7} {'release p50':>12} {'p99':>8} {'chal+rel p50':>13} {'p99':>8} "
        f"{'releases/s':>11} {'trips/s':>8} {'p50/floor':>10} {'rate/floor':>11}"
    )
    print("Round trips on loopback (ms)")
    print(header)
    for r in rounds:
        print(
            f"  {r.clients:>7} {percentile(r.release_s, 50) * 1e3:12.2f} {percentile(r.release_s, 99) * 1e3:8.2f} "
            f"{percentile(r.both_s, 50) * 1e3:13.2f} {percentile(r.both_s, 99) * 1e3:8.2f} "
            f"{r.releases_per_s:11.1f} {r.round_trips_per_s:8.1f} "
            f"{percentile(r.release_s, 50) / floor_s:10.2f} {r.releases_per_s * floor_s:11.2f}"
        )
    errors = sum(r.errors for r in rounds)
    if errors:
        print(f"  !! {errors} checked grant(s) did not open to a 32-byte key")
    print("  p50/floor: release latency over the floor's time; rate/floor: releases/s over the floor's rate")
    print()
    single = rounds[0]
    best = max(rounds, key=lambda r: r.releases_per_s)
    p99 = percentile(single.release_s, 99) * 1e3
    targets = [
        (f"release p99 at {single.clients} client(s), ms", p99, "<=", P99_TARGET_MS, p99 <= P99_TARGET_MS),
        (
            f"releases/s (best: {best.clients} clients)",
            best.releases_per_s,
            ">=",
            RATE_TARGET,
            best.releases_per_s >= RATE_TARGET,
        ),
    ]
    print("Targets (informational; a MISS does not fail the run)")
    for name, value, op, bound, met in targets:
        print(f"  [{'PASS' if met else 'MISS'}] {name:<50} {value:8.2f} {op} {bound:g}")
    print(f"\nwall time {wall_s:.1f} s")
    if args.json is not None:
        document = {
            "environment": {
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "workers": args.workers,
                "releases_per_level": args.releases,
            },
            "floor": {
                "seconds": round(floor_s, 6),
                "per_s": round(1 / floor_s, 1),
                "parts_ms": {k: round(1e3 / v, 4) for k, v in floor_rates.items()},
            },
            "evidence_ms": round(evidence_ms, 3),
            "rounds": [r.as_json() for r in rounds],
            "targets": {name: {"value": round(v, 3), "op": op, "bound": b, "met": m} for name, v, op, b, m in targets},
            "wall_s": round(wall_s, 2),
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
