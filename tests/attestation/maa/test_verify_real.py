"""The real Azure Attestation tokens of ../shared/vectors/azure-maa (MANIFEST.md §2) at their stated times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from attestation import _jwt
from attestation.appraise import appraise
from attestation.claims import Claims, Tee
from attestation.collateral import Collateral
from attestation.errors import BadSignature, CollateralMissing, DebugNotAllowed, Expired, FetchFailed, NotYetValid
from attestation.fetch import HttpFetcher
from attestation.tee.maa import MaaVerifier
from attestation.verify import verify
from tests.attestation.http_server import Route, loopback_server

PROVIDERS = {
    "sharedwus": "https://sharedwus.wus.attest.azure.net",
    "isolated": "https://cplarryoattestationiso.wus.attest.azure.net",
    "aad": "https://cplarryoattestationaad.wus.attest.azure.net",
}
IAT = datetime(2022, 5, 31, 22, 47, 56, tzinfo=UTC)
EXP = datetime(2022, 6, 1, 6, 47, 56, tzinfo=UTC)
MRENCLAVE = "292a1f4b519e46627eb2478a3d9851405653c5b4b0a6925de843834d9216850e"
MRSIGNER = "4aea5f9a0ed04b11f889aadfe6a1d376213a29a95a85ce7337ae6f7fece6610c"


def files(vectors: Path, name: str) -> tuple[bytes, bytes]:
    stem = vectors / "azure-maa" / f"azsdkcpp-sgx-{name}-2022-05-31"
    return stem.with_suffix(".jwt").read_bytes(), Path(f"{stem}.jwks.json").read_bytes()


def check(token: bytes, jwks: bytes | None, issuer: str | None, at: datetime | None = IAT) -> Claims:
    return verify(token, tee="maa", at=at, collateral=Collateral(jwks=jwks), verifier=MaaVerifier(issuer))


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_each_token_is_valid_at_iat_with_its_own_provider(vectors: Path, name: str) -> None:
    token, jwks = files(vectors, name)
    claims = check(token, jwks, PROVIDERS[name])
    assert claims.tee is Tee.MAA and claims.platform == "azure-attestation/sgx"
    assert claims.measurements == {"mrenclave": bytes.fromhex(MRENCLAVE), "mrsigner": bytes.fromhex(MRSIGNER)}
    assert claims.report_data is not None and claims.report_data.hex().startswith("28542e44fe7e73f6")
    assert claims.issued_at == IAT and claims.nonce is None and claims.debug is True
    vendor = claims.vendor
    assert (vendor["x-ms-sgx-product-id"], vendor["x-ms-sgx-svn"], vendor["x-ms-ver"]) == (1, 1, "1.0")
    assert vendor["x-ms-policy-hash"] == "bROrN897ZfWmWY2V0FLUlu3uwk5xatGnKYHn3zBbSlw"
    assert vendor["iss"] == PROVIDERS[name]
    assert claims.signer.subjects == (f"CN={PROVIDERS[name]}",)


def test_debug_fails_appraisal_by_default_and_passes_when_allowed(vectors: Path) -> None:
    claims = check(*files(vectors, "sharedwus"), PROVIDERS["sharedwus"])
    with pytest.raises(DebugNotAllowed):
        appraise(claims).raise_for_failure()
    assert appraise(claims, allow_debug=True).ok


def test_at_none_means_the_tokens_own_iat(vectors: Path) -> None:
    claims = check(*files(vectors, "aad"), PROVIDERS["aad"], at=None)
    assert claims.issued_at == IAT


def test_invalid_after_exp_within_skew_and_beyond(vectors: Path) -> None:
    token, jwks = files(vectors, "sharedwus")
    check(token, jwks, PROVIDERS["sharedwus"], at=EXP + timedelta(seconds=59))
    with pytest.raises(Expired, match="60 s clock skew"):
        check(token, jwks, PROVIDERS["sharedwus"], at=EXP + timedelta(seconds=60))
    with pytest.raises(NotYetValid):
        check(token, jwks, PROVIDERS["sharedwus"], at=IAT - timedelta(seconds=61))


def test_one_signature_character_changed_is_a_bad_signature(vectors: Path) -> None:
    token, jwks = files(vectors, "sharedwus")
    text = token.decode().strip()
    index = len(text) - 10
    changed = text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]
    with pytest.raises(BadSignature):
        check(changed.encode(), jwks, PROVIDERS["sharedwus"])


def test_another_providers_jwks_verifies_the_signature_but_the_token_is_rejected(vectors: Path) -> None:
    token, _ = files(vectors, "sharedwus")
    _, isolated_jwks = files(vectors, "isolated")
    jws = _jwt.split_compact(token)
    key = _jwt.certified_key(_jwt.select_key(_jwt.parse_jwks(isolated_jwks), jws.kid))
    assert _jwt.verify_signature(jws, key, ("RS256",))["iss"] == PROVIDERS["sharedwus"]  # the MANIFEST pitfall
    with pytest.raises(_jwt.IssuerMismatch):
        check(token, isolated_jwks, PROVIDERS["isolated"])


def test_a_wrong_jku_is_rejected(vectors: Path) -> None:
    token, jwks = files(vectors, "isolated")
    with pytest.raises(_jwt.KeySetUrlMismatch):
        check(token, jwks, PROVIDERS["aad"])


def test_issuer_url_is_normalized(vectors: Path) -> None:
    token, jwks = files(vectors, "sharedwus")
    assert check(token, jwks, "SharedWus.wus.attest.azure.net/").measurements
    with pytest.raises(ValueError):
        MaaVerifier("http://sharedwus.wus.attest.azure.net")


def test_no_issuer_and_no_jwks_are_collateral_missing(vectors: Path) -> None:
    token, jwks = files(vectors, "sharedwus")
    with pytest.raises(CollateralMissing, match="no expected issuer") as caught:
        check(token, jwks, None)
    assert caught.value.exit_code == 3
    with pytest.raises(CollateralMissing, match="no JWKS"):
        check(token, None, PROVIDERS["sharedwus"])


class _ToLoopback:
    """Send every fetch to the loopback server (same path), so the provider URL stays the real one."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.inner = HttpFetcher(timeout=5)
        self.asked: list[str] = []

    def fetch(self, url: str) -> bytes:
        self.asked.append(url)
        return self.inner.fetch(self.base_url + "/" + url.split("/", 3)[3])


def test_jwks_fetched_over_http_from_the_providers_certs_url(vectors: Path) -> None:
    token, jwks = files(vectors, "aad")
    with loopback_server({"/certs": Route(body=jwks)}) as server:
        fetcher = _ToLoopback(server.base_url)
        claims = verify(token, tee="maa", at=IAT, fetcher=fetcher, verifier=MaaVerifier(PROVIDERS["aad"]))
        assert server.requests == ["/certs"]
    assert fetcher.asked == [f"{PROVIDERS['aad']}/certs"]
    assert claims.measurements["mrenclave"] == bytes.fromhex(MRENCLAVE)


def test_a_failed_jwks_fetch_is_could_not_verify(vectors: Path) -> None:
    token, _ = files(vectors, "aad")
    with loopback_server({}) as server, pytest.raises(FetchFailed) as caught:
        verify(token, tee="maa", at=IAT, fetcher=_ToLoopback(server.base_url), verifier=MaaVerifier(PROVIDERS["aad"]))
    assert caught.value.exit_code == 3


def test_decode_and_looks_like(vectors: Path) -> None:
    token, jwks = files(vectors, "sharedwus")
    verifier = MaaVerifier()
    assert verifier.looks_like(token) and not verifier.looks_like(jwks)
    fields = verifier.decode(token)
    assert fields["header"] == {
        "alg": "RS256",
        "jku": f"{PROVIDERS['sharedwus']}/certs",
        "kid": "XxRc2vLh1E5FrsNawnRH3PzuFgqg3q7NvCdnjoJHBGE=",
        "typ": "JWT",
    }
    assert isinstance(fields["unverified_payload"], dict) and fields["unverified_payload"]["x-ms-sgx-svn"] == 1
