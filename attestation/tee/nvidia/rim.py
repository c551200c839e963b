"""NVIDIA Reference Integrity Manifests (RIMs): SWID tags (ISO/IEC 19770-2) with an enveloped XMLDSig.

:func:`verify_rim` checks, in this order:

1. the document parses with a hardened parser (no DTD, no entities, no network, size limit) and carries exactly one
   ``ds:Signature``, a child of the root, whose KeyInfo lists the signer chain leaf first;
2. that chain leads to a trusted NVIDIA RIM signing root and every certificate is valid at the instant of the check;
3. the signature, ECDSA P-384 with SHA-384 over the whole document (one reference, ``URI=""``), verifies with
   the validated leaf (signxml, given that certificate, so signxml trusts nothing in KeyInfo itself).

Only then are the version and measurements read, and only from the element signxml returns as signed: text
outside it (a second, unsigned copy of the payload) is never looked at.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from cryptography import x509
from lxml import etree
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidCertificate, InvalidSignature, SignXMLException
from signxml.verifier import SignatureConfiguration, XMLVerifier

from attestation._x509 import load_certificate_der
from attestation.errors import BadChain, BadSignature, MalformedEvidence
from attestation.tee.nvidia.chain import ValidatedChain, validate_chain

SWID_NS = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
#: The namespace of the ``Hash0``..``HashN`` attributes of a measurement resource (SHA-384 values).
SHA384_NS = "http://www.w3.org/2001/04/xmlenc#sha384"
#: Real RIMs are about 20 KiB.
MAX_RIM_BYTES = 4 << 20
MAX_ALTERNATIVES = 64
_VBIOS_VERSION = re.compile(r"[0-9A-Fa-f]{2}(\.[0-9A-Fa-f]{2}){4}")
_DRIVER_VERSION = re.compile(r"[0-9]+(\.[0-9]+){1,3}")
_BOOLEANS = {"true": True, "false": False}


class RimKind(enum.StrEnum):
    """Which firmware a RIM describes, told apart by the form of its version."""

    DRIVER = "driver"
    VBIOS = "vbios"

    @property
    def label(self) -> str:
        """The name people read: ``driver`` or ``VBIOS``."""
        return "VBIOS" if self is RimKind.VBIOS else "driver"


class RimMalformed(MalformedEvidence):
    """A RIM is not a SWID tag of the expected shape."""


@dataclass(frozen=True, slots=True)
class RimMeasurement:
    """One ``Resource type="Measurement"``: the values SPDM block ``index + 1`` may take."""

    index: int
    name: str
    active: bool
    size: int
    alternatives: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Rim:
    """A RIM whose signature and signer chain verified.

    Attributes:
        tag_id: The SWID ``tagId``.
        name: The SWID ``name`` (the GPU, e.g. ``GH100``).
        version: The ``Meta`` element's ``colloquialVersion``: the driver or VBIOS version described.
        kind: Driver or VBIOS RIM.
        measurements: Measurement resources by RIM index (0-based).
        chain: The validated signer chain.
    """

    tag_id: str
    name: str
    version: str
    kind: RimKind
    measurements: Mapping[int, RimMeasurement]
    chain: ValidatedChain


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )


def _parse(document: bytes) -> etree._Element:
    if len(document) > MAX_RIM_BYTES:
        raise RimMalformed(f"RIM of {len(document)} bytes is over the {MAX_RIM_BYTES}-byte limit")
    if b"<!DOCTYPE" in document or b"<!ENTITY" in document:
        raise RimMalformed("RIM carries a document type declaration, which is refused")
    try:
        root = etree.fromstring(document, parser=_parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise RimMalformed(f"RIM is not well-formed XML: {exc}") from None
    if root is None or root.getroottree().docinfo.doctype:
        raise RimMalformed("RIM is empty or carries a document type declaration")
    return root


def _signer_certificates(root: etree._Element) -> list[x509.Certificate]:
    signatures = root.findall(f".//{{{DSIG_NS}}}Signature")
    if len(signatures) != 1 or signatures[0].getparent() is not root:
        raise RimMalformed(f"RIM must carry exactly one ds:Signature under its root, found {len(signatures)}")
    texts = signatures[0].findall(f"{{{DSIG_NS}}}KeyInfo/{{{DSIG_NS}}}X509Data/{{{DSIG_NS}}}X509Certificate")
    if not texts:
        raise BadChain("the RIM signature carries no X509Certificate to verify it with")
    certs = []
    for position, element in enumerate(texts):
        try:
            der = base64.b64decode("".join((element.text or "").split()), validate=True)
        except (binascii.Error, ValueError):
            raise RimMalformed(f"RIM KeyInfo certificate {position} is not base64") from None
        certs.append(load_certificate_der(der, f"RIM KeyInfo certificate {position}"))
    return certs


def _check_signature(document: bytes, leaf: x509.Certificate, at: datetime) -> etree._Element:
    config = SignatureConfiguration(
        require_x509=True,
        location="./",
        expect_references=1,
        signature_methods=frozenset({SignatureMethod.ECDSA_SHA384}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA384}),
        verification_time=at,
    )
    try:
        result = XMLVerifier().verify(document, x509_cert=leaf, parser=_parser(), expect_config=config)
    except InvalidCertificate as exc:
        raise BadChain(f"RIM signer certificate refused: {exc}") from None
    except InvalidSignature as exc:
        raise BadSignature(f"RIM signature does not verify: {exc}") from None
    except (SignXMLException, ValueError, TypeError, KeyError, AttributeError, etree.LxmlError) as exc:
        raise RimMalformed(f"RIM signature cannot be processed: {type(exc).__name__}: {exc}") from None
    signed = getattr(result, "signed_xml", None)
    if not isinstance(signed, etree._Element) or signed.tag != f"{{{SWID_NS}}}SoftwareIdentity":
        raise BadSignature("the RIM signature does not cover the SoftwareIdentity document")
    return signed


def _attribute(element: etree._Element, name: str, what: str) -> str:
    value = element.get(name)
    if not isinstance(value, str) or not value.strip():
        raise RimMalformed(f"RIM {what} has no {name!r} attribute")
    return value.strip()


def _number(text: str, what: str) -> int:
    if not text.isdigit() or len(text) > 6:
        raise RimMalformed(f"RIM {what} is not a small non-negative integer: {text[:20]!r}")
    return int(text)


def _measurement(resource: etree._Element) -> RimMeasurement:
    index = _number(_attribute(resource, "index", "measurement"), "measurement index")
    what = f"measurement {index}"
    active_text = _attribute(resource, "active", what).lower()
    if active_text not in _BOOLEANS:
        raise RimMalformed(f"RIM {what}: active is neither True nor False")
    size = _number(_attribute(resource, "size", what), f"{what} size")
    count = _number(_attribute(resource, "alternatives", what), f"{what} alternatives")
    if not 1 <= count <= MAX_ALTERNATIVES:
        raise RimMalformed(f"RIM {what}: {count} alternatives (1..{MAX_ALTERNATIVES} allowed)")
    values = []
    for position in range(count):
        text = _attribute(resource, f"{{{SHA384_NS}}}Hash{position}", what)
        try:
            value = bytes.fromhex(text)
        except ValueError:
            raise RimMalformed(f"RIM {what}: Hash{position} is not hex") from None
        if len(value) != size:
            raise RimMalformed(f"RIM {what}: Hash{position} has {len(value)} bytes, size says {size}")
        values.append(value)
    return RimMeasurement(
        index=index,
        name=resource.get("name", ""),
        active=_BOOLEANS[active_text],
        size=size,
        alternatives=tuple(values),
    )


def _kind(version: str) -> RimKind:
    if _VBIOS_VERSION.fullmatch(version):
        return RimKind.VBIOS
    if _DRIVER_VERSION.fullmatch(version):
        return RimKind.DRIVER
    raise RimMalformed(f"RIM version {version[:40]!r} is neither a driver nor a VBIOS version")


def read_signed_rim(signed: etree._Element, chain: ValidatedChain) -> Rim:
    """Read a RIM's identity and measurements from its signed ``SoftwareIdentity`` element."""
    meta = signed.findall(f"{{{SWID_NS}}}Meta")
    payload = signed.findall(f"{{{SWID_NS}}}Payload")
    if len(meta) != 1 or len(payload) != 1:
        raise RimMalformed("RIM must have exactly one Meta and one Payload element")
    version = _attribute(meta[0], "colloquialVersion", "Meta")
    measurements: dict[int, RimMeasurement] = {}
    for resource in payload[0].findall(f"{{{SWID_NS}}}Resource"):
        if resource.get("type") != "Measurement":
            continue
        measurement = _measurement(resource)
        if measurement.index in measurements:
            raise RimMalformed(f"RIM measurement index {measurement.index} appears twice")
        measurements[measurement.index] = measurement
    if not measurements:
        raise RimMalformed("RIM has no measurements")
    return Rim(
        tag_id=signed.get("tagId", ""),
        name=_attribute(signed, "name", "SoftwareIdentity"),
        version=version,
        kind=_kind(version),
        measurements=MappingProxyType(dict(sorted(measurements.items()))),
        chain=chain,
    )


def verify_rim(
    document: bytes,
    *,
    at: datetime,
    roots: Sequence[x509.Certificate],
    allow_simulator: bool,
) -> Rim:
    """Verify a RIM's signer chain and signature at ``at`` and return its signed content (see module docstring).

    Raises:
        RimMalformed: Not a SWID tag with one enveloped signature and well-formed measurements.
        BadChain, UntrustedSimulatorRoot: The signer chain does not lead to a trusted RIM root.
        Expired, NotYetValid: A signer certificate is not valid at ``at``.
        BadSignature: The XML signature does not verify (e.g. a measurement was altered).
    """
    root = _parse(bytes(document))
    chain = validate_chain(_signer_certificates(root), roots, at=at, allow_simulator=allow_simulator, what="RIM signer")
    signed = _check_signature(bytes(document), chain.leaf, at)
    return read_signed_rim(signed, chain)
