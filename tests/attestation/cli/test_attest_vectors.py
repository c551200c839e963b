"""``ccdeploy attest`` on every Nitro and SEV-SNP row of ../shared/vectors/MANIFEST.md, at the times it states."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ccdeploy._cli import main

NITRO_T = "2024-09-07T14:37:39.545Z"
NITRO_DEBUG_T = "2024-09-07T14:38:06.508Z"
NITRO_LEAF_END = "2024-09-07T17:37:39Z"
SNP_T = "2025-06-01T00:00:00Z"

PCR0 = "e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a"
PCR1 = "0343b056cd8485ca7890ddd833476d78460aed2aa161548e4e26bedf321726696257d623e8805f3f605946b3d8b0c6aa"
PCR2 = "d5dcbdea0aa39c802f9d55ced2ea6e4d74ecec5f08fe40c508882639c9090642669106a062a3e24ee2805a3024b9b75c"
PCR4 = "45706d7b621e4620a332e147a5ddb000b049f73d47d3e61f6b03d2069152d4df6a4a786ad1c10102b955799a9dc96b44"


def attest(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict[str, Any]]:
    code = main(["attest", *map(str, args), "--json"])
    out, _err = capsys.readouterr()
    return code, json.loads(out)


def check_shape(doc: dict[str, Any]) -> None:
    assert set(doc) == {"verdict", "tee", "claims", "checks", "error"}
    assert doc["verdict"] in ("verified", "invalid", "unverifiable")
    for check in doc["checks"]:
        assert set(check) == {"name", "ok", "detail"} and isinstance(check["ok"], bool)


# --- AWS Nitro Enclaves (MANIFEST §1) -----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["b64", "cbor"])
def test_nitro_document_verifies_at_its_timestamp(
    vectors: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    code, doc = attest(
        capsys, "verify", vectors / f"aws-nitro/blocky-nitrite-2024-09-07.{suffix}", "--type", "nitro", "--at", NITRO_T
    )
    check_shape(doc)
    assert (code, doc["verdict"], doc["error"]) == (0, "verified", None)
    claims = doc["claims"]
    assert claims["platform"] == "aws-nitro-enclaves"
    assert claims["hardware_id"] == "i-0a22e5c5f24d22174-enc0191cceb4289903f"
    assert claims["issued_at"] == NITRO_T
    assert claims["measurements"]["pcr0"] == PCR0
    assert claims["measurements"]["pcr1"] == PCR1
    assert claims["measurements"]["pcr2"] == PCR2
    assert claims["measurements"]["pcr4"] == PCR4
    assert claims["measurements"]["pcr3"] == claims["measurements"]["pcr8"] == "00" * 48
    assert claims["nonce"] == claims["report_data"] == "01" * 1024
    assert claims["vendor"]["public_key"] == "01" * 1024
    assert claims["debug"] is False
    assert claims["signer"]["root_sha256"] == "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
    assert [c["name"] for c in doc["checks"]][:3] == ["format", "signature", "chain"]


@pytest.mark.parametrize("at", ["2024-09-07T17:37:40Z", "2024-09-08T00:00:00Z", None])
def test_nitro_document_is_invalid_after_the_leaf_expired(
    vectors: Path, capsys: pytest.CaptureFixture[str], at: str | None
) -> None:
    args: list[str | Path] = ["--at", at] if at else []  # no --at: now, years after expiry
    code, doc = attest(capsys, "verify", vectors / "aws-nitro/blocky-nitrite-2024-09-07.b64", "--type", "nitro", *args)
    check_shape(doc)
    assert (code, doc["verdict"], doc["error"]["type"], doc["claims"]) == (1, "invalid", "Expired", None)
    assert doc["checks"] == [{"name": "validity", "ok": False, "detail": doc["checks"][0]["detail"]}]


def test_nitro_document_is_valid_at_the_last_second_of_its_leaf(
    vectors: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = attest(
        capsys, "verify", vectors / "aws-nitro/blocky-nitrite-2024-09-07.b64", "--type", "nitro", "--at", NITRO_LEAF_END
    )
    assert (code, doc["verdict"]) == (0, "verified")


def test_nitro_debug_document_needs_allow_debug(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evidence = vectors / "aws-nitro/blocky-nitrite-debug-2024-09-07.b64"
    code, doc = attest(capsys, "verify", evidence, "--type", "nitro", "--at", NITRO_DEBUG_T)
    check_shape(doc)
    assert (code, doc["verdict"], doc["error"]["type"]) == (1, "invalid", "DebugNotAllowed")
    assert doc["claims"]["debug"] is True  # signature and chain verified: the claims are reported
    assert {c["name"]: c["ok"] for c in doc["checks"]}["debug"] is False
    code, doc = attest(capsys, "verify", evidence, "--type", "nitro", "--at", NITRO_DEBUG_T, "--allow-debug")
    assert (code, doc["verdict"]) == (0, "verified")
    assert doc["claims"]["measurements"]["pcr0"] == "00" * 48
    assert doc["claims"]["measurements"]["pcr4"] == PCR4


def test_nitro_nonce_and_reference_values(vectors: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evidence = vectors / "aws-nitro/blocky-nitrite-2024-09-07.cbor"
    base: list[str | Path] = ["verify", evidence, "--type", "nitro", "--at", NITRO_T]
    assert attest(capsys, *base, "--nonce", "01" * 1024)[0] == 0
    code, doc = attest(capsys, *base, "--nonce", "02" * 16)
    assert (code, doc["error"]["type"]) == (1, "NonceMismatch")
    good = tmp_path / "good.yaml"
    good.write_text(f"nitro:\n  pcrs:\n    0: '{PCR0}'\n    1: '{PCR1}'\n    2: '{PCR2}'\n    4: '{PCR4}'\n")
    code, doc = attest(capsys, *base, "--reference", good)
    assert code == 0 and [c["name"] for c in doc["checks"]][-4:] == [
        "nitro.pcr0",
        "nitro.pcr1",
        "nitro.pcr2",
        "nitro.pcr4",
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"nitro:\n  pcrs:\n    0: '{PCR1}'\n")
    code, doc = attest(capsys, *base, "--reference", bad)
    assert (code, doc["verdict"], doc["error"]["type"]) == (1, "invalid", "ReferenceValueViolation")


def test_nitro_with_a_wrong_root(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = attest(
        capsys,
        "verify",
        vectors / "aws-nitro/blocky-nitrite-2024-09-07.b64",
        "--type",
        "nitro",
        "--at",
        NITRO_T,
        "--root",
        vectors / "amd-sev-snp/gosevguest-ask-ark-milan.pem",
    )
    assert (code, doc["verdict"], doc["error"]["type"]) == (1, "invalid", "BadChain")


# --- AMD SEV-SNP (MANIFEST §3) -------------------------------------------------------------------------------------

SNP_ROWS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "gosevguest": (
        "gosevguest-milan-report.bin",
        "gosevguest-milan-vcek.der",
        "gosevguest-ask-ark-milan.pem",
        {
            "version": 2,
            "guest_svn": 0,
            "policy": 0xB0000,
            "debug": True,
            "vmpl": 0,
            "report_data": "0102030405" + "00" * 59,
            "measurement": "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01",
            "tcb": {"bootloader": 2, "tee": 0, "snp": 5, "microcode": 68},
            "chip_id": "3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d",
        },
    ),
    "trustee": (
        "trustee-milan-vcek-report.bin",
        "trustee-milan-vcek.der",
        "trustee-milan-ask-ark-asvk.pem",
        {
            "version": 2,
            "guest_svn": 4,
            "policy": 0x3001F,
            "debug": False,
            "vmpl": None,
            "report_data": "ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e2" + "00" * 32,
            "measurement": "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c",
            "tcb": {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115},
            "chip_id": "c38427a30d4c7af9",
            "id_key_digest": "0356215882a825279a85b300b0b742931d113bf7e32dde2e50ffde7ec743ca491ecdd7f336dc28a6e0b2bb57af7a44a3",
        },
    ),
}


@pytest.mark.parametrize("row", sorted(SNP_ROWS))
@pytest.mark.parametrize("with_chain", [True, False])
def test_snp_report_verifies(vectors: Path, capsys: pytest.CaptureFixture[str], row: str, with_chain: bool) -> None:
    report, vcek, bundle, expected = SNP_ROWS[row]
    snp = vectors / "amd-sev-snp"
    chain: list[str | Path] = ["--chain", snp / bundle] if with_chain else []  # without: the pinned ASK/ARK
    args: list[str | Path] = [
        "verify",
        snp / report,
        "--type",
        "sev-snp",
        "--at",
        SNP_T,
        "--signing-cert",
        snp / vcek,
        *chain,
        "--offline",
    ]
    code, doc = attest(capsys, *args)
    check_shape(doc)
    if expected["debug"]:
        # go-sev-guest's report has policy 0xB0000: bit 19 (DEBUG) is set. Signature and chain verify (claims are
        # reported) but a debug guest is refused unless allowed.
        assert (code, doc["verdict"], doc["error"]["type"]) == (1, "invalid", "DebugNotAllowed")
        assert doc["claims"]["debug"] is True
        code, doc = attest(capsys, *args, "--allow-debug")
    assert (code, doc["verdict"], doc["error"]) == (0, "verified", None), doc["error"]
    claims = doc["claims"]
    assert claims["platform"] == "amd-sev-snp/Milan"
    assert claims["tcb"] == expected["tcb"]
    assert claims["measurements"]["measurement"] == expected["measurement"]
    assert claims["report_data"] == expected["report_data"]
    assert claims["hardware_id"].startswith(expected["chip_id"])
    vendor = claims["vendor"]
    assert vendor["version"] == expected["version"]
    assert vendor["guest_svn"] == expected["guest_svn"]
    assert vendor["policy"] == expected["policy"]
    if expected["vmpl"] is not None:
        assert vendor["vmpl"] == expected["vmpl"]
    if "id_key_digest" in expected:
        assert vendor["id_key_digest"] == expected["id_key_digest"]
    assert claims["signer"]["root_sha256"] == "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd"
    assert "signing-key-binding" in [c["name"] for c in doc["checks"]]


@pytest.mark.parametrize("row", sorted(SNP_ROWS))
def test_snp_report_is_invalid_outside_the_vcek_window(
    vectors: Path, capsys: pytest.CaptureFixture[str], row: str
) -> None:
    report, vcek, _bundle, _expected = SNP_ROWS[row]
    snp = vectors / "amd-sev-snp"
    base: list[str | Path] = ["verify", snp / report, "--type", "sev-snp", "--signing-cert", snp / vcek, "--offline"]
    code, doc = attest(capsys, *base, "--at", "2031-01-01T00:00:00Z")
    assert (code, doc["error"]["type"]) == (1, "Expired")
    code, doc = attest(capsys, *base, "--at", "2021-01-01T00:00:00Z")
    assert (code, doc["error"]["type"]) == (1, "NotYetValid")


def test_snp_report_nonce_is_report_data(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snp = vectors / "amd-sev-snp"
    base: list[str | Path] = [
        "verify",
        snp / "trustee-milan-vcek-report.bin",
        "--type",
        "sev-snp",
        "--at",
        SNP_T,
        "--signing-cert",
        snp / "trustee-milan-vcek.der",
        "--offline",
    ]
    nonce = "ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e2"
    assert attest(capsys, *base, "--nonce", nonce)[0] == 0
    code, doc = attest(capsys, *base, "--nonce", nonce[:-2] + "00")
    assert (code, doc["error"]["type"]) == (1, "NonceMismatch")


def test_snp_without_signing_cert_offline_is_unverifiable(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = attest(
        capsys,
        "verify",
        vectors / "amd-sev-snp/gosevguest-milan-report.bin",
        "--type",
        "sev-snp",
        "--at",
        SNP_T,
        "--offline",
    )
    check_shape(doc)
    assert (code, doc["verdict"], doc["error"]["type"]) == (3, "unverifiable", "CollateralMissing")


# --- inspect --------------------------------------------------------------------------------------------------------


def test_inspect_expired_nitro_document_decodes_and_says_it_does_not_verify(
    vectors: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = attest(capsys, "inspect", vectors / "aws-nitro/blocky-nitrite-2024-09-07.b64")
    assert code == 0
    assert doc["tee"] == "nitro"
    assert doc["fields"]["module_id"] == "i-0a22e5c5f24d22174-enc0191cceb4289903f"
    assert doc["verification"]["verdict"] == "invalid"
    assert doc["verification"]["error"]["type"] == "Expired"
    code = main(["attest", "inspect", str(vectors / "aws-nitro/blocky-nitrite-2024-09-07.b64")])
    out = capsys.readouterr().out
    assert code == 0 and "module_id: i-0a22e5c5f24d22174" in out and "verification: invalid" in out


def test_inspect_snp_report_offline(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = attest(capsys, "inspect", vectors / "amd-sev-snp/gosevguest-milan-report.bin", "--offline")
    assert (code, doc["tee"]) == (0, "sev-snp")
    assert doc["fields"]["version"] == 2
    assert doc["verification"]["verdict"] == "unverifiable"
    snp = vectors / "amd-sev-snp"
    code, doc = attest(
        capsys,
        "inspect",
        snp / "gosevguest-milan-report.bin",
        "--signing-cert",
        snp / "gosevguest-milan-vcek.der",
        "--at",
        SNP_T,
    )
    assert doc["verification"]["verdict"] == "verified"


def test_inspect_garbage_is_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x84\x01\x02")
    assert main(["attest", "inspect", str(junk), "--type", "nitro"]) == 1
    assert main(["attest", "inspect", str(junk)]) == 2  # auto: no format matches -> pass --type
    capsys.readouterr()
