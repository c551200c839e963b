"""Demo steps for signed provenance and the AI BOM: BOM, seal with its digest, sign, verify as CI would.

Every step runs the real ``ccdeploy`` CLI in a subprocess, as a user or a CI job would.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

EXAMPLES = Path(__file__).resolve().parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``ccdeploy ARGS``; return the finished process whatever its exit status."""
    return subprocess.run([sys.executable, "-m", "ccdeploy", *args], capture_output=True, text=True, check=False)


def ok(*args: str) -> str:
    """Run ``ccdeploy ARGS``; it must exit 0. Return its stdout."""
    done = run(*args)
    if done.returncode != 0:
        raise SystemExit(f"ccdeploy {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def write_signing_key(directory: Path, stem: str = "release-signing") -> tuple[Path, Path]:
    """A fresh ECDSA P-384 signing key: ``STEM.pem`` (mode 0600, as ``file:`` signers require) and ``STEM.pub.pem``."""
    key = ec.generate_private_key(ec.SECP384R1())
    private = directory / f"{stem}.pem"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    private.chmod(0o600)
    public = directory / f"{stem}.pub.pem"
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


def bom(work: Path, model_dir: Path, proved: Callable[[str], None]) -> Path:
    """Write the model's AI BOM (CycloneDX 1.6 and SPDX 3.0.1) and validate both."""
    card = EXAMPLES / "card.yaml"
    cyclonedx = work / "mlp.cdx.json"
    ok("bom", "create", str(model_dir), "--card", str(card), "-o", str(cyclonedx))
    ok("bom", "validate", str(cyclonedx))
    document = json.loads(cyclonedx.read_text())
    model = document["metadata"]["component"]
    files = [c["name"] for c in model.get("components", []) if c.get("type") == "file"]
    libraries = [c for c in document.get("components", []) if c.get("type") == "library"]
    proved(f"CycloneDX {document['specVersion']} ML-BOM: model {model['name']!r} with a modelCard; files {files}")
    proved(f"{len(libraries)} Python dependencies of the enclave from the lock file, with their SHA-256 hashes")
    proved("valid against the CycloneDX 1.6 JSON schema (offline)")
    spdx = work / "mlp.spdx.json"
    ok("bom", "create", str(model_dir), "--card", str(card), "--format", "spdx", "-o", str(spdx))
    ok("bom", "validate", str(spdx))
    proved("the same BOM as SPDX 3.0.1 (AI and Dataset profiles) round-trips through the official bindings")
    return cyclonedx


def seal_sign_verify(
    work: Path, model_dir: Path, kek_uri: str, cyclonedx: Path, proved: Callable[[str], None]
) -> tuple[Path, Path, Path]:
    """Seal with the BOM digest, sign with a local key, verify offline as a CI gate, then show refusals.

    Returns the sealed artifact, the signer's public key and the BOM linked to the provenance bundle.
    """
    sealed = work / "mlp-signed.ccseal"
    ok("seal", str(model_dir), "--kek", kek_uri, "--bom", str(cyclonedx), "-o", str(sealed))
    header = json.loads(ok("inspect", str(sealed), "--json"))["header"]
    bom_digest = hashlib.sha256(cyclonedx.read_bytes()).hexdigest()
    assert header["bom_digest"] == bom_digest
    proved(f"the header's bom_digest slot holds the BOM's SHA-256 {bom_digest[:16]}…")

    private, public = write_signing_key(work)
    signed = json.loads(ok("sign", str(sealed), "--signer", f"file:{private}", "--bom", str(cyclonedx), "--json"))
    for bundle in signed["bundles"]:
        subjects = ", ".join(s["name"] for s in bundle["subjects"])
        proved(f"{Path(bundle['path']).name}: {bundle['predicate_type']} over {subjects}")
    assert signed["sealed"]["digest_from_record"], signed
    proved("signing used the artifact digest recorded while sealing: the sealed bytes were not read again")

    provenance = sealed.with_name(sealed.stem + ".provenance.sigstore.json")
    verdict = json.loads(ok("verify", str(sealed), "--signature", str(provenance), "--key", str(public), "--json"))
    checks = ", ".join(c["name"] for c in verdict["checks"] if c["ok"])
    proved(f"ccdeploy verify (the CI step, offline): {verdict['verdict']}; checks: {checks}")
    model_sig = sealed.with_name(sealed.stem + ".model.sig")
    ok("verify", str(model_dir), "--signature", str(model_sig), "--key", str(public))
    proved("the plaintext model directory verifies against the model_signing statement (OpenSSF format)")

    tampered = work / "mlp-tampered"
    shutil.copytree(model_dir, tampered)
    weights = tampered / "weights.bin"
    weights.write_bytes(b"\x01" + weights.read_bytes()[1:])
    refused = run("verify", str(tampered), "--signature", str(model_sig), "--key", str(public))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    proved(f"a model with one changed byte is refused (exit {refused.returncode}): subjects are recomputed")
    _, other_public = write_signing_key(tampered)
    refused = run("verify", str(sealed), "--signature", str(provenance), "--key", str(other_public))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    proved(f"the same signature checked against another key is refused (exit {refused.returncode})")

    linked = work / "mlp.linked.cdx.json"
    ok("bom", "link", str(cyclonedx), "--signature", str(provenance), "-o", str(linked))
    ok("bom", "validate", str(linked))
    proved("the BOM now references the provenance bundle by SHA-256 (later steps add receipts the same way)")
    changed = work / "mlp-tampered.cdx.json"
    ok("bom", "create", str(tampered), "--card", str(EXAMPLES / "card.yaml"), "-o", str(changed))
    diff = json.loads(ok("bom", "diff", str(cyclonedx), str(changed), "--json"))
    changes = [c for c in diff["component_changes"] if "weights.bin" in c["where"]]
    assert diff["changed"] and changes, diff
    first = changes[0]
    proved(f"bom diff names what changed: weights.bin {first['field']} {first['old'][:12]}… -> {first['new'][:12]}…")
    return sealed, public, linked
