"""pkcs11: signers on SoftHSM2: bundles model_signing accepts; unreachable tokens and bad URIs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ccdeploy._cli import main
from ccdeploy.errors import SignerError, SignerUnavailable
from ccdeploy.provenance.signers import signer_from_uri
from tests.provenance.sign.conftest import TokenKey
from tests.provenance.sign.test_model_signing_interop import ms_verify_key
from tests.softhsm import SoftHsm


@pytest.mark.parametrize("curve", ["secp256r1", "secp384r1"])
def test_token_signed_model_is_accepted_by_model_signing(
    curve: str, token_key: Callable[[str], TokenKey], model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = token_key(curve)
    assert main(["sign", str(model_dir), "--signer", key.uri, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["signer"]["kind"] == "pkcs11"
    assert "pin-value" not in document["signer"]["uri"]
    assert "1234" not in json.dumps(document)
    result = ms_verify_key(model_dir, Path(document["bundles"][0]["path"]), key.public)
    assert result.returncode == 0, result.stdout + result.stderr


def test_token_key_signs_a_sealed_artifact(token_key: Callable[[str], TokenKey], sealed: Path) -> None:
    key = token_key("secp384r1")
    assert main(["sign", str(sealed), "--signer", key.uri]) == 0
    assert sealed.with_name("tiny-model.provenance.sigstore.json").is_file()


def test_unreachable_token_exits_3(softhsm: SoftHsm, model_dir: Path) -> None:
    uri = softhsm.uri(object="anything").replace(f"token={softhsm.label}", "token=no-such-token")
    with pytest.raises(SignerUnavailable):
        signer_from_uri(uri)
    assert main(["sign", str(model_dir), "--signer", uri]) == 3


def test_missing_module_exits_3(tmp_path: Path, model_dir: Path) -> None:
    uri = f"pkcs11:token=t;object=k?module-path={tmp_path / 'absent.so'}&pin-value=1234"
    assert main(["sign", str(model_dir), "--signer", uri]) == 3


def test_wrong_pin_exits_2_without_echoing_it(
    softhsm: SoftHsm, token_key: Callable[[str], TokenKey], model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = token_key("secp256r1")
    uri = key.uri.replace(f"pin-value={softhsm.pin}", "pin-value=98765")
    assert main(["sign", str(model_dir), "--signer", uri]) == 2
    assert "98765" not in capsys.readouterr().err


@pytest.mark.parametrize("path", ["object=no-such-key", "type=secret-key;object=x", "", "object=%zz"])
def test_bad_key_uris_exit_2(softhsm: SoftHsm, path: str, model_dir: Path) -> None:
    uri = f"pkcs11:token={softhsm.label}{';' + path if path else ''}?module-path={softhsm.module}&pin-value=1234"
    with pytest.raises(SignerError):
        signer_from_uri(uri)
    assert main(["sign", str(model_dir), "--signer", uri]) == 2


def test_aes_key_is_not_a_signing_key(softhsm: SoftHsm, pkcs11_kek_uri: str) -> None:
    with pytest.raises(SignerError):
        signer_from_uri(pkcs11_kek_uri)
