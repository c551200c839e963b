"""A loopback double of the Sigstore services, good enough for sigstore-python's real clients.

One ``ThreadingHTTPServer`` on 127.0.0.1 plays four parts:

* an OIDC issuer: mints ES256/RS256 JWTs and answers the GitHub Actions token request
  (``ACTIONS_ID_TOKEN_REQUEST_URL``) so ambient detection fetches a real token over HTTP;
* Fulcio v2 (``POST /api/v2/signingCert``): checks the token's signature against the issuer key,
  the CSR's proof of possession, and issues a short-lived code-signing leaf from a local CA with the
  identity SAN, the issuer extensions and an embedded SCT signed by a CT log key;
* Rekor v1 (``POST /api/v1/log/entries``, ``dsse`` 0.0.1): verifies the envelope signature, appends
  the canonical entry to a real RFC 6962 Merkle tree and answers with integratedTime, logID, a SET
  and an inclusion proof whose checkpoint is a C2SP signed note;
* the trust material: ``client_trust_config()`` is the ClientTrustConfig JSON sigstore-python loads.

There is no TSA: sigstore-python 4.5.1 signs with Rekor v1 alone (the SET supplies the signed time).
This is test code that serves protocols, never a place the library imports from.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import rfc8785
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

AUDIENCE = "sigstore"
OID_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OID_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
OID_SCT_LIST = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
DSSE_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def _der_tlv(tag: int, content: bytes) -> bytes:
    # cryptography has no public DER encoder for the raw values of UnrecognizedExtension.
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    """RFC 6962 key ID: SHA-256 of the DER SubjectPublicKeyInfo (sigstore's log IDs)."""
    return hashlib.sha256(_spki(key)).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _whole_seconds(moment: dt.datetime) -> dt.datetime:
    return moment.replace(microsecond=0)


class MerkleTree:
    """An append-only RFC 6962 Merkle tree (leaf hashes kept in memory)."""

    def __init__(self) -> None:
        self._leaves: list[bytes] = []

    @staticmethod
    def leaf_hash(data: bytes) -> bytes:
        return hashlib.sha256(b"\x00" + data).digest()

    @staticmethod
    def _node(left: bytes, right: bytes) -> bytes:
        return hashlib.sha256(b"\x01" + left + right).digest()

    def append(self, data: bytes) -> int:
        self._leaves.append(self.leaf_hash(data))
        return len(self._leaves) - 1

    @property
    def size(self) -> int:
        return len(self._leaves)

    def root(self, size: int | None = None) -> bytes:
        return self._mth(self._leaves[: self.size if size is None else size])

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 6962 §2.1.1 PATH(index, D[0:size]), lowest level first."""
        return self._path(index, self._leaves[:size])

    @classmethod
    def _split(cls, n: int) -> int:
        k = 1
        while k * 2 < n:
            k *= 2
        return k

    @classmethod
    def _mth(cls, leaves: list[bytes]) -> bytes:
        if not leaves:
            return hashlib.sha256(b"").digest()
        if len(leaves) == 1:
            return leaves[0]
        k = cls._split(len(leaves))
        return cls._node(cls._mth(leaves[:k]), cls._mth(leaves[k:]))

    @classmethod
    def _path(cls, index: int, leaves: list[bytes]) -> list[bytes]:
        if len(leaves) <= 1:
            return []
        k = cls._split(len(leaves))
        if index < k:
            return [*cls._path(index, leaves[:k]), cls._mth(leaves[k:])]
        return [*cls._path(index - k, leaves[k:]), cls._mth(leaves[:k])]


@dataclass
class SigstoreDouble:
    """Keys, CA and log state of the double; ``serve()`` puts it on a loopback port."""

    base_url: str = ""
    oidc_ec_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    oidc_rsa_key: rsa.RSAPrivateKey | None = None
    ca_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP384R1()))
    ct_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    rekor_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    actions_request_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    """The bearer token GitHub Actions hands a job to request its OIDC token (ACTIONS_ID_TOKEN_REQUEST_TOKEN)."""
    actions_claims: dict[str, Any] = field(default_factory=dict)
    """Claims of the token the Actions endpoint issues (``sub``, ``job_workflow_ref``, ...)."""
    cert_lifetime: dt.timedelta = dt.timedelta(minutes=10)
    tree: MerkleTree = field(default_factory=MerkleTree)
    requests: list[str] = field(default_factory=list)
    """``METHOD path`` of every request served, for tests that count round trips."""
    issued: list[x509.Certificate] = field(default_factory=list)
    rekor_failure: int | None = None
    """When set, Rekor answers every entry with this HTTP status (an outage or a rejection)."""
    tree_id: int = field(default_factory=lambda: secrets.randbelow(2**63))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ca_cert: x509.Certificate | None = None

    # ---- identities ---------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        """The OIDC issuer URL this double plays (``iss`` of its tokens, the certificates' issuer extension)."""
        return f"{self.base_url}/oidc"

    @property
    def actions_token_url(self) -> str:
        return f"{self.base_url}/oidc/actions-token"

    def mint_token(
        self,
        *,
        subject: str = "ci@example.com",
        email: str | None = "ci@example.com",
        issuer: str | None = None,
        audience: str = AUDIENCE,
        lifetime: dt.timedelta = dt.timedelta(minutes=5),
        algorithm: str = "ES256",
        extra: dict[str, Any] | None = None,
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
    ) -> str:
        """An OIDC identity token signed by this issuer (or by ``key``, to forge one)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer or self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + int(lifetime.total_seconds()),
            **({"email": email, "email_verified": True} if email is not None else {}),
            **(extra or {}),
        }
        signing_key = key or (self._rsa_key() if algorithm.startswith("RS") else self.oidc_ec_key)
        return jwt.encode(claims, signing_key, algorithm=algorithm, headers={"kid": algorithm.lower()})

    def _rsa_key(self) -> rsa.RSAPrivateKey:
        if self.oidc_rsa_key is None:
            self.oidc_rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self.oidc_rsa_key

    def _check_token(self, token: str) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        key: Any = (
            self._rsa_key().public_key()
            if str(header.get("alg", "")).startswith("RS")
            else self.oidc_ec_key.public_key()
        )
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["ES256", "RS256"],
            audience=AUDIENCE,
            issuer=self.issuer,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
        return claims

    # ---- Fulcio -------------------------------------------------------------------------------

    @property
    def ca_cert(self) -> x509.Certificate:
        if self._ca_cert is None:
            name = x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ccdeploy-test"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "sigstore-double"),
                ]
            )
            now = _whole_seconds(dt.datetime.now(dt.UTC))
            ski = x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key())
            self._ca_cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(self.ca_key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=365))
                .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=False,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=True,
                        crl_sign=True,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .add_extension(ski, critical=False)
                .sign(self.ca_key, hashes.SHA384())
            )
        return self._ca_cert

    def _san_for(self, claims: dict[str, Any]) -> x509.GeneralName:
        # Fulcio's rules, reduced: email issuers bind the email, GitHub Actions the workflow ref, else the subject URI.
        if isinstance(claims.get("email"), str):
            return x509.RFC822Name(claims["email"])
        if isinstance(claims.get("job_workflow_ref"), str):
            return x509.UniformResourceIdentifier(f"https://github.com/{claims['job_workflow_ref']}")
        return x509.UniformResourceIdentifier(str(claims["sub"]))

    def issue_certificate(self, public_key: ec.EllipticCurvePublicKey, claims: dict[str, Any]) -> x509.Certificate:
        """Issue a leaf as Fulcio does: precertificate TBS -> SCT -> final certificate with the SCT embedded."""
        issuer_str = str(claims["iss"])
        now = _whole_seconds(dt.datetime.now(dt.UTC))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.ca_cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + self.cert_lifetime)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectAlternativeName([self._san_for(claims)]), critical=True)
            .add_extension(x509.UnrecognizedExtension(OID_ISSUER_V1, issuer_str.encode()), critical=False)
            .add_extension(
                x509.UnrecognizedExtension(OID_ISSUER_V2, _der_tlv(0x0C, issuer_str.encode())), critical=False
            )
        )
        precert = builder.sign(self.ca_key, hashes.SHA384())
        sct = self._sign_sct(precert.tbs_certificate_bytes, now)
        sct_list = struct.pack("!H", len(sct)) + sct
        sct_value = _der_tlv(0x04, struct.pack("!H", len(sct_list)) + sct_list)
        cert = builder.add_extension(x509.UnrecognizedExtension(OID_SCT_LIST, sct_value), critical=False).sign(
            self.ca_key, hashes.SHA384()
        )
        # The SCT signs the precertificate TBS; the final TBS minus the SCT list must be exactly that.
        assert cert.tbs_precertificate_bytes == precert.tbs_certificate_bytes
        with self._lock:
            self.issued.append(cert)
        return cert

    def _sign_sct(self, tbs: bytes, moment: dt.datetime) -> bytes:
        """RFC 6962 §3.2 SignedCertificateTimestamp (v1, precert entry) over ``tbs``."""
        timestamp_ms = int(moment.timestamp()) * 1000  # whole seconds: sigstore re-derives ms through a float
        issuer_key_hash = _key_id(self.ca_key.public_key())
        extensions = b""
        signed = (
            struct.pack("!BBQH", 0, 0, timestamp_ms, 1)
            + issuer_key_hash
            + len(tbs).to_bytes(3, "big")
            + tbs
            + struct.pack("!H", len(extensions))
            + extensions
        )
        signature = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return (
            struct.pack("!B", 0)
            + _key_id(self.ct_key.public_key())
            + struct.pack("!QH", timestamp_ms, len(extensions))
            + extensions
            + struct.pack("!BBH", 4, 3, len(signature))  # sha256, ecdsa
            + signature
        )

    def _fulcio_signing_cert(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return 401, {"code": 16, "message": "missing bearer token"}
        try:
            claims = self._check_token(auth[7:].strip())
        except jwt.PyJWTError as exc:
            return 401, {"code": 16, "message": f"invalid identity token: {type(exc).__name__}"}
        try:
            csr_pem = base64.b64decode(json.loads(body)["certificateSigningRequest"])
            csr = x509.load_pem_x509_csr(csr_pem)
        except (ValueError, KeyError, TypeError):
            return 400, {"code": 3, "message": "malformed certificate signing request"}
        public_key = csr.public_key()
        if not csr.is_signature_valid or not isinstance(public_key, ec.EllipticCurvePublicKey):
            return 400, {"code": 3, "message": "the CSR does not prove possession of an ECDSA key"}
        cert = self.issue_certificate(public_key, claims)
        chain = [c.public_bytes(serialization.Encoding.PEM).decode() for c in (cert, self.ca_cert)]
        return 201, {"signedCertificateEmbeddedSct": {"chain": {"certificates": chain}}}

    # ---- Rekor --------------------------------------------------------------------------------

    @property
    def rekor_log_id(self) -> bytes:
        return _key_id(self.rekor_key.public_key())

    @property
    def checkpoint_origin(self) -> str:
        return f"rekor.double - {self.tree_id}"

    def _checkpoint(self, size: int, root: bytes) -> str:
        note = f"{self.checkpoint_origin}\n{size}\n{_b64(root)}\n"
        signature = self.rekor_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        # Rekor's key hint is the first four bytes of its log ID (what sigstore-python checks).
        return f"{note}\n\u2014 rekor.double {_b64(self.rekor_log_id[:4] + signature)}\n"

    def _rekor_create_entry(self, body: bytes) -> tuple[int, dict[str, Any]]:
        if self.rekor_failure is not None:
            return self.rekor_failure, {"code": self.rekor_failure, "message": "the log is unavailable"}
        try:
            proposed = json.loads(body)
            if proposed.get("kind") != "dsse" or proposed.get("apiVersion") != "0.0.1":
                return 400, {"code": 400, "message": "this double accepts dsse 0.0.1 entries only"}
            content = proposed["spec"]["proposedContent"]
            envelope_json: str = content["envelope"]
            envelope = json.loads(envelope_json)
            verifier_pem = base64.b64decode(content["verifiers"][0])
            cert = x509.load_pem_x509_certificate(verifier_pem)
            payload = base64.b64decode(envelope["payload"])
            signature = base64.b64decode(envelope["signatures"][0]["sig"])
            payload_type: str = envelope["payloadType"]
        except (ValueError, KeyError, TypeError, IndexError):
            return 400, {"code": 400, "message": "malformed dsse entry"}
        key = cert.public_key()
        pae = b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload), payload)
        try:
            if not isinstance(key, ec.EllipticCurvePublicKey) or len(envelope["signatures"]) != 1:
                raise InvalidSignature
            key.verify(signature, pae, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return 400, {"code": 400, "message": "the envelope signature does not verify"}

        canonical = rfc8785.dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "dsse",
                "spec": {
                    "envelopeHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(envelope_json.encode()).hexdigest(),
                    },
                    "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
                    "signatures": [{"signature": _b64(signature), "verifier": _b64(verifier_pem)}],
                },
            }
        )
        with self._lock:
            index = self.tree.append(canonical)
            size = self.tree.size
            root = self.tree.root(size)
            proof = self.tree.inclusion_proof(index, size)
            integrated_time = int(time.time())
        body_b64 = _b64(canonical)
        log_id_hex = self.rekor_log_id.hex()
        signed_entry_timestamp = self.rekor_key.sign(
            rfc8785.dumps(
                {"body": body_b64, "integratedTime": integrated_time, "logID": log_id_hex, "logIndex": index}
            ),
            ec.ECDSA(hashes.SHA256()),
        )
        uuid = MerkleTree.leaf_hash(canonical).hex()
        entry = {
            "body": body_b64,
            "integratedTime": integrated_time,
            "logID": log_id_hex,
            "logIndex": index,
            "verification": {
                "inclusionProof": {
                    "logIndex": index,
                    "rootHash": root.hex(),
                    "treeSize": size,
                    "hashes": [h.hex() for h in proof],
                    "checkpoint": self._checkpoint(size, root),
                },
                "signedEntryTimestamp": _b64(signed_entry_timestamp),
            },
        }
        return 201, {uuid: entry}

    # ---- OIDC (GitHub Actions token request) ---------------------------------------------------

    def _actions_token(self, headers: dict[str, str], query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if headers.get("authorization", "") != f"bearer {self.actions_request_token}":
            return 401, {"message": "bad request token"}
        audience = query.get("audience", [AUDIENCE])[0]
        claims = {
            "sub": "repo:example/model:ref:refs/heads/main",
            "job_workflow_ref": "example/model/.github/workflows/release.yml@refs/heads/main",
            **self.actions_claims,
        }
        subject = str(claims.pop("sub"))
        return 200, {"value": self.mint_token(subject=subject, email=None, audience=audience, extra=claims)}

    # ---- trust material ------------------------------------------------------------------------

    def client_trust_config(self, base_url: str | None = None) -> dict[str, Any]:
        """The ClientTrustConfig (trusted root + signing config) naming this double's keys and URLs.

        ``base_url`` overrides the service URLs (a closed port, to play "Sigstore is down").
        """
        url = base_url or self.base_url
        start = {"start": (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}

        def tlog(key: ec.EllipticCurvePrivateKey, log_url: str) -> dict[str, Any]:
            return {
                "baseUrl": log_url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": _b64(_spki(key.public_key())),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": start,
                },
                "logId": {"keyId": _b64(_key_id(key.public_key()))},
            }

        def service(service_url: str) -> dict[str, Any]:
            return {"url": service_url, "majorApiVersion": 1, "validFor": start, "operator": "ccdeploy-test"}

        ca_der = self.ca_cert.public_bytes(serialization.Encoding.DER)
        return {
            "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
            "trustedRoot": {
                "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [tlog(self.rekor_key, url)],
                "certificateAuthorities": [
                    {
                        "subject": {"organization": "ccdeploy-test", "commonName": "sigstore-double"},
                        "uri": url,
                        "certChain": {"certificates": [{"rawBytes": _b64(ca_der)}]},
                        "validFor": start,
                    }
                ],
                "ctlogs": [tlog(self.ct_key, f"{url}/ct")],
                "timestampAuthorities": [],
            },
            "signingConfig": {
                "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                "caUrls": [service(url)],
                "oidcUrls": [service(self.issuer)],
                "rekorTlogUrls": [service(url)],
                "rekorTlogConfig": {"selector": "ANY"},
                "tsaUrls": [],
            },
        }

    def trusted_root(self) -> dict[str, Any]:
        trusted_root: dict[str, Any] = self.client_trust_config()["trustedRoot"]
        return trusted_root

    # ---- HTTP ---------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """Route one request; returns (status, JSON document)."""
        parts = urlsplit(path)
        with self._lock:
            self.requests.append(f"{method} {parts.path}")
        if method == "POST" and parts.path == "/api/v2/signingCert":
            return self._fulcio_signing_cert(headers, body)
        if method == "POST" and parts.path == "/api/v1/log/entries":
            return self._rekor_create_entry(body)
        if method == "GET" and parts.path == "/oidc/actions-token":
            return self._actions_token(headers, parse_qs(parts.query))
        return 404, {"code": 404, "message": "not found"}


@contextmanager
def serve(double: SigstoreDouble | None = None) -> Iterator[SigstoreDouble]:
    """Serve a (fresh) double on an ephemeral loopback port for the duration of the block."""
    state = double or SigstoreDouble()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, document = state.handle(method, self.path, headers, body)
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
