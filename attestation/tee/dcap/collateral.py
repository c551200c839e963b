"""Intel DCAP collateral, from dcap-qvl's ``QuoteCollateralV3`` JSON or from raw Intel PCS v4 responses.

The TCB Info and QE Identity signatures cover the exact bytes of the ``tcbInfo`` / ``enclaveIdentity`` JSON value
as Intel serialised it. Those bytes are kept as they came (never re-serialised) and parsed once into typed values.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass, field

from cryptography import x509

from attestation._x509 import X509_PARSE_ERRORS, load_certificates
from attestation.errors import MalformedEvidence
from attestation.tee.dcap.errors import MalformedCollateral
from attestation.tee.dcap.models import QeIdentity, TcbInfo, load_json_object, parse_qe_identity, parse_tcb_info

#: Collateral documents are small; larger inputs are refused before parsing.
MAX_COLLATERAL_SIZE = 1 << 20
_PEM_CRL = b"-----BEGIN X509 CRL-----"


@dataclass(frozen=True, slots=True)
class DcapCollateral:
    """Everything besides the quote that a DCAP verification needs.

    Attributes:
        tcb_info_json: The exact signed bytes of the TCB Info document.
        tcb_info_signature: Its ECDSA P-256 signature, raw r‖s (64 bytes).
        tcb_issuer_chain: The TCB Signing certificate and its issuer(s), leaf first.
        qe_identity_json: The exact signed bytes of the QE Identity document.
        qe_identity_signature: Its ECDSA P-256 signature, raw r‖s.
        qe_identity_issuer_chain: The chain of the QE Identity's signer (PCS uses the TCB Signing certificate).
        pck_crl: The CRL of the PCK Platform or Processor CA.
        pck_crl_issuer_chain: The chain of that CRL's issuer.
        root_ca_crl: The Intel SGX Root CA's CRL.
        tcb_info: The TCB Info, parsed from ``tcb_info_json`` on construction.
        qe_identity: The QE Identity, parsed from ``qe_identity_json`` on construction.
    """

    tcb_info_json: bytes
    tcb_info_signature: bytes
    tcb_issuer_chain: tuple[x509.Certificate, ...]
    qe_identity_json: bytes
    qe_identity_signature: bytes
    qe_identity_issuer_chain: tuple[x509.Certificate, ...]
    pck_crl: x509.CertificateRevocationList
    pck_crl_issuer_chain: tuple[x509.Certificate, ...]
    root_ca_crl: x509.CertificateRevocationList
    tcb_info: TcbInfo = field(init=False, compare=False)
    qe_identity: QeIdentity = field(init=False, compare=False)

    def __post_init__(self) -> None:
        # The typed documents are always parsed from the signed bytes here, so they cannot differ from what the
        # signatures cover.
        for name, signature in (("TCB Info", self.tcb_info_signature), ("QE Identity", self.qe_identity_signature)):
            if len(signature) != 64:
                raise MalformedCollateral(f"the {name} signature must be 64 bytes (raw r||s), not {len(signature)}")
        object.__setattr__(self, "tcb_info", parse_tcb_info(self.tcb_info_json))
        object.__setattr__(self, "qe_identity", parse_qe_identity(self.qe_identity_json))

    @classmethod
    def from_dcap_qvl_json(cls, data: bytes) -> DcapCollateral:
        """Load dcap-qvl's ``QuoteCollateralV3`` JSON.

        ``tcb_info`` / ``qe_identity`` are the exact signed JSON strings, ``*_signature`` hex, ``*_issuer_chain``
        PEM, ``pck_crl`` / ``root_ca_crl`` hex DER.

        Raises:
            MalformedCollateral: Any field is missing or does not decode.
        """
        _check_size(data, "the collateral")
        document = load_json_object(data, "dcap-qvl collateral")

        def text(key: str) -> str:
            value = document.get(key)
            if not isinstance(value, str):
                raise MalformedCollateral(f"dcap-qvl collateral: {key!r} must be a string")
            return value

        return _build(
            tcb_info=_utf8(text("tcb_info"), "tcb_info"),
            tcb_info_signature=_hex(text("tcb_info_signature"), "tcb_info_signature"),
            tcb_issuer_chain=_utf8(text("tcb_info_issuer_chain"), "tcb_info_issuer_chain"),
            qe_identity=_utf8(text("qe_identity"), "qe_identity"),
            qe_identity_signature=_hex(text("qe_identity_signature"), "qe_identity_signature"),
            qe_identity_issuer_chain=_utf8(text("qe_identity_issuer_chain"), "qe_identity_issuer_chain"),
            pck_crl=_hex(text("pck_crl"), "pck_crl"),
            pck_crl_issuer_chain=_utf8(text("pck_crl_issuer_chain"), "pck_crl_issuer_chain"),
            root_ca_crl=_hex(text("root_ca_crl"), "root_ca_crl"),
        )

    @classmethod
    def from_pcs(
        cls,
        *,
        tcb_info: bytes,
        qe_identity: bytes,
        tcb_issuer_chain: bytes,
        pck_crl: bytes,
        pck_crl_issuer_chain: bytes,
        root_ca_crl: bytes,
        qe_identity_issuer_chain: bytes | None = None,
    ) -> DcapCollateral:
        """Load raw Intel PCS v4 (or PCCS) responses.

        Args:
            tcb_info: The TCB Info response body, ``{"tcbInfo": {...}, "signature": "<hex>"}``.
            qe_identity: The QE Identity response body, ``{"enclaveIdentity": {...}, "signature": "<hex>"}``.
            tcb_issuer_chain: The ``TCB-Info-Issuer-Chain`` header: PEM, URL-encoded or not.
            pck_crl: The PCK CRL, DER or PEM (PCCS's hex-encoded DER also accepted).
            pck_crl_issuer_chain: The ``SGX-PCK-CRL-Issuer-Chain`` header.
            root_ca_crl: The Intel SGX Root CA CRL, DER or PEM (or hex DER).
            qe_identity_issuer_chain: The ``SGX-Enclave-Identity-Issuer-Chain`` header; default: the TCB chain,
                which is the chain PCS sends for both.

        Raises:
            MalformedCollateral: A body, chain or CRL does not decode.
        """
        tcb_json, tcb_signature = _signed_value(tcb_info, "tcbInfo")
        qe_json, qe_signature = _signed_value(qe_identity, "enclaveIdentity")
        return _build(
            tcb_info=tcb_json,
            tcb_info_signature=tcb_signature,
            tcb_issuer_chain=_unquote(tcb_issuer_chain),
            qe_identity=qe_json,
            qe_identity_signature=qe_signature,
            qe_identity_issuer_chain=_unquote(
                tcb_issuer_chain if qe_identity_issuer_chain is None else qe_identity_issuer_chain
            ),
            pck_crl=pck_crl,
            pck_crl_issuer_chain=_unquote(pck_crl_issuer_chain),
            root_ca_crl=root_ca_crl,
        )


def _build(
    *,
    tcb_info: bytes,
    tcb_info_signature: bytes,
    tcb_issuer_chain: bytes,
    qe_identity: bytes,
    qe_identity_signature: bytes,
    qe_identity_issuer_chain: bytes,
    pck_crl: bytes,
    pck_crl_issuer_chain: bytes,
    root_ca_crl: bytes,
) -> DcapCollateral:
    return DcapCollateral(
        tcb_info_json=tcb_info,
        tcb_info_signature=tcb_info_signature,
        tcb_issuer_chain=_chain(tcb_issuer_chain, "the TCB Info issuer chain"),
        qe_identity_json=qe_identity,
        qe_identity_signature=qe_identity_signature,
        qe_identity_issuer_chain=_chain(qe_identity_issuer_chain, "the QE Identity issuer chain"),
        pck_crl=load_crl(pck_crl, "the PCK CRL"),
        pck_crl_issuer_chain=_chain(pck_crl_issuer_chain, "the PCK CRL issuer chain"),
        root_ca_crl=load_crl(root_ca_crl, "the root CA CRL"),
    )


def _check_size(data: bytes, what: str) -> None:
    if not isinstance(data, bytes):
        raise MalformedCollateral(f"{what} must be bytes")
    if len(data) > MAX_COLLATERAL_SIZE:
        raise MalformedCollateral(f"{what} is larger than {MAX_COLLATERAL_SIZE} bytes")


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedCollateral(f"{what} is not valid UTF-8 text") from None


def _hex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise MalformedCollateral(f"{what} is not hex") from None


def _unquote(chain: bytes) -> bytes:
    """PCS sends issuer chains in headers as URL-encoded PEM; plain PEM passes through unchanged."""
    _check_size(chain, "an issuer chain")
    if b"%" not in chain:  # PEM itself never contains "%"
        return chain
    try:
        return urllib.parse.unquote_to_bytes(chain.decode("ascii"))
    except UnicodeDecodeError:
        raise MalformedCollateral("an issuer chain is neither PEM nor URL-encoded PEM") from None


def _chain(pem: bytes, what: str) -> tuple[x509.Certificate, ...]:
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise MalformedCollateral(f"{what} is not PEM certificates")
    try:
        certs = load_certificates(pem, what)
    except MalformedEvidence as exc:
        raise MalformedCollateral(exc.message) from None
    if not certs:
        raise MalformedCollateral(f"{what} holds no certificate")
    return certs


def load_crl(data: bytes, what: str) -> x509.CertificateRevocationList:
    """A CRL given as DER, PEM, or hex-encoded DER (as PCCS serves some), parsed completely."""
    _check_size(data, what)
    # Only text forms are stripped: DER may well end in a byte that looks like white space.
    text = data.strip()
    if re.fullmatch(rb"[0-9a-fA-F]+", text) and len(text) % 2 == 0:
        data = bytes.fromhex(text.decode("ascii"))
    try:
        crl = x509.load_pem_x509_crl(text) if text.startswith(_PEM_CRL) else x509.load_der_x509_crl(data)
        # Fields are decoded lazily; touch them now so a malformed CRL fails here, typed.
        crl.issuer.rfc4514_string()
        crl.last_update_utc  # noqa: B018
        crl.next_update_utc  # noqa: B018
        for entry in crl:
            entry.serial_number  # noqa: B018
    except X509_PARSE_ERRORS as exc:  # some only when a lazily decoded field is read
        raise MalformedCollateral(f"{what} is not a DER or PEM CRL that parses: {type(exc).__name__}") from None
    return crl


def _signed_value(body: bytes, key: str) -> tuple[bytes, bytes]:
    """The exact bytes of ``body[key]`` and the hex ``signature`` of a PCS response body."""
    _check_size(body, f"the {key} response")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedCollateral(f"the {key} response is not UTF-8") from None
    document = load_json_object(body, f"the {key} response")
    signature = document.get("signature")
    if not isinstance(signature, str) or not isinstance(document.get(key), dict):
        raise MalformedCollateral(f"the PCS response must be {{{key!r}: {{...}}, 'signature': '<hex>'}}")
    raw = _raw_member(text, key)
    return raw.encode("utf-8"), _hex(signature, f"the {key} signature")


def _raw_member(text: str, key: str) -> str:
    """The source text of the top-level member ``key``, found by walking the object with ``raw_decode``."""
    decoder = json.JSONDecoder()
    found: str | None = None
    try:
        index = _skip(text, 0)
        if text[index] != "{":
            raise ValueError("not an object")
        index = _skip(text, index + 1)
        while text[index] != "}":
            name, index = decoder.raw_decode(text, index)
            index = _skip(text, index)
            if text[index] != ":":
                raise ValueError("expected ':'")
            start = _skip(text, index + 1)
            _value, end = decoder.raw_decode(text, start)
            if name == key:
                if found is not None:
                    raise ValueError(f"duplicate member {key!r}")
                found = text[start:end]
            index = _skip(text, end)
            if text[index] == ",":
                index = _skip(text, index + 1)
    except (ValueError, IndexError, RecursionError) as exc:
        raise MalformedCollateral(f"the PCS response could not be scanned for {key!r}: {exc}") from None
    if found is None:
        raise MalformedCollateral(f"the PCS response has no {key!r}")
    return found


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\n\r":
        index += 1
    return index
