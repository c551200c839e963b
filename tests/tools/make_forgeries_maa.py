"""Generate the forged Azure Attestation (MAA) negatives in tests/assets/forged/maa/ and their ``cases.json``.

Run from the repository root: ``python -m tests.tools.make_forgeries_maa`` (``--new-keys`` first creates the fixed
test-fixture keys in ``keys/``, which are committed). The output is byte-identical on every run: fixed keys, fixed
times, and RS256 (RSASSA-PKCS1-v1_5), which is deterministic, for the tokens and the self-signed certificates.

The forged provider imitates MAA: one RSA key, a JWKS entry with only ``x5c`` (a self-signed certificate whose CN is
the provider URL), tokens with ``jku`` = ``<provider>/certs``. Each case in ``cases.json`` names the evidence (a path
relative to the repository root, or ``{vectors}/...`` for the real tokens in ../shared/vectors, used in place and
never copied), the extra arguments of ``ccdeploy attest verify EVIDENCE --type maa --json``, and the expected error
class and exit code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.tools import forgery_cli

REPO = Path(__file__).resolve().parents[2]
FORGED = REPO / "tests" / "assets" / "forged" / "maa"
KEYS = FORGED / "keys"
REL = "tests/assets/forged/maa"
PROVIDER = "https://ccdeployfixture.wus.attest.azure.net"
OTHER_PROVIDER = "https://ccdeployother.wus.attest.azure.net"
KID = "ccdeploy-test-fixture-maa-signing"
IAT = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
LIFETIME = 8 * 3600
AT = "2025-01-01T01:00:00Z"
NONCE = "00112233445566778899aabbccddeeff"
_KEY_NAMES = ("signing", "other")

REAL = "{vectors}/azure-maa/azsdkcpp-sgx-"
SHAREDWUS = "https://sharedwus.wus.attest.azure.net"
ISOLATED = "https://cplarryoattestationiso.wus.attest.azure.net"
REAL_IAT = "2022-05-31T22:47:56Z"
#: After the real tokens' exp (2022-06-01T06:47:56Z) plus the 60 s clock skew.
REAL_EXPIRED_AT = "2022-06-01T07:00:00Z"


def create_keys(keys_dir: Path = KEYS) -> None:
    """Write fresh RSA-2048 fixture keys; never overwrite."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    for name in _KEY_NAMES:
        path = keys_dir / f"test-fixture-maa-{name}.key.pem"
        if not path.exists():
            key = rsa.generate_private_key(65537, 2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            path.write_bytes(pem)


def load_key(name: str, keys_dir: Path = KEYS) -> rsa.RSAPrivateKey:
    """The fixture key ``name`` ("signing" or "other")."""
    key = serialization.load_pem_private_key((keys_dir / f"test-fixture-maa-{name}.key.pem").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def self_signed(key: rsa.RSAPrivateKey, provider: str = PROVIDER) -> x509.Certificate:
    """A self-signed certificate like MAA's signing certificates (CN = the provider URL)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, provider)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(hashlib.sha256(provider.encode()).digest()[:8], "big"))
        .not_valid_before(datetime(2024, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2034, 1, 1, tzinfo=UTC))
        .sign(key, hashes.SHA256())
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def jwk(cert: x509.Certificate, *, key: rsa.RSAPublicKey | None = None, kid: str = KID) -> dict[str, Any]:
    """A JWKS entry with the certificate in ``x5c`` (and ``n``/``e`` of ``key`` when given)."""
    entry: dict[str, Any] = {"kid": kid, "kty": "RSA"}
    if key is not None:
        numbers = key.public_numbers()
        entry["n"] = _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"))
        entry["e"] = _b64url(numbers.e.to_bytes(3, "big"))
    entry["x5c"] = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
    return entry


def header(*, alg: str = "RS256", provider: str = PROVIDER, kid: str = KID) -> dict[str, Any]:
    """A token header as MAA writes it."""
    return {"alg": alg, "jku": f"{provider}/certs", "kid": kid, "typ": "JWT"}


def sgx_payload(**changes: Any) -> dict[str, Any]:
    """The claims of a non-debug SGX enclave token from the forged provider (``changes`` override them)."""
    payload: dict[str, Any] = {
        "exp": IAT + LIFETIME,
        "iat": IAT,
        "iss": PROVIDER,
        "jti": hashlib.sha256(b"ccdeploy forged MAA").hexdigest(),
        "nbf": IAT,
        "nonce": NONCE,
        "x-ms-attestation-type": "sgx",
        "x-ms-policy-hash": _b64url(hashlib.sha256(b"ccdeploy fixture policy").digest()),
        "x-ms-sgx-is-debuggable": False,
        "x-ms-sgx-mrenclave": bytes(range(32)).hex(),
        "x-ms-sgx-mrsigner": bytes(range(32, 64)).hex(),
        "x-ms-sgx-product-id": 1,
        "x-ms-sgx-report-data": b"ccdeploy".ljust(64, b"\0").hex(),
        "x-ms-sgx-svn": 2,
        "x-ms-ver": "1.0",
    }
    payload.update(changes)
    return payload


def tdx_debug_payload() -> dict[str, Any]:
    """A TDX CVM token whose TD has the debug attribute."""
    payload = {k: v for k, v in sgx_payload().items() if not k.startswith("x-ms-sgx-")}
    payload.update(
        {
            "x-ms-attestation-type": "tdxvm",
            "tdx_mrtd": bytes(range(48)).hex(),
            "tdx_rtmr0": bytes(48).hex(),
            "tdx_report_data": b"ccdeploy".ljust(64, b"\0").hex(),
            "tdx_td_attributes": "0100000000000000",
            "tdx_td_attributes_debug": True,
            "x-ms-compliance-status": "azure-compliant-cvm",
        }
    )
    return payload


def token(head: dict[str, Any], payload: dict[str, Any], key: rsa.RSAPrivateKey | None) -> bytes:
    """A compact JWS; RS256 with ``key``, or an empty signature for ``key=None``."""
    signing_input = f"{_b64url(_json(head))}.{_b64url(_json(payload))}"
    signature = b"" if key is None else key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}".encode()


def hs256_with_public_key(payload: dict[str, Any], public: rsa.RSAPublicKey) -> bytes:
    """The algorithm-confusion forgery: HMAC-SHA256 keyed with the provider's public key in PEM."""
    secret = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{_b64url(_json(header(alg='HS256')))}.{_b64url(_json(payload))}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(mac)}".encode()


def tampered(valid: bytes) -> bytes:
    """``valid`` with its payload replaced (SVN raised) and the original signature kept."""
    head, _, signature = valid.decode().split(".")
    return f"{head}.{_b64url(_json(sgx_payload(**{'x-ms-sgx-svn': 9})))}.{signature}".encode()


def generate(out_dir: Path = FORGED, keys_dir: Path = KEYS) -> list[dict[str, Any]]:
    """Write every forged file and ``cases.json`` into ``out_dir``; return the cases."""
    signing, other = load_key("signing", keys_dir), load_key("other", keys_dir)
    cert = self_signed(signing)
    valid = token(header(), sgx_payload(), signing)
    files = {
        "jwks.json": _json({"keys": [jwk(cert)]}),
        "jwks-x5c-other-key.json": _json({"keys": [jwk(self_signed(other), key=signing.public_key())]}),
        "valid.jwt": valid,
        "alg-none.jwt": token(header(alg="none"), sgx_payload(), None),
        "hs256-public-key.jwt": hs256_with_public_key(sgx_payload(), signing.public_key()),
        "unknown-kid.jwt": token(header(kid="not-in-the-jwks"), sgx_payload(), signing),
        "tampered-payload.jwt": tampered(valid),
        "wrong-iss.jwt": token(header(), sgx_payload(iss=OTHER_PROVIDER), signing),
        "jku-other-provider.jwt": token(header(provider=OTHER_PROVIDER), sgx_payload(), signing),
        "tdx-debug.jwt": token(header(), tdx_debug_payload(), signing),
    }
    jwks = f"{REL}/jwks.json"
    cases = [
        _real("real-debug", "sharedwus", "sharedwus", SHAREDWUS, "DebugNotAllowed"),
        _real("real-expired", "sharedwus", "sharedwus", SHAREDWUS, "Expired", at=REAL_EXPIRED_AT),
        _real("real-other-provider", "sharedwus", "isolated", ISOLATED, "KeySetUrlMismatch"),
        _case(
            "real-jwks-missing",
            f"{REAL}sharedwus-2022-05-31.jwt",
            ["--issuer", SHAREDWUS, "--at", REAL_IAT, "--offline"],
            "CollateralMissing",
            3,
        ),
        _case("issuer-missing", f"{REL}/valid.jwt", ["--jwks", jwks, "--at", AT], "CollateralMissing", 3),
        _forged("alg-none", "AlgorithmNotAllowed"),
        _forged("hs256-public-key", "AlgorithmNotAllowed"),
        _forged("unknown-kid", "UnknownSigningKey"),
        _forged("x5c-other-key", "CertificateMismatch", token_file="valid", jwks="jwks-x5c-other-key.json"),
        _forged("tampered-payload", "BadSignature"),
        _forged("expired", "Expired", token_file="valid", at="2025-01-01T09:01:00Z"),
        _forged("not-yet-valid", "NotYetValid", token_file="valid", at="2024-12-31T23:58:59Z"),
        _forged("wrong-iss", "IssuerMismatch"),
        _forged("jku-other-provider", "KeySetUrlMismatch"),
        _forged("tdx-debug", "DebugNotAllowed"),
        _forged("nonce-mismatch", "NonceMismatch", "--nonce", "ffeeddccbbaa99887766554433221100", token_file="valid"),
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (out_dir / name).write_bytes(content)
    (out_dir / "cases.json").write_text(json.dumps(cases, indent=2) + "\n")
    return cases


def _case(name: str, evidence: str, args: list[str], error: str, exit_code: int = 1) -> dict[str, Any]:
    return {"name": name, "evidence": evidence, "args": args, "error": error, "exit": exit_code}


def _real(name: str, token_of: str, jwks_of: str, issuer: str, error: str, *, at: str = REAL_IAT) -> dict[str, Any]:
    args = ["--jwks", f"{REAL}{jwks_of}-2022-05-31.jwks.json", "--issuer", issuer, "--at", at]
    return _case(name, f"{REAL}{token_of}-2022-05-31.jwt", args, error)


def _forged(
    name: str, error: str, *extra: str, token_file: str | None = None, jwks: str = "jwks.json", at: str = AT
) -> dict[str, Any]:
    args = ["--jwks", f"{REL}/{jwks}", "--issuer", PROVIDER, "--at", at, *extra]
    return _case(name, f"{REL}/{token_file or name}.jwt", args, error)


def main(argv: list[str] | None = None) -> int:
    return forgery_cli.run(__doc__, argv, generate, FORGED, create_keys)


if __name__ == "__main__":
    sys.exit(main())
