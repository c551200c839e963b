"""Attestation verification rate, read against the signature checks it cannot avoid, measured in the same run.

For each real sample in ../shared/vectors (AWS Nitro document; AMD SEV-SNP Milan report with its VCEK; Intel TDX v4
quote with its dcap-qvl collateral; NVIDIA H100 report of 2023 with its driver and VBIOS RIMs):

* **verify**: :func:`attestation.verify` end to end (decode, signature, chain to the pinned roots, validity,
  claims), from the evidence bytes, the way ``ccdeploy attest verify`` calls it; verifications per second.
* **floor**: only the public-key operations that verification contains, on pre-parsed inputs:
  Nitro: one ECDSA P-384/SHA-384 check of the COSE signature plus the four certificate links
  (leaf <- 3 intermediates <- root); SEV-SNP: one ECDSA P-384/SHA-384 check of the report plus three RSASSA-PSS
  SHA-384 links (VCEK <- ASK <- ARK, and the ARK's self-signature); TDX: eight ECDSA P-256 checks (quote, QE report,
  TCB Info, QE Identity, PCK <- PCK CA <- root, TCB Signing <- root, PCK CRL, root CA CRL); NVIDIA: thirteen ECDSA
  P-384 checks (the report, four device-chain links, two RIM SignedInfo signatures, six RIM signer-chain links).

The figure that carries over between machines is verify time / floor time (target: at most 1.3: parsing, CBOR,
path building, JSON/XML canonicalization, TCB evaluation and claims may cost at most 30 % on top of the
cryptography). The exit status is always 0.

    python bench/bench_attest.py [--seconds 2] [--json OUT]
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attestation import Collateral, decode_evidence, pinned_intermediates, pinned_roots, verify
from attestation._x509 import load_certificate_der, load_certificates
from attestation.claims import Tee
from attestation.roots import pinned_rim_roots

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"
TARGET = 1.3
AMD_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)


def rate(func: Callable[[], object], seconds: float) -> float:
    """Calls per second: the median of five slices of ``seconds / 5`` each, after a warm-up."""
    func()
    samples = []
    for _ in range(5):
        count, start = 0, time.perf_counter()
        deadline = start + seconds / 5
        while (now := time.perf_counter()) < deadline:
            func()
            count += 1
        samples.append(count / (now - start))
    return statistics.median(samples)


def nitro_case() -> tuple[Callable[[], object], Callable[[], object]]:
    evidence = decode_evidence((VECTORS / "aws-nitro/blocky-nitrite-2024-09-07.b64").read_bytes())
    protected, _unprotected, payload, signature = cbor2.loads(evidence)
    document = cbor2.loads(payload)
    leaf = x509.load_der_x509_certificate(document["certificate"])
    bundle = [x509.load_der_x509_certificate(der) for der in document["cabundle"]]
    links = list(zip([*bundle[1:], leaf], bundle, strict=True))
    key = leaf.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    der_signature = encode_dss_signature(int.from_bytes(signature[:48]), int.from_bytes(signature[48:]))
    tbs = cbor2.dumps(["Signature1", protected, b"", payload])

    def floor() -> None:
        key.verify(der_signature, tbs, ec.ECDSA(hashes.SHA384()))
        for child, parent in links:
            child.verify_directly_issued_by(parent)

    def full() -> object:
        return verify(evidence, tee=Tee.NITRO, at=None)

    return full, floor


def snp_case() -> tuple[Callable[[], object], Callable[[], object]]:
    snp = VECTORS / "amd-sev-snp"
    report = (snp / "gosevguest-milan-report.bin").read_bytes()
    vcek_der = (snp / "gosevguest-milan-vcek.der").read_bytes()
    vcek = load_certificate_der(vcek_der, "VCEK")
    ark = next(c for c in pinned_roots(Tee.SEV_SNP) if "ARK-Milan" in c.subject.rfc4514_string())
    ask = next(c for c in pinned_intermediates(Tee.SEV_SNP) if "CN=SEV-Milan" in c.subject.rfc4514_string())
    key = vcek.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    r = int.from_bytes(report[0x2A0 : 0x2A0 + 72], "little")
    s = int.from_bytes(report[0x2A0 + 72 : 0x2A0 + 144], "little")
    der_signature, signed = encode_dss_signature(r, s), report[:0x2A0]
    links = [(vcek, ask), (ask, ark), (ark, ark)]

    def floor() -> None:
        key.verify(der_signature, signed, ec.ECDSA(hashes.SHA384()))
        for child, parent in links:
            parent_key = parent.public_key()
            assert isinstance(parent_key, rsa.RSAPublicKey)
            parent_key.verify(child.signature, child.tbs_certificate_bytes, AMD_PSS, hashes.SHA384())

    at = datetime(2025, 6, 1, tzinfo=UTC)

    def full() -> object:
        vcek_cert = load_certificate_der(vcek_der, "VCEK")  # as the CLI does: collateral parsed per run
        return verify(report, tee=Tee.SEV_SNP, at=at, collateral=Collateral(signing_cert=vcek_cert))

    return full, floor


def _p256(raw: bytes) -> bytes:
    return encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:64]))


def tdx_case() -> tuple[Callable[[], object], Callable[[], object]]:
    from attestation.tee.dcap import DcapCollateral, parse_quote  # noqa: PLC0415

    intel = VECTORS / "intel-tdx"
    quote_bytes = (intel / "dcapqvl-tdx-v4-quote.bin").read_bytes()
    collateral_json = (intel / "dcapqvl-tdx-v4-collateral.json").read_bytes()
    quote = parse_quote(quote_bytes)
    collateral = DcapCollateral.from_dcap_qvl_json(collateral_json)
    root = pinned_roots(Tee.TDX)[0]
    pck = x509.load_pem_x509_certificates(quote.certification.pck_chain_pem)
    attestation_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + quote.attestation_key)
    pck_key = pck[0].public_key()
    tcb_key = collateral.tcb_issuer_chain[0].public_key()
    assert isinstance(pck_key, ec.EllipticCurvePublicKey) and isinstance(tcb_key, ec.EllipticCurvePublicKey)
    checks = [
        (attestation_key, _p256(quote.signature), quote.signed_bytes),
        (pck_key, _p256(quote.certification.qe_report_signature), quote.certification.qe_report_raw),
        (tcb_key, _p256(collateral.tcb_info_signature), collateral.tcb_info_json),
        (tcb_key, _p256(collateral.qe_identity_signature), collateral.qe_identity_json),
    ]
    links = [(pck[0], pck[1]), (pck[1], root), (collateral.tcb_issuer_chain[0], root)]
    crls = [(collateral.pck_crl, pck[1]), (collateral.root_ca_crl, root)]
    at = datetime(2025, 7, 19, 10, 0, 34, tzinfo=UTC)

    def floor() -> None:
        for key, signature, data in checks:
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        for child, parent in links:
            child.verify_directly_issued_by(parent)
        for crl, issuer in crls:
            assert crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]

    def full() -> object:
        parsed = DcapCollateral.from_dcap_qvl_json(collateral_json)  # as the CLI does: collateral parsed per run
        return verify(quote_bytes, tee=Tee.TDX, at=at, collateral=Collateral(dcap=parsed))

    return full, floor


def tdx_cached_case() -> tuple[Callable[[], object], Callable[[], object]]:
    """TDX with the collateral parsed once, as a verifier serving many quotes of one platform would keep it."""
    from attestation.tee.dcap import DcapCollateral  # noqa: PLC0415

    _full, floor = tdx_case()
    intel = VECTORS / "intel-tdx"
    quote_bytes = (intel / "dcapqvl-tdx-v4-quote.bin").read_bytes()
    collateral = Collateral(
        dcap=DcapCollateral.from_dcap_qvl_json((intel / "dcapqvl-tdx-v4-collateral.json").read_bytes())
    )
    at = datetime(2025, 7, 19, 10, 0, 34, tzinfo=UTC)

    def full() -> object:
        return verify(quote_bytes, tee=Tee.TDX, at=at, collateral=collateral)

    return full, floor


def _xmldsig_floor(
    document: bytes,
) -> tuple[ec.EllipticCurvePublicKey, bytes, bytes, list[tuple[x509.Certificate, x509.Certificate]]]:
    """The public-key work of one RIM: its SignedInfo signature and its signer chain's links (pre-parsed)."""
    from lxml import etree  # noqa: PLC0415  (lxml comes with signxml; only this case needs it)

    ds = "{http://www.w3.org/2000/09/xmldsig#}"
    root = etree.fromstring(document, etree.XMLParser(resolve_entities=False, no_network=True))
    signed_info = root.find(f".//{ds}SignedInfo")
    value = base64.b64decode("".join(root.find(f".//{ds}SignatureValue").text.split()))
    certs = [
        x509.load_der_x509_certificate(base64.b64decode("".join(node.text.split())))
        for node in root.iter(f"{ds}X509Certificate")
    ]
    leaf_key = certs[0].public_key()
    assert isinstance(leaf_key, ec.EllipticCurvePublicKey)
    signed = etree.tostring(signed_info, method="c14n")
    half = len(value) // 2
    der = encode_dss_signature(int.from_bytes(value[:half]), int.from_bytes(value[half:]))
    leaf_key.verify(der, signed, ec.ECDSA(hashes.SHA384()))  # the floor must do what verification does
    rim_root = pinned_rim_roots()[0]
    chain = [*certs[1:], rim_root] if certs[-1] != rim_root else certs[1:]
    return leaf_key, der, signed, list(zip(certs[: len(chain)], chain, strict=True))


def nvidia_case() -> tuple[Callable[[], object], Callable[[], object]]:
    gpu = VECTORS / "nvidia-gpu"
    report = decode_evidence((gpu / "nvtrust-2023-h100-report.hex").read_bytes())
    chain_pem = (gpu / "nvtrust-2023-h100-ak-cert-chain.pem").read_bytes()
    rims = (
        (gpu / "nvtrust-driver-rim-545.00-test-no-gpu.swidtag").read_bytes(),
        (gpu / "nvtrust-vbios-rim-96.00.5E.00.01-test-no-gpu.swidtag").read_bytes(),
    )
    chain = x509.load_pem_x509_certificates(chain_pem)
    root = pinned_roots(Tee.NVIDIA_GPU)[0]
    links = list(itertools.pairwise(chain))
    if chain[-1] != root:
        links.append((chain[-1], root))
    links = [(child, parent) for child, parent in links if child != parent]
    key = chain[0].public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    signature_at = len(report) - 96
    der_signature = encode_dss_signature(
        int.from_bytes(report[signature_at : signature_at + 48]), int.from_bytes(report[signature_at + 48 :])
    )
    signed = report[:signature_at]
    rim_work = [_xmldsig_floor(rim) for rim in rims]
    at = datetime(2024, 6, 1, tzinfo=UTC)

    def floor() -> None:
        key.verify(der_signature, signed, ec.ECDSA(hashes.SHA384()))
        for child, parent in links:
            child.verify_directly_issued_by(parent)
        for rim_key, rim_signature, signed_info, rim_links in rim_work:
            rim_key.verify(rim_signature, signed_info, ec.ECDSA(hashes.SHA384()))
            for child, parent in rim_links:
                child.verify_directly_issued_by(parent)

    def full() -> object:
        certificates = load_certificates(chain_pem, "the chain")  # as the CLI does: collateral parsed per run
        return verify(report, tee=Tee.NVIDIA_GPU, at=at, collateral=Collateral(certificates=certificates, rims=rims))

    return full, floor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement (default 2)")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    args = parser.parse_args(argv)
    if not (VECTORS / "MANIFEST.md").is_file():
        print(f"needs the shared test vectors at {VECTORS}", file=sys.stderr)
        return 0
    results = {}
    print(f"{'case':<10} {'verify/s':>10} {'floor/s':>10} {'verify/floor time':>18}  target <= {TARGET}")
    cases = (
        ("nitro", nitro_case),
        ("sev-snp", snp_case),
        ("tdx", tdx_case),
        ("tdx-cached", tdx_cached_case),
        ("nvidia-gpu", nvidia_case),
    )
    for name, make in cases:
        full, floor = make()
        full_rate, floor_rate = rate(full, args.seconds), rate(floor, args.seconds)
        ratio = floor_rate / full_rate
        verdict = "PASS" if ratio <= TARGET else "MISS"
        print(f"{name:<10} {full_rate:>10.0f} {floor_rate:>10.0f} {ratio:>18.2f}  {verdict}")
        results[name] = {"verify_per_s": full_rate, "floor_per_s": floor_rate, "ratio": ratio, "target": TARGET}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
