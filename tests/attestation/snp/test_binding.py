"""A verified VCEK/VLEK must also belong to the report: key kind, product, TCB, chip id; and AMD's PSS profile."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding

from attestation.claims import Claims
from attestation.collateral import Collateral
from attestation.errors import BadChain, CertificateMismatch
from attestation.simulator.snp import SnpSimulator
from attestation.tee.sev_snp import TcbVersion, _der
from attestation.tee.sev_snp import certs as amd
from attestation.verify import verify
from tests.attestation.snp.conftest import SIM_AT, issue, resign


def leaf(
    sim: SnpSimulator,
    *,
    key: ec.EllipticCurvePrivateKey | None = None,
    product_name: str = "Milan-B0",
    tcb: TcbVersion | None = None,
    hwid: bytes | None = None,
    csp_id: str | None = None,
) -> x509.CertificateBuilder:
    """A VCEK-like certificate builder with AMD's extensions, to be issued by :func:`issue`."""
    tcb = tcb or sim.default_tcb()
    public = (key or sim.keys.vcek).public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "SEV-VCEK")]))
        .public_key(public)
        .serial_number(1)
        .not_valid_before(SIM_AT - timedelta(days=1))
        .not_valid_after(SIM_AT + timedelta(days=1))
    )
    extensions = [
        (amd.OID_PRODUCT_NAME, _der.encode_ia5(product_name)),
        (amd.OID_BL_SPL, _der.encode_unsigned(tcb.bootloader)),
        (amd.OID_TEE_SPL, _der.encode_unsigned(tcb.tee)),
        (amd.OID_SNP_SPL, _der.encode_unsigned(tcb.snp)),
        (amd.OID_UCODE_SPL, _der.encode_unsigned(tcb.microcode)),
    ]
    if tcb.fmc is not None:
        extensions.append((amd.OID_FMC_SPL, _der.encode_unsigned(tcb.fmc)))
    if hwid is not None:
        extensions.append((amd.OID_HWID, hwid))
    if csp_id is not None:
        extensions.append((amd.OID_CSP_ID, _der.encode_ia5(csp_id)))
    for oid, value in extensions:
        builder = builder.add_extension(x509.UnrecognizedExtension(oid, value), critical=False)
    return builder


def check(sim: SnpSimulator, report: bytes, cert: x509.Certificate, *, vlek: bool = False) -> Claims:
    return verify(
        report,
        tee="sev-snp",
        at=SIM_AT,
        roots=[sim.ark],
        collateral=Collateral(certificates=sim.chain("vlek" if vlek else "vcek"), signing_cert=cert),
        unsafe_allow_simulator_roots=True,
    )


def test_a_vlek_certified_by_the_ask_is_refused(milan: SnpSimulator) -> None:
    made = milan.report(signing_key="vlek")
    cert = issue(leaf(milan, key=milan.keys.vlek, product_name="Milan", csp_id="CN=x"), milan.ask, milan.keys.ask)
    with pytest.raises(CertificateMismatch, match="VLEK certificate issued by an ASK"):
        check(milan, made.report, cert)


def test_a_vcek_report_checked_against_a_vlek_is_refused(milan: SnpSimulator) -> None:
    report = milan.report().report
    vlek = milan.report(signing_key="vlek").signing_cert
    with pytest.raises(CertificateMismatch, match="SIGNING_KEY says VCEK"):
        check(milan, report, vlek, vlek=True)


@pytest.mark.parametrize(
    ("hwid", "csp_id"), [(None, None), (bytes(64), "CN=x")], ids=["neither-hwid-nor-cspid", "both"]
)
def test_the_leaf_must_be_exactly_one_kind(milan: SnpSimulator, hwid: bytes | None, csp_id: str | None) -> None:
    cert = issue(leaf(milan, hwid=hwid, csp_id=csp_id), milan.ask, milan.keys.ask)
    with pytest.raises(CertificateMismatch, match="exactly one"):
        check(milan, milan.report().report, cert)


def test_the_product_name_must_be_the_arks(milan: SnpSimulator) -> None:
    made = milan.report()
    cert = issue(leaf(milan, product_name="Genoa-B0", hwid=milan.default_chip_id()), milan.ask, milan.keys.ask)
    with pytest.raises(CertificateMismatch, match="Genoa-B0"):
        check(milan, made.report, cert)


def test_a_missing_tcb_extension_is_refused(milan: SnpSimulator) -> None:
    builder = x509.CertificateBuilder().subject_name(x509.Name([])).public_key(milan.keys.vcek.public_key())
    builder = (
        builder.serial_number(1).not_valid_before(SIM_AT - timedelta(days=1)).not_valid_after(SIM_AT.replace(year=2030))
    )
    builder = builder.add_extension(x509.UnrecognizedExtension(amd.OID_HWID, bytes(64)), critical=False)
    with pytest.raises(CertificateMismatch, match=r"lacks the AMD extension 1\.3\.6\.1\.4\.1\.3704\.1\.2"):
        check(milan, milan.report().report, issue(builder, milan.ask, milan.keys.ask))


def test_hwid_as_a_der_octet_string_is_accepted(milan: SnpSimulator) -> None:
    chip = milan.default_chip_id()
    cert = issue(leaf(milan, hwid=b"\x04\x40" + chip), milan.ask, milan.keys.ask)
    assert check(milan, milan.report().report, cert).hardware_id == chip.hex()


def test_a_masked_chip_id_skips_the_hwid_comparison(milan: SnpSimulator) -> None:
    made = milan.report(chip_id=bytes(64), vcek_hwid=milan.default_chip_id())
    claims = check(milan, made.report, made.signing_cert)
    assert claims.hardware_id is None


def test_turin_vcek_with_an_8_byte_hwid(sims: dict[str, SnpSimulator]) -> None:
    turin = sims["Turin"]
    chip = turin.default_chip_id()
    cert = issue(leaf(turin, product_name="Turin-B0", hwid=chip[:8]), turin.ask, turin.keys.ask)
    assert check(turin, turin.report().report, cert).hardware_id == chip.hex()


def test_an_8_byte_hwid_is_not_enough_for_milan(milan: SnpSimulator) -> None:
    cert = issue(leaf(milan, hwid=milan.default_chip_id()[:8]), milan.ask, milan.keys.ask)
    with pytest.raises(CertificateMismatch, match="CHIP_ID"):
        check(milan, milan.report().report, cert)


def test_a_leaf_key_that_is_not_p384_is_refused(milan: SnpSimulator) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue(leaf(milan, key=key, hwid=milan.default_chip_id()), milan.ask, milan.keys.ask)
    with pytest.raises(CertificateMismatch, match="P-384"):
        check(milan, milan.report().report, cert)


@pytest.mark.parametrize(
    ("rsa_padding", "message"),
    [
        (padding.PKCS1v15(), "RSASSA-PSS"),
        (padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=32), "does not verify"),
    ],
    ids=["pkcs1v15", "salt-32"],
)
def test_links_must_use_amds_pss_profile(
    milan: SnpSimulator, rsa_padding: padding.PSS | padding.PKCS1v15, message: str
) -> None:
    builder = leaf(milan, hwid=milan.default_chip_id()).issuer_name(milan.ask.subject)
    cert = builder.sign(milan.keys.ask, hashes.SHA384(), rsa_padding=rsa_padding)
    with pytest.raises(BadChain, match=message):
        check(milan, milan.report().report, cert)


def test_an_intermediate_that_is_no_ca_is_refused(milan: SnpSimulator) -> None:
    fake_ask = (
        x509.CertificateBuilder()
        .subject_name(milan.ask.subject)
        .public_key(milan.keys.ask.public_key())
        .serial_number(2)
        .not_valid_before(SIM_AT - timedelta(days=1))
        .not_valid_after(SIM_AT + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    ask = issue(fake_ask, milan.ark, milan.keys.ark)
    made = milan.report()
    with pytest.raises(BadChain, match="not a CA"):
        verify(
            made.report,
            tee="sev-snp",
            at=SIM_AT,
            roots=[milan.ark],
            collateral=Collateral(certificates=(ask,), signing_cert=made.signing_cert),
            unsafe_allow_simulator_roots=True,
        )


def test_resigned_report_with_edited_tcb_is_a_mismatch(milan: SnpSimulator) -> None:
    made = milan.report()
    edited = resign(made.report[:0x186] + b"\x01" + made.report[0x187:], milan.keys.vcek)  # REPORTED_TCB.SNP
    with pytest.raises(CertificateMismatch, match="REPORTED_TCB"):
        check(milan, edited, made.signing_cert)
