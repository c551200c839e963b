"""Regenerate the forged Nitro attestation documents under tests/assets/forged/nitro/, deterministically.

Every forgery derives from the real document ``../shared/vectors/aws-nitro/blocky-nitrite-2024-09-07.cbor`` or,
where a genuinely signed document is needed (to reach the chain check), from the simulator with the fixed
test-fixture keys committed in ``tests/assets/forged/nitro/keys/``. All signatures are deterministic, so a run
reproduces the committed files byte for byte; ``tests/attestation/nitro`` checks that.

``cases.json`` lists every negative case for ``ccdeploy attest verify EVIDENCE --type nitro --json ARGS``:
the expected error class and exit code. ``{vectors}`` in an evidence path stands for ``../shared/vectors``.

Usage (from the repository root)::

    python -m tests.tools.make_forgeries_nitro           # write the files (keys are created once if absent)
    python -m tests.tools.make_forgeries_nitro --check   # exit 1 if the committed files differ
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from attestation import _cbor
from attestation.simulator.nitro import NitroSimulator, NitroSimulatorKeys

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO.parent / "shared" / "vectors"
OUT_RELATIVE = "tests/assets/forged/nitro"
OUT = REPO / OUT_RELATIVE
KEYS = OUT / "keys"
REAL = "aws-nitro/blocky-nitrite-2024-09-07.cbor"
REAL_DEBUG = "aws-nitro/blocky-nitrite-debug-2024-09-07.cbor"

#: The simulator's CA certificates are valid around this instant; its document is made at SIMULATOR_TIMESTAMP.
SIMULATOR_AT = datetime(2024, 9, 7, 12, 0, 0, tzinfo=UTC)
SIMULATOR_TIMESTAMP = datetime(2024, 9, 7, 14, 40, 0, 250_000, tzinfo=UTC)
SIMULATOR_ROLES = ("root", "regional", "zonal", "instance", "leaf")
IMPOSTOR_ROLE = "impostor-root"

_AT_REAL = "2024-09-07T14:37:40Z"  # within the real leaf's validity (14:37:36 .. 17:37:39)
_AT_DEBUG = "2024-09-07T14:38:07Z"  # within the debug leaf's validity (14:38:03 .. 17:38:06)
_AT_SIMULATOR = "2024-09-07T14:40:01Z"
_SIGNATURE_BYTES = 96


def key_file(role: str) -> str:
    """The fixture file name of the key for ``role`` (a simulator role or the impostor root)."""
    return f"test-fixture-{role}.key.pem"


def generate_keys() -> dict[str, bytes]:
    """Fresh fixture keys (PEM by role); run once, the results are committed."""
    pems = NitroSimulatorKeys.generate().to_pem()
    pems[IMPOSTOR_ROLE] = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pems


def load_keys(directory: Path = KEYS) -> dict[str, bytes]:
    """The committed fixture keys, PEM by role."""
    return {role: (directory / key_file(role)).read_bytes() for role in (*SIMULATOR_ROLES, IMPOSTOR_ROLE)}


def build(vectors: Path, keys: Mapping[str, bytes]) -> dict[str, bytes]:
    """Every generated file (path relative to the forged/nitro directory) and its bytes; pure and deterministic."""
    real = (vectors / REAL).read_bytes()
    debug = (vectors / REAL_DEBUG).read_bytes()
    simulator = NitroSimulator.from_keys(NitroSimulatorKeys.from_pem(keys), at=SIMULATOR_AT)
    files = {
        "flipped-signature.cbor": _flip(real, len(real) - 1),
        "flipped-pcr0.cbor": _flip(real, real.index(_payload(real)["pcrs"][0])),
        "truncated.cbor": real[:-1],
        "swapped-leaf.cbor": _reencode(real, certificate=_payload(debug)["certificate"]),
        "reordered-cabundle-real.cbor": _reencode(real, cabundle=_swap_regional_zonal(_payload(real)["cabundle"])),
        "alg-unprotected.cbor": _alg_unprotected(real),
        "wrong-root.pem": _impostor_root(keys[IMPOSTOR_ROLE]),
        "simulator-root.pem": simulator.root_pem(),
        "simulator.cbor": simulator.document(timestamp=SIMULATOR_TIMESTAMP, nonce=b"forged-nitro nonce"),
        "reordered-cabundle-simulator.cbor": simulator.document(
            timestamp=SIMULATOR_TIMESTAMP, nonce=b"forged-nitro nonce", cabundle_order=(0, 2, 1, 3)
        ),
    }
    files["cases.json"] = (json.dumps(cases(), indent=2) + "\n").encode()
    return files


def cases() -> list[dict[str, Any]]:
    """The negative cases, as the CLI test runs them."""
    out = OUT_RELATIVE
    real, debug = f"{{vectors}}/{REAL}", f"{{vectors}}/{REAL_DEBUG}"
    simulator_root = ["--root", f"{out}/simulator-root.pem"]
    at_simulator = ["--at", _AT_SIMULATOR]
    rows: list[tuple[str, str, list[str], str]] = [
        ("flipped-signature-byte", f"{out}/flipped-signature.cbor", ["--at", _AT_REAL], "BadSignature"),
        ("flipped-payload-byte-pcr0", f"{out}/flipped-pcr0.cbor", ["--at", _AT_REAL], "BadSignature"),
        ("truncated-by-one-byte", f"{out}/truncated.cbor", ["--at", _AT_REAL], "MalformedEvidence"),
        ("leaf-of-another-document", f"{out}/swapped-leaf.cbor", ["--at", _AT_REAL], "BadSignature"),
        ("wrong-root", real, ["--at", _AT_REAL, "--root", f"{out}/wrong-root.pem"], "BadChain"),
        ("leaf-expired-by-one-second", real, ["--at", "2024-09-07T17:37:40Z"], "Expired"),
        ("leaf-not-yet-valid-by-one-second", real, ["--at", "2024-09-07T14:37:35Z"], "NotYetValid"),
        (
            "reordered-cabundle-resigned",
            f"{out}/reordered-cabundle-simulator.cbor",
            [*at_simulator, *simulator_root, "--unsafe-trust-simulator-root"],
            "BadChain",
        ),
        (
            "reordered-cabundle-real-signature",
            f"{out}/reordered-cabundle-real.cbor",
            ["--at", _AT_REAL],
            "BadSignature",
        ),
        ("alg-only-in-unprotected-header", f"{out}/alg-unprotected.cbor", ["--at", _AT_REAL], "MalformedEvidence"),
        ("debug-enclave-without-allow-debug", debug, ["--at", _AT_DEBUG], "DebugNotAllowed"),
        (
            "simulator-root-without-unsafe-flag",
            f"{out}/simulator.cbor",
            [*at_simulator, *simulator_root],
            "UntrustedSimulatorRoot",
        ),
        ("simulator-document-against-aws-root", f"{out}/simulator.cbor", at_simulator, "BadChain"),
    ]
    return [
        {"name": name, "evidence": evidence, "args": args, "error": error, "exit": 1}
        for name, evidence, args, error in rows
    ]


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def _envelope(document: bytes) -> list[Any]:
    envelope = _cbor.decode(document, what="real document")
    if not isinstance(envelope, list):
        raise TypeError("the real document is not a COSE_Sign1 array")
    return envelope


def _payload(document: bytes) -> dict[str, Any]:
    payload = _cbor.decode(_envelope(document)[2], what="real payload")
    if not isinstance(payload, dict):
        raise TypeError("the real payload is not a map")
    return {str(key): value for key, value in payload.items()}


def _reencode(document: bytes, **replaced: Any) -> bytes:
    """The document with payload fields replaced and the original signature kept (so it no longer verifies)."""
    protected, unprotected, _, signature = _envelope(document)
    payload = _payload(document) | replaced
    return _cbor.encode([protected, unprotected, _cbor.encode(payload), signature])


def _swap_regional_zonal(cabundle: list[bytes]) -> list[bytes]:
    return [cabundle[0], cabundle[2], cabundle[1], *cabundle[3:]]


def _alg_unprotected(document: bytes) -> bytes:
    _, _, payload, signature = _envelope(document)
    return _cbor.encode([b"", {1: -35}, payload, signature])


def _impostor_root(pem: bytes) -> bytes:
    """A self-signed root with the AWS root's exact subject and validity but a fixture key: trusted by name, it
    would pass; by DER equality (as the verifier compares), it must not."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError("the impostor key is not an EC key")
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Amazon"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "AWS"),
            x509.NameAttribute(NameOID.COMMON_NAME, "aws.nitro-enclaves"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x1CEB00DA)
        .not_valid_before(datetime(2019, 10, 28, 13, 28, 5, tzinfo=UTC))
        .not_valid_after(datetime(2049, 10, 28, 14, 28, 5, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA384(), ecdsa_deterministic=True)
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def differences(expected: Mapping[str, bytes], directory: Path) -> list[str]:
    """Names of generated files that are missing or differ in ``directory``, and files there it would not write."""
    present = {
        p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file() and p.parent == directory
    }
    changed = [
        name
        for name, data in expected.items()
        if not (directory / name).is_file() or (directory / name).read_bytes() != data
    ]
    return sorted(changed + [f"{name} (not generated)" for name in present - expected.keys()])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    args = parser.parse_args(argv)
    if not all((KEYS / key_file(role)).is_file() for role in (*SIMULATOR_ROLES, IMPOSTOR_ROLE)):
        if args.check:
            print(f"{KEYS} lacks the fixture keys", file=sys.stderr)
            return 1
        KEYS.mkdir(parents=True, exist_ok=True)
        for role, pem in generate_keys().items():
            (KEYS / key_file(role)).write_bytes(pem)
    expected = build(VECTORS, load_keys())
    if args.check:
        stale = differences(expected, OUT)
        for name in stale:
            print(f"{OUT_RELATIVE}/{name} differs from what the script generates", file=sys.stderr)
        return 1 if stale else 0
    for name, data in expected.items():
        (OUT / name).write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
