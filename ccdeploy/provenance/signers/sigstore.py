"""Sigstore keyless signing: an OIDC identity -> a Fulcio certificate -> a Rekor entry -> a bundle.

URIs:

* ``sigstore:`` (or ``sigstore:production``): the public-good instance, trust material refreshed over TUF;
* ``sigstore:staging``: the public staging instance, also over TUF;
* ``sigstore:?trust-config=PATH`` (or :attr:`SignerOptions.trust_config`): a private deployment described
  by a ClientTrustConfig JSON (trusted root + signing config); nothing is fetched besides the services it names.

The identity token is :attr:`SignerOptions.identity_token` when given, else the ambient credential of the
CI system (GitHub Actions, GitLab, Buildkite, CircleCI, Google Cloud) as sigstore-python detects it.

Signing is sigstore-python's own client (``SigningContext`` / ``Signer``): one ephemeral key and one Fulcio
certificate serve every statement this signer signs. Each bundle is verified against the trusted root
before it is returned, so a Fulcio or Rekor answer that does not chain to the configured roots never
leaves the signer.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, ClassVar, Literal, NoReturn
from urllib.parse import parse_qs, urlsplit

import requests
from cryptography import x509
from id import GitHubOidcPermissionCredentialError

# sigstore-python 4.5.1 raises these service errors from its internal clients and exports them nowhere else.
from sigstore._internal.fulcio.client import ExpiredCertificate, FulcioClientError
from sigstore._internal.rekor import RekorClientError
from sigstore.dsse import Statement
from sigstore.errors import Error as SigstoreError
from sigstore.errors import VerificationError
from sigstore.models import Bundle, ClientTrustConfig
from sigstore.oidc import ExpiredIdentity, IdentityError, IdentityToken, detect_credential
from sigstore.sign import Signer, SigningContext
from sigstore.verify import Verifier

from ccdeploy.errors import SignerError, SignerUnavailable
from ccdeploy.provenance.signers.base import SignerOptions, StatementSigner

__all__ = ["IN_TOTO_PAYLOAD_TYPE", "SigstoreInstance", "SigstoreSigner", "load_trust_config"]

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
"""The only DSSE payload type Sigstore keyless signing accepts (sigstore-python signs in-toto statements)."""

SigstoreInstance = Literal["production", "staging", "custom"]

_NAMED_INSTANCES: dict[str, SigstoreInstance] = {"": "production", "production": "production", "staging": "staging"}
_OID_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_OID_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")

_NO_IDENTITY_MESSAGE = (
    "Sigstore keyless signing needs an OIDC identity token and none was found: pass one with "
    "--identity-token, or run in CI with ambient OIDC credentials (GitHub Actions: `permissions: id-token: write`; "
    "GitLab CI: an `id_tokens:` entry SIGSTORE_ID_TOKEN with `aud: sigstore`; Buildkite, CircleCI and Google Cloud "
    "are detected too)"
)
_GITHUB_PERMISSION = (
    "this GitHub Actions job may not request an OIDC token: grant the workflow or job `permissions: id-token: write` "
    "(pull requests from forks never get one), or pass --identity-token"
)


def _parse_uri(uri: str, options: SignerOptions) -> tuple[SigstoreInstance, Path | None]:
    parts = urlsplit(uri)
    if parts.scheme.lower() != "sigstore" or parts.netloc or parts.fragment:
        raise SignerError(
            f"not a Sigstore signer URI: {uri!r} (expected sigstore:, sigstore:staging or sigstore:?trust-config=PATH)"
        )
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise SignerError(f"malformed query in Sigstore signer URI {uri!r}") from None
    unknown = sorted(set(query) - {"trust-config"})
    if unknown:
        raise SignerError(f"unknown parameter(s) in Sigstore signer URI {uri!r}: {', '.join(unknown)}")
    values = query.get("trust-config", [])
    if len(values) > 1 or (values and not values[0]):
        raise SignerError(f"Sigstore signer URI {uri!r} must name exactly one trust-config path")
    uri_config = Path(values[0]) if values else None
    if uri_config is not None and options.trust_config is not None and uri_config != options.trust_config:
        raise SignerError("two different Sigstore trust configs were given (URI trust-config= and --trust-config)")
    trust_config = uri_config or options.trust_config

    name = parts.path.lower()
    if name not in _NAMED_INSTANCES:
        raise SignerError(
            f"unknown Sigstore instance {parts.path!r}: use sigstore:, sigstore:staging, "
            "or sigstore:?trust-config=PATH for a private deployment"
        )
    if trust_config is not None:
        if name:
            raise SignerError(f"sigstore:{name} names a public instance: drop the name to sign with a trust config")
        return "custom", trust_config
    return _NAMED_INSTANCES[name], None


def load_trust_config(instance: SigstoreInstance, path: Path | None = None) -> ClientTrustConfig:
    """The ClientTrustConfig of ``instance``: refreshed over TUF for the public ones, read from ``path`` otherwise.

    Raises:
        SignerError: the trust config file is missing, malformed, or names no usable Fulcio or Rekor (exit 2).
        SignerUnavailable: the TUF repository of a public instance could not be refreshed (exit 3).
    """
    if instance == "custom":
        if path is None:
            raise SignerError("a private Sigstore deployment needs a trust config (sigstore:?trust-config=PATH)")
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SignerError(f"cannot read the Sigstore trust config {path}: {exc.strerror or exc}") from exc
        try:
            config = ClientTrustConfig.from_json(raw)
            config.signing_config  # noqa: B018 - parse now: no Fulcio/Rekor in it is a usage error, not a later one
            config.trusted_root  # noqa: B018
        except (ValueError, SigstoreError) as exc:
            raise SignerError(f"{path} is not a usable Sigstore ClientTrustConfig: {_first_line(exc)}") from exc
        return config
    try:
        # The public instances rotate keys and move services: refresh their TUF repository as sigstore does.
        return ClientTrustConfig.production() if instance == "production" else ClientTrustConfig.staging()
    except SigstoreError as exc:
        raise SignerUnavailable(
            f"could not refresh the Sigstore {instance} trust root over TUF: {_first_line(exc)}"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _ambient_token() -> str | None:
    try:
        return detect_credential()
    except IdentityError as exc:
        _raise_ambient_error(exc)


def _raise_ambient_error(exc: IdentityError) -> NoReturn:
    if isinstance(exc.__cause__, GitHubOidcPermissionCredentialError):
        raise SignerError(_GITHUB_PERMISSION) from exc
    # Drop what id's messages append after the reason (HTTP bodies, tool output): never echo them.
    reason = _first_line(exc).split(" (code=", 1)[0].split(" encountered an error", 1)[0]
    if "Environment variable" in reason or "could not find" in reason:
        raise SignerError(f"ambient OIDC credentials are misconfigured: {reason}") from exc
    raise SignerUnavailable(f"could not obtain the ambient OIDC identity token: {reason}") from exc


def _identity_token(explicit: str | None) -> IdentityToken:
    raw = explicit if explicit is not None else _ambient_token()
    if raw is None:
        raise SignerError(_NO_IDENTITY_MESSAGE)
    try:
        return IdentityToken(raw.strip())
    except IdentityError as exc:
        raise SignerError(
            f"the OIDC identity token is unusable for Sigstore ({_first_line(exc)}); it must be a current JWT "
            "with aud 'sigstore'"
        ) from None


def _http_status(exc: BaseException | None) -> int | None:
    while exc is not None:
        if isinstance(exc, requests.HTTPError) and exc.response is not None:
            return exc.response.status_code
        if exc.args and isinstance(exc.args[0], requests.HTTPError):
            exc = exc.args[0]
            continue
        exc = exc.__cause__
    return None


def _service_failed(service: str, url: str, exc: BaseException) -> NoReturn:
    status = _http_status(exc)
    if service == "Fulcio" and status is not None and 400 <= status < 500:
        raise SignerError(f"Fulcio at {url} refused the identity token or request (HTTP {status})") from exc
    detail = f"HTTP {status}" if status is not None else f"{type(exc).__name__}: {_first_line(exc)}"
    raise SignerUnavailable(f"{service} at {url} failed: {detail}") from exc


@contextmanager
def _service_errors(service: str, url: str) -> Iterator[None]:
    """Turn what sigstore-python raises while talking to ``service`` into ccdeploy's signer errors."""
    try:
        yield
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise SignerUnavailable(f"cannot reach {service} at {url}: {type(exc).__name__}") from exc
    except ExpiredIdentity as exc:
        raise SignerError("the OIDC identity token expired before Fulcio issued a certificate") from exc
    except ExpiredCertificate as exc:
        raise SignerError("the Fulcio signing certificate expired: sign with a fresh signer") from exc
    except VerificationError as exc:
        raise SignerError(
            f"{service} at {url} answered with material that does not verify against the trusted root "
            f"({_first_line(exc)}): the trust config does not match the service"
        ) from exc
    except (
        FulcioClientError,
        RekorClientError,
        requests.RequestException,
        SigstoreError,
        ValueError,  # malformed service answers: pydantic ValidationError, bad base64 or JSON
        KeyError,
        TypeError,
    ) as exc:
        _service_failed(service, url, exc)


class _IssuedCertificate:
    """Verification policy of the self-check: the bundle carries the certificate Fulcio issued to this signer.

    Who that certificate names was decided by Fulcio from the token; the caller's verify step pins it.
    """

    def __init__(self, certificate: x509.Certificate) -> None:
        self._certificate = certificate

    def verify(self, cert: x509.Certificate) -> None:
        if cert != self._certificate:
            raise VerificationError("the bundle does not carry this signer's Fulcio certificate")


def _certificate_identity(cert: x509.Certificate) -> tuple[str | None, str | None]:
    identity: str | None = None
    with contextlib.suppress(x509.ExtensionNotFound):
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        values = [*san.get_values_for_type(x509.RFC822Name), *san.get_values_for_type(x509.UniformResourceIdentifier)]
        identity = values[0] if values else None
    issuer: str | None = None
    for oid in (_OID_ISSUER_V1, _OID_ISSUER_V2):
        with contextlib.suppress(x509.ExtensionNotFound):
            value = cert.extensions.get_extension_for_oid(oid).value
            raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
            if oid == _OID_ISSUER_V2 and raw[:1] == b"\x0c" and len(raw) > 2 and raw[1] < 0x80:
                raw = raw[2:]  # a short DER UTF8String: the only form Fulcio writes
            if raw:
                issuer = raw.decode("utf-8", errors="replace")
                break
    return identity, issuer


class SigstoreSigner(StatementSigner):
    """Signs in-toto statements keylessly with Sigstore (Fulcio certificate + Rekor entry).

    One ephemeral P-256 key and one Fulcio certificate, requested on the first signature, serve every
    later :meth:`sign_dsse` call of this signer.
    """

    scheme: ClassVar[str] = "sigstore"

    def __init__(
        self, trust_config: ClientTrustConfig, identity_token: IdentityToken, *, instance: SigstoreInstance = "custom"
    ) -> None:
        """Build a signer from a loaded trust config and identity token (see :meth:`from_uri`).

        Raises:
            SignerError: the trust config names no usable Fulcio, Rekor or trusted root.
        """
        try:
            signing_config = trust_config.signing_config
            self._context = SigningContext.from_trust_config(trust_config)
            self._verifier = Verifier(trusted_root=trust_config.trusted_root)
            self._fulcio_url = signing_config.get_fulcio().url
            # Rekor v1 and v2 clients both keep "<base>/api/vN" in `url`; the submitter ABC does not declare it.
            rekor_api: str = getattr(signing_config.get_tlogs()[0], "url", "")
            self._rekor_url = rekor_api.rsplit("/api/", 1)[0]
        except (ValueError, SigstoreError) as exc:
            raise SignerError(f"the Sigstore trust config is unusable: {_first_line(exc)}") from exc
        self._token = identity_token
        self._instance = instance
        self._stack = ExitStack()
        self._signer: Signer | None = None
        self._certificate: x509.Certificate | None = None

    @classmethod
    def from_uri(cls, uri: str, options: SignerOptions) -> SigstoreSigner:
        """``sigstore:``, ``sigstore:staging`` or ``sigstore:?trust-config=PATH``.

        Raises:
            SignerError: malformed URI or trust config, no identity token, or an unusable token (exit 2).
            SignerUnavailable: TUF or the CI identity provider could not be reached (exit 3).
        """
        instance, path = _parse_uri(uri, options)
        trust_config = load_trust_config(instance, path)
        return cls(trust_config, _identity_token(options.identity_token), instance=instance)

    def _ephemeral_signer(self) -> Signer:
        if self._signer is None:
            with _service_errors("Fulcio", self._fulcio_url):
                # cache=True: the key and certificate are made here, once, and reused by every sign_dsse.
                self._signer = self._stack.enter_context(self._context.signer(self._token, cache=True))
        return self._signer

    def sign_dsse(self, payload: bytes, payload_type: str) -> dict[str, Any]:
        """Sign the in-toto Statement ``payload`` (its bytes kept exactly) into a Sigstore bundle v0.3.

        Raises:
            SignerError: not an in-toto statement, a refused token, or answers that fail the trusted root.
            SignerUnavailable: Fulcio or Rekor could not be reached or failed.
        """
        if payload_type != IN_TOTO_PAYLOAD_TYPE:
            raise SignerError(
                f"Sigstore keyless signing signs in-toto statements only ({IN_TOTO_PAYLOAD_TYPE}), not {payload_type!r}"
            )
        try:
            # Statement(bytes) keeps the exact bytes it is given as the DSSE payload (no re-serialisation).
            statement = Statement(payload)
        except SigstoreError as exc:
            raise SignerError(f"the payload is not an in-toto Statement v1: {_first_line(exc)}") from exc
        signer = self._ephemeral_signer()
        with _service_errors("Rekor", self._rekor_url):
            bundle = signer.sign_dsse(statement)
        self._check(bundle, payload)
        document: dict[str, Any] = json.loads(bundle.to_json())
        return document

    def _check(self, bundle: Bundle, payload: bytes) -> None:
        """Verify the new bundle offline against the trusted root before anyone sees it (fail closed)."""
        certificate = bundle.signing_certificate
        if self._certificate is None:
            self._certificate = certificate
        try:
            payload_type, signed = self._verifier.verify_dsse(bundle, _IssuedCertificate(self._certificate))
        except VerificationError as exc:
            raise SignerError(
                f"the bundle from Fulcio {self._fulcio_url} and Rekor {self._rekor_url} does not verify against "
                f"the trusted root ({_first_line(exc)}): the trust config does not match the services"
            ) from exc
        if payload_type != IN_TOTO_PAYLOAD_TYPE or signed != payload:
            raise SignerError("the signed DSSE envelope does not carry the exact statement bytes given")

    def describe(self) -> dict[str, Any]:
        """``{"kind": "sigstore", "instance", "identity", "issuer", "fulcio", "rekor"}``; never the token.

        Before the first signature the identity and issuer come from the token's claims; after it, from the
        Fulcio certificate (its SAN and OIDC-issuer extension), which is what verifiers match.
        """
        identity: str | None = self._token.identity
        issuer: str | None = self._token.federated_issuer
        if self._certificate is not None:
            cert_identity, cert_issuer = _certificate_identity(self._certificate)
            identity = cert_identity or identity
            issuer = cert_issuer or issuer
        return {
            "kind": "sigstore",
            "instance": self._instance,
            "identity": identity,
            "issuer": issuer,
            "fulcio": self._fulcio_url,
            "rekor": self._rekor_url,
        }

    @property
    def certificate(self) -> x509.Certificate | None:
        """The Fulcio certificate every signature of this signer carries (None before the first)."""
        return self._certificate

    def close(self) -> None:
        """Forget the ephemeral key and certificate."""
        self._stack.close()
        self._signer = None
        self._certificate = None
