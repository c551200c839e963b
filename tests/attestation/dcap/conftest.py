"""Shared DCAP test material: the real quotes and collateral of ../shared/vectors (MANIFEST §5)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from attestation.claims import Tee
from attestation.tee.dcap.collateral import DcapCollateral

#: dcap-qvl's own test times: the end of each collateral window minus 1 s.
TDX_V4_AT = datetime(2025, 7, 19, 10, 0, 34, tzinfo=UTC)
TDX_V5_AT = datetime(2026, 3, 20, 10, 41, 14, tzinfo=UTC)
SGX_AT = datetime(2025, 7, 19, 10, 1, 17, tzinfo=UTC)


@dataclass(frozen=True)
class DcapVector:
    """One row of MANIFEST §5: a quote, its dcap-qvl collateral JSON, the TEE and the time to verify at."""

    name: str
    tee: Tee
    at: datetime
    quote: bytes
    collateral_json: bytes

    @property
    def fields(self) -> dict[str, str]:
        """The dcap-qvl collateral JSON's string fields."""
        data: dict[str, str] = json.loads(self.collateral_json)
        return data

    def collateral(self) -> DcapCollateral:
        """The collateral through :meth:`DcapCollateral.from_dcap_qvl_json`."""
        return DcapCollateral.from_dcap_qvl_json(self.collateral_json)

    def pcs_bodies(self) -> dict[str, bytes]:
        """The collateral as Intel PCS sends it: response bodies wrapping the exact signed JSON, PEM chains, DER CRLs.

        The bodies are built by concatenation around the exact signed strings, never by re-serialising them.
        """
        f = self.fields
        return {
            "tcb_info": b'{"tcbInfo":'
            + f["tcb_info"].encode()
            + b',"signature":"'
            + f["tcb_info_signature"].encode()
            + b'"}',
            "qe_identity": b'{"enclaveIdentity":'
            + f["qe_identity"].encode()
            + b',"signature":"'
            + f["qe_identity_signature"].encode()
            + b'"}',
            "tcb_issuer_chain": f["tcb_info_issuer_chain"].encode(),
            "qe_identity_issuer_chain": f["qe_identity_issuer_chain"].encode(),
            "pck_crl": bytes.fromhex(f["pck_crl"]),
            "pck_crl_issuer_chain": f["pck_crl_issuer_chain"].encode(),
            "root_ca_crl": bytes.fromhex(f["root_ca_crl"]),
        }


def _load(vectors: Path, name: str, tee: Tee, at: datetime) -> DcapVector:
    folder = vectors / "intel-tdx"
    return DcapVector(
        name,
        tee,
        at,
        (folder / f"dcapqvl-{name}-quote.bin").read_bytes(),
        (folder / f"dcapqvl-{name}-collateral.json").read_bytes(),
    )


@pytest.fixture(scope="session")
def tdx_v4(vectors: Path) -> DcapVector:
    """dcap-qvl ``sample/tdx_quote``: v4, UpToDate at :data:`TDX_V4_AT`."""
    return _load(vectors, "tdx-v4", Tee.TDX, TDX_V4_AT)


@pytest.fixture(scope="session")
def tdx_v5(vectors: Path) -> DcapVector:
    """dcap-qvl ``sample/tdx_quote_outdated``: v5 TD 1.5, no matching TCB level at :data:`TDX_V5_AT`."""
    return _load(vectors, "tdx-v5-nomatch", Tee.TDX, TDX_V5_AT)


@pytest.fixture(scope="session")
def sgx_v3(vectors: Path) -> DcapVector:
    """dcap-qvl ``sample/sgx_quote``: SGX v3, ConfigurationAndSWHardeningNeeded at :data:`SGX_AT`."""
    return _load(vectors, "sgx-v3", Tee.SGX, SGX_AT)


@pytest.fixture(scope="session")
def intel_root(vectors: Path) -> bytes:
    """The Intel SGX Root CA (PEM) as the vectors pin it."""
    return (vectors / "intel-tdx" / "intel-sgx-root-ca.pem").read_bytes()
