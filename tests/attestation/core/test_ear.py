"""EAR export: AR4SI vector, status, JWT signing with each supported key type."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from attestation import ReferenceValues, appraise
from attestation.claims import SignerChain
from attestation.ear import (
    EAR_PROFILE,
    SigningKey,
    attestation_result,
    read_ear,
    sign_ear,
    trust_tier,
    trustworthiness_vector,
)
from tests.attestation.core.claims_factory import PCR0, nitro_claims

ISSUED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
REFS = ReferenceValues.from_yaml(f"nitro:\n  pcrs:\n    0: '{PCR0.hex()}'\n")


def test_affirming_result_for_a_passing_appraisal() -> None:
    appraisal = appraise(nitro_claims(nonce=b"12345678"), REFS, nonce=b"12345678")
    result = attestation_result(
        appraisal, issued_at=ISSUED, verifier_build="ccdeploy test", policy_id="p1", nonce=b"12345678"
    )
    assert result["eat_profile"] == EAR_PROFILE
    assert result["iat"] == int(ISSUED.timestamp())
    assert result["eat_nonce"] == "MTIzNDU2Nzg"
    submod = result["submods"]["nitro"]
    assert submod["ear.status"] == "affirming"
    assert submod["ear.trustworthiness-vector"] == {
        "hardware": 2,
        "runtime-opaque": 2,
        "configuration": 2,
        "executables": 2,
        "instance-identity": 2,
    }
    assert submod["ear.appraisal-policy-id"] == "p1"
    assert submod["ccdeploy.claims"]["measurements"]["pcr0"] == PCR0.hex()


def test_failed_appraisal_is_contraindicated() -> None:
    bad = ReferenceValues.from_yaml(f"nitro:\n  pcrs:\n    0: '{'ff' * 48}'\n")
    appraisal = appraise(nitro_claims(), bad, nonce=b"other")
    vector = trustworthiness_vector(appraisal)
    assert vector["executables"] == 96
    assert vector["instance-identity"] == 96
    result = attestation_result(appraisal, issued_at=ISSUED, verifier_build="b", policy_id="p")
    assert result["submods"]["nitro"]["ear.status"] == "contraindicated"
    assert "eat_nonce" not in result


def test_allowed_debug_and_simulated_hardware_are_warnings() -> None:
    claims = nitro_claims(debug=True, signer=SignerChain(("CN=sim",), "00" * 32, simulated=True))
    appraisal = appraise(claims, allow_debug=True)
    vector = trustworthiness_vector(appraisal)
    assert vector == {"hardware": 32, "runtime-opaque": 96, "configuration": 32}
    # runtime-opaque 96 (visible memory) makes the worst tier contraindicated even though every check passed.
    status = attestation_result(appraisal, issued_at=ISSUED, verifier_build="b", policy_id="p")["submods"]["nitro"]
    assert status["ear.status"] == "contraindicated"


@pytest.mark.parametrize(
    ("value", "tier"),
    [(0, "none"), (1, "none"), (2, "affirming"), (32, "warning"), (96, "contraindicated"), (-97, "contraindicated")],
)
def test_trust_tiers(value: int, tier: str) -> None:
    assert trust_tier(value) == tier


KEY_MAKERS: dict[str, Callable[[], SigningKey]] = {
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ES384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
    "PS256": lambda: rsa.generate_private_key(65537, 2048),
}


@pytest.mark.parametrize("alg", sorted(KEY_MAKERS))
def test_sign_and_read_back(alg: str) -> None:
    key, other = KEY_MAKERS[alg](), KEY_MAKERS[alg]()
    appraisal = appraise(nitro_claims())
    token = sign_ear(attestation_result(appraisal, issued_at=ISSUED, verifier_build="b", policy_id="p"), key)
    assert jwt.get_unverified_header(token) == {"alg": alg, "typ": "JWT"}
    assert read_ear(token, key.public_key())["submods"]["nitro"]["ear.status"] == "affirming"
    with pytest.raises(jwt.InvalidSignatureError):
        read_ear(token, other.public_key())


def test_unsupported_curve_is_refused() -> None:
    with pytest.raises(ValueError, match="secp256k1"):
        sign_ear({"iat": 1}, ec.generate_private_key(ec.SECP256K1()))
