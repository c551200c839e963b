"""Claims built directly, for tests of the TEE-neutral layers (appraisal, EAR, results)."""

from __future__ import annotations

from typing import Any

from attestation.claims import Claims, SignerChain, Tee

PCR0 = bytes.fromhex("e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a")
MEASUREMENT = bytes(range(48))
CHIP_ID = bytes(range(64))


def nitro_claims(*, debug: bool = False, nonce: bytes | None = b"nonce-1", **overrides: Any) -> Claims:
    pcrs = {f"pcr{i}": bytes(48) for i in range(16)}
    if not debug:
        pcrs["pcr0"] = PCR0
        pcrs["pcr1"] = bytes([1]) * 48
        pcrs["pcr2"] = bytes([2]) * 48
    fields: dict[str, Any] = {
        "tee": Tee.NITRO,
        "platform": "aws-nitro-enclaves",
        "measurements": pcrs,
        "report_data": None,
        "nonce": nonce,
        "tcb": {},
        "debug": debug,
        "hardware_id": "i-0123-enc0123",
        "signer": SignerChain(("CN=leaf", "CN=root"), "ab" * 32),
    }
    fields.update(overrides)
    return Claims(**fields)


def snp_claims(*, debug: bool = False, report_data: bytes = b"\x01\x02" + bytes(62), **vendor: Any) -> Claims:
    policy_flags = {
        "abi_major": 1,
        "abi_minor": 51,
        "smt": True,
        "migrate_ma": False,
        "debug": debug,
        "single_socket": False,
    }
    fields: dict[str, Any] = {
        "vmpl": 0,
        "guest_svn": 4,
        "policy_flags": policy_flags,
        "host_data": bytes(32),
        "id_key_digest": bytes(48),
        "author_key_digest": bytes(48),
        "family_id": bytes(16),
        "image_id": bytes(16),
    }
    fields.update(vendor)
    return Claims(
        tee=Tee.SEV_SNP,
        platform="amd-sev-snp/Milan",
        measurements={"measurement": MEASUREMENT},
        report_data=report_data,
        nonce=None,
        tcb={"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115},
        debug=debug,
        hardware_id=CHIP_ID.hex(),
        signer=SignerChain(("CN=SEV-VCEK", "CN=SEV-Milan", "CN=ARK-Milan"), "cd" * 32),
        vendor=fields,
    )
