"""Read the claims a Fulcio certificate carries: its subject identity and its OIDC extensions.

The extension OIDs are Sigstore's registered arc ``1.3.6.1.4.1.57264.1`` (fulcio ``docs/oid-info.md``).
Version-1 extensions hold raw UTF-8 bytes; the version-2 ones hold a DER ``UTF8String``.
"""

from __future__ import annotations

from cryptography import x509

from ccdeploy.errors import SignatureInvalid

__all__ = ["FULCIO_EXTENSIONS", "certificate_claims", "subject_identity"]

_ARC = "1.3.6.1.4.1.57264.1."

FULCIO_EXTENSIONS: dict[str, str] = {
    "1": "issuer_v1",
    "2": "github_workflow_trigger",
    "3": "github_workflow_sha",
    "4": "github_workflow_name",
    "5": "github_workflow_repository",
    "6": "github_workflow_ref",
    "8": "issuer",
    "9": "build_signer_uri",
    "10": "build_signer_digest",
    "11": "runner_environment",
    "12": "source_repository_uri",
    "13": "source_repository_digest",
    "14": "source_repository_ref",
    "15": "source_repository_identifier",
    "16": "source_repository_owner_uri",
    "17": "source_repository_owner_identifier",
    "18": "build_config_uri",
    "19": "build_config_digest",
    "20": "build_trigger",
    "21": "run_invocation_uri",
    "22": "source_repository_visibility_at_signing",
}
"""Fulcio extension number (under ``1.3.6.1.4.1.57264.1``) → the name ccdeploy reports it under."""

_RAW_V1 = frozenset({"1", "2", "3", "4", "5", "6"})


def _der_utf8_string(value: bytes) -> str:
    # cryptography hands unknown extensions over as raw DER; a UTF8String is tag 0x0c, then a length.
    if len(value) < 2 or value[0] != 0x0C:
        raise SignatureInvalid("certificate extension is not a DER UTF8String")
    length, offset = value[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(value) < 2 + count:
            raise SignatureInvalid("certificate extension has a bad DER length")
        length = int.from_bytes(value[2 : 2 + count], "big")
        offset = 2 + count
    if len(value) != offset + length:
        raise SignatureInvalid("certificate extension has a bad DER length")
    return _utf8(value[offset:])


def _utf8(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureInvalid("certificate extension is not UTF-8") from None


def certificate_claims(certificate: x509.Certificate) -> dict[str, str]:
    """The Fulcio OIDC extensions of ``certificate``, by ccdeploy name (see :data:`FULCIO_EXTENSIONS`).

    Raises:
        SignatureInvalid: an extension is malformed.
    """
    claims: dict[str, str] = {}
    for extension in certificate.extensions:
        dotted = extension.oid.dotted_string
        if not dotted.startswith(_ARC):
            continue
        number = dotted.removeprefix(_ARC)
        name = FULCIO_EXTENSIONS.get(number)
        if name is None or not isinstance(extension.value, x509.UnrecognizedExtension):
            continue
        raw = extension.value.value
        claims[name] = _utf8(raw) if number in _RAW_V1 else _der_utf8_string(raw)
    return claims


def subject_identity(certificate: x509.Certificate) -> str | None:
    """The signer identity in the certificate's SAN: its first URI, else its first e-mail address."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for kind in (x509.UniformResourceIdentifier, x509.RFC822Name):
        values = san.get_values_for_type(kind)
        if values:
            return str(values[0])
    return None
