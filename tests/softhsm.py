"""A private SoftHSM2 token for the tests that need PKCS#11 (KEKs and signing keys).

SoftHSM2 comes from ``scripts/install-system-deps.sh``; without it the tests that need it skip (or
fail under ``CI=true``) through :func:`tests.conftest.missing_component`. The fixtures are registered
for the whole suite in tests/conftest.py, so every test directory shares one token per session.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import missing_component

_INSTALL = "sudo apt-get install softhsm2 opensc  (or run scripts/install-system-deps.sh as root)"
_NO_PKCS11 = "python-pkcs11 is not installed (pip install ccdeploy[pkcs11])"
_MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
)


def _find_module() -> Path | None:
    for candidate in _MODULE_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    for pattern in ("/usr/lib*/**/libsofthsm2.so", "/usr/local/lib*/**/libsofthsm2.so"):
        found = sorted(glob.glob(pattern, recursive=True))
        if found:
            return Path(found[0])
    return None


@dataclass(frozen=True)
class SoftHsm:
    """A freshly initialised SoftHSM2 token private to this test session."""

    module: Path
    util: Path
    conf: Path
    label: str
    pin: str
    so_pin: str

    def uri(self, *, pin: bool = True, **path: str) -> str:
        """A ``pkcs11:`` URI for this token: ``path`` attributes (``_`` for ``-``) already encoded."""
        attrs = {"token": self.label, **{name.replace("_", "-"): value for name, value in path.items()}}
        query = f"module-path={self.module}" + (f"&pin-value={self.pin}" if pin else "")
        return "pkcs11:" + ";".join(f"{name}={value}" for name, value in attrs.items()) + "?" + query


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """A SoftHSM2 token ``ccdeploy-test`` (user PIN 1234, SO PIN 5678) in a private token directory."""
    module = _find_module()
    util = shutil.which("softhsm2-util")
    if module is None or util is None:
        missing_component("SoftHSM2", _INSTALL)
    pkcs11 = pytest.importorskip("pkcs11", reason=_NO_PKCS11)

    root = tmp_path_factory.mktemp("softhsm")
    tokens = root / "tokens"
    tokens.mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    # Session-scoped, so no monkeypatch: set SOFTHSM2_CONF by hand and put the old value back after.
    # SoftHSM reads it when the module is initialised, so the module is unloaded again at teardown.
    saved = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        hsm = SoftHsm(module, Path(util), conf, "ccdeploy-test", "1234", "5678")
        subprocess.run(
            [util, "--init-token", "--free", "--label", hsm.label, "--pin", hsm.pin, "--so-pin", hsm.so_pin],
            check=True,
            capture_output=True,
        )
        yield hsm
    finally:
        pkcs11.unload(str(module))
        if saved is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = saved


@pytest.fixture
def pkcs11_kek_uri(softhsm: SoftHsm) -> str:
    """The full URI (PIN included) of a fresh non-extractable AES-256 KEK on the test token."""
    from ccdeploy.kek.pkcs11 import create_pkcs11_kek

    name = uuid.uuid4().hex[:12]
    uri = softhsm.uri(object=f"kek-{name}", id="%" + "%".join(f"{b:02x}" for b in bytes.fromhex(name[:8])))
    create_pkcs11_kek(uri)
    return uri
