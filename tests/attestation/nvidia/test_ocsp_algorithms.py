"""An OCSP answer naming an algorithm the verifier does not know is a typed error, not a crash."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from attestation.collateral import Collateral
from attestation.simulator.nvidia import NvidiaGpuSimulator
from attestation.tee.nvidia import NvidiaGpuVerifier
from attestation.tee.nvidia.ocsp import OcspMalformed

AT = datetime(2025, 1, 1, tzinfo=UTC)
SHA384_OID = bytes.fromhex("0609608648016503040202")
UNKNOWN_OID = bytes.fromhex("060960864801650304027f")


def test_unknown_hash_algorithm_in_an_ocsp_answer() -> None:
    sim = NvidiaGpuSimulator.create(at=AT)
    answer = sim.ocsp_responses(at=AT)[0]
    assert SHA384_OID in answer  # the CertID hash, the first SHA-384 OID of the answer
    forged = answer.replace(SHA384_OID, UNKNOWN_OID, 1)
    collateral = Collateral(certificates=sim.device_chain, rims=(sim.driver_rim(), sim.vbios_rim()), ocsp=(forged,))
    verifier = NvidiaGpuVerifier(rim_roots=[sim.rim_root])
    with pytest.raises(OcspMalformed):
        verifier.verify(
            sim.report(bytes(32)),
            at=AT,
            roots=[sim.device_root],
            collateral=collateral,
            fetcher=None,
            allow_simulator=True,
        )
