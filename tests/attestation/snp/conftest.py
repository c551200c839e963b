"""Shared SEV-SNP test material: the real reports of ../shared/vectors (MANIFEST §3) and session-wide simulators."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from attestation._x509 import load_certificate_der, load_certificates
from attestation.simulator.snp import SnpSimulator
from attestation.tee.sev_snp.chain import AMD_PSS
from tests.tools import make_forgeries_snp

#: Inside both real VCEKs' windows (2023-01-24 .. 2029-09-24).
REAL_AT = datetime(2024, 1, 1, tzinfo=UTC)
#: Inside the fixture simulators' windows (from 2024-01-01).
SIM_AT = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RealReport:
    """One row of MANIFEST §3."""

    report: bytes
    vcek: x509.Certificate
    bundle: tuple[x509.Certificate, ...]

    @property
    def ask(self) -> x509.Certificate:
        return next(cert for cert in self.bundle if cert.subject.rfc4514_string().startswith("CN=SEV-Milan"))

    @property
    def ark(self) -> x509.Certificate:
        return next(cert for cert in self.bundle if cert.subject == cert.issuer)


def load_real(vectors: Path, report: str, vcek: str, bundle: str) -> RealReport:
    snp = vectors / "amd-sev-snp"
    return RealReport(
        report=(snp / report).read_bytes(),
        vcek=load_certificate_der((snp / vcek).read_bytes(), vcek),
        bundle=load_certificates((snp / bundle).read_bytes(), bundle),
    )


@pytest.fixture(scope="session")
def gosevguest(vectors: Path) -> RealReport:
    return load_real(
        vectors, "gosevguest-milan-report.bin", "gosevguest-milan-vcek.der", "gosevguest-ask-ark-milan.pem"
    )


@pytest.fixture(scope="session")
def trustee(vectors: Path) -> RealReport:
    return load_real(
        vectors, "trustee-milan-vcek-report.bin", "trustee-milan-vcek.der", "trustee-milan-ask-ark-asvk.pem"
    )


@pytest.fixture(scope="session")
def bundles(vectors: Path) -> dict[str, tuple[x509.Certificate, ...]]:
    """ASK, ARK, ASVK of each product, as trustee ships them."""
    snp = vectors / "amd-sev-snp"
    return {
        product: load_certificates((snp / f"trustee-{product.lower()}-ask-ark-asvk.pem").read_bytes(), product)
        for product in ("Milan", "Genoa", "Turin")
    }


@pytest.fixture(scope="session")
def sims() -> dict[str, SnpSimulator]:
    """Simulators of all three products from the committed fixture keys (no RSA key generation in the tests)."""
    fixed = make_forgeries_snp.simulators()
    turin = SnpSimulator(fixed["milan"].keys, product="Turin", not_before=make_forgeries_snp.NOT_BEFORE)
    return {"Milan": fixed["milan"], "Genoa": fixed["genoa"], "Turin": turin}


@pytest.fixture(scope="session")
def milan(sims: dict[str, SnpSimulator]) -> SnpSimulator:
    return sims["Milan"]


def resign(report: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """``report`` with its signature replaced by ``key``'s over its (possibly edited) signed bytes."""
    r, s = decode_dss_signature(key.sign(report[:0x2A0], ec.ECDSA(hashes.SHA384())))
    return report[:0x2A0] + r.to_bytes(72, "little") + s.to_bytes(72, "little") + report[0x330:]


def issue(builder: x509.CertificateBuilder, issuer: x509.Certificate, key: rsa.RSAPrivateKey) -> x509.Certificate:
    """Sign ``builder`` (its issuer name set to ``issuer``'s subject) with AMD's PSS profile."""
    return builder.issuer_name(issuer.subject).sign(key, hashes.SHA384(), rsa_padding=AMD_PSS)
