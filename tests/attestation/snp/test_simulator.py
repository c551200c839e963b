"""The SEV-SNP simulator: its reports verify through the real verifier, and only with its root trusted on purpose."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding

from attestation._x509 import SIMULATOR_ORGANIZATION
from attestation.claims import Claims
from attestation.collateral import Collateral
from attestation.errors import BadChain, CertificateMismatch, UntrustedSimulatorRoot
from attestation.simulator.snp import SimulatedReport, SnpSimulator
from attestation.tee.sev_snp import TcbLayout, TcbVersion, parse_report
from attestation.tee.sev_snp.certs import KeyKind, read_endorsement
from attestation.tee.sev_snp.chain import common_name
from attestation.verify import verify
from tests.attestation.snp.conftest import SIM_AT, resign
from tests.tools import make_forgeries_snp


def verify_sim(sim: SnpSimulator, made: SimulatedReport, *, trust_root: bool = True, unsafe: bool = True) -> Claims:
    return verify(
        made.report,
        tee="sev-snp",
        at=SIM_AT,
        roots=[sim.ark] if trust_root else None,
        collateral=Collateral(certificates=made.chain, signing_cert=made.signing_cert),
        unsafe_allow_simulator_roots=unsafe,
    )


@pytest.mark.parametrize("product", ["Milan", "Genoa", "Turin"])
@pytest.mark.parametrize("version", [2, 3, 4, 5])
@pytest.mark.parametrize("signing_key", ["vcek", "vlek"])
def test_every_version_and_key_verifies(
    sims: dict[str, SnpSimulator], product: str, version: int, signing_key: str
) -> None:
    sim = sims[product]
    made = sim.report(version=version, signing_key=signing_key, measurement=b"\x07" * 48, host_data=b"\x01" * 32)
    claims = verify(
        made.report,
        tee="sev-snp",
        at=SIM_AT,
        roots=[sim.ark],
        collateral=Collateral(certificates=made.chain, signing_cert=made.signing_cert),
        unsafe_allow_simulator_roots=True,
    )
    assert claims.platform == f"amd-sev-snp/{product}"
    assert claims.signer.simulated is True
    assert claims.measurements["measurement"] == b"\x07" * 48
    assert claims.vendor["host_data"] == b"\x01" * 32 and claims.vendor["signing_key"] == signing_key
    assert dict(claims.tcb) == sim.default_tcb().components()
    assert claims.vendor["version"] == version


def test_refused_without_the_simulator_root(milan: SnpSimulator) -> None:
    with pytest.raises(BadChain):
        verify_sim(milan, milan.report(), trust_root=False)


def test_refused_without_the_unsafe_flag(milan: SnpSimulator) -> None:
    with pytest.raises(UntrustedSimulatorRoot):
        verify_sim(milan, milan.report(), unsafe=False)


def test_turin_tcb_layout(sims: dict[str, SnpSimulator]) -> None:
    turin = sims["Turin"]
    tcb = TcbVersion(bootloader=2, tee=3, snp=4, microcode=9, fmc=7)
    for version in (2, 5):  # version 2: the layout comes from the chain's product; 5: from CPUID family 1Ah
        made = turin.report(version=version, reported_tcb=tcb)
        assert made.report[0x180:0x188] == bytes([7, 2, 3, 4, 0, 0, 0, 9])
        claims = verify_sim(turin, made)
        assert dict(claims.tcb) == {"bootloader": 2, "tee": 3, "snp": 4, "microcode": 9, "fmc": 7}
        assert claims.vendor["tcb_layout"] == "turin"
    assert read_endorsement(made.signing_cert).tcb == tcb
    assert TcbLayout.for_product(turin.product) is TcbLayout.TURIN
    assert not any(turin.default_chip_id()[8:])


def test_turin_fmc_mismatch_is_caught(sims: dict[str, SnpSimulator]) -> None:
    turin = sims["Turin"]
    tcb = turin.default_tcb()
    other = TcbVersion(tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode, fmc=(tcb.fmc or 0) + 1)
    with pytest.raises(CertificateMismatch, match="fmc"):
        verify_sim(turin, turin.report(vcek_tcb=other))


def test_cpu_of_another_product_is_a_mismatch(sims: dict[str, SnpSimulator]) -> None:
    genoa = sims["Genoa"]
    made = genoa.report(version=3)
    milan_cpu = made.report[:0x188] + bytes([0x19, 0x01, 0x01]) + made.report[0x18B:]
    forged = SimulatedReport(resign(milan_cpu, genoa.keys.vcek), made.signing_cert, made.chain)
    with pytest.raises(CertificateMismatch, match="Milan CPU"):
        verify_sim(genoa, forged)


def test_certificates_follow_amds_profile(milan: SnpSimulator) -> None:
    made = milan.report()
    vcek, (ask, ark) = made.signing_cert, made.chain
    assert [common_name(c) for c in (vcek, ask, ark, milan.asvk)] == [
        "SEV-VCEK",
        "SEV-Milan",
        "ARK-Milan",
        "SEV-VLEK-Milan",
    ]
    assert [c.serial_number for c in (ark, ask, milan.asvk)] == [0x10000, 0x10001, 0x10101]
    for cert in (ark, ask, milan.asvk, vcek):
        organization = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value
        assert organization == SIMULATOR_ORGANIZATION
        params = cert.signature_algorithm_parameters
        assert isinstance(params, padding.PSS)
        assert cert.signature_algorithm_oid == x509.SignatureAlgorithmOID.RSASSA_PSS
    endorsement = read_endorsement(vcek)
    assert endorsement.kind is KeyKind.VCEK and endorsement.product_name == "Milan-B0"
    assert endorsement.hwid == parse_report(made.report).chip_id
    vlek = read_endorsement(milan.report(signing_key="vlek").signing_cert)
    assert vlek.kind is KeyKind.VLEK and vlek.product_name == "Milan" and vlek.hwid is None
    assert milan.chain_pem("vlek").count(b"BEGIN CERTIFICATE") == 2


def test_same_keys_same_bytes(milan: SnpSimulator) -> None:
    again = make_forgeries_snp.simulators()["milan"]
    first, second = milan.report(report_data=b"x" * 64), again.report(report_data=b"x" * 64)
    assert first.report == second.report
    assert first.signing_cert == second.signing_cert and first.chain == second.chain


def test_create_makes_a_working_simulator() -> None:
    sim = SnpSimulator.create(product="Genoa", at=SIM_AT, rsa_key_size=2048)
    made = sim.report(debug=True)
    claims = verify_sim(sim, made)
    assert claims.debug is True
    assert sim.ark.not_valid_before_utc < SIM_AT < sim.ark.not_valid_after_utc


def test_crl_is_signed_by_the_ark(milan: SnpSimulator) -> None:
    crl = milan.crl((5,), last_update=SIM_AT, next_update=SIM_AT.replace(year=2026))
    assert crl.issuer == milan.ark.subject
    assert crl.is_signature_valid(milan.keys.ark.public_key())
    assert crl.get_revoked_certificate_by_serial_number(5) is not None
