"""``ccdeploy policy lint`` and ``ccdeploy policy test`` through the CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.simulator.nitro import NitroSimulator
from attestation.simulator.snp import SnpSimulator
from ccdeploy._cli import main
from tests.release.policy.conftest import ISSUED, NOW, SIM_AT, PolicyDoc, SignedModel, dump, pem

EXAMPLE = Path(__file__).parents[3] / "examples" / "release-policy.yaml"
AT = NOW.isoformat().replace("+00:00", "Z")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    capsys.readouterr()  # drop what fixtures printed (seal, sign)
    code = main(["policy", *args])
    out = capsys.readouterr().out
    return code, json.loads(out) if "--json" in args else out


def write(tmp_path: Path, document: PolicyDoc, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(dump(document))
    return path


@pytest.fixture
def evidence(tmp_path: Path, simulator: NitroSimulator) -> Path:
    path = tmp_path / "doc.cbor"
    path.write_bytes(simulator.document(timestamp=ISSUED, nonce=b"n" * 32))
    return path


def test_lint_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, document = run(capsys, "lint", str(EXAMPLE), "--json")
    assert code == 0 and document["ok"] is True
    assert document["platforms"] == ["nitro"]
    assert document["policy_digest"].startswith("sha256:")
    assert any("simulator" in f["message"] for f in document["findings"])
    code, text = run(capsys, "lint", str(EXAMPLE))
    assert code == 0 and "valid release policy" in text and "warn:" in text


@pytest.mark.parametrize("content", [b"", b"version: 3\nplatforms: {}\n", b"a: 1\na: 2\n"])
def test_lint_invalid(capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    code, document = run(capsys, "lint", str(path), "--json")
    assert code == 2
    assert document["ok"] is False and document["error"]["type"] == "PolicyInvalid"


def test_lint_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["policy", "lint", str(tmp_path / "none.yaml")]) == 2


def test_release(capsys: pytest.CaptureFixture[str], tmp_path: Path, base_policy: PolicyDoc, evidence: Path) -> None:
    policy = write(tmp_path, base_policy)
    code, document = run(capsys, "test", str(policy), "--evidence", str(evidence), "--at", AT, "--json")
    assert code == 0, document
    assert document["verdict"] == "release" and document["denial"] is None
    assert document["evidence_type"] == "nitro"  # detected
    assert document["policy_digest"].startswith("sha256:")
    assert all(check["ok"] for check in document["checks"])
    assert document["skipped"]
    code, text = run(capsys, "test", str(policy), "--evidence", str(evidence), "--at", AT, "--type", "nitro")
    assert code == 0 and "pass  nitro.pcr0" in text and "verdict: release" in text


def test_denied(capsys: pytest.CaptureFixture[str], tmp_path: Path, base_policy: PolicyDoc, evidence: Path) -> None:
    policy = write(tmp_path, base_policy | {"max_evidence_age": 10})
    code, document = run(capsys, "test", str(policy), "--evidence", str(evidence), "--at", AT, "--json")
    assert code == 1
    assert document["verdict"] == "deny" and document["denial"] == "evidence-stale"
    assert [c["name"] for c in document["checks"] if not c["ok"]] == ["evidence.age"]
    code, text = run(capsys, "test", str(policy), "--evidence", str(evidence), "--at", AT)
    assert code == 1 and "FAIL  evidence.age" in text and "verdict: deny (evidence-stale)" in text


def test_sealed_and_signed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, base_policy: PolicyDoc, evidence: Path, signed: SignedModel
) -> None:
    document = base_policy | {
        "provenance": {"key": pem(signed.key)},
        "bom": {"required": True},
        "cel": [f'model.name == "{signed.sealed.stem}-model" || model.name != ""'],
    }
    policy = write(tmp_path, document)
    args = ["test", str(policy), "--evidence", str(evidence), "--at", AT, "--sealed", str(signed.sealed), "--json"]
    code, result = run(capsys, *args)
    assert code == 0, result
    names = [c["name"] for c in result["checks"]]
    assert "provenance.signature" in names and "bom" in names and result["skipped"] == []
    other = write(
        tmp_path, base_policy | {"provenance": {"key": pem(ec.generate_private_key(ec.SECP256R1()))}}, "o.yaml"
    )
    code, result = run(
        capsys, "test", str(other), "--evidence", str(evidence), "--at", AT, "--sealed", str(signed.sealed), "--json"
    )
    assert code == 1 and result["denial"] == "signer-mismatch"
    missing = tmp_path / "none.json"
    missing.write_bytes(b"{}")
    code, result = run(
        capsys, "test", str(policy), "--evidence", str(evidence), "--at", AT,
        "--sealed", str(signed.sealed), "--signature", str(missing), "--json",
    )  # fmt: skip
    assert code == 1 and result["denial"] == "provenance-invalid"


def test_unverifiable_is_exit_3(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, base_policy: PolicyDoc, evidence: Path
) -> None:
    snp = SnpSimulator.create(at=SIM_AT, rsa_key_size=2048)
    report = tmp_path / "report.bin"
    report.write_bytes(snp.report().report)
    document = {
        "version": 1,
        "platforms": {"sev-snp": {"measurement": "00" * 48}},
        "trust_roots": {
            "sev-snp": [
                snp.ark.public_bytes(__import__("cryptography").hazmat.primitives.serialization.Encoding.PEM).decode()
            ]
        },
        "unsafe_accept_simulator_roots": True,
    }
    policy = write(tmp_path, document)
    code, result = run(
        capsys, "test", str(policy), "--evidence", str(report), "--type", "sev-snp", "--at", AT, "--json"
    )
    assert code == 3, result
    assert result["verdict"] == "unverifiable" and result["denial"] == "evidence-unverifiable"


def test_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, base_policy: PolicyDoc, evidence: Path
) -> None:
    policy = write(tmp_path, base_policy)
    assert main(["policy", "test", str(policy), "--evidence", str(evidence), "--at", "yesterday"]) == 2
    assert main(["policy", "test", str(policy), "--evidence", str(evidence), "--at", "2030-01-01T00:00:00"]) == 2
    assert main(["policy", "test", str(policy), "--evidence", str(evidence), "--signature", str(policy)]) == 2
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00\x01\x02")
    assert main(["policy", "test", str(policy), "--evidence", str(garbage)]) == 2
    assert main(["policy", "test", str(policy)]) == 2


MAA_PROVIDER = "https://sharedwus.wus.attest.azure.net"
MAA_MRSIGNER = "4aea5f9a0ed04b11f889aadfe6a1d376213a29a95a85ce7337ae6f7fece6610c"


def test_maa_token_with_its_key_set(capsys: pytest.CaptureFixture[str], tmp_path: Path, vectors: Path) -> None:
    stem = vectors / "azure-maa" / "azsdkcpp-sgx-sharedwus-2022-05-31"
    document = {
        "version": 1,
        "platforms": {"maa": {"issuer": MAA_PROVIDER, "mrsigner": MAA_MRSIGNER}},
        "allow_debug": True,
        "max_evidence_age": 600,
    }
    policy = write(tmp_path, document)
    args = ["test", str(policy), "--evidence", f"{stem}.jwt", "--type", "maa", "--at", "2022-05-31T22:50:00Z", "--json"]
    code, doc = run(capsys, *args, "--jwks", f"{stem}.jwks.json")
    assert (code, doc["verdict"]) == (0, "release"), doc["detail"]
    code, doc = run(capsys, *args)  # no key set, nothing fetched: the broker could not decide either
    assert (code, doc["verdict"]) == (3, "unverifiable")
