"""Policy sections of TDX, Azure Attestation and GPUs: parsing, lengths, required issuer, GPU fields, lint."""

from __future__ import annotations

from typing import Any

import pytest

from ccdeploy.errors import PolicyInvalid
from ccdeploy.release.policy import ReleasePolicy, lint, load_policy
from tests.release.policy.conftest import dump
from tests.release.simulated import Simulated

MRTD = "aa" * 48
ISSUER = "https://sharedwus.wus.attest.azure.net"


@pytest.fixture(scope="module")
def sim() -> Simulated:
    return Simulated.create()


def load(platforms: dict[str, Any], **extra: Any) -> ReleasePolicy:
    return load_policy(dump({"version": 1, "platforms": platforms, **extra}))


def test_tdx_section() -> None:
    policy = load({"tdx": {"mrtd": MRTD, "rtmr1": ["bb" * 48, "cc" * 48], "tcb": {"statuses": ["SWHardeningNeeded"]}}})
    references = policy.reference_values()
    assert references.tdx is not None and references.tdx.mrtd == (bytes.fromhex(MRTD),)
    assert policy.platforms.names() == ["tdx"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mrtd", "aa" * 32),
        ("rtmr0", "aa" * 49),
        ("rtmr3", ["aa" * 48, "aa" * 47]),
        ("mrconfigid", "aa"),
        ("mrowner", "aa" * 64),
        ("mrownerconfig", "aa" * 20),
        ("mrseam", "aa" * 32),
        ("report_data", "aa" * 48),
    ],
)
def test_tdx_lengths(field: str, value: Any) -> None:
    with pytest.raises(PolicyInvalid, match=rf"tdx\.{field}: a \d+-byte value"):
        load({"tdx": {"mrtd": MRTD, field: value}})


def test_tdx_without_mrtd_needs_the_opt_out() -> None:
    with pytest.raises(PolicyInvalid, match="tdx pins no mrtd"):
        load({"tdx": {"rtmr0": MRTD}})
    assert load({"tdx": {"rtmr0": MRTD}}, unsafe_no_code_identity=True).platforms.tdx is not None


def test_maa_section_maps_without_issuer() -> None:
    policy = load({"maa": {"issuer": ISSUER + "/", "mrsigner": "4a" * 32, "attestation_types": ["sgx"]}})
    assert policy.platforms.maa is not None and policy.platforms.maa.issuer == ISSUER
    references = policy.reference_values()
    assert references.maa is not None
    assert references.maa.mrsigner == (bytes.fromhex("4a" * 32),)
    assert "issuer" not in references.maa.model_dump()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"mrsigner": "4a" * 32}, "issuer"),
        ({"issuer": "http://sharedwus.wus.attest.azure.net", "mrsigner": "4a" * 32}, "https URL"),
        ({"issuer": ISSUER + "?x=1", "mrsigner": "4a" * 32}, "https URL"),
        ({"issuer": 7, "mrsigner": "4a" * 32}, "provider's URL"),
        ({"issuer": ISSUER}, "only its issuer"),
        ({"issuer": ISSUER, "mrsigner": "4a" * 31}, r"maa\.mrsigner: a 31-byte value"),
        ({"issuer": ISSUER, "mrtd": "4a" * 32}, r"maa\.mrtd: a 32-byte value"),
        ({"issuer": ISSUER, "product_id": 1}, "maa pins none of"),
    ],
)
def test_maa_invalid(section: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyInvalid, match=message):
        load({"maa": section})


def test_gpu_section() -> None:
    policy = load({"tdx": {"mrtd": MRTD}}, gpu={"required": True, "drivers": ["550.90.07"], "require_ocsp": True})
    assert policy.gpu.minimum_count == 1
    assert load({"tdx": {"mrtd": MRTD}}, gpu={"required": True, "count": 8}).gpu.minimum_count == 8
    assert load({"tdx": {"mrtd": MRTD}}).gpu.minimum_count == 0


@pytest.mark.parametrize(
    "gpu",
    [
        {"count": 2},
        {"require_ocsp": True},
        {"drivers": ["550.90.07"]},
        {"vbios": ["96.00.9F.00.01"]},
        {"required": True, "count": 0},
        {"required": True, "count": 65},
        {"required": True, "count": "2"},
        {"required": True, "count": True},
        {"required": True, "require_ocsp": "yes"},
        {"required": True, "drivers": [""]},
        {"required": True, "mig": True},
    ],
)
def test_gpu_invalid(gpu: dict[str, Any]) -> None:
    with pytest.raises(PolicyInvalid, match="gpu"):
        load({"tdx": {"mrtd": MRTD}}, gpu=gpu)


def test_trust_roots(sim: Simulated) -> None:
    document = sim.gpu_policy()
    policy = load_policy(dump(document))
    assert policy.trust_roots is not None
    assert set(policy.trust_roots.named()) == {"tdx", "nvidia-gpu", "nvidia-rim"}
    assert policy.trust_roots.nvidia_rim == (sim.gpu.rim_root,)
    # GPU roots need no GPU requirement (composite evidence is verified under any accepted CPU platform) ...
    del document["gpu"]
    assert load_policy(dump(document)).trust_roots is not None
    # ... but CPU roots need their platform.
    document["platforms"] = {"nitro": {"pcrs": {0: "aa" * 48}}}
    with pytest.raises(PolicyInvalid, match="trust_roots names tdx"):
        load_policy(dump(document))


def test_bad_gpu_trust_root() -> None:
    with pytest.raises(PolicyInvalid, match="nvidia-rim"):
        load({"tdx": {"mrtd": MRTD}}, trust_roots={"nvidia-rim": ["not a certificate"]})


def test_lint(sim: Simulated) -> None:
    document = sim.gpu_policy(require_ocsp=True)
    findings = lint(load_policy(dump(document)))
    infos = [f.message for f in findings if f.level == "info"]
    assert any("RIMs" in m for m in infos)
    assert any("require_ocsp" in m for m in infos)
    assert any("DCAP collateral" in m for m in infos)
    document["unsafe_accept_simulator_roots"] = False
    warnings = [f.message for f in lint(load_policy(dump(document))) if f.level == "warn"]
    assert any("tdx, nvidia-gpu, nvidia-rim hold an evidence-simulator root" in m for m in warnings)


def test_lint_maa() -> None:
    infos = [f.message for f in lint(load({"maa": {"issuer": ISSUER, "mrsigner": "4a" * 32}})) if f.level == "info"]
    assert any(f"{ISSUER}/certs" in m for m in infos)
