"""Demo steps for attestation: simulator evidence checked by the real verifiers through the real CLI."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.ear import read_ear
from attestation.simulator.nitro import NitroSimulator


def attest(*args: str | Path) -> tuple[int, dict[str, Any]]:
    """Run ``ccdeploy attest ... --json`` and return its exit code and JSON document."""
    done = subprocess.run(
        [sys.executable, "-m", "ccdeploy", "attest", *map(str, args), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, json.loads(done.stdout)


def nitro(work: Path, model_digest: str, proved: Any) -> None:
    """A simulated Nitro enclave whose PCR0 commits to the model; verify, appraise, export EAR; show refusals."""
    now = datetime.now(UTC)
    simulator = NitroSimulator.create(at=now)
    pcr0 = hashlib.sha384(bytes.fromhex(model_digest)).digest()
    nonce = hashlib.sha256(b"demo challenge").digest()
    document = work / "nitro.cbor"
    document.write_bytes(simulator.document(timestamp=now, pcrs={0: pcr0}, nonce=nonce))
    root = work / "simulator-root.pem"
    root.write_bytes(simulator.root_pem())
    refs = work / "reference.yaml"
    refs.write_text(f"nitro:\n  pcrs:\n    0: '{pcr0.hex()}'\n")
    ear_key = work / "ear-signing.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    ear_key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    trusted = ("--root", root, "--unsafe-trust-simulator-root")
    code, result = attest(
        "verify", document, "--type", "nitro", *trusted, "--nonce", nonce.hex(), "--reference", refs,
        "--ear-out", work / "nitro.ear.jwt", "--ear-key", ear_key,
    )  # fmt: skip
    assert (code, result["verdict"]) == (0, "verified"), result
    proved(f"verdict verified: {', '.join(c['name'] for c in result['checks'])}")
    ear = read_ear((work / "nitro.ear.jwt").read_text().strip(), key.public_key())
    status = ear["submods"]["nitro"]["ear.status"]
    proved(f"EAR written and signed (ES256); status {status}: hardware is simulated, so never 'affirming'")
    code, result = attest("verify", document, "--type", "nitro", "--nonce", nonce.hex())
    assert (code, result["error"]["type"]) == (1, "BadChain"), result
    proved("without --root: invalid (BadChain): the simulator's root is not an AWS root")
    code, result = attest("verify", document, "--type", "nitro", "--root", root)
    assert (code, result["error"]["type"]) == (1, "UntrustedSimulatorRoot"), result
    proved("with the root but without --unsafe-trust-simulator-root: invalid (UntrustedSimulatorRoot)")
    code, result = attest("verify", document, "--type", "nitro", *trusted, "--nonce", "00" * 32)
    assert (code, result["error"]["type"]) == (1, "NonceMismatch"), result
    proved("another nonce: invalid (NonceMismatch), a replayed document is refused")
    debug = work / "nitro-debug.cbor"
    debug.write_bytes(simulator.document(timestamp=now, debug=True))
    code, result = attest("verify", debug, "--type", "nitro", *trusted)
    assert (code, result["error"]["type"]) == (1, "DebugNotAllowed"), result
    proved("a debug-mode enclave (PCR0-2 zero): invalid (DebugNotAllowed) unless --allow-debug")
