"""Export an appraisal as an EAT Attestation Result (draft-ietf-rats-ear) with an AR4SI trustworthiness vector.

The result is a JWT signed with a key the caller supplies, so that relying parties that speak EAR (Veraison's
``arc`` tool, for instance) can consume ccdeploy's verdicts. Trust-claim values follow draft-ietf-rats-ar4si:
2..31 affirming, 32..95 warning, 96..127 contraindicated, 0 no claim.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from attestation.appraise import Appraisal

EAR_PROFILE = "tag:github.com,2023:veraison/ear"

# AR4SI trustworthiness claims used below (draft-ietf-rats-ar4si, "Trustworthiness Claims").
NO_CLAIM = 0
TRUSTWORTHY_INSTANCE = 2
UNTRUSTWORTHY_INSTANCE = 96
APPROVED_CONFIG = 2
UNSAFE_CONFIG = 32
UNSUPPORTABLE_CONFIG = 96
APPROVED_RUNTIME = 2
CONTRAINDICATED_RUNTIME = 96
GENUINE_HARDWARE = 2
UNSAFE_HARDWARE = 32
ENCRYPTED_MEMORY_RUNTIME = 2
VISIBLE_MEMORY_RUNTIME = 96

#: Check-name fragments that concern the TEE's configuration rather than what runs in it.
_CONFIG_CHECKS = (".policy.", ".minimum-tcb.", ".vmpl", ".guest-svn", ".host-data")

SigningKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


def trust_tier(value: int) -> str:
    """The AR4SI tier of a trust-claim value."""
    magnitude = abs(value)
    if magnitude >= 96:
        return "contraindicated"
    if magnitude >= 32:
        return "warning"
    if magnitude >= 2:
        return "affirming"
    return "none"


def trustworthiness_vector(appraisal: Appraisal) -> dict[str, int]:
    """Map the claims and check results onto the AR4SI vector (components without evidence are left out)."""
    claims = appraisal.claims
    failed = {result.name for result in appraisal.failures}
    checked = {result.name for result in appraisal.results}
    vector = {
        "hardware": UNSAFE_HARDWARE if claims.signer.simulated else GENUINE_HARDWARE,
        "runtime-opaque": VISIBLE_MEMORY_RUNTIME if claims.debug else ENCRYPTED_MEMORY_RUNTIME,
    }
    config = [name for name in checked if name == "debug" or any(part in name for part in _CONFIG_CHECKS)]
    if any(name in failed for name in config):
        vector["configuration"] = UNSUPPORTABLE_CONFIG
    elif claims.debug:
        vector["configuration"] = UNSAFE_CONFIG
    else:
        vector["configuration"] = APPROVED_CONFIG
    executables = [name for name in checked if name.startswith("nitro.pcr") or name == "sev-snp.measurement"]
    if executables:
        bad = any(name in failed for name in executables)
        vector["executables"] = CONTRAINDICATED_RUNTIME if bad else APPROVED_RUNTIME
    identity = [name for name in checked if name in ("nonce", "sev-snp.chip-id")]
    if identity:
        bad = any(name in failed for name in identity)
        vector["instance-identity"] = UNTRUSTWORTHY_INSTANCE if bad else TRUSTWORTHY_INSTANCE
    return vector


def attestation_result(
    appraisal: Appraisal,
    *,
    issued_at: datetime,
    verifier_build: str,
    policy_id: str,
    nonce: bytes | None = None,
) -> dict[str, Any]:
    """Build the EAR claims set for one appraisal (one submodule named after the TEE).

    The status is the worst tier of the vector, and ``contraindicated`` whenever any check failed.
    ccdeploy's own claims and check results ride along as the private ``ccdeploy.claims``/``ccdeploy.checks``.
    """
    vector = trustworthiness_vector(appraisal)
    order = ("none", "affirming", "warning", "contraindicated")
    status = max((trust_tier(v) for v in vector.values()), key=order.index, default="none")
    if not appraisal.ok:
        status = "contraindicated"
    submod: dict[str, Any] = {
        "ear.status": status,
        "ear.trustworthiness-vector": vector,
        "ear.appraisal-policy-id": policy_id,
        "ccdeploy.claims": appraisal.claims.to_dict(),
        "ccdeploy.checks": [{"name": r.name, "ok": r.ok, "detail": r.detail} for r in appraisal.results],
    }
    result: dict[str, Any] = {
        "eat_profile": EAR_PROFILE,
        "iat": int(issued_at.timestamp()),
        "ear.verifier-id": {"developer": "ccdeploy", "build": verifier_build},
        "submods": {appraisal.claims.tee.value: submod},
    }
    if nonce is not None:
        result["eat_nonce"] = base64.urlsafe_b64encode(nonce).rstrip(b"=").decode()
    return result


def _algorithm(key: SigningKey) -> str:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key, rsa.RSAPrivateKey):
        return "PS256"
    by_curve = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
    try:
        return by_curve[key.curve.name]
    except KeyError:
        raise ValueError(f"EAR signing keys on curve {key.curve.name} are not supported") from None


def sign_ear(result: Mapping[str, Any], key: SigningKey) -> str:
    """Sign an EAR claims set as a JWT (ES256/ES384/ES512, EdDSA or PS256, chosen by the key type)."""
    return jwt.encode(dict(result), key, algorithm=_algorithm(key), headers={"typ": "JWT"})


def read_ear(token: str, public_key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey) -> Any:
    """Verify an EAR JWT with ``public_key`` and return its claims (for relying parties and tests)."""
    algorithms = ["ES256", "ES384", "ES512", "EdDSA", "PS256"]
    return jwt.decode(token, public_key, algorithms=algorithms, options={"require": ["iat"]})
