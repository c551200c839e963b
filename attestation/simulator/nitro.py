"""Simulated AWS Nitro Enclaves attestation documents, in the exact format the Nitro Secure Module emits.

Documents are byte-for-byte shaped like real ones: an untagged COSE_Sign1 with protected header ``{1: -35}``
and an empty unprotected map, the payload map in the Nitro order (``module_id``, ``digest``, ``timestamp``,
``pcrs``, ``certificate``, ``cabundle``, ``public_key``, ``user_data``, ``nonce``), 16 PCRs of 48 bytes, and a
chain shaped like AWS's: root → regional → zonal → instance → a per-document leaf without an authority key
identifier, valid about three hours. Every certificate names :data:`attestation._x509.SIMULATOR_ORGANIZATION`,
so verifiers refuse the chain unless simulator roots are explicitly trusted.

All signatures are deterministic (RFC 6979), so fixed keys and fixed times give byte-identical documents.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from attestation import _cbor
from attestation._x509 import SIMULATOR_ORGANIZATION
from attestation.simulator._keys import EcKeySet

INSTANCE_ID = "i-00000000000000000"
DEFAULT_MODULE_ID = f"{INSTANCE_ID}-enc0000000000000000"
REGION = "us-east-1"
PCR_COUNT = 16
PCR_BYTES = 48
#: The leaf is issued per document: from 3 s before its timestamp (whole seconds) to 3 h after, as AWS does.
LEAF_LEAD = timedelta(seconds=3)
LEAF_LIFETIME = timedelta(hours=3)

_PROTECTED = _cbor.encode({1: -35})  # ES384
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DOMAIN = "simulator.nitro-enclaves"
_MAX_COMMON_NAME = 64  # RFC 5280 ub-common-name
_CA_USAGE = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
_INSTANCE_USAGE = x509.KeyUsage(False, False, False, False, False, True, False, False, False)
_LEAF_USAGE = x509.KeyUsage(True, True, False, False, False, False, False, False, False)
# (not_before before `at`, not_after after `at`) for each CA, roughly the lifetimes AWS uses.
_CA_WINDOWS = {
    "root": (timedelta(days=1), timedelta(days=30 * 365)),
    "regional": (timedelta(days=3), timedelta(days=17)),
    "zonal": (timedelta(hours=3), timedelta(days=3)),
    "instance": (timedelta(hours=1, minutes=30), timedelta(days=1)),
}


def default_pcrs() -> dict[int, bytes]:
    """The PCRs a simulated document reports unless told otherwise: PCR0-2 and PCR4 set, the others zero."""
    pcrs = dict.fromkeys(range(PCR_COUNT), bytes(PCR_BYTES))
    for index in (0, 1, 2, 4):
        pcrs[index] = hashlib.sha384(f"ccdeploy simulator PCR{index}".encode()).digest()
    return pcrs


@dataclass(frozen=True, slots=True)
class NitroSimulatorKeys(EcKeySet):
    """The five P-384 keys of a simulated Nitro chain (root, regional, zonal, instance CAs and the leaf)."""

    curve: ClassVar[type[ec.EllipticCurve]] = ec.SECP384R1

    root: ec.EllipticCurvePrivateKey
    regional: ec.EllipticCurvePrivateKey
    zonal: ec.EllipticCurvePrivateKey
    instance: ec.EllipticCurvePrivateKey
    leaf: ec.EllipticCurvePrivateKey


class NitroSimulator:
    """Issues Nitro attestation documents under a locally generated, never-trusted-by-default root.

    Build one with :meth:`create` (fresh keys) or :meth:`from_keys` (fixed keys, reproducible output).
    The CA certificates are valid around the ``at`` given there; each document gets its own leaf certificate,
    valid from 3 s before the document's timestamp for 3 h, so documents verify at their own timestamp.
    """

    def __init__(self, keys: NitroSimulatorKeys, cabundle: tuple[x509.Certificate, ...]) -> None:
        self._keys = keys
        self._cabundle = cabundle

    @classmethod
    def create(cls, *, at: datetime) -> NitroSimulator:
        """A simulator with fresh P-384 keys whose CA certificates are valid around ``at``."""
        return cls.from_keys(NitroSimulatorKeys.generate(), at=at)

    @classmethod
    def from_keys(cls, keys: NitroSimulatorKeys, *, at: datetime) -> NitroSimulator:
        """A simulator with the given keys whose CA certificates are valid around ``at`` (reproducible)."""
        at = _whole_seconds(at)
        names = _ca_names(keys)
        issuers = {"root": "root", "regional": "root", "zonal": "regional", "instance": "zonal"}
        path_lengths = {"root": None, "regional": 2, "zonal": 1, "instance": 0}
        certs: dict[str, x509.Certificate] = {}
        for role, issuer in issuers.items():
            before, after = _CA_WINDOWS[role]
            builder = _builder(names[role], names[issuer], getattr(keys, role).public_key(), at - before, at + after)
            builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_lengths[role]), True)
            builder = builder.add_extension(_INSTANCE_USAGE if role == "instance" else _CA_USAGE, True)
            builder = builder.add_extension(
                x509.SubjectKeyIdentifier.from_public_key(getattr(keys, role).public_key()), False
            )
            if role != "root":
                aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(getattr(keys, issuer).public_key())
                builder = builder.add_extension(aki, False)
            certs[role] = _sign(builder, getattr(keys, issuer))
        return cls(keys, (certs["root"], certs["regional"], certs["zonal"], certs["instance"]))

    @property
    def keys(self) -> NitroSimulatorKeys:
        """The simulator's private keys."""
        return self._keys

    @property
    def root(self) -> x509.Certificate:
        """The simulated root certificate (pass it as a root, with simulator roots explicitly allowed)."""
        return self._cabundle[0]

    @property
    def cabundle(self) -> tuple[x509.Certificate, ...]:
        """The CA certificates as documents carry them: root, regional, zonal, instance."""
        return self._cabundle

    def root_pem(self) -> bytes:
        """The root certificate as PEM."""
        return self.root.public_bytes(serialization.Encoding.PEM)

    def leaf_certificate(self, *, timestamp: datetime, module_id: str = DEFAULT_MODULE_ID) -> x509.Certificate:
        """The signing certificate of a document made at ``timestamp`` (no authority key identifier, as AWS's)."""
        start = _whole_seconds(timestamp) - LEAF_LEAD
        name = _name(f"{module_id}.{REGION}.simulator"[:_MAX_COMMON_NAME])
        instance = self._cabundle[-1]
        builder = _builder(
            name, instance.subject, self._keys.leaf.public_key(), start, start + LEAF_LEAD + LEAF_LIFETIME
        )
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        builder = builder.add_extension(_LEAF_USAGE, False)
        return _sign(builder, self._keys.instance)

    def document(
        self,
        *,
        timestamp: datetime,
        pcrs: Mapping[int, bytes] | None = None,
        debug: bool = False,
        nonce: bytes | None = None,
        user_data: bytes | None = None,
        public_key: bytes | None = None,
        module_id: str = DEFAULT_MODULE_ID,
        cabundle_order: Sequence[int] | None = None,
    ) -> bytes:
        """A signed attestation document.

        Args:
            timestamp: When the document says it was made (kept to the millisecond); must fall within the CA
                certificates' validity for the document to verify.
            pcrs: PCR values replacing those of :func:`default_pcrs` (indices 0-31, 48 bytes each).
            debug: Report a debug-mode enclave: PCR0, PCR1 and PCR2 all zero (after ``pcrs`` is applied).
            nonce: The caller's nonce (at most 1024 bytes); ``None`` encodes as null.
            user_data: The caller's data (at most 1024 bytes); ``None`` encodes as null.
            public_key: The enclave's public key (at most 1024 bytes); ``None`` encodes as null.
            module_id: The enclave id.
            cabundle_order: Emit the CA certificates in this order of indices into :attr:`cabundle` (root = 0)
                instead of root first; only for forging negative tests.

        Returns:
            The untagged COSE_Sign1 bytes.
        """
        values = default_pcrs()
        values.update(pcrs or {})
        if debug:
            values.update(dict.fromkeys((0, 1, 2), bytes(PCR_BYTES)))
        _check_pcrs(values)
        order = range(len(self._cabundle)) if cabundle_order is None else cabundle_order
        leaf = self.leaf_certificate(timestamp=timestamp, module_id=module_id)
        payload = {
            "module_id": module_id,
            "digest": "SHA384",
            "timestamp": _milliseconds(timestamp),
            "pcrs": dict(sorted(values.items())),
            "certificate": _der(leaf),
            "cabundle": [_der(self._cabundle[index]) for index in order],
            "public_key": public_key,
            "user_data": user_data,
            "nonce": nonce,
        }
        return self.sign(_cbor.encode(payload))

    def sign(self, payload: bytes) -> bytes:
        """Wrap ``payload`` in an untagged COSE_Sign1 signed (ES384, deterministically) with the leaf key."""
        to_be_signed = _cbor.encode(["Signature1", _PROTECTED, b"", payload])
        der = self._keys.leaf.sign(to_be_signed, ec.ECDSA(hashes.SHA384(), deterministic_signing=True))
        r, s = decode_dss_signature(der)
        return _cbor.encode([_PROTECTED, {}, payload, r.to_bytes(48, "big") + s.to_bytes(48, "big")])


def _check_pcrs(pcrs: Mapping[int, bytes]) -> None:
    for index, value in pcrs.items():
        if not 0 <= index < 32 or len(value) != PCR_BYTES:
            raise ValueError(f"PCR{index}: indices are 0-31 and values {PCR_BYTES} bytes")


def _whole_seconds(when: datetime) -> datetime:
    if when.utcoffset() is None:
        raise ValueError("times given to the simulator must be timezone-aware")
    return when.astimezone(UTC).replace(microsecond=0)


def _milliseconds(when: datetime) -> int:
    if when.utcoffset() is None:
        raise ValueError("times given to the simulator must be timezone-aware")
    return (when - _EPOCH) // timedelta(milliseconds=1)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, SIMULATOR_ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "AWS"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_tag(key: ec.EllipticCurvePrivateKey) -> str:
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()[:16]


def _ca_names(keys: NitroSimulatorKeys) -> dict[str, x509.Name]:
    return {
        "root": _name(_DOMAIN),
        "regional": _name(f"{_key_tag(keys.regional)}.{REGION}.{_DOMAIN}"),
        "zonal": _name(f"{_key_tag(keys.zonal)}.zonal.{REGION}.{_DOMAIN}"),
        "instance": _name(f"{INSTANCE_ID}.{REGION}.{_DOMAIN}"),
    }


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    # Serial numbers derive from the certificate's contents so that fixed keys and times reproduce every byte.
    seed = subject.public_bytes() + public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    seed += not_before.isoformat().encode()
    serial = int.from_bytes(hashlib.sha256(seed).digest()[:16], "big") >> 1 | 1
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def _sign(builder: x509.CertificateBuilder, issuer_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    return builder.sign(issuer_key, hashes.SHA384(), ecdsa_deterministic=True)
