"""``ccdeploy attest`` options end to end: KDS through a loopback server, EAR output, human output, usage errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.ear import read_ear
from ccdeploy._cli import main
from tests.attestation.http_server import Route, loopback_server
from tests.conftest import ASSETS

SIM = ASSETS / "forged" / "sev-snp"
NITRO_T = "2024-09-07T14:37:39.545Z"
SNP_T = "2025-06-01T00:00:00Z"
GOSEV_VCEK_PATH = (
    "/vcek/v1/Milan/3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea4"
    "64cdce40c05f63c9b610c5068b006b5d?blSPL=02&teeSPL=00&snpSPL=05&ucodeSPL=68"
)


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main(["attest", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, dict[str, Any]]:
    code, out, _ = run(capsys, *args, "--json")
    return code, json.loads(out)


def test_vcek_fetched_from_kds_once_then_cached(
    vectors: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vcek = (vectors / "amd-sev-snp/gosevguest-milan-vcek.der").read_bytes()
    report = vectors / "amd-sev-snp/gosevguest-milan-report.bin"
    with loopback_server({GOSEV_VCEK_PATH: Route(body=vcek)}) as kds:
        args = ["verify", report, "--type", "sev-snp", "--at", SNP_T, "--allow-debug"]
        where = ["--kds-url", kds.base_url, "--cache-dir", tmp_path / "kds"]
        assert run_json(capsys, *args, *where)[0] == 0
        code, doc = run_json(capsys, *args, *where)
        assert (code, doc["verdict"]) == (0, "verified")
        assert kds.requests == [GOSEV_VCEK_PATH]  # the second verification was answered by the cache
        code, doc = run_json(capsys, *args, "--kds-url", kds.base_url, "--cache-dir", tmp_path / "empty")
        assert (code, doc["verdict"]) == (0, "verified")
        assert len(kds.requests) == 2


def test_kds_failure_is_unverifiable(vectors: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = vectors / "amd-sev-snp/gosevguest-milan-report.bin"
    with loopback_server({GOSEV_VCEK_PATH: Route(429, b"", {"Retry-After": "10"})}) as kds:
        code, doc = run_json(
            capsys,
            "verify",
            report,
            "--type",
            "sev-snp",
            "--at",
            SNP_T,
            "--kds-url",
            kds.base_url,
            "--cache-dir",
            tmp_path,
        )
    assert (code, doc["verdict"], doc["error"]["type"]) == (3, "unverifiable", "FetchFailed")
    assert "rate limited" in doc["error"]["message"]


def test_check_revocation_with_a_given_crl(capsys: pytest.CaptureFixture[str]) -> None:
    base = [
        "verify", SIM / "sim-milan-valid.bin", "--type", "sev-snp", "--at", SNP_T, "--root", SIM / "sim-milan-ark.pem",
        "--unsafe-trust-simulator-root", "--signing-cert", SIM / "sim-milan-valid.vcek.pem",
        "--chain", SIM / "sim-milan-vcek-chain.pem", "--offline",
    ]  # fmt: skip
    base[5] = "2025-01-01T00:00:00Z"  # inside the simulator CRLs' windows
    code, doc = run_json(capsys, *base)
    assert (code, doc["verdict"]) == (0, "verified"), doc["error"]
    assert doc["claims"]["signer"]["simulated"] is True
    code, doc = run_json(capsys, *base, "--crl", SIM / "revoked-ask.crl")
    assert (code, doc["error"]["type"]) == (1, "Revoked")
    code, _out, err = run(capsys, *base, "--check-revocation")
    assert code == 2 and "--crl" in err


def test_ear_output_is_a_signed_jwt(vectors: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    key_file = tmp_path / "ear.pem"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    ear = tmp_path / "out" / "result.jwt"
    ear.parent.mkdir()
    evidence = vectors / "aws-nitro/blocky-nitrite-2024-09-07.b64"
    code, _doc = run_json(
        capsys, "verify", evidence, "--type", "nitro", "--at", NITRO_T, "--nonce", "01" * 1024,
        "--ear-out", ear, "--ear-key", key_file,
    )  # fmt: skip
    assert code == 0
    result = read_ear(ear.read_text().strip(), key.public_key())
    assert result["submods"]["nitro"]["ear.status"] == "affirming"
    assert result["submods"]["nitro"]["ear.trustworthiness-vector"]["instance-identity"] == 2
    # Verification that stops before claims writes no EAR (and leaves no partial file).
    failed = tmp_path / "out" / "failed.jwt"
    code, _doc = run_json(capsys, "verify", evidence, "--type", "nitro", "--ear-out", failed, "--ear-key", key_file)
    assert code == 1 and not failed.exists()
    assert sorted(p.name for p in ear.parent.iterdir()) == ["result.jwt"]


def test_human_output(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evidence = vectors / "aws-nitro/blocky-nitrite-2024-09-07.cbor"
    code, out, _ = run(capsys, "verify", evidence, "--type", "auto", "--at", NITRO_T)
    assert code == 0
    assert out.startswith("verdict: verified (nitro, aws-nitro-enclaves)")
    assert "ok   signature:" in out and "pcr0: e72a46ca" in out
    code, out, _ = run(capsys, "verify", evidence, "--type", "nitro")
    assert code == 1 and "FAIL validity:" in out


def test_evidence_from_stdin(
    vectors: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import sys

    data = (vectors / "aws-nitro/blocky-nitrite-2024-09-07.b64").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, doc = run_json(capsys, "verify", "-", "--type", "nitro", "--at", NITRO_T)
    assert (code, doc["verdict"]) == (0, "verified")


def test_empty_evidence_is_an_invalid_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    code, doc = run_json(capsys, "verify", empty, "--type", "sev-snp")
    assert (code, doc["verdict"], doc["error"]["type"]) == (1, "invalid", "MalformedEvidence")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--at", "yesterday"], "not an RFC 3339 time"),
        (["--at", "2024-09-07T14:37:39"], "needs a time zone"),
        (["--nonce", "xyz"], "--nonce must be hex"),
        (["--nonce", "0x"], "--nonce is empty"),
        (["--at", "0001-01-01T00:00:00+01:00"], "out of range"),
        (["--root", ASSETS / "forged" / "sev-snp" / "sim-milan-valid.vcek.pem"], "holds no self-signed certificate"),
        (["--ear-out", "x.jwt"], "--ear-out and --ear-key go together"),
        (["--root", "/nonexistent.pem"], "cannot read --root"),
        (["--unsafe-trust-simulator-root"], "needs the simulator root"),
        (["--reference", "/nonexistent.yaml"], "cannot read reference values"),
    ],
)
def test_usage_errors_exit_2(vectors: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str) -> None:
    evidence = vectors / "aws-nitro/blocky-nitrite-2024-09-07.b64"
    code, _out, err = run(capsys, "verify", evidence, "--type", "nitro", *extra)
    assert code == 2
    assert message in err


def test_bad_collateral_files_exit_2(vectors: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = vectors / "amd-sev-snp/gosevguest-milan-report.bin"
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a certificate")
    two = vectors / "amd-sev-snp/gosevguest-ask-ark-milan.pem"
    key = tmp_path / "key.pem"
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    for extra, message in [
        (["--signing-cert", two], "exactly one certificate"),
        (["--signing-cert", junk], "is not a DER X.509 certificate"),
        (["--chain", junk], "is not a DER X.509 certificate"),
        (["--crl", junk], "is not a DER or PEM certificate revocation list"),
        (["--ear-out", tmp_path / "e.jwt", "--ear-key", key], "not an unencrypted PEM private key"),
    ]:
        code, _out, err = run(capsys, "verify", report, "--type", "sev-snp", "--offline", *extra)
        assert code == 2, extra
        assert message in err, err


def test_verify_missing_evidence_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run(capsys, "verify", "/nonexistent/evidence", "--type", "nitro")
    assert code == 2 and "cannot read evidence" in err


def test_root_bundle_with_intermediates(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # A --root bundle may carry the ASK next to the ARK (AMD's ask_ark files): the ARK is the root, the ASK a
    # candidate intermediate, so no --chain is needed.
    bundle = tmp_path / "ark-and-ask.pem"
    bundle.write_bytes((SIM / "sim-milan-vcek-chain.pem").read_bytes())
    code, doc = run_json(
        capsys, "verify", SIM / "sim-milan-valid.bin", "--type", "sev-snp", "--at", "2025-01-01T00:00:00Z",
        "--root", bundle, "--unsafe-trust-simulator-root", "--signing-cert", SIM / "sim-milan-valid.vcek.pem",
        "--offline",
    )  # fmt: skip
    assert (code, doc["verdict"]) == (0, "verified"), doc["error"]


def test_inspect_escapes_control_characters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import UTC, datetime

    from attestation.simulator.nitro import NitroSimulator

    now = datetime.now(UTC)
    document = tmp_path / "doc.cbor"
    document.write_bytes(NitroSimulator.create(at=now).document(timestamp=now, module_id="i-1\x1b[31mred\x07"))
    code, out, _ = run(capsys, "inspect", document)
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out
    assert "module_id: i-1\\x1b[31mred\\x07" in out
