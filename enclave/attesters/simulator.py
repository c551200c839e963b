"""Simulated attesters: real vendor formats under a locally generated root (the demo default).

Simulated evidence proves nothing about hardware. A broker accepts it only where a model's policy names the
simulator's root and sets ``unsafe_accept_simulator_roots``; :func:`write_simulator_state` writes that root
(``root.pem``) beside the simulator keys so that the enclave and the policy can name the same one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.simulator.nitro import NitroSimulator, NitroSimulatorKeys
from attestation.simulator.snp import DEFAULT_POLICY, SnpSimulator
from enclave.attesters._state import check_private, read_keys, state_directory, write_keys, write_private
from enclave.attesters.base import check_report_data
from enclave.errors import AttesterUnavailable

__all__ = [
    "ROOT_FILE",
    "SimulatorNitroAttester",
    "SimulatorSnpAttester",
    "load_simulator_state",
    "write_simulator_state",
]

#: The simulated Nitro root certificate, as a policy's ``trust_roots`` names it.
ROOT_FILE = "root.pem"
_MAX_NITRO_FIELD = 1024  # the NSM's limit for user_data, nonce and public_key


class SimulatorNitroAttester:
    """Nitro attestation documents from an :class:`~attestation.simulator.nitro.NitroSimulator`.

    ``user_data`` carries the report data, ``nonce`` the raw nonce, ``public_key`` is null, as the real NSM
    attester sends them.

    Args:
        simulator: The simulator whose keys sign the documents.
        clock: Returns the document timestamp (timezone-aware).
        pcrs: PCR values replacing the simulator's defaults (the "measurement" a policy pins).
        debug: Report a debug-mode enclave (PCR0-2 zero).
    """

    name = "simulator-nitro"
    evidence_type = "nitro"

    def __init__(
        self,
        simulator: NitroSimulator,
        clock: Callable[[], datetime],
        pcrs: Mapping[int, bytes] | None = None,
        debug: bool = False,
    ) -> None:
        self._simulator = simulator
        self._clock = clock
        self._pcrs = dict(pcrs) if pcrs is not None else None
        self._debug = debug

    @property
    def root(self) -> x509.Certificate:
        """The root certificate the documents chain to."""
        return self._simulator.root

    def attest(self, report_data: bytes, nonce: bytes) -> bytes:
        """A signed Nitro document with ``user_data=report_data`` and ``nonce=nonce``.

        Raises:
            ValueError: ``report_data`` is not 64 bytes, or ``nonce`` is empty or over the NSM's 1024 bytes.
        """
        user_data = check_report_data(report_data)
        if not 0 < len(nonce) <= _MAX_NITRO_FIELD:
            raise ValueError(f"the nonce must be 1 to {_MAX_NITRO_FIELD} bytes, got {len(nonce)}")
        return self._simulator.document(
            timestamp=self._clock(),
            pcrs=self._pcrs,
            debug=self._debug,
            nonce=bytes(nonce),
            user_data=user_data,
            public_key=None,
        )


class SimulatorSnpAttester:
    """SEV-SNP attestation reports from an :class:`~attestation.simulator.snp.SnpSimulator`.

    The report data goes into REPORT_DATA; SNP has no separate nonce field, so the nonce is bound only through
    the report data. The evidence is the bare 1184-byte report, as ``/dev/sev-guest`` returns it; the verifier
    needs the VCEK as collateral (:attr:`vcek_certificate`).

    Args:
        simulator: The simulated AMD product that signs the reports.
        measurement: The launch measurement (48 bytes) the reports state.
        debug: Report a guest policy that allows debugging.
        policy: The guest policy (without the debug bit).
    """

    name = "simulator-snp"
    evidence_type = "sev-snp"

    def __init__(
        self,
        simulator: SnpSimulator,
        measurement: bytes = bytes(48),
        debug: bool = False,
        policy: int = DEFAULT_POLICY,
    ) -> None:
        if len(measurement) != 48:
            raise ValueError(f"an SNP measurement is 48 bytes, got {len(measurement)}")
        self._simulator = simulator
        self._measurement = bytes(measurement)
        self._debug = debug
        self._policy = policy

    @property
    def root(self) -> x509.Certificate:
        """The simulated ARK the reports chain to."""
        return self._simulator.ark

    @property
    def vcek_certificate(self) -> x509.Certificate:
        """The VCEK certificate that verifies this attester's reports (the TCB and chip id do not change)."""
        return self._simulator.report(measurement=self._measurement).signing_cert

    def attest(self, report_data: bytes, nonce: bytes) -> bytes:
        """A signed 1184-byte report with REPORT_DATA = ``report_data`` (``nonce`` is bound through it only)."""
        data = check_report_data(report_data)
        report = self._simulator.report(
            measurement=self._measurement, report_data=data, debug=self._debug, policy=self._policy
        )
        return report.report


def write_simulator_state(directory: str | os.PathLike[str], simulator: NitroSimulator) -> Path:
    """Persist a Nitro simulator's keys and root so that another process can sign under the same root.

    Writes ``root.pem`` (the root certificate a policy names) and ``<role>-key.pem`` for the five P-384 keys,
    each mode 0600, in ``directory`` (created, or tightened, to mode 0700). Existing files are replaced.

    Returns:
        The directory.

    Raises:
        AttesterUnavailable: ``directory`` exists but is not a directory, or is a symbolic link.
    """
    path = state_directory(directory)
    write_private(path / ROOT_FILE, simulator.root_pem())
    write_keys(path, simulator.keys.to_pem())
    return path


def load_simulator_state(directory: str | os.PathLike[str], at: datetime) -> NitroSimulator:
    """A Nitro simulator signing under the root kept in ``directory``, its intermediates issued around ``at``.

    The root is the stored ``root.pem`` itself (verifiers compare roots byte for byte); the regional, zonal and
    instance certificates are re-issued around ``at`` because they live only days, as AWS's do.

    Raises:
        AttesterUnavailable: Files are missing, unreadable, readable by others, or the root does not belong to
            the stored root key.
    """
    path = Path(directory)
    try:
        check_private(path)
        pems = read_keys(path, (field.name for field in fields(NitroSimulatorKeys)))
        root_path = path / ROOT_FILE
        root = x509.load_pem_x509_certificate(root_path.read_bytes())
        keys = NitroSimulatorKeys.from_pem(pems)
    except (OSError, ValueError) as exc:
        raise AttesterUnavailable(f"cannot load the simulator state in {path}: {exc}") from None
    if _spki(root.public_key()) != _spki(keys.root.public_key()):
        raise AttesterUnavailable(f"{path / ROOT_FILE} is not the certificate of the stored root key")
    fresh = NitroSimulator.from_keys(keys, at=at)
    return NitroSimulator(keys, (root, *fresh.cabundle[1:]))


def _spki(public_key: object) -> bytes:
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        return b""
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
