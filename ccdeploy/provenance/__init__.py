"""Signed provenance for sealed models: in-toto statements in DSSE envelopes inside Sigstore bundles.

``ccdeploy.provenance.signers`` signs (local key, PKCS#11, Sigstore keyless, private-PKI certificate);
``ccdeploy.provenance.verify`` verifies bundles against pinned trust roots and recomputes every subject
from the files; ``ccdeploy.provenance.layout`` verifies in-toto supply-chain layouts.
"""
