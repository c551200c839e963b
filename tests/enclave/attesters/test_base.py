"""The registry, the report-data rule, and device detection over fake paths."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from enclave.attesters import ATTESTER_FOR_NAME, Attester, DetectPaths, attester_from_name, detect_attester
from enclave.attesters.azure_vtpm import AzureVtpmAttester
from enclave.attesters.nitro_nsm import NitroNsmAttester
from enclave.attesters.sev_guest import SevSnpAttester
from enclave.attesters.tdx import TdxAttester
from enclave.errors import AttesterUnavailable
from tests.enclave.attesters.fake_tsm import FakeTsmKernel


def _paths(tmp_path: Path) -> DetectPaths:
    return DetectPaths(
        nsm=str(tmp_path / "nsm"),
        tsm_report=str(tmp_path / "tsm" / "report"),
        sev_guest=str(tmp_path / "sev-guest"),
        tpm=str(tmp_path / "tpmrm0"),
        dmi_sys_vendor=str(tmp_path / "sys_vendor"),
    )


def test_every_registered_attester_imports_and_has_name_and_type() -> None:
    for name, target in ATTESTER_FOR_NAME.items():
        module, _, cls = target.partition(":")
        attester_class = getattr(importlib.import_module(module), cls)
        assert attester_class.name == name
        assert attester_class.evidence_type in {"nitro", "sev-snp", "tdx", "nvidia-gpu", "composite"}


def test_unknown_name() -> None:
    with pytest.raises(AttesterUnavailable, match=r"unknown attester 'sgx'.*simulator-nitro"):
        attester_from_name("sgx")


def test_nothing_found_names_what_was_probed(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    with pytest.raises(AttesterUnavailable) as raised:
        detect_attester(paths)
    message = str(raised.value)
    for probed in (paths.nsm, paths.tsm_report, paths.sev_guest, paths.tpm):
        assert probed in message
    assert "--attester simulator-nitro" in message
    assert raised.value.exit_code == 3


def test_nsm_comes_first(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    for device in (paths.nsm, paths.sev_guest, paths.tpm):
        Path(device).write_bytes(b"")
    attester = detect_attester(paths)
    assert isinstance(attester, NitroNsmAttester)
    assert isinstance(attester, Attester)


@pytest.mark.parametrize(("provider", "expected"), [("sev_guest", SevSnpAttester), ("tdx_guest", TdxAttester)])
def test_configfs_provider_decides(tmp_path: Path, provider: str, expected: type) -> None:
    paths = _paths(tmp_path)
    Path(paths.tsm_report).mkdir(parents=True)
    Path(paths.sev_guest).write_bytes(b"")
    kernel = FakeTsmKernel(paths.tsm_report, provider, lambda data, level: data)
    assert isinstance(detect_attester(paths, tsm_filesystem=kernel), expected)
    assert kernel.entries == {}  # the probe removed its entry


def test_unknown_provider_falls_through_to_sev_guest(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    Path(paths.tsm_report).mkdir(parents=True)
    Path(paths.sev_guest).write_bytes(b"")
    kernel = FakeTsmKernel(paths.tsm_report, "arm_cca_guest", lambda data, level: data)
    assert isinstance(detect_attester(paths, tsm_filesystem=kernel), SevSnpAttester)


def test_unusable_configfs_is_reported(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    Path(paths.tsm_report).mkdir(parents=True)
    kernel = FakeTsmKernel("/somewhere/else", "sev_guest", lambda data, level: data)
    with pytest.raises(AttesterUnavailable, match="unusable"):
        detect_attester(paths, tsm_filesystem=kernel)


def test_tpm_on_azure(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    Path(paths.tpm).write_bytes(b"")
    Path(paths.dmi_sys_vendor).write_text("Microsoft Corporation\n")
    assert isinstance(detect_attester(paths), AzureVtpmAttester)


def test_tpm_elsewhere_is_not_azure(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    Path(paths.tpm).write_bytes(b"")
    Path(paths.dmi_sys_vendor).write_text("LENOVO\n")
    with pytest.raises(AttesterUnavailable, match="does not name Microsoft Corporation"):
        detect_attester(paths)
