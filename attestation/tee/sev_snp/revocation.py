"""Revocation of the AMD chain by the ARK's CRL.

KDS publishes one CRL per product and key family (``/vcek/v1/{product}/crl`` and ``/vlek/v1/{product}/crl``), issued
and signed (RSASSA-PSS) by the ARK. By RFC 5280 a CRL speaks only about certificates of its own issuer, so it can
revoke the ASK or ASVK; VCEKs and VLEKs (all serial 0) are never listed in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from attestation._x509 import subject
from attestation.errors import BadChain, CollateralMissing, Revoked
from attestation.tee.sev_snp.chain import AMD_PSS, AmdChain, common_name

NOT_CHECKED = "not checked: no CRL given"


def check_revocation(chain: AmdChain, crls: Sequence[x509.CertificateRevocationList], at: datetime) -> str:
    """Check ``chain`` against every CRL in ``crls`` at ``at``; return what was checked, in words.

    Raises:
        BadChain: A CRL is not issued and signed by the chain's ARK.
        CollateralMissing: A CRL is not current at ``at`` (fetch the one current then).
        Revoked: The ASK or ASVK is listed.
    """
    if not crls:
        return NOT_CHECKED
    checked = []
    for crl in crls:
        _check_issuer(crl, chain.ark)
        _check_current(crl, at)
        entry = crl.get_revoked_certificate_by_serial_number(chain.intermediate.serial_number)
        if entry is not None:
            raise Revoked(
                f"{subject(chain.intermediate)} (serial {chain.intermediate.serial_number:#x}) is revoked since "
                f"{entry.revocation_date_utc.isoformat()} by the {common_name(chain.ark)} CRL"
            )
        checked.append(f"the {common_name(chain.ark)} CRL of {crl.last_update_utc.isoformat()}")
    return "checked against " + " and ".join(checked)


def _check_issuer(crl: x509.CertificateRevocationList, ark: x509.Certificate) -> None:
    where = f"a CRL given for {common_name(ark)}"
    try:
        same_issuer = crl.issuer == ark.subject
    except (ValueError, TypeError) as exc:  # a malformed name in unauthenticated collateral
        raise BadChain(f"{where} has a malformed issuer name: {exc}") from None
    if not same_issuer:
        raise BadChain(f"{where} is not from this chain's ARK ({subject(ark)}); give the CRL of that ARK")
    key = ark.public_key()
    if crl.signature_algorithm_oid != x509.SignatureAlgorithmOID.RSASSA_PSS or not isinstance(key, rsa.RSAPublicKey):
        raise BadChain(f"{where} is not signed with RSASSA-PSS, as AMD signs its CRLs")
    try:
        key.verify(crl.signature, crl.tbs_certlist_bytes, AMD_PSS, hashes.SHA384())
    except InvalidSignature:
        raise BadChain(f"{where} is not signed by the ARK {subject(ark)}") from None


def _check_current(crl: x509.CertificateRevocationList, at: datetime) -> None:
    last, following = crl.last_update_utc, crl.next_update_utc
    if following is None:
        raise CollateralMissing("the ARK's CRL has no nextUpdate; fetch a current one")
    if not last <= at <= following:
        raise CollateralMissing(
            f"the ARK's CRL is current from {last.isoformat()} to {following.isoformat()}, "
            f"not at {at.isoformat()}; fetch the CRL current at that time"
        )
