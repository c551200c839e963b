"""A simulated Intel TDX guest: quotes and their DCAP collateral from :class:`attestation.simulator.tdx.TdxSimulator`.

Simulated evidence proves nothing about hardware: a broker accepts it only where a policy names the simulator's
root (``trust_roots: {tdx: ...}``) and sets ``unsafe_accept_simulator_roots``. The collateral (TCB Info, QE
Identity, CRLs, signed under the same simulated root) travels with the release request, as a real enclave's
PCCS-cached collateral would.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography import x509

from attestation.simulator.tdx import TdxSimulator, TdxSimulatorKeys
from enclave.attesters._state import load_state, write_state
from enclave.attesters.base import check_report_data
from enclave.attesters.collateral import AttesterCollateral
from enclave.errors import AttesterUnavailable

__all__ = ["TDX_ROOT_FILE", "SimulatorTdxAttester", "load_tdx_state", "write_tdx_state"]

#: The simulated Intel SGX Root CA, as a policy's ``trust_roots.tdx`` names it.
TDX_ROOT_FILE = "root.pem"
_ROLES = ("attestation", "pck", "pck_ca", "root", "tcb_signing")


class SimulatorTdxAttester:
    """TDX quotes with REPORT_DATA = the report data (TDX has no nonce field), under a simulated Intel root.

    Args:
        simulator: The simulated platform and quoting enclave.
        mrtd: The TD's build-time measurement (48 bytes); default: the simulator's.
        debug: Report a debuggable TD.
    """

    name = "simulator-tdx"
    evidence_type = "tdx"

    def __init__(
        self,
        simulator: TdxSimulator,
        *,
        mrtd: bytes | None = None,
        debug: bool = False,
    ) -> None:
        if mrtd is not None and len(mrtd) != 48:
            raise ValueError(f"an MRTD is 48 bytes, got {len(mrtd)}")
        self._simulator = simulator
        self._mrtd = mrtd
        self._debug = debug
        self._collateral: bytes | None = None

    @property
    def root(self) -> x509.Certificate:
        """The simulated Intel SGX Root CA the quotes and collateral chain to."""
        return self._simulator.root

    @property
    def mrtd(self) -> bytes:
        """The MRTD the quotes state."""
        return self._mrtd if self._mrtd is not None else self._simulator.default_mrtd()

    def attest(self, report_data: bytes, nonce: bytes) -> bytes:
        """A signed TDX v4 quote binding ``report_data`` (``nonce`` is bound through it only)."""
        return self._simulator.quote(check_report_data(report_data), mrtd=self.mrtd, debug=self._debug)

    def collateral(self) -> AttesterCollateral:
        """The quotes' DCAP collateral (dcap-qvl JSON; UpToDate, valid around the simulator's creation time)."""
        if self._collateral is None:
            self._collateral = self._simulator.collateral_json()
        return AttesterCollateral(dcap=self._collateral)


def write_tdx_state(directory: str | os.PathLike[str], simulator: TdxSimulator) -> Path:
    """Persist a TDX simulator (keys, creation time, ``root.pem``) so that an enclave process signs under its root.

    Raises:
        AttesterUnavailable: ``directory`` exists but is not a plain directory.
    """
    return write_state(directory, simulator.keys.to_pem(), simulator.at, **{TDX_ROOT_FILE: simulator.root_pem()})


def load_tdx_state(directory: str | os.PathLike[str]) -> TdxSimulator:
    """The TDX simulator written by :func:`write_tdx_state` (its certificates rebuilt exactly).

    Raises:
        AttesterUnavailable: Files missing, unreadable or readable by others, or a root that is not the stored one.
    """
    pems, at = load_state(directory, _ROLES)
    try:
        simulator = TdxSimulator.from_keys(TdxSimulatorKeys.from_pem(pems), at=at)
        stored = x509.load_pem_x509_certificate((Path(directory) / TDX_ROOT_FILE).read_bytes())
    except (OSError, ValueError, KeyError) as exc:
        raise AttesterUnavailable(f"cannot load the TDX simulator state in {directory}: {exc}") from None
    if stored != simulator.root:
        raise AttesterUnavailable(f"{Path(directory) / TDX_ROOT_FILE} is not the root the stored keys make")
    return simulator
