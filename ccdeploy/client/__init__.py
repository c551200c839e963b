"""Clients of a serving enclave: attest it against a release policy, pin its TLS key, then run inference.

from ccdeploy.client import AttestedClient

with AttestedClient("https://enclave:8443", policy="model.policy.yaml") as client:
    verified = client.attest()                      # evidence, binding and TLS key checked
    outputs = client.infer("model", {"x": x})       # only over the pinned TLS key

With the broker's receipt key and the log's verifier key, the client also checks which model the enclave was
released (its signed release receipt names this enclave's TLS and HPKE keys and the model)::

    AttestedClient(url, policy=..., broker_key=Path("broker.pem"), log_key=vkey, expected_model="model")
"""

from ccdeploy.client.attested import AttestedClient, Verified, policy_appraiser

__all__ = ["AttestedClient", "Verified", "policy_appraiser"]
