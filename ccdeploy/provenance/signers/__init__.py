"""Signers for provenance statements, keyed by URI scheme (see :mod:`ccdeploy.provenance.signers.base`)."""

from ccdeploy.provenance.signers.base import SIGNER_FOR_URI_SCHEME, SignerOptions, StatementSigner, signer_from_uri

__all__ = ["SIGNER_FOR_URI_SCHEME", "SignerOptions", "StatementSigner", "signer_from_uri"]
