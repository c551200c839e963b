"""``make demo``: the ccdeploy pipeline end to end on the embedded defaults, saying what each step proves.

The whole mission on one machine: build a real ONNX model, create a local KEK, seal the model, show that
tampering and a wrong KEK are refused, unseal in memory and run it with ONNX Runtime; verify simulated
attestation evidence; write the AI BOM, sign the provenance and verify it as CI would; then start a key broker,
register the model with its release policy, start an enclave on the simulator TEE that attests, receives the
key and serves the model from memory, verify that enclave from a client and run an inference, and show an
enclave with another measurement being denied. The receipt and the audit log are kept in ``demo-output/``.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import attest_steps
import numpy as np
import provenance_steps
import release_steps
from tiny_model import build_tiny_model, reference_output, save_with_external_data

from ccdeploy.errors import ArtifactTampered, WrongKek
from ccdeploy.kek import kek_from_uri
from ccdeploy.kek.file import create_kek_file
from ccdeploy.seal import KekKeyProvider, compute_manifest, open_sealed
from enclave.loader import session_from_sealed
from enclave.runtime import load_session


def step(number: int, title: str) -> None:
    print(f"\n[{number}] {title}")


def proved(text: str) -> None:
    print(f"    ✓ {text}")


def ccdeploy(*args: str) -> str:
    """Run the real CLI, as a user would, and return its stdout."""
    done = subprocess.run([sys.executable, "-m", "ccdeploy", *args], capture_output=True, text=True, check=True)
    return done.stdout


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ccdeploy-demo-") as tmp:
        work = Path(tmp)
        step(1, "Build a small real ONNX model (2-layer MLP) with onnx.helper")
        model_bytes, w1b1, w2 = build_tiny_model()
        model_path = work / "tiny-mlp.onnx"
        model_path.write_bytes(model_bytes)
        digests, manifest = compute_manifest(model_path)
        proved(f"model is {len(model_bytes)} bytes; sha256 {digests[model_path.name][:16]}…")

        step(2, "Create a local key-encryption key (file: KEK, mode 0600)")
        kek_path = work / "demo.kek"
        print("    " + ccdeploy("kek", "create", str(kek_path)).strip())
        proved(f"KEK file mode is {oct(kek_path.stat().st_mode & 0o777)}")

        step(3, "Seal the model: one pass hashes and encrypts (Tink AES256_GCM_HKDF_1MB streams)")
        sealed = work / "tiny-mlp.ccseal"
        print(
            "    "
            + ccdeploy("seal", str(model_path), "--kek", f"file:{kek_path}", "-o", str(sealed))
            .replace("\n", "\n    ")
            .rstrip()
        )
        raw = sealed.read_bytes()
        assert model_bytes[:64] not in raw
        proved("no 64-byte window of the plaintext appears in the artifact")

        step(4, "Inspect the header and authenticate it with the KEK")
        print("    " + ccdeploy("inspect", str(sealed), "--kek", f"file:{kek_path}").replace("\n", "\n    ").rstrip())
        kek = kek_from_uri(f"file:{kek_path}")
        with open_sealed(sealed, KekKeyProvider([kek])) as artifact:
            assert artifact.header.model.manifest_digest == manifest
        proved("header MAC verified; manifest digest equals the one computed model_signing's way")

        step(5, "Tampering and a wrong KEK are refused before any plaintext is released")
        tampered = bytearray(raw)
        tampered[-100] ^= 0x01
        try:
            with open_sealed(bytes(tampered), KekKeyProvider([kek])) as artifact:
                artifact.read_file()
            raise SystemExit("tampered artifact was accepted")
        except ArtifactTampered as error:
            proved(f"one flipped payload bit -> {type(error).__name__}: {error}")
        other = kek_from_uri(create_kek_file(work / "other.kek"))
        try:
            open_sealed(sealed, KekKeyProvider([other]))
            raise SystemExit("wrong KEK was accepted")
        except WrongKek as error:
            proved(f"another KEK -> {type(error).__name__}")

        step(6, "Unseal in memory (the enclave's path) and run one inference with ONNX Runtime")
        with open_sealed(sealed, KekKeyProvider([kek])) as artifact:
            plaintext = artifact.read_file()
        proved(f"every segment tag and the sha256 digest verified ({hashlib.sha256(plaintext).hexdigest()[:16]}…)")
        session = load_session(bytes(plaintext))
        x = np.array([[0.5, -1.0, 2.0, 0.25]], dtype=np.float32)
        y = session.run({"x": x})["y"]
        expected = reference_output(x, w1b1, w2)
        assert np.allclose(y, expected, atol=1e-5), (y, expected)
        proved(
            f"ONNX Runtime ({', '.join(session.providers)}) loaded the model from bytes; y = {np.round(y, 4).tolist()}"
        )
        proved("output equals the numpy reference computation")

        step(7, "A model directory (graph + external-data weights) seals into one artifact")
        model_dir = work / "mlp-external"
        model_dir.mkdir()
        save_with_external_data(model_bytes, model_dir)
        sealed_dir = work / "mlp-external.ccseal"
        ccdeploy("seal", str(model_dir), "--kek", f"file:{kek_path}", "-o", str(sealed_dir), "--hash", "blake3")
        with open_sealed(sealed_dir, KekKeyProvider([kek])) as artifact:
            names = [f"{f.path} ({f.size} B)" for f in artifact.files]
            with artifact.open("weights.bin") as reader:
                reader.seek(100)
                window = reader.read(16)
            session = session_from_sealed(artifact)
        proved(f"files: {', '.join(names)}; blake3 digests, model_signing-compatible manifest")
        assert window == (model_dir / "weights.bin").read_bytes()[100:116]
        proved("random access: bytes 100..116 of weights.bin decrypted alone (one segment authenticated)")
        y2 = session.run({"x": x})["y"]
        assert np.allclose(y2, expected, atol=1e-5)
        proved("graph and weights handed to ONNX Runtime from memory; same output as before")

        step(8, "Attestation: a simulated Nitro enclave, checked by the real verifier (ccdeploy attest verify)")
        attest_steps.nitro(work, digests[model_path.name], proved)

        step(9, "Attestation: a simulated AMD SEV-SNP guest, checked by the real verifier")
        attest_steps.sev_snp(work, digests[model_path.name], proved)

        step(10, "AI bill of materials: model card, files, datasets and the enclave's dependencies")
        cyclonedx = provenance_steps.bom(work, model_dir, proved)

        step(11, "Seal with the BOM digest, sign the provenance, verify it offline as a CI gate would")
        signed, public, _ = provenance_steps.seal_sign_verify(work, model_dir, f"file:{kek_path}", cyclonedx, proved)

        output = release_steps.output_folder()
        release_steps.release_and_serve(
            work, output, signed, f"file:{kek_path}", public, lambda x: reference_output(x, w1b1, w2), step, proved
        )
    print(
        "\ndemo complete: seal -> inspect -> tamper/wrong-key refused -> unseal in memory -> inference"
        " -> multi-file model with external data -> attestation verified and appraised"
        " -> AI BOM -> signed provenance verified offline, tampering refused"
        " -> broker released the key to an attested enclave -> attested client inference"
        " -> a CPU+GPU enclave released to, a tampered GPU denied"
        " -> a different measurement denied -> receipt and audit chain verified"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
