"""Signing and verifying a sealed model, read against a SHA-256 floor over the same bytes in the same run.

What is measured, in one run, on a generated model of random bytes (default 2 GiB, one file) sealed once with
``--hash sha256`` (sealing also writes the artifact-digest record, see :mod:`ccdeploy.seal.digest`):

* floor: hashlib SHA-256 over the sealed artifact's bytes read from the page cache, one thread, 1 MiB reads
  (what any signer that hashed the artifact itself would pay at least once);
* sign: ``ccdeploy sign ARTIFACT --signer file:KEY`` run in-process (the SLSA provenance and model_signing
  statements, ECDSA P-384, bundles written), using the digest recorded while sealing: signing must not hash
  again what sealing already hashed, target <= 0.1 x the floor's time;
* sign without the record (for information): the same after deleting the record, so the artifact digest is
  recomputed (multi-threaded BLAKE3 over a memory map);
* verify: ``ccdeploy verify ARTIFACT --signature BUNDLE --key PUB`` in-process: recomputes the artifact digest
  from the bytes, verifies the signature and matches the subjects; target <= 1.1 x the floor's time.

Figures are times (seconds, medians) and ratios time / floor time, so lower is better; the exit status is 0
whatever the figures (a benchmark is not a test). Usage::

    python bench/bench_provenance.py [--size-gib 2] [--dir DIR] [--repeat 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

REPO: Final = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ccdeploy._cli import main as ccdeploy_main  # noqa: E402
from ccdeploy.kek import kek_from_uri  # noqa: E402
from ccdeploy.kek.file import create_kek_file  # noqa: E402
from ccdeploy.seal import seal_model  # noqa: E402
from ccdeploy.seal.digest import record_path  # noqa: E402

_CHUNK = 1 << 20
SIGN_TARGET = 0.1
VERIFY_TARGET = 1.1


def _median_time(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
    return digest.hexdigest()


def _cli(*args: str) -> dict[str, Any]:
    """Run the ccdeploy CLI in-process with --json; return its document (fail loudly on a non-zero exit)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = ccdeploy_main([*args, "--json"])
    if code != 0:
        raise SystemExit(f"ccdeploy {' '.join(args)} exited {code}: {out.getvalue()[-2000:]}")
    document: dict[str, Any] = json.loads(out.getvalue())
    return document


def generate(path: Path, size: int) -> None:
    """Write ``size`` pseudo-random bytes (fast: a repeated 64 MiB random block with a per-block counter)."""
    block = bytearray(os.urandom(64 << 20))
    with path.open("wb") as handle:
        written = 0
        counter = 0
        while written < size:
            block[:8] = counter.to_bytes(8, "big")
            take = min(len(block), size - written)
            handle.write(memoryview(block)[:take])
            written += take
            counter += 1


def run(size: int, work: Path, repeat: int) -> dict[str, Any]:
    """Seal once, then measure the floor, sign (with and without the record) and verify."""
    model = work / "model.onnx"
    generate(model, size)
    kek_path = work / "bench.kek"
    artifact = work / "model.ccseal"
    seal_model(model, artifact, [kek_from_uri(create_kek_file(kek_path))])
    model.unlink()
    key = ec.generate_private_key(ec.SECP384R1())
    key_path = work / "signing-key.pem"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    pub_path = work / "signing-key.pub.pem"
    pub_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    out_dir = work / "signed"
    out_dir.mkdir()
    _sha256_file(artifact)  # warm the page cache
    floor = _median_time(lambda: _sha256_file(artifact), repeat)

    def sign() -> dict[str, Any]:
        return _cli("sign", str(artifact), "--signer", f"file:{key_path}", "--output-dir", str(out_dir), "--force")

    sign_time = _median_time(sign, repeat)
    bundles = [Path(entry["path"]) for entry in sign()["bundles"]]
    provenance = next(path for path in bundles if path.name.endswith(".provenance.sigstore.json"))

    def verify() -> dict[str, Any]:
        return _cli("verify", str(artifact), "--signature", str(provenance), "--key", str(pub_path))

    verdict = verify()["verdict"]
    verify_time = _median_time(verify, repeat)
    record_path(artifact).unlink()
    sign_no_record = _median_time(sign, 1)
    return {
        "size_bytes": size,
        "artifact_bytes": artifact.stat().st_size,
        "floor_sha256_s": floor,
        "floor_sha256_gib_s": artifact.stat().st_size / floor / (1 << 30),
        "sign_s": sign_time,
        "sign_ratio": sign_time / floor,
        "sign_without_record_s": sign_no_record,
        "sign_without_record_ratio": sign_no_record / floor,
        "verify_s": verify_time,
        "verify_ratio": verify_time / floor,
        "verify_verdict": verdict,
    }


def print_report(figures: dict[str, Any]) -> None:
    """The figures as a table, with the targets marked PASS/MISS for information."""
    gib = figures["artifact_bytes"] / (1 << 30)
    print(f"sealed artifact: {gib:.2f} GiB; python {platform.python_version()}; {os.cpu_count()} CPUs")
    print(f"floor  SHA-256 over the artifact, 1 MiB reads: {figures['floor_sha256_s']:.3f} s")
    print(f"       ({figures['floor_sha256_gib_s']:.2f} GiB/s)")
    rows = [
        ("sign (digest recorded while sealing)", figures["sign_s"], figures["sign_ratio"], SIGN_TARGET),
        ("sign (record deleted: digest recomputed)", figures["sign_without_record_s"], None, None),
        (
            "verify (digest recomputed, signature, subjects)",
            figures["verify_s"],
            figures["verify_ratio"],
            VERIFY_TARGET,
        ),
    ]
    print(f"{'operation':<50} {'s':>8} {'x floor':>8}  target")
    for name, seconds, ratio, target in rows:
        shown = ratio if ratio is not None else seconds / figures["floor_sha256_s"]
        verdict = "" if target is None else f"<= {target}  {'PASS' if shown <= target else 'MISS'}"
        print(f"{name:<50} {seconds:>8.3f} {shown:>8.3f}  {verdict}")
    print(f"verify verdict: {figures['verify_verdict']}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-gib", type=float, default=2.0, help="model size in GiB (default 2)")
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary directory)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    size = int(args.size_gib * (1 << 30))
    base = args.dir or Path(tempfile.gettempdir())
    work = Path(tempfile.mkdtemp(prefix="ccdeploy-bench-provenance-", dir=base))
    try:
        figures = run(size, work, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
