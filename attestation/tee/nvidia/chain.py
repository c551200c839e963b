"""Certificate chains of NVIDIA GPU evidence: the device (attestation-key) chain and RIM signer chains.

The chain comes leaf first, as the GPU driver returns it (and as a RIM's KeyInfo lists it), often ending in the
self-signed root. Each certificate must be issued by the next one (signature and names) until one is issued by a
trusted root; the anchor always comes from the trusted roots, never from the chain. Every issuer must be a CA
within its path length, and every certificate of the path, the root included, must be valid at the instant of the
check. The chain is walked by hand because NVIDIA's device leaves do not fit the web-PKI
end-entity profile of ``cryptography.x509.verification``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from attestation._x509 import (
    check_anchor_allowed,
    check_validity,
    fingerprint,
    is_simulator_certificate,
    subject,
)
from attestation.claims import SignerChain
from attestation.errors import BadChain, CollateralMissing

#: More certificates than any NVIDIA chain has (device: 5, RIM signer: 4).
MAX_CHAIN = 8


@dataclass(frozen=True, slots=True)
class ValidatedChain:
    """A chain that passed :func:`validate_chain`: ``path`` runs from the leaf to the trusted anchor."""

    path: tuple[x509.Certificate, ...]
    simulated: bool

    @property
    def leaf(self) -> x509.Certificate:
        """The signing certificate."""
        return self.path[0]

    @property
    def anchor(self) -> x509.Certificate:
        """The trusted root the chain ends in."""
        return self.path[-1]

    def signer(self, revocation: str) -> SignerChain:
        """The claims' summary of this chain."""
        return SignerChain(
            subjects=tuple(subject(cert) for cert in self.path),
            root_sha256=fingerprint(self.anchor),
            simulated=self.simulated,
            revocation=revocation,
        )


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    if child.issuer != issuer.subject:
        return False
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _check_ca(issuer: x509.Certificate, below: int, what: str) -> None:
    """``issuer`` must be a CA allowed to sign certificates with ``below`` intermediate CAs under it."""
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise BadChain(f"{what}: issuer {subject(issuer)} has no basic constraints, so it is not a CA") from None
    if not constraints.ca:
        raise BadChain(f"{what}: issuer {subject(issuer)} is not a CA")
    if constraints.path_length is not None and below > constraints.path_length:
        raise BadChain(f"{what}: issuer {subject(issuer)} allows {constraints.path_length} CAs below it, has {below}")
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.key_cert_sign:
        raise BadChain(f"{what}: issuer {subject(issuer)} may not sign certificates (key usage)")


def _check_end_entity(leaf: x509.Certificate, what: str) -> None:
    """The first certificate signs evidence: it must not be a CA (a root-first or CA-only chain is refused)."""
    try:
        constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return
    if constraints.ca:
        raise BadChain(f"{what} chain starts with the CA certificate {subject(leaf)}; it must start with the leaf")


def validate_chain(
    certs: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    *,
    at: datetime,
    allow_simulator: bool,
    what: str,
) -> ValidatedChain:
    """Validate a leaf-first chain to one of ``roots`` at ``at`` (see the module docstring).

    Raises:
        CollateralMissing: No certificate was given.
        BadChain: Out of order, not issued by a trusted root, a non-CA issuer, or too long.
        UntrustedSimulatorRoot: The anchor is a simulator root and simulator roots are not allowed.
        Expired, NotYetValid: A certificate of the path is not valid at ``at``.
    """
    given = list(certs)
    if not given:
        raise CollateralMissing(f"no {what} certificate chain was given")
    _check_end_entity(given[0], what)
    chain: list[x509.Certificate] = []
    anchor: x509.Certificate | None = None
    for position, cert in enumerate(given[:MAX_CHAIN]):
        if chain and not _issued_by(chain[-1], cert):
            raise BadChain(
                f"{what} chain: certificate {position - 1} ({subject(chain[-1])}) is not issued by the next one "
                f"({subject(cert)}); the chain must run leaf first, each certificate followed by its issuer"
            )
        if chain:
            _check_ca(cert, len(chain) - 1, what)
        chain.append(cert)
        # The walk ends at the first certificate a trusted root issued; what follows (the root itself as the
        # driver appends it, unrelated pinned intermediates) is not part of the path.
        anchor = next((root for root in roots if _issued_by(cert, root)), None)
        if anchor is not None:
            break
    if anchor is None:
        if len(given) > MAX_CHAIN:
            raise BadChain(f"{what} chain does not reach a trusted root within {MAX_CHAIN} certificates")
        raise BadChain(f"{what} chain does not end in a trusted root: no trusted root issued {subject(chain[-1])}")
    _check_ca(anchor, len(chain) - 1, what)
    check_anchor_allowed(anchor, allow_simulator=allow_simulator)
    path = (*chain, anchor)
    check_validity(path, at)
    return ValidatedChain(path=path, simulated=is_simulator_certificate(anchor))
