"""The pinned roots match the fingerprints their README documents, and the AMD bundles are internally consistent."""

from __future__ import annotations

import re
from importlib import resources

from attestation import Tee, pinned_intermediates, pinned_roots
from attestation._x509 import fingerprint
from attestation.roots import pinned_rim_roots


def documented_fingerprints() -> set[str]:
    readme = resources.files("attestation").joinpath("trust", "README.md").read_text()
    return set(re.findall(r"`([0-9a-f]{64})`", readme)) - {
        "8cf60e2b2efca96c6a9e71e851d00c1b6991cc09eadbe64a6a1d1b1eb9faff7c"  # the zip download, not a certificate
    }


def test_every_pinned_certificate_is_documented_and_vice_versa() -> None:
    shipped = {fingerprint(c) for tee in Tee for c in pinned_roots(tee) + pinned_intermediates(tee)}
    shipped |= {fingerprint(c) for c in pinned_rim_roots()}
    assert shipped == documented_fingerprints()


def test_intel_and_nvidia_anchors_are_kept_apart() -> None:
    intel = [fingerprint(c) for c in pinned_roots(Tee.TDX)]
    assert intel == [fingerprint(c) for c in pinned_roots(Tee.SGX)]
    assert intel == ["44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"]
    device = [fingerprint(c) for c in pinned_roots(Tee.NVIDIA_GPU)]
    rim = [fingerprint(c) for c in pinned_rim_roots()]
    assert device == ["102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48"]
    assert rim == ["12977b5115acb0381179279fffeb5a8c4d264971ebb32298023a465fa41df5d1"]
    assert not set(rim) & {fingerprint(c) for c in pinned_roots(Tee.COMPOSITE)}
    assert pinned_roots(Tee.MAA) == ()


def test_pinned_anchors() -> None:
    assert [fingerprint(c) for c in pinned_roots(Tee.NITRO)] == [
        "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
    ]
    arks = {c.subject.rfc4514_string().split(",")[0] for c in pinned_roots(Tee.SEV_SNP)}
    assert arks == {"CN=ARK-Milan", "CN=ARK-Genoa", "CN=ARK-Turin"}


def test_each_amd_intermediate_is_signed_by_its_products_ark() -> None:
    arks = {c.subject.rfc4514_string().split(",")[0].removeprefix("CN=ARK-"): c for c in pinned_roots(Tee.SEV_SNP)}
    intermediates = pinned_intermediates(Tee.SEV_SNP)
    assert len(intermediates) == 6
    for cert in intermediates:
        product = cert.subject.rfc4514_string().split(",")[0].rsplit("-", 1)[1]
        cert.verify_directly_issued_by(arks[product])


def test_real_vectors_use_the_pinned_roots(vectors) -> None:  # type: ignore[no-untyped-def]
    from attestation._x509 import load_certificates

    nitro = load_certificates((vectors / "aws-nitro/aws-nitro-enclaves-root-g1.pem").read_bytes(), "root")
    assert nitro == pinned_roots(Tee.NITRO)
    milan = load_certificates((vectors / "amd-sev-snp/gosevguest-ask-ark-milan.pem").read_bytes(), "bundle")
    pinned = set(pinned_roots(Tee.SEV_SNP) + pinned_intermediates(Tee.SEV_SNP))
    assert set(milan) <= pinned
