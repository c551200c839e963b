"""``x509:`` signers: a PEM private key plus its X.509 chain, for private-PKI signing.

URI: ``x509:/path/key.pem?chain=/path/chain.pem`` (``chain`` is the signing certificate first, then
intermediates; the root may be left out, verifiers hold it). ``passphrase-env=VAR`` works as for
``file:``. Without ``chain=`` the chain comes from :attr:`SignerOptions.certificate_chain`
(``--certificate-chain``); giving both is refused. The same chain works with ``file:`` and ``pkcs11:``
keys through ``--certificate-chain``; this scheme is the one-string form for a key file.

The signing certificate's public key must be the signing key's (checked, refused otherwise), and it
must allow digitalSignature or code signing. The bundle carries ``x509CertificateChain`` as OpenSSF
model_signing's ``sign certificate`` writes it, so ``model_signing verify certificate`` accepts it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ccdeploy.errors import SignerError
from ccdeploy.provenance.signers.base import SignerOptions
from ccdeploy.provenance.signers.file import FileSigner, load_private_key, parse_file_uri

__all__ = ["CertificateSigner"]


class CertificateSigner(FileSigner):
    """Signs with a PEM private key and puts its certificate chain in the bundle."""

    scheme = "x509"

    @classmethod
    def from_uri(cls, uri: str, options: SignerOptions) -> CertificateSigner:
        """Load the key and chain an ``x509:KEY.pem?chain=CHAIN.pem`` URI names.

        Raises:
            SignerError: malformed URI, no chain, unreadable key or chain, or a leaf of another key.
        """
        path, attributes = parse_file_uri(uri, "x509")
        chain = attributes.pop("chain", None)
        passphrase_env = attributes.pop("passphrase-env", None)
        if attributes:
            raise SignerError(f"unknown x509: signer URI attribute(s): {', '.join(sorted(attributes))}")
        if chain is not None and options.certificate_chain is not None:
            raise SignerError("give the certificate chain once: x509:...?chain= or --certificate-chain")
        chain_path = Path(chain) if chain else options.certificate_chain
        if chain_path is None:
            raise SignerError("x509: signers need a chain: x509:KEY.pem?chain=CHAIN.pem or --certificate-chain")
        merged = SignerOptions(chain_path, options.identity_token, options.trust_config)
        return cls(path, load_private_key(path, passphrase_env), merged)

    def describe(self) -> dict[str, Any]:
        """``{"kind": "x509", "uri": ..., "certificate_subject": ..., ...}``; never the key."""
        return super().describe() | {"uri": f"x509:{self._path}"}
