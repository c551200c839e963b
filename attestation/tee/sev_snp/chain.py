"""The AMD certificate chain, walked by hand: ARK (self-signed) -> ASK or ASVK -> VCEK or VLEK.

``cryptography``'s PolicyBuilder refuses AMD's RSASSA-PSS certificates and VCEK serial number 0, so each link is
checked with ``verify_directly_issued_by`` plus an explicit RSASSA-PSS/SHA-384/MGF1-SHA-384/salt-48 verification,
the only profile AMD uses (spec 57230, "Certificate Chain"). The ARK is taken from the caller's trust roots only; an
ARK inside a supplied bundle is never trusted for itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from attestation._x509 import check_anchor_allowed, check_validity, fingerprint, subject
from attestation.errors import BadChain
from attestation.tee.sev_snp.certs import KeyKind
from attestation.tee.sev_snp.tcb import Product

#: AMD signs every ARK, ASK, ASVK, VCEK and VLEK certificate (and its CRLs) with this RSASSA-PSS profile.
AMD_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)


@dataclass(frozen=True, slots=True)
class AmdChain:
    """A verified chain.

    Attributes:
        product: The product line of the ARK.
        ark: The trust anchor (one of the caller's roots).
        intermediate: The ASK (for VCEKs) or ASVK (for VLEKs).
        leaf: The VCEK or VLEK.
    """

    product: Product
    ark: x509.Certificate
    intermediate: x509.Certificate
    leaf: x509.Certificate

    @property
    def issues(self) -> KeyKind:
        """The kind of key the intermediate certifies: an ASVK certifies VLEKs, an ASK VCEKs."""
        return KeyKind.VLEK if common_name(self.intermediate).startswith("SEV-VLEK-") else KeyKind.VCEK

    @property
    def certificates(self) -> tuple[x509.Certificate, x509.Certificate, x509.Certificate]:
        """Leaf, intermediate, ARK."""
        return self.leaf, self.intermediate, self.ark


def walk_chain(
    leaf: x509.Certificate,
    *,
    candidates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    at: datetime,
    allow_simulator: bool,
) -> AmdChain:
    """Find and verify ARK -> ASK/ASVK -> ``leaf`` with an ARK from ``roots`` and an intermediate from ``candidates``.

    Raises:
        BadChain: No candidate intermediate issued ``leaf``, or none of them chains to a trusted ARK, or a link's
            signature or profile is wrong.
        UntrustedSimulatorRoot: The ARK is a simulator root and ``allow_simulator`` is false.
        OutsideValidity: A certificate of the chain is not valid at ``at``.
    """
    anchors = [root for root in roots if root.subject == root.issuer]  # self-signatures checked in _trusted_ark
    issuers = [cert for cert in candidates if cert.subject == leaf.issuer and cert.subject != cert.issuer]
    if not issuers:
        known = ", ".join(common_name(cert) for cert in candidates if cert.subject != cert.issuer) or "none"
        raise BadChain(
            f"no ASK or ASVK certificate named '{leaf.issuer.rfc4514_string()}' issued {subject(leaf)} "
            f"(intermediates given: {known}); it belongs to another product or chain"
        )
    failures: list[BadChain] = []
    for intermediate in issuers:
        try:
            verify_pss_link(leaf, intermediate)
            ark = _trusted_ark(intermediate, anchors, candidates)
        except BadChain as failure:
            failures.append(failure)
            continue
        chain = AmdChain(_product(ark), ark, intermediate, leaf)
        _check_names_and_constraints(chain)
        check_anchor_allowed(ark, allow_simulator=allow_simulator)
        check_validity(chain.certificates, at)
        return chain
    raise failures[0]


def verify_pss_link(child: x509.Certificate, issuer: x509.Certificate) -> None:
    """Raise :class:`BadChain` unless ``issuer`` signed ``child`` with AMD's RSASSA-PSS profile."""
    key = issuer.public_key()
    if child.signature_algorithm_oid != x509.SignatureAlgorithmOID.RSASSA_PSS or not isinstance(key, rsa.RSAPublicKey):
        raise BadChain(f"{_link(child, issuer)}: not signed with RSASSA-PSS by an RSA key, as AMD signs every one")
    try:
        declared_hash = child.signature_hash_algorithm
    except UnsupportedAlgorithm:
        declared_hash = None
    if not isinstance(declared_hash, hashes.SHA384):
        raise BadChain(f"{_link(child, issuer)}: the RSASSA-PSS hash is not SHA-384")
    if child.issuer != issuer.subject:
        raise BadChain(f"{_link(child, issuer)}: the issuer name does not match")
    # One explicit verification with AMD's fixed profile (SHA-384, MGF1-SHA-384, salt 48) instead of the parameters
    # the certificate declares: whatever it declares, only this profile is accepted, and only one RSA operation runs.
    try:
        key.verify(child.signature, child.tbs_certificate_bytes, AMD_PSS, hashes.SHA384())
    except InvalidSignature:
        raise BadChain(f"{_link(child, issuer)}: the signature does not verify") from None


def _link(child: x509.Certificate, issuer: x509.Certificate) -> str:
    return f"{subject(child)} <- {subject(issuer)}"


def common_name(cert: x509.Certificate) -> str:
    """The certificate's subject common name ('' if it has none)."""
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _trusted_ark(
    intermediate: x509.Certificate, anchors: list[x509.Certificate], candidates: Sequence[x509.Certificate]
) -> x509.Certificate:
    failures: list[BadChain] = []
    for ark in (anchor for anchor in anchors if anchor.subject == intermediate.issuer):
        try:
            verify_pss_link(intermediate, ark)
            verify_pss_link(ark, ark)
        except BadChain as failure:
            failures.append(failure)
            continue
        return ark
    if failures:
        raise failures[0]
    issuer = intermediate.issuer.rfc4514_string()
    trusted = ", ".join(f"{common_name(a)} ({fingerprint(a)[:16]})" for a in anchors) or "none"
    if any(cert.subject == intermediate.issuer and cert.subject == cert.issuer for cert in candidates):
        raise BadChain(
            f"{subject(intermediate)} is issued by '{issuer}', whose ARK was given in the chain bundle but is not "
            f"a trusted root (trusted: {trusted}); wrong ARK"
        )
    raise BadChain(f"{subject(intermediate)} is issued by '{issuer}', which is not a trusted root (trusted: {trusted})")


def _product(ark: x509.Certificate) -> Product:
    name = common_name(ark)
    prefix, _, line = name.partition("-")
    if prefix != "ARK" or line not in {product.value for product in Product}:
        raise BadChain(f"trust anchor {subject(ark)} is not an AMD ARK of a known product (CN=ARK-Milan/Genoa/Turin)")
    return Product(line)


def _check_names_and_constraints(chain: AmdChain) -> None:
    expected = {f"SEV-{chain.product}", f"SEV-VLEK-{chain.product}"}
    if common_name(chain.intermediate) not in expected:
        raise BadChain(
            f"{subject(chain.intermediate)} is not the ASK or ASVK of {chain.product} "
            f"(expected CN {' or '.join(sorted(expected))})"
        )
    for cert in (chain.ark, chain.intermediate):
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise BadChain(f"{subject(cert)} is not a CA certificate (basicConstraints cA is not true)")
