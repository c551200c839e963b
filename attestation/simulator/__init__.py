"""Evidence simulator: real vendor formats signed under locally generated roots. Never trusted by default.

The simulator lets tests and the demo run the real verifiers end to end without TEE hardware. Every certificate
it makes carries the organization name :data:`attestation._x509.SIMULATOR_ORGANIZATION`, and verifiers refuse such
roots unless ``unsafe_allow_simulator_roots=True`` (``--unsafe-trust-simulator-root`` on the CLI).
"""
