"""Microsoft Azure Attestation (MAA) tokens: signature against the provider's JWKS, pinned issuer, claims."""

from attestation.tee.maa.verifier import MaaVerifier, normalize_provider_url

__all__ = ["MaaVerifier", "normalize_provider_url"]
