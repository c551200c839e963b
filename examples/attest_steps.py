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


def sev_snp(work: Path, model_digest: str, proved: Any) -> None:
    """A simulated SEV-SNP guest (Genoa, report version 5): chain, TCB binding, reference values, tampering."""
    from cryptography.hazmat.primitives.serialization import Encoding  # noqa: PLC0415

    from attestation.simulator.snp import SnpSimulator  # noqa: PLC0415

    simulator = SnpSimulator.create(product="Genoa", at=datetime.now(UTC), rsa_key_size=2048)
    measurement = hashlib.sha384(b"guest image for " + bytes.fromhex(model_digest)).digest()
    nonce = hashlib.sha256(b"demo challenge 2").digest()
    evidence = simulator.report(measurement=measurement, report_data=nonce.ljust(64, b"\0"))
    report = work / "snp-report.bin"
    report.write_bytes(evidence.report)
    vcek = work / "vcek.pem"
    vcek.write_bytes(evidence.signing_cert.public_bytes(Encoding.PEM))
    chain = work / "ask-ark.pem"
    chain.write_bytes(simulator.chain_pem("vcek"))
    ark = work / "sim-ark.pem"
    ark.write_bytes(simulator.ark.public_bytes(Encoding.PEM))
    refs = work / "snp-reference.yaml"
    refs.write_text(
        f"sev-snp:\n  measurement: '{measurement.hex()}'\n  maximum_vmpl: 0\n  policy: {{migrate_ma: false}}\n"
    )
    collateral = ("--signing-cert", vcek, "--chain", chain, "--root", ark, "--unsafe-trust-simulator-root", "--offline")
    code, result = attest(
        "verify", report, "--type", "sev-snp", *collateral, "--nonce", nonce.hex(), "--reference", refs
    )
    assert (code, result["verdict"]) == (0, "verified"), result
    claims = result["claims"]
    proved(f"{claims['platform']}, report v{claims['vendor']['version']}, TCB {claims['tcb']}: verified offline")
    tampered = work / "snp-tampered.bin"
    tampered.write_bytes(evidence.report[:0x90] + bytes([evidence.report[0x90] ^ 1]) + evidence.report[0x91:])
    code, result = attest("verify", tampered, "--type", "sev-snp", *collateral)
    assert (code, result["error"]["type"]) == (1, "BadSignature"), result
    proved("one flipped bit of MEASUREMENT: invalid (BadSignature)")
    code, result = attest("verify", report, "--type", "sev-snp", "--at", "2030-01-01T00:00:00Z", "--offline")
    assert (code, result["verdict"], result["error"]["type"]) == (3, "unverifiable", "CollateralMissing"), result
    proved("no VCEK and --offline: unverifiable (exit 3), never 'verified'")
