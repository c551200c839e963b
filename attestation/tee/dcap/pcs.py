"""Fetching DCAP collateral from Intel's Provisioning Certification Service (PCS) v4 or a PCCS.

PCS answers the TCB Info and QE Identity as JSON bodies and puts the issuer chains (URL-encoded PEM) in response
headers, so the fetcher must return headers too (:class:`attestation.fetch.DocumentFetcher`). The Intel SGX Root CA
CRL is fetched from Intel's certificate site for PCS, or from ``{base}/sgx/certification/v4/rootcacrl`` for a PCCS.
"""

from __future__ import annotations

from cryptography import x509

from attestation.errors import FetchFailed
from attestation.fetch import DocumentFetcher, FetchedDocument, Fetcher
from attestation.tee.dcap.collateral import DcapCollateral
from attestation.tee.dcap.errors import MalformedCollateral

INTEL_PCS_URL = "https://api.trustedservices.intel.com"
INTEL_ROOT_CA_CRL_URL = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
TCB_INFO_ISSUER_CHAIN = "TCB-Info-Issuer-Chain"
QE_IDENTITY_ISSUER_CHAIN = "SGX-Enclave-Identity-Issuer-Chain"
PCK_CRL_ISSUER_CHAIN = "SGX-PCK-CRL-Issuer-Chain"


def pck_ca_kind(pck_ca: x509.Certificate) -> str:
    """``"processor"`` or ``"platform"``, from the PCK CA's common name (the ``ca`` parameter of ``pckcrl``)."""
    names = pck_ca.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    name = str(names[0].value) if names else ""
    for kind in ("processor", "platform"):
        if kind in name.lower():
            return kind
    raise MalformedCollateral(f"the PCK CA {name!r} is neither a PCK Processor CA nor a PCK Platform CA")


def fetch_collateral(
    fetcher: Fetcher,
    *,
    tdx: bool,
    fmspc: bytes,
    pck_ca: str,
    base_url: str = INTEL_PCS_URL,
    root_ca_crl_url: str | None = INTEL_ROOT_CA_CRL_URL,
) -> DcapCollateral:
    """Fetch the TCB Info, QE Identity, PCK CRL and root CA CRL for one platform.

    Args:
        fetcher: Must also return headers (:class:`~attestation.fetch.DocumentFetcher`).
        tdx: TDX collateral (``/tdx/...``) or SGX (``/sgx/...``).
        fmspc: The FMSPC from the PCK certificate.
        pck_ca: ``"processor"`` or ``"platform"``.
        base_url: Intel PCS, or a PCCS (its base URL, without ``/sgx/certification/v4``).
        root_ca_crl_url: Where the root CA CRL is; ``None`` for a PCCS's ``rootcacrl`` endpoint.

    Raises:
        FetchFailed: A request failed, or an expected header is missing.
        MalformedCollateral: An answer does not decode.
    """
    if not isinstance(fetcher, DocumentFetcher):
        raise FetchFailed("the fetcher cannot return response headers, where Intel PCS sends the issuer chains")
    base = base_url.rstrip("/")
    tee = "tdx" if tdx else "sgx"
    tcb = fetcher.fetch_document(f"{base}/{tee}/certification/v4/tcb?fmspc={fmspc.hex().upper()}")
    qe = fetcher.fetch_document(f"{base}/{tee}/certification/v4/qe/identity")
    crl = fetcher.fetch_document(f"{base}/sgx/certification/v4/pckcrl?ca={pck_ca}&encoding=der")
    root_url = root_ca_crl_url if root_ca_crl_url is not None else f"{base}/sgx/certification/v4/rootcacrl"
    root_crl = fetcher.fetch(root_url)
    return DcapCollateral.from_pcs(
        tcb_info=tcb.body,
        qe_identity=qe.body,
        tcb_issuer_chain=_header(tcb, TCB_INFO_ISSUER_CHAIN, "SGX-TCB-Info-Issuer-Chain"),
        qe_identity_issuer_chain=_header(qe, QE_IDENTITY_ISSUER_CHAIN),
        pck_crl=crl.body,
        pck_crl_issuer_chain=_header(crl, PCK_CRL_ISSUER_CHAIN),
        root_ca_crl=root_crl,
    )


def _header(document: FetchedDocument, *names: str) -> bytes:
    for name in names:
        value = document.headers.get(name.lower())
        if value is not None:
            return value.encode("latin-1", errors="replace")
    raise FetchFailed(f"the PCS answer has no {names[0]} header")
