"""AMD Key Distribution Service (KDS) endpoints (AMD spec 57230, "KDS Interface").

* ``{base}/vcek/v1/{product}/{hwid}?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..``: the VCEK of one chip at one TCB,
  DER. On Turin the query starts with ``fmcSPL`` and ``hwid`` is the first 8 bytes of CHIP_ID, the only ones Turin
  fills (virtee/snpguest and trustee build the same URL).
* ``{base}/{vcek|vlek}/v1/{product}/cert_chain``: ASK (or ASVK) then ARK, PEM.
* ``{base}/{vcek|vlek}/v1/{product}/crl``: the ARK's CRL, DER.

VLEKs are only handed to cloud providers, so they cannot be fetched. KDS answers are cached on disk by
:class:`attestation.fetch.CachingFetcher` with :func:`kds_cache_max_age` (KDS allows about one request per 10 s).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from cryptography import x509

from attestation._x509 import load_certificate_der, load_certificates
from attestation.errors import FetchFailed, MalformedEvidence
from attestation.fetch import Fetcher
from attestation.tee.sev_snp.certs import KeyKind
from attestation.tee.sev_snp.tcb import Product, TcbVersion

KDS_URL = "https://kdsintf.amd.com"
#: How long a fetched CRL is reused (seconds). AMD's CRLs are reissued well before they expire.
CRL_MAX_AGE = 24 * 3600.0
TURIN_HWID_SIZE = 8


def vcek_url(product: Product, chip_id: bytes, tcb: TcbVersion, *, base_url: str = KDS_URL) -> str:
    """The KDS URL of the VCEK for ``chip_id`` at the reported ``tcb``."""
    hwid = chip_id[:TURIN_HWID_SIZE] if product is Product.TURIN else chip_id
    levels = {"blSPL": tcb.bootloader, "teeSPL": tcb.tee, "snpSPL": tcb.snp, "ucodeSPL": tcb.microcode}
    if product is Product.TURIN:
        if tcb.fmc is None:
            raise ValueError("a Turin TCB has an FMC SPL")
        levels = {"fmcSPL": tcb.fmc, **levels}
    query = "&".join(f"{name}={level:02d}" for name, level in levels.items())
    return f"{_base(base_url)}/vcek/v1/{product}/{hwid.hex()}?{query}"


def cert_chain_url(product: Product, kind: KeyKind, *, base_url: str = KDS_URL) -> str:
    """The KDS URL of the ASK+ARK (``kind`` VCEK) or ASVK+ARK (``kind`` VLEK) bundle of ``product``."""
    return f"{_base(base_url)}/{kind}/v1/{product}/cert_chain"


def crl_url(product: Product, kind: KeyKind, *, base_url: str = KDS_URL) -> str:
    """The KDS URL of the ARK's CRL for ``product`` (ASKs under ``vcek``, ASVKs under ``vlek``)."""
    return f"{_base(base_url)}/{kind}/v1/{product}/crl"


def kds_cache_max_age(url: str) -> float | None:
    """Cache lifetime of a KDS answer, for :class:`~attestation.fetch.CachingFetcher` ``max_age``.

    VCEKs and cert chains never change (a VCEK is bound to one chip and TCB), so they are kept forever (``None``);
    CRLs, and anything else, for at most a day.
    """
    path = urlsplit(url).path
    if path.endswith("/crl"):
        return CRL_MAX_AGE
    if path.endswith("/cert_chain") or "/vcek/v1/" in path:
        return None
    return CRL_MAX_AGE


def fetch_vcek(
    fetcher: Fetcher, product: Product, chip_id: bytes, tcb: TcbVersion, *, base_url: str = KDS_URL
) -> x509.Certificate:
    """Fetch and parse the VCEK of ``chip_id`` at ``tcb`` (raises :class:`FetchFailed`)."""
    url = vcek_url(product, chip_id, tcb, base_url=base_url)
    return _certificates(url, fetcher.fetch(url), "the VCEK", single=True)[0]


def fetch_cert_chain(
    fetcher: Fetcher, product: Product, kind: KeyKind, *, base_url: str = KDS_URL
) -> tuple[x509.Certificate, ...]:
    """Fetch the ASK/ASVK + ARK bundle of ``product`` (candidates only: the ARK must still equal a trusted root)."""
    url = cert_chain_url(product, kind, base_url=base_url)
    return _certificates(url, fetcher.fetch(url), "the certificate chain", single=False)


def fetch_crl(
    fetcher: Fetcher, product: Product, kind: KeyKind, *, base_url: str = KDS_URL
) -> x509.CertificateRevocationList:
    """Fetch the ARK's CRL of ``product`` (its signature is checked by the verifier, not here)."""
    url = crl_url(product, kind, base_url=base_url)
    return _crl(url, fetcher.fetch(url))


def validate_kds_answer(url: str, body: bytes) -> None:
    """Raise :class:`FetchFailed` unless ``body`` parses as what ``url`` serves (for ``CachingFetcher(validate=)``)."""
    path = urlsplit(url).path
    if path.endswith("/crl"):
        _crl(url, body)
    elif path.endswith("/cert_chain"):
        _certificates(url, body, "the certificate chain", single=False)
    else:
        _certificates(url, body, "the VCEK", single=True)


def _certificates(url: str, body: bytes, what: str, *, single: bool) -> tuple[x509.Certificate, ...]:
    try:
        return (load_certificate_der(body, f"{what} from {url}"),) if single else load_certificates(body, what)
    except MalformedEvidence as exc:
        raise FetchFailed(f"{url}: unexpected answer: {exc.message}") from None


def _crl(url: str, body: bytes) -> x509.CertificateRevocationList:
    try:
        return x509.load_der_x509_crl(body)
    except (ValueError, x509.InvalidVersion) as exc:
        raise FetchFailed(f"{url}: unexpected answer, not a DER CRL: {exc}") from None


def _base(base_url: str) -> str:
    return base_url.rstrip("/")
