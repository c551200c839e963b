"""SigstoreSigner against the loopback Sigstore double, checked by sigstore-python's real Verifier."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st
from sigstore.errors import VerificationError
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier
from sigstore.verify.policy import Identity

from ccdeploy.errors import EXIT_COULD_NOT_CHECK, EXIT_USAGE, SignerError, SignerUnavailable
from ccdeploy.provenance.signers import SignerOptions, signer_from_uri
from ccdeploy.provenance.signers.sigstore import IN_TOTO_PAYLOAD_TYPE, SigstoreSigner, _parse_uri
from tests.provenance.keyless.sigstore_double import SigstoreDouble

IDENTITY = "ci@example.com"
WORKFLOW = "https://github.com/example/model/.github/workflows/release.yml@refs/heads/main"


def statement(name: str = "model.onnx", digest: str = "ab" * 32) -> bytes:
    """An in-toto Statement v1 in a layout no serialiser reproduces (odd spacing, key order, escapes)."""
    return (
        '{ "predicateType":"https://slsa.dev/provenance/v1",\n'
        '  "_type":"https://in-toto.io/Statement/v1",\n'
        f'  "subject":[{{"digest":{{"sha256":"{digest}"}},"name":"{name}"}}],\n'
        '  "predicate":{"note":"caf\\u00e9 \u2014 1e3 == 1000","size":1048576,"f":1.0}}\n'
    ).encode()


def sign(uri: str, token: str | None, *payloads: bytes) -> tuple[SigstoreSigner, list[dict[str, Any]]]:
    signer = signer_from_uri(uri, SignerOptions(identity_token=token))
    assert isinstance(signer, SigstoreSigner)
    return signer, [signer.sign_dsse(payload, IN_TOTO_PAYLOAD_TYPE) for payload in payloads]


def verify(trusted_root: Path, document: dict[str, Any], identity: str, issuer: str) -> tuple[str, bytes]:
    bundle = Bundle.from_json(json.dumps(document))
    return Verifier(trusted_root=TrustedRoot.from_file(str(trusted_root))).verify_dsse(
        bundle, Identity(identity=identity, issuer=issuer)
    )


def uri_for(path: Path) -> str:
    return f"sigstore:?trust-config={path}"


# ---- the happy path, verified by sigstore-python -------------------------------------------------


def test_bundle_verifies_with_sigstore_verifier_and_identity_policy(
    double: SigstoreDouble, trust_config: Path, trusted_root: Path
) -> None:
    payload = statement()
    _, (document,) = sign(uri_for(trust_config), double.mint_token(), payload)

    assert document["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert verify(trusted_root, document, IDENTITY, double.issuer) == (IN_TOTO_PAYLOAD_TYPE, payload)
    entry = document["verificationMaterial"]["tlogEntries"][0]
    assert entry["kindVersion"] == {"kind": "dsse", "version": "0.0.1"}
    assert entry["inclusionProof"]["checkpoint"]["envelope"].startswith(double.checkpoint_origin)


@pytest.mark.parametrize(
    ("identity", "issuer"),
    [("mallory@example.com", None), (IDENTITY, "https://accounts.google.com")],
    ids=["other-identity", "other-issuer"],
)
def test_bundle_fails_another_identity_or_issuer(
    double: SigstoreDouble, trust_config: Path, trusted_root: Path, identity: str, issuer: str | None
) -> None:
    _, (document,) = sign(uri_for(trust_config), double.mint_token(), statement())
    with pytest.raises(VerificationError, match=r"do not match|does not match"):
        verify(trusted_root, document, identity, issuer or double.issuer)


def test_payload_is_byte_identical(double: SigstoreDouble, trust_config: Path) -> None:
    payload = statement()
    _, (document,) = sign(uri_for(trust_config), double.mint_token(), payload)
    envelope = document["dsseEnvelope"]
    assert envelope["payloadType"] == IN_TOTO_PAYLOAD_TYPE
    assert base64.b64decode(envelope["payload"]) == payload


def test_one_signer_reuses_one_certificate_for_several_statements(
    double: SigstoreDouble, trust_config: Path, trusted_root: Path
) -> None:
    payloads = [statement(name=f"part-{i}", digest=f"{i:02x}" * 32) for i in range(3)]
    signer, documents = sign(uri_for(trust_config), double.mint_token(), *payloads)

    certificates = {d["verificationMaterial"]["certificate"]["rawBytes"] for d in documents}
    assert len(certificates) == 1
    assert double.requests.count("POST /api/v2/signingCert") == 1
    assert double.requests.count("POST /api/v1/log/entries") == 3
    assert [int(d["verificationMaterial"]["tlogEntries"][0]["logIndex"]) for d in documents] == [0, 1, 2]
    for payload, document in zip(payloads, documents, strict=True):
        assert verify(trusted_root, document, IDENTITY, double.issuer)[1] == payload
    signer.close()


def test_close_forgets_the_ephemeral_key(double: SigstoreDouble, trust_config: Path) -> None:
    signer, (first,) = sign(uri_for(trust_config), double.mint_token(), statement())
    signer.close()
    second = signer.sign_dsse(statement(), IN_TOTO_PAYLOAD_TYPE)
    assert double.requests.count("POST /api/v2/signingCert") == 2
    assert first["verificationMaterial"]["certificate"] != second["verificationMaterial"]["certificate"]


def test_rs256_tokens_are_accepted(double: SigstoreDouble, trust_config: Path, trusted_root: Path) -> None:
    _, (document,) = sign(uri_for(trust_config), double.mint_token(algorithm="RS256"), statement())
    assert verify(trusted_root, document, IDENTITY, double.issuer)[0] == IN_TOTO_PAYLOAD_TYPE


def test_trust_config_from_options(double: SigstoreDouble, trust_config: Path, trusted_root: Path) -> None:
    signer = signer_from_uri("sigstore:", SignerOptions(identity_token=double.mint_token(), trust_config=trust_config))
    document = signer.sign_dsse(statement(), IN_TOTO_PAYLOAD_TYPE)
    assert verify(trusted_root, document, IDENTITY, double.issuer)[1] == statement()


def test_describe_names_identity_and_services_never_the_token(double: SigstoreDouble, trust_config: Path) -> None:
    token = double.mint_token()
    signer = signer_from_uri(uri_for(trust_config), SignerOptions(identity_token=token))
    before = signer.describe()
    signer.sign_dsse(statement(), IN_TOTO_PAYLOAD_TYPE)
    after = signer.describe()
    expected = {
        "kind": "sigstore",
        "instance": "custom",
        "identity": IDENTITY,
        "issuer": double.issuer,
        "fulcio": double.base_url,
        "rekor": double.base_url,
    }
    assert before == after == expected
    assert all(part not in json.dumps(after) for part in token.split("."))


# ---- forged negatives: the bundle, the roots -----------------------------------------------------


def test_flipped_payload_byte_fails_verification(
    double: SigstoreDouble, trust_config: Path, trusted_root: Path
) -> None:
    payload = statement()
    _, (document,) = sign(uri_for(trust_config), double.mint_token(), payload)
    forged = bytearray(payload)
    forged[payload.index(b"1048576")] ^= 0x01
    document["dsseEnvelope"]["payload"] = base64.b64encode(bytes(forged)).decode()
    with pytest.raises(VerificationError):
        verify(trusted_root, document, IDENTITY, double.issuer)


def test_bundle_does_not_verify_under_another_deployments_root(
    double: SigstoreDouble, trust_config: Path, tmp_path: Path
) -> None:
    _, (document,) = sign(uri_for(trust_config), double.mint_token(), statement())
    other_root = tmp_path / "other_root.json"
    other_root.write_text(json.dumps(SigstoreDouble(base_url=double.base_url).trusted_root()), encoding="utf-8")
    with pytest.raises(VerificationError):
        verify(other_root, document, IDENTITY, double.issuer)


@pytest.mark.parametrize("log", ["ctlogs", "tlogs"])
def test_services_not_matching_the_trusted_root_fail_closed(double: SigstoreDouble, tmp_path: Path, log: str) -> None:
    """A CT log (SCT) or Rekor key (SET, checkpoint) the trust config does not name: no bundle comes out."""
    config = double.client_trust_config()
    config["trustedRoot"][log] = SigstoreDouble(base_url=double.base_url).client_trust_config()["trustedRoot"][log]
    path = tmp_path / "mismatched.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    signer = signer_from_uri(uri_for(path), SignerOptions(identity_token=double.mint_token()))
    with pytest.raises(SignerError, match="does not verify against the trusted root") as raised:
        signer.sign_dsse(statement(), IN_TOTO_PAYLOAD_TYPE)
    assert raised.value.exit_code == EXIT_USAGE


# ---- tokens --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_ambient_credentials")
def test_no_token_anywhere_is_a_usage_error(trust_config: Path) -> None:
    with pytest.raises(SignerError, match="--identity-token") as raised:
        signer_from_uri(uri_for(trust_config), SignerOptions())
    assert raised.value.exit_code == EXIT_USAGE
    assert "id-token: write" in raised.value.message


def test_token_forged_with_another_key_is_refused_by_fulcio(double: SigstoreDouble, trust_config: Path) -> None:
    forged = double.mint_token(key=ec.generate_private_key(ec.SECP256R1()))
    signer = signer_from_uri(uri_for(trust_config), SignerOptions(identity_token=forged))
    with pytest.raises(SignerError, match=r"refused the identity token .*HTTP 401") as raised:
        signer.sign_dsse(statement(), IN_TOTO_PAYLOAD_TYPE)
    assert forged not in raised.value.message


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"audience": "not-sigstore"}, "malformed or missing claims"),
        ({"lifetime_s": -60}, "malformed or missing claims"),
    ],
    ids=["wrong-audience", "expired"],
)
def test_unusable_tokens_are_usage_errors(
    double: SigstoreDouble, trust_config: Path, claims: dict[str, Any], reason: str
) -> None:
    token = double.mint_token(
        audience=str(claims.get("audience", "sigstore")),
        lifetime=dt.timedelta(seconds=int(claims.get("lifetime_s", 300))),
    )
    with pytest.raises(SignerError, match=reason) as raised:
        signer_from_uri(uri_for(trust_config), SignerOptions(identity_token=token))
    assert token not in raised.value.message


def test_not_a_jwt_is_a_usage_error(trust_config: Path) -> None:
    with pytest.raises(SignerError, match="unusable"):
        signer_from_uri(uri_for(trust_config), SignerOptions(identity_token="not-a-jwt"))


# ---- ambient CI credentials (GitHub Actions, fetched over HTTP from the double) ----------------


def github_actions(monkeypatch: pytest.MonkeyPatch, double: SigstoreDouble, request_token: str | None) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", double.actions_token_url)
    if request_token is not None:
        monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", request_token)


def test_ambient_github_actions_token_is_fetched_and_bound_to_the_workflow(
    monkeypatch: pytest.MonkeyPatch, double: SigstoreDouble, trust_config: Path, trusted_root: Path
) -> None:
    github_actions(monkeypatch, double, double.actions_request_token)
    signer, (document,) = sign(uri_for(trust_config), None, statement())

    assert "GET /oidc/actions-token" in double.requests
    assert verify(trusted_root, document, WORKFLOW, double.issuer)[1] == statement()
    assert signer.describe()["identity"] == WORKFLOW


def test_github_actions_without_id_token_permission_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, double: SigstoreDouble, trust_config: Path
) -> None:
    github_actions(monkeypatch, double, None)
    with pytest.raises(SignerError, match="id-token: write"):
        signer_from_uri(uri_for(trust_config), SignerOptions())


def test_github_actions_token_endpoint_refusing_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, double: SigstoreDouble, trust_config: Path
) -> None:
    github_actions(monkeypatch, double, "a-request-token-the-endpoint-does-not-know")
    with pytest.raises(SignerUnavailable, match="OIDC token request failed") as raised:
        signer_from_uri(uri_for(trust_config), SignerOptions())
    assert raised.value.exit_code == EXIT_COULD_NOT_CHECK
    assert "bad request token" not in raised.value.message  # the endpoint's body is never echoed


def test_explicit_token_wins_over_ambient(
    monkeypatch: pytest.MonkeyPatch, double: SigstoreDouble, trust_config: Path
) -> None:
    github_actions(monkeypatch, double, double.actions_request_token)
    signer, _ = sign(uri_for(trust_config), double.mint_token(), statement())
    assert "GET /oidc/actions-token" not in double.requests
    assert signer.describe()["identity"] == IDENTITY


# ---- services down -------------------------------------------------------------------------------


def test_sigstore_down_is_signer_unavailable(double: SigstoreDouble, closed_port_url: str, tmp_path: Path) -> None:
    path = tmp_path / "down.json"
    path.write_text(json.dumps(double.client_trust_config(base_url=closed_port_url)), encoding="utf-8")
    signer = signer_from_uri(uri_for(path), SignerOptions(identity_token=double.mint_token()))
    with pytest.raises(SignerUnavailable, match=f"cannot reach Fulcio at {closed_port_url}") as raised:
        signer.sign_dsse(statement(), IN_TOTO_PAYLOAD_TYPE)
    assert raised.value.exit_code == EXIT_COULD_NOT_CHECK


@pytest.mark.parametrize("status", [500, 503])
def test_rekor_failing_is_signer_unavailable(double: SigstoreDouble, trust_config: Path, status: int) -> None:
    double.rekor_failure = status
    signer = signer_from_uri(uri_for(trust_config), SignerOptions(identity_token=double.mint_token()))
    with pytest.raises(SignerUnavailable, match=f"Rekor at {double.base_url} failed"):
        signer.sign_dsse(statement(), IN_TOTO_PAYLOAD_TYPE)


# ---- inputs --------------------------------------------------------------------------------------


def test_only_in_toto_payloads_are_signed(double: SigstoreDouble, trust_config: Path) -> None:
    signer = signer_from_uri(uri_for(trust_config), SignerOptions(identity_token=double.mint_token()))
    with pytest.raises(SignerError, match="in-toto statements only"):
        signer.sign_dsse(statement(), "application/json")
    with pytest.raises(SignerError, match="not an in-toto Statement v1"):
        signer.sign_dsse(b'{"_type": "https://in-toto.io/Statement/v0.1"}', IN_TOTO_PAYLOAD_TYPE)
    assert "POST /api/v2/signingCert" not in double.requests


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("sigstore:prod", "unknown Sigstore instance"),
        ("sigstore:?trust-config=a.json&trust-config=b.json", "exactly one trust-config"),
        ("sigstore:?trust-config=", "exactly one trust-config"),
        ("sigstore:?rekor=http://x", "unknown parameter"),
        ("sigstore:staging?trust-config=a.json", "names a public instance"),
        ("sigstore://fulcio.example", "not a Sigstore signer URI"),
    ],
)
def test_malformed_uris_are_usage_errors(uri: str, match: str) -> None:
    with pytest.raises(SignerError, match=match):
        signer_from_uri(uri, SignerOptions(identity_token="unused"))


def test_conflicting_trust_configs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SignerError, match="two different"):
        signer_from_uri(uri_for(tmp_path / "a.json"), SignerOptions(trust_config=tmp_path / "b.json"))


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "cannot read"),
        ("{}", "not a usable Sigstore ClientTrustConfig"),
        ('{"mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"}', "not a usable"),
    ],
    ids=["missing", "empty-object", "no-roots"],
)
def test_unusable_trust_config_files(tmp_path: Path, content: str | None, match: str) -> None:
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(SignerError, match=match):
        signer_from_uri(uri_for(path), SignerOptions(identity_token="unused"))


def test_trust_config_without_rekor_is_refused(double: SigstoreDouble, tmp_path: Path) -> None:
    config = double.client_trust_config()
    config["signingConfig"]["rekorTlogUrls"] = []
    path = tmp_path / "no-rekor.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(SignerError, match="No valid Rekor"):
        signer_from_uri(uri_for(path), SignerOptions(identity_token=double.mint_token()))


@given(st.text(max_size=40))
def test_uri_parser_accepts_or_raises_signer_error(tail: str) -> None:
    try:
        instance, path = _parse_uri(f"sigstore:{tail}", SignerOptions())
    except SignerError:
        return
    assert instance in ("production", "staging", "custom")
    assert (instance == "custom") == (path is not None)


def test_real_production_trust_config_names_the_public_services(vectors: Path) -> None:
    """The public-good ClientTrustConfig (a real vector) loads offline; nothing is contacted before signing."""
    config = vectors / "model-signing" / "client_trust_config.production.json"
    token = SigstoreDouble(base_url="https://issuer.example").mint_token()
    signer = signer_from_uri(uri_for(config), SignerOptions(identity_token=token))
    assert signer.describe() == {
        "kind": "sigstore",
        "instance": "custom",
        "identity": IDENTITY,
        "issuer": "https://issuer.example/oidc",
        "fulcio": "https://fulcio.sigstore.dev",
        "rekor": "https://rekor.sigstore.dev",
    }


def test_the_registry_maps_the_scheme_to_this_signer(double: SigstoreDouble, trust_config: Path) -> None:
    signer = signer_from_uri(
        f"SigStore:?trust-config={trust_config}", SignerOptions(identity_token=double.mint_token())
    )
    assert type(signer) is SigstoreSigner
    assert signer.scheme == "sigstore"
