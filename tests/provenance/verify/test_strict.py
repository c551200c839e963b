"""Verification is strict: every subject must match, signer constraints are enforced or refused, never ignored."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ccdeploy._cli import main
from ccdeploy.kek import KeyWrapper
from ccdeploy.provenance.predicates import model_signing_statement_for_model, seal_provenance
from ccdeploy.seal import seal_model
from ccdeploy.seal.digest import DIGEST_ALGORITHM, sealed_digest
from tests.provenance.verify.conftest import (
    RunCli,
    cert_bundle,
    days,
    key_bundle,
    make_pki,
    now,
    pem_public,
    statement,
)

FIVE_KEYS = {"verdict", "signer", "subjects", "checks", "error"}
SLSA = "https://slsa.dev/provenance/v1"
FULCIO_ISSUER_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")


def _write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path


def _model(root: Path, name: str, content: bytes) -> Path:
    model = root / name
    model.mkdir()
    (model / "weights.bin").write_bytes(content)
    (model / "config.json").write_bytes(b'{"layers": 2}')
    return model


@pytest.fixture
def signing_key(tmp_path: Path) -> tuple[ec.EllipticCurvePrivateKey, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "key.pub").write_bytes(pem_public(key))
    return key, tmp_path / "key.pub"


# --- 1. sealed targets: every subject matches, the seal provenance names this header -------------------------


@pytest.fixture
def two_sealed(tmp_path: Path, kek: KeyWrapper) -> tuple[Path, Path]:
    a, b = tmp_path / "A.ccseal", tmp_path / "B.ccseal"
    seal_model(_model(tmp_path, "model", b"\x00" * 64), a, [kek], digest_record=False)
    seal_model(_model(tmp_path, "evil", b"\x01" * 64), b, [kek], digest_record=False)
    return a, b


def _slsa_of(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = seal_provenance(sealed_digest(path), path.name).to_json()
    return document


def test_seal_provenance_of_the_artifact_verifies(
    run_cli: RunCli, tmp_path: Path, two_sealed: tuple[Path, Path], signing_key: tuple[ec.EllipticCurvePrivateKey, Path]
) -> None:
    a, _ = two_sealed
    key, pub = signing_key
    sig = _write(tmp_path / "a.sig", key_bundle(key, json.dumps(_slsa_of(a)).encode()))
    rc, doc = run_cli(a, "--signature", sig, "--key", pub)
    assert rc == 0, doc
    assert [s["matched"] for s in doc["subjects"]] == [True, True]
    assert any(c["name"] == "subject.seal_header" and c["ok"] for c in doc["checks"])


def test_sealed_subject_with_another_models_manifest_fails(
    run_cli: RunCli, tmp_path: Path, two_sealed: tuple[Path, Path], signing_key: tuple[ec.EllipticCurvePrivateKey, Path]
) -> None:
    # The reviewer's repro: A's provenance whose sealed subject names B (a stale digest), verified on B.
    a, b = two_sealed
    key, pub = signing_key
    document = _slsa_of(a)
    document["subject"][0]["digest"] = {DIGEST_ALGORITHM: sealed_digest(b).value}
    sig = _write(tmp_path / "ab.sig", key_bundle(key, json.dumps(document).encode()))
    rc, doc = run_cli(b, "--signature", sig, "--key", pub)
    assert rc == 1, doc
    assert doc["error"]["type"] == "SubjectMismatch"
    assert [s["matched"] for s in doc["subjects"]] == [True, False]


@pytest.mark.parametrize(
    "extra",
    [{"sha256": "00" * 32}, {"sha512": "11" * 64}],
    ids=["unrelated-sha256", "unrelated-sha512"],
)
def test_sealed_statement_with_an_unmatched_subject_fails(
    run_cli: RunCli,
    tmp_path: Path,
    two_sealed: tuple[Path, Path],
    signing_key: tuple[ec.EllipticCurvePrivateKey, Path],
    extra: dict[str, str],
) -> None:
    a, _ = two_sealed
    key, pub = signing_key
    subjects = [
        {"name": a.name, "digest": {DIGEST_ALGORITHM: sealed_digest(a).value}},
        {"name": "something-else", "digest": extra},
    ]
    sig = _write(tmp_path / "x.sig", key_bundle(key, statement(subjects, SLSA, {})))
    rc, doc = run_cli(a, "--signature", sig, "--key", pub)
    assert rc == 1, doc
    assert doc["error"]["type"] == "SubjectMismatch"


def test_seal_provenance_naming_another_header_fails(
    run_cli: RunCli, tmp_path: Path, two_sealed: tuple[Path, Path], signing_key: tuple[ec.EllipticCurvePrivateKey, Path]
) -> None:
    a, b = two_sealed
    key, pub = signing_key
    document = _slsa_of(b)
    document["predicate"]["runDetails"]["byproducts"][0]["digest"] = {"sha256": sealed_digest(a).header_sha256}
    sig = _write(tmp_path / "hb.sig", key_bundle(key, json.dumps(document).encode()))
    rc, doc = run_cli(b, "--signature", sig, "--key", pub)
    assert rc == 1, doc
    assert doc["error"]["type"] == "SubjectMismatch"
    assert doc["error"]["check"] == "subject.seal_header"
    del document["predicate"]["runDetails"]["byproducts"]
    sig = _write(tmp_path / "nb.sig", key_bundle(key, json.dumps(document).encode()))
    rc, doc = run_cli(b, "--signature", sig, "--key", pub)
    assert rc == 1, doc
    assert doc["error"]["check"] == "subject.seal_header"


# --- 2. signer constraints are enforced or refused ------------------------------------------------------------


def _model_sig(model: Path) -> bytes:
    return model_signing_statement_for_model(model).to_bytes()


@pytest.mark.parametrize(
    "flags",
    [
        ["--identity", "alice@example.com"],
        ["--issuer", "https://accounts.example.com"],
        ["--source", "github.com/o/r"],
        ["--builder-id", "https://example.com/builder"],
        ["--workflow", "https://example.com/wf"],
        ["--source-ref", "refs/tags/v1"],
    ],
)
def test_key_signed_bundle_refuses_signer_constraints(
    run_cli: RunCli, tmp_path: Path, signing_key: tuple[ec.EllipticCurvePrivateKey, Path], flags: list[str]
) -> None:
    key, pub = signing_key
    model = _model(tmp_path, "model", b"w")
    sig = _write(tmp_path / "m.sig", key_bundle(key, _model_sig(model)))
    assert run_cli(model, "--signature", sig, "--key", pub)[0] == 0
    rc, doc = run_cli(model, "--signature", sig, "--key", pub, *flags)
    assert rc == 2, doc
    assert set(doc) == FIVE_KEYS
    assert doc["error"]["type"] == "UsageError"
    assert "key-signed" in doc["error"]["message"]


def test_key_signed_bundle_refuses_a_policy_file(
    run_cli: RunCli, tmp_path: Path, signing_key: tuple[ec.EllipticCurvePrivateKey, Path]
) -> None:
    key, pub = signing_key
    model = _model(tmp_path, "model", b"w")
    sig = _write(tmp_path / "m.sig", key_bundle(key, _model_sig(model)))
    (tmp_path / "policy.yaml").write_text("identity: alice@example.com\n")
    rc, doc = run_cli(model, "--signature", sig, "--key", pub, "--policy", tmp_path / "policy.yaml")
    assert rc == 2, doc
    assert doc["error"]["type"] == "UsageError"


def test_container_of_key_signed_bundles_refuses_signer_constraints(
    tmp_path: Path, signing_key: tuple[ec.EllipticCurvePrivateKey, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    key, pub = signing_key
    model = _model(tmp_path, "model", b"w")
    line = json.dumps(key_bundle(key, _model_sig(model)))
    container = tmp_path / "m.intoto.jsonl"
    container.write_text(f"{line}\n{line}\n")
    base = ["verify", str(model), "--signature", str(container), "--key", str(pub)]
    assert main(base) == 0
    assert main([*base, "--identity", "alice@example.com"]) == 2
    assert "key-signed" in capsys.readouterr().err


def _pki_leaf(pki: Any, email: str, oidc_issuer: str | None) -> Any:
    """``pki`` with its leaf reissued to carry an e-mail SAN and, optionally, Fulcio's OIDC issuer extension."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signer")]))
        .issuer_name(pki.root.subject)
        .public_key(pki.leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(pki.leaf.not_valid_before_utc)
        .not_valid_after(pki.leaf.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.root_key.public_key()), critical=False)
    )
    if oidc_issuer is not None:
        value = oidc_issuer.encode()
        der = bytes([0x0C, len(value)]) + value  # DER UTF8String, as Fulcio's v2 extensions are
        builder = builder.add_extension(x509.UnrecognizedExtension(FULCIO_ISSUER_OID, der), critical=False)
    return dataclasses.replace(pki, leaf=builder.sign(pki.root_key, hashes.SHA256()))


def _pki_case(tmp_path: Path, oidc_issuer: str | None) -> tuple[Path, Path, Path]:
    pki = _pki_leaf(make_pki(now() - days(1), now() + days(30)), "alice@corp.example", oidc_issuer)
    (tmp_path / "root.pem").write_bytes(pki.root.public_bytes(serialization.Encoding.PEM))
    model = _model(tmp_path, "model", b"w")
    sig = _write(tmp_path / "c.sig", cert_bundle(pki, _model_sig(model)))
    return model, sig, tmp_path / "root.pem"


def test_private_pki_identity_is_checked(run_cli: RunCli, tmp_path: Path) -> None:
    model, sig, root = _pki_case(tmp_path, None)
    assert run_cli(model, "--signature", sig, "--cert-root", root, "--identity", "alice@corp.example")[0] == 0
    rc, doc = run_cli(model, "--signature", sig, "--cert-root", root, "--identity", "bob@corp.example")
    assert rc == 1
    assert doc["error"]["type"] == "UntrustedSigner"


@pytest.mark.parametrize(
    "flags",
    [
        ["--issuer", "https://accounts.example.com"],
        ["--source", "github.com/o/r"],
        ["--builder-id", "https://example.com/builder"],
        ["--workflow", "https://example.com/wf"],
        ["--source-ref", "refs/tags/v1"],
        ["--identity", "alice@corp.example", "--builder-id", "https://example.com/builder"],
    ],
)
def test_private_pki_refuses_what_the_certificate_cannot_show(
    run_cli: RunCli, tmp_path: Path, flags: list[str]
) -> None:
    model, sig, root = _pki_case(tmp_path, None)
    rc, doc = run_cli(model, "--signature", sig, "--cert-root", root, *flags)
    assert rc == 2, doc
    assert set(doc) == FIVE_KEYS
    assert doc["error"]["type"] == "UsageError"


def test_private_pki_issuer_checked_when_the_certificate_names_one(run_cli: RunCli, tmp_path: Path) -> None:
    model, sig, root = _pki_case(tmp_path, "https://accounts.corp.example")
    args = (model, "--signature", sig, "--cert-root", root)
    rc, doc = run_cli(*args, "--issuer", "https://accounts.corp.example")
    assert rc == 0, doc
    rc, doc = run_cli(*args, "--issuer", "https://accounts.other.example")
    assert rc == 1, doc
    assert doc["error"]["type"] == "UntrustedSigner"


# --- 3. and 4. the CLI's usage contract -----------------------------------------------------------------------


@pytest.fixture
def golang_demo(vectors: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(vectors / "in-toto-slsa" / "intoto-golang-demo", tmp_path / "demo"))


def _layout_args(demo: Path) -> list[str | Path]:
    return [
        demo,
        "--layout",
        demo / "demo.dsse.layout",
        "--layout-key",
        demo / "alice.pub",
        "--links",
        demo,
        "--at",
        "2026-01-01T00:00:00Z",
    ]


@pytest.mark.parametrize(
    "flags",
    [
        ["--signature", "{demo}/demo.layout"],
        ["--key", "{demo}/alice.pub"],
        ["--identity", "x"],
        ["--issuer", "x"],
        ["--cert-root", "{demo}/alice.pub"],
        ["--policy", "{demo}/alice.pub"],
        ["--builder-id", "x"],
        ["--source", "github.com/o/r"],
        ["--workflow", "x"],
        ["--ignore-path", "foo.py"],
    ],
)
def test_layout_mode_refuses_bundle_options(run_cli: RunCli, golang_demo: Path, flags: list[str]) -> None:
    assert run_cli(*_layout_args(golang_demo))[0] == 0
    rc, doc = run_cli(*_layout_args(golang_demo), *(f.format(demo=golang_demo) for f in flags))
    assert rc == 2, doc
    assert set(doc) == FIVE_KEYS
    assert doc["error"]["type"] == "UsageError"
    assert flags[0] in doc["error"]["message"]


def test_layout_mode_json_has_exactly_five_keys(run_cli: RunCli, golang_demo: Path) -> None:
    rc, doc = run_cli(*_layout_args(golang_demo))
    assert rc == 0, doc
    assert set(doc) == FIVE_KEYS
    assert doc["signer"]["kind"] == "in-toto-layout"
    assert doc["signer"]["steps"] == ["write-code", "package"]
    assert doc["signer"]["inspections"] == ["untar"]
    assert len(doc["signer"]["keyids"]) == 1


def test_layout_mode_human_output(golang_demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", *map(str, _layout_args(golang_demo))]) == 0
    out = capsys.readouterr().out
    assert "verified" in out and "steps write-code, package" in out


@pytest.mark.parametrize("flag", ["--identity", "--issuer", "--builder-id", "--workflow", "--source", "--source-ref"])
def test_blank_signer_flag_is_a_usage_error_with_json(run_cli: RunCli, tmp_path: Path, flag: str) -> None:
    model = _model(tmp_path, "model", b"w")
    (tmp_path / "m.sig").write_text("{}")
    rc, doc = run_cli(model, "--signature", tmp_path / "m.sig", flag, " ")
    assert rc == 2, doc
    assert set(doc) == FIVE_KEYS
    assert doc["verdict"] == "unverifiable"
    assert doc["error"]["type"] == "UsageError"
    assert flag in doc["error"]["message"]


@pytest.mark.parametrize("which", ["no-target", "no-signature", "links-without-layout"])
def test_missing_arguments_print_the_json_document(run_cli: RunCli, tmp_path: Path, which: str) -> None:
    model = _model(tmp_path, "model", b"w")
    (tmp_path / "m.sig").write_text("{}")
    cases: dict[str, list[str | Path]] = {
        "no-target": ["--signature", tmp_path / "m.sig"],
        "no-signature": [model],
        "links-without-layout": [model, "--signature", tmp_path / "m.sig", "--links", tmp_path],
    }
    rc, doc = run_cli(*cases[which])
    assert rc == 2
    assert set(doc) == FIVE_KEYS
    assert doc["error"]["type"] == "UsageError"


# --- 5. and 6. model_signing statements over one file, and over nothing ---------------------------------------


def test_single_file_model_signing_interop(run_cli: RunCli, tmp_path: Path) -> None:
    from model_signing import signing

    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (tmp_path / "k.pub").write_bytes(pem_public(key))
    single = tmp_path / "single.onnx"
    single.write_bytes(b"onnx" * 100)
    sig = tmp_path / "single.onnx.model.sig"
    signing.Config().use_elliptic_key_signer(private_key=tmp_path / "k.pem").sign(single, sig)  # type: ignore[no-untyped-call]
    rc, doc = run_cli(single, "--signature", sig, "--key", tmp_path / "k.pub")
    assert rc == 0, doc
    assert any(c["name"] == "model.resources" and c["ok"] for c in doc["checks"])
    single.write_bytes(b"onnx" * 99 + b"onnX")
    rc, doc = run_cli(single, "--signature", sig, "--key", tmp_path / "k.pub")
    assert rc == 1
    assert doc["error"]["type"] == "SubjectMismatch"


def test_single_file_statement_from_our_builder(
    run_cli: RunCli, tmp_path: Path, signing_key: tuple[ec.EllipticCurvePrivateKey, Path]
) -> None:
    key, pub = signing_key
    single = tmp_path / "single.onnx"
    single.write_bytes(b"onnx")
    sig = _write(tmp_path / "s.sig", key_bundle(key, _model_sig(single)))
    rc, doc = run_cli(single, "--signature", sig, "--key", pub)
    assert rc == 0, doc


def test_model_signing_statement_over_no_files_fails(
    run_cli: RunCli, tmp_path: Path, signing_key: tuple[ec.EllipticCurvePrivateKey, Path]
) -> None:
    key, pub = signing_key
    model = _model(tmp_path, "model", b"w")
    predicate = {
        "serialization": {
            "method": "files",
            "hash_type": "sha256",
            "allow_symlinks": False,
            "ignore_paths": ["weights.bin", "config.json"],
        },
        "resources": [],
    }
    subjects = [{"name": "model", "digest": {"sha256": hashlib.sha256(b"").hexdigest()}}]
    body = statement(subjects, "https://model_signing/signature/v1.0", predicate)
    sig = _write(tmp_path / "v.sig", key_bundle(key, body))
    rc, doc = run_cli(model, "--signature", sig, "--key", pub)
    assert rc == 1, doc
    assert doc["error"]["type"] == "SubjectMismatch"


# --- 7. containers refuse duplicate keys ----------------------------------------------------------------------


def test_npm_container_with_duplicate_keys_fails(
    run_cli: RunCli, tmp_path: Path, signing_key: tuple[ec.EllipticCurvePrivateKey, Path]
) -> None:
    key, pub = signing_key
    model = _model(tmp_path, "model", b"w")
    bundle = json.dumps(key_bundle(key, _model_sig(model)))
    good = tmp_path / "good.json"
    good.write_text('{"attestations": [{"predicateType": "x", "bundle": ' + bundle + "}]}")
    assert run_cli(model, "--signature", good, "--key", pub)[0] == 0
    shadowed = tmp_path / "dup.json"
    shadowed.write_text('{"attestations": [{"predicateType": "x", "bundle": {}, "bundle": ' + bundle + "}]}")
    rc, doc = run_cli(model, "--signature", shadowed, "--key", pub)
    assert rc == 1, doc
    assert doc["error"]["type"] == "BundleMalformed"
    inner = bundle.replace('"mediaType":', '"mediaType": "x", "mediaType":', 1)
    (tmp_path / "dup2.json").write_text('{"attestations": [{"bundle": ' + inner + "}]}")
    rc, doc = run_cli(model, "--signature", tmp_path / "dup2.json", "--key", pub)
    assert rc == 1, doc
    assert doc["error"]["type"] == "BundleMalformed"


def test_jsonl_container_with_duplicate_keys_fails(
    run_cli: RunCli, tmp_path: Path, signing_key: tuple[ec.EllipticCurvePrivateKey, Path]
) -> None:
    key, pub = signing_key
    model = _model(tmp_path, "model", b"w")
    line = json.dumps(key_bundle(key, _model_sig(model)))
    dup = line.replace('"mediaType":', '"mediaType": "x", "mediaType":', 1)
    (tmp_path / "m.jsonl").write_text(f"{line}\n{dup}\n")
    rc, doc = run_cli(model, "--signature", tmp_path / "m.jsonl", "--key", pub)
    assert rc == 1, doc
    assert doc["error"]["type"] == "BundleMalformed"
