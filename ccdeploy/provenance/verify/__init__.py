"""Verify signed provenance offline, against pinned trust roots.

Sigstore bundles (keyless, managed key, private PKI) over files, sealed artifacts and model directories.

Public API::

    from ccdeploy.provenance.verify import (
        SignerPolicy, TrustInputs, Report, open_target, verify_document, load_trusted_root, load_key,
        load_cert_roots, load_policy,
    )
    trust = TrustInputs(trusted_root=load_trusted_root(None), at=datetime.now(UTC))
    result = verify_document(bundle_bytes, open_target(Path("model.onnx")), trust, SignerPolicy(
        identity="https://github.com/o/r/.github/workflows/release.yml@refs/tags/v1",
        issuer="https://token.actions.githubusercontent.com"))

Every failure raises a :class:`ccdeploy.errors.CcdError`; see the module docstrings of ``_sigstore``
(how Rekor ``intoto`` v0.0.2 entries and managed keys are verified), ``_keyed`` (keys and private PKI,
validation time) and ``policy`` (how the signer is matched).
"""

from __future__ import annotations

from ccdeploy.provenance.verify._report import Check, Report, SubjectMatch, VerificationResult
from ccdeploy.provenance.verify._subjects import Target, open_target, sealed_target
from ccdeploy.provenance.verify._verify import BUNDLE_MEDIA_TYPES, TrustInputs, verify_bundle, verify_document
from ccdeploy.provenance.verify.policy import GITHUB_ACTIONS_ISSUER, SignerPolicy, load_policy
from ccdeploy.provenance.verify.trust import load_cert_roots, load_key, load_trusted_root, pinned_trusted_root

__all__ = [
    "BUNDLE_MEDIA_TYPES",
    "GITHUB_ACTIONS_ISSUER",
    "Check",
    "Report",
    "SignerPolicy",
    "SubjectMatch",
    "Target",
    "TrustInputs",
    "VerificationResult",
    "load_cert_roots",
    "load_key",
    "load_policy",
    "load_trusted_root",
    "open_target",
    "pinned_trusted_root",
    "sealed_target",
    "verify_bundle",
    "verify_document",
]
