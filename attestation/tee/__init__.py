"""One verifier module per TEE type, each registered in :data:`attestation.verify.VERIFIER_FOR_TEE`."""
