"""``ccdeploy attest``: inspect and verify TEE attestation evidence (for auditors and CI).

The JSON shape of ``attest verify --json`` and the exit codes (0 verified, 1 invalid, 2 usage, 3 could not check)
are a contract other tools rely on; see docs/attestation.md.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from attestation import (
    AttestationError,
    CachingFetcher,
    Collateral,
    Fetcher,
    HttpFetcher,
    MalformedEvidence,
    ReferenceValues,
    ReferenceValuesInvalid,
    Tee,
    VerificationResult,
    decode_evidence,
    detect_tee,
    verifier_for,
    verify_and_appraise,
)
from attestation._x509 import load_certificates
from attestation.claims import jsonable, rfc3339
from attestation.composite import CompositeVerifier
from attestation.ear import SigningKey, attestation_result, sign_ear
from attestation.fetch import COLLATERAL_MAX_AGE_S
from attestation.roots import split_roots
from attestation.tee.dcap import SgxVerifier, TdxVerifier
from attestation.tee.dcap.collateral import DcapCollateral
from attestation.tee.maa import MaaVerifier
from attestation.tee.nvidia import NvidiaGpuVerifier
from attestation.tee.sev_snp import SevSnpVerifier
from attestation.tee.sev_snp.kds import KDS_URL, kds_cache_max_age, validate_kds_answer
from attestation.verify import Verifier
from ccdeploy import __version__
from ccdeploy._cli._output import emit_json, json_option, say
from ccdeploy.errors import EXIT_COULD_NOT_CHECK, EXIT_DECISION, DecisionError, UsageError
from ccdeploy.seal._io import atomic_output_file, pwrite_all

F = TypeVar("F", bound=Callable[..., Any])

_EXIT_FOR_VERDICT = {"verified": 0, "invalid": EXIT_DECISION, "unverifiable": EXIT_COULD_NOT_CHECK}


#: The ``--type`` names of ``attest verify`` and ``attest inspect``.
TEE_NAMES = [tee.value for tee in Tee]


@click.group()
def attest() -> None:
    """Inspect and verify TEE attestation evidence.

    AWS Nitro Enclaves, AMD SEV-SNP, Intel TDX and SGX (DCAP), Azure Attestation tokens, NVIDIA GPUs, and
    composite CPU+GPU evidence.
    """


def _file_option(name: str, metavar: str, text: str, *, multiple: bool = False) -> Callable[[F], F]:
    dest = name.removeprefix("--").replace("-", "_") + ("_files" if multiple else "_file")
    return click.option(
        name, dest, multiple=multiple, type=click.Path(path_type=Path, dir_okay=False), metavar=metavar, help=text
    )


def _collateral_options(func: F) -> F:
    options = (
        click.option("--at", "at_text", metavar="RFC3339", help="Check validity at this instant (default: now)."),
        click.option(
            "--root",
            "root_files",
            multiple=True,
            type=click.Path(path_type=Path, dir_okay=False),
            metavar="PEM",
            help="Trust these roots instead of the pinned ones (repeatable; a bundle may hold several).",
        ),
        click.option(
            "--chain",
            "chain_file",
            type=click.Path(path_type=Path, dir_okay=False),
            metavar="PEM",
            help="Certificates of the chain. SEV-SNP: AMD's ASK+ARK or ASVK+ARK bundle, any order. NVIDIA: the "
            "attestation key's chain as the driver returns it, leaf first.",
        ),
        click.option(
            "--signing-cert",
            "signing_cert_file",
            type=click.Path(path_type=Path, dir_okay=False),
            metavar="DER|PEM",
            help="SEV-SNP: the VCEK or VLEK that signed the report.",
        ),
        click.option(
            "--crl",
            "crl_files",
            multiple=True,
            type=click.Path(path_type=Path, dir_okay=False),
            metavar="FILE",
            help="Check the chain against this CRL (DER or PEM; repeatable).",
        ),
        click.option("--offline", is_flag=True, help="Never fetch collateral (SEV-SNP: the VCEK from AMD KDS)."),
        click.option(
            "--check-revocation",
            is_flag=True,
            help="SEV-SNP: also fetch the ARK's CRL from KDS (unless --crl is given) and fail closed without it.",
        ),
        click.option(
            "--kds-url", default=KDS_URL, show_default=True, help="Base URL of AMD's Key Distribution Service."
        ),
        click.option(
            "--cache-dir",
            type=click.Path(path_type=Path, file_okay=False),
            help="Where fetched collateral is kept (default: $XDG_CACHE_HOME/ccdeploy/collateral).",
        ),
        click.option(
            "--unsafe-trust-simulator-root",
            is_flag=True,
            help="Accept a --root made by the evidence simulator. Simulated evidence proves nothing about hardware.",
        ),
        _file_option("--collateral", "FILE", "TDX/SGX: DCAP collateral as dcap-qvl's QuoteCollateralV3 JSON."),
        _file_option("--tcb-info", "FILE", "TDX/SGX: Intel PCS TCB Info response body (JSON)."),
        _file_option("--qe-identity", "FILE", "TDX/SGX: Intel PCS QE Identity response body (JSON)."),
        _file_option("--tcb-issuer-chain", "PEM", "TDX/SGX: the TCB-Info-Issuer-Chain PCS sends (PEM)."),
        _file_option(
            "--qe-identity-issuer-chain", "PEM", "TDX/SGX: the QE Identity issuer chain (default: --tcb-issuer-chain)."
        ),
        _file_option("--pck-crl", "FILE", "TDX/SGX: the PCK CRL (DER or PEM)."),
        _file_option("--pck-crl-issuer-chain", "PEM", "TDX/SGX: the SGX-PCK-CRL-Issuer-Chain PCS sends (PEM)."),
        _file_option("--root-ca-crl", "FILE", "TDX/SGX: the Intel SGX Root CA CRL (DER or PEM)."),
        click.option(
            "--pcs-url",
            default=None,
            metavar="URL",
            help="TDX/SGX: Intel PCS or a PCCS to fetch missing collateral from (default: Intel's PCS).",
        ),
        _file_option("--jwks", "FILE", "MAA: the attestation provider's JWKS (its /certs answer)."),
        click.option(
            "--issuer", default=None, metavar="URL", help="MAA: the attestation provider the token must be from."
        ),
        _file_option(
            "--rim", "FILE", "NVIDIA: a driver or VBIOS Reference Integrity Manifest (repeatable).", multiple=True
        ),
        _file_option(
            "--ocsp", "FILE", "NVIDIA: a DER OCSP response for a chain certificate (repeatable).", multiple=True
        ),
        _file_option(
            "--rim-root",
            "PEM",
            "NVIDIA: trust these RIM signing roots instead of the pinned one (repeatable).",
            multiple=True,
        ),
    )
    for option in reversed(options):
        func = option(func)
    return func


@attest.command("verify")
@click.argument("evidence_file", metavar="EVIDENCE", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option(
    "--type",
    "tee_name",
    required=True,
    type=click.Choice([*TEE_NAMES, "auto"]),
    help="The evidence type (auto: guess from its structure).",
)
@_collateral_options
@click.option("--nonce", "nonce_hex", metavar="HEX", help="The evidence must be bound to this nonce.")
@click.option(
    "--reference",
    "reference_file",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="YAML reference values the claims must match.",
)
@click.option("--allow-debug", is_flag=True, help="Accept a debug-mode TEE (its memory is readable by the host).")
@click.option(
    "--ear-out",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Write the appraisal as a signed EAT Attestation Result (JWT); needs --ear-key.",
)
@click.option(
    "--ear-key",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="PEM",
    help="Private key that signs the EAR (EC P-256/384/521, Ed25519 or RSA).",
)
@json_option
def verify_command(
    evidence_file: Path,
    tee_name: str,
    nonce_hex: str | None,
    reference_file: Path | None,
    allow_debug: bool,
    ear_out: Path | None,
    ear_key: Path | None,
    json_output: bool,
    **collateral: Any,
) -> None:
    """Verify EVIDENCE (raw, base64 or hex) and appraise it. Exit 0 verified, 1 invalid, 3 could not check."""
    if (ear_out is None) != (ear_key is None):
        raise UsageError("--ear-out and --ear-key go together")
    raw = _read_file(evidence_file, "evidence")
    nonce = _hex_option("--nonce", nonce_hex)
    refs = _load_reference(reference_file) if reference_file is not None else None
    signing_key = _load_ear_key(ear_key) if ear_key is not None else None
    try:
        evidence = decode_evidence(raw)
    except MalformedEvidence as error:
        result = VerificationResult.failed(_tee(tee_name, raw), error)
    else:
        tee = _tee(tee_name, evidence)
        result = _run(evidence, tee, collateral, reference_values=refs, nonce=nonce, allow_debug=allow_debug)
    if ear_out is not None and signing_key is not None and result.appraisal is not None:
        _write_ear(ear_out, result, signing_key, reference_file, nonce)
    if json_output:
        emit_json(result.to_dict())
    else:
        _print_result(result)
    if result.verdict != "verified":
        raise click.exceptions.Exit(_EXIT_FOR_VERDICT[result.verdict])


@attest.command("inspect")
@click.argument("evidence_file", metavar="EVIDENCE", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option(
    "--type",
    "tee_name",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", *TEE_NAMES]),
    help="The evidence type.",
)
@_collateral_options
@json_option
def inspect_command(evidence_file: Path, tee_name: str, json_output: bool, **collateral: Any) -> None:
    """Decode EVIDENCE into readable fields, and say whether it verifies (offline unless told otherwise)."""
    try:
        evidence = decode_evidence(_read_file(evidence_file, "evidence"))
        tee = _tee(tee_name, evidence)
        fields = verifier_for(tee).decode(evidence)
    except MalformedEvidence as error:
        raise DecisionError(f"the evidence cannot be decoded: {error.message}") from None
    offline = {**collateral, "offline": True}  # inspect never fetches: no KDS/PCS traffic, no cache writes
    result = _run(evidence, tee, offline, reference_values=None, nonce=None, allow_debug=True)
    if json_output:
        emit_json({"tee": tee.value, "fields": jsonable(fields), "verification": result.to_dict()})
        return
    say(f"{tee.value} evidence, {len(evidence)} bytes (decoded without verification):")
    _print_fields(fields, indent="  ")
    if result.verdict == "verified":
        say("verification: verified (signature and chain; no reference values applied, debug not judged)")
    else:
        assert result.error is not None
        say(f"verification: {result.verdict}: {result.error.diagnostics()}")


def _run(
    evidence: bytes,
    tee: Tee,
    options: Mapping[str, Any],
    *,
    reference_values: ReferenceValues | None,
    nonce: bytes | None,
    allow_debug: bool,
) -> VerificationResult:
    at = _parse_time(options["at_text"]) if options["at_text"] else datetime.now(UTC)
    given = tuple(cert for path in options["root_files"] for cert in _load_certificates(path, "--root"))
    anchors, intermediates = split_roots(given)
    if given and not anchors:
        raise UsageError("--root holds no self-signed certificate (a root)")
    roots = list(anchors) or None
    if options["unsafe_trust_simulator_root"] and roots is None:
        raise UsageError("--unsafe-trust-simulator-root needs the simulator root given with --root")
    return verify_and_appraise(
        evidence,
        tee=tee,
        at=at,
        roots=roots,
        collateral=_collateral(options).with_certificates(intermediates),
        fetcher=_fetcher(options, tee),
        verifier=_verifier(tee, options),
        unsafe_allow_simulator_roots=options["unsafe_trust_simulator_root"],
        reference_values=reference_values,
        nonce=nonce,
        allow_debug=allow_debug,
    )


def _collateral(options: Mapping[str, Any]) -> Collateral:
    chain = _load_certificates(options["chain_file"], "--chain") if options["chain_file"] else ()
    signing = None
    if options["signing_cert_file"]:
        signing = load_signing_cert(options["signing_cert_file"])
    crls = tuple(_load_crl(path) for path in options["crl_files"])
    return Collateral(
        certificates=chain,
        signing_cert=signing,
        crls=crls,
        dcap=_dcap_collateral(options),
        jwks=_read_file(options["jwks_file"], "--jwks") if options["jwks_file"] else None,
        rims=tuple(_read_file(path, "--rim") for path in options["rim_files"]),
        ocsp=tuple(_read_file(path, "--ocsp") for path in options["ocsp_files"]),
    )


def load_signing_cert(path: Path) -> x509.Certificate:
    """``--signing-cert``: exactly one certificate (DER or PEM), or a usage error."""
    certs = _load_certificates(path, "--signing-cert")
    if len(certs) != 1:
        raise UsageError(f"--signing-cert must hold exactly one certificate, {len(certs)} found")
    return certs[0]


def load_dcap_json(path: Path) -> DcapCollateral:
    """``--collateral``: dcap-qvl QuoteCollateralV3 JSON, or a usage error."""
    try:
        return DcapCollateral.from_dcap_qvl_json(_read_file(path, "--collateral"))
    except AttestationError as error:
        raise UsageError(f"--collateral {path}: {error.message}") from None


_PCS_OPTIONS = {
    "tcb_info_file": "--tcb-info",
    "qe_identity_file": "--qe-identity",
    "tcb_issuer_chain_file": "--tcb-issuer-chain",
    "pck_crl_file": "--pck-crl",
    "pck_crl_issuer_chain_file": "--pck-crl-issuer-chain",
    "root_ca_crl_file": "--root-ca-crl",
}


def _dcap_collateral(options: Mapping[str, Any]) -> DcapCollateral | None:
    given = {key for key in _PCS_OPTIONS if options[key]}
    if options["qe_identity_issuer_chain_file"]:
        given.add("qe_identity_issuer_chain_file")
    if options["collateral_file"]:
        if given:
            raise UsageError("give --collateral or the Intel PCS files (--tcb-info ...), not both")
        return load_dcap_json(options["collateral_file"])
    if not given:
        return None
    missing = [option for key, option in _PCS_OPTIONS.items() if key not in given]
    if missing:
        raise UsageError(f"the Intel PCS collateral also needs {', '.join(missing)}")
    files = {key.removesuffix("_file"): _read_file(options[key], option) for key, option in _PCS_OPTIONS.items()}
    qe_chain = options["qe_identity_issuer_chain_file"]
    try:
        return DcapCollateral.from_pcs(
            tcb_info=files["tcb_info"],
            qe_identity=files["qe_identity"],
            tcb_issuer_chain=files["tcb_issuer_chain"],
            pck_crl=files["pck_crl"],
            pck_crl_issuer_chain=files["pck_crl_issuer_chain"],
            root_ca_crl=files["root_ca_crl"],
            qe_identity_issuer_chain=_read_file(qe_chain, "--qe-identity-issuer-chain") if qe_chain else None,
        )
    except AttestationError as error:
        raise UsageError(f"Intel PCS collateral: {error.message}") from None


def _fetcher(options: Mapping[str, Any], tee: Tee) -> Fetcher | None:
    if options["offline"] or tee is Tee.NVIDIA_GPU:  # GPU collateral (RIMs, OCSP) is given as files
        return None
    cache = Path(options["cache_dir"] or _default_cache_dir())
    if tee is Tee.SEV_SNP:
        return CachingFetcher(HttpFetcher(), cache, max_age=kds_cache_max_age, validate=validate_kds_answer)
    # Intel PCS collateral and attestation providers' key sets change within a day: answers are reused for an hour.
    return CachingFetcher(HttpFetcher(), cache, max_age=lambda _url: COLLATERAL_MAX_AGE_S)


def _verifier(tee: Tee, options: Mapping[str, Any]) -> Verifier | None:
    if options["check_revocation"] and options["offline"] and not options["crl_files"]:
        raise UsageError("--check-revocation fetches AMD's CRL: give --crl FILE instead when --offline")
    rim_roots = tuple(cert for path in options["rim_root_files"] for cert in _load_certificates(path, "--rim-root"))
    verifiers: dict[Tee, Verifier] = {
        Tee.SEV_SNP: SevSnpVerifier(kds_base_url=options["kds_url"], fetch_crls=options["check_revocation"]),
        Tee.MAA: _maa_verifier(options["issuer"]),
        Tee.NVIDIA_GPU: NvidiaGpuVerifier(rim_roots=rim_roots or None),
    }
    if options["pcs_url"]:
        # A PCCS serves the root CA CRL itself; Intel's PCS points to a separate download.
        verifiers[Tee.TDX] = TdxVerifier(pcs_base_url=options["pcs_url"], root_ca_crl_url=None)
        verifiers[Tee.SGX] = SgxVerifier(pcs_base_url=options["pcs_url"], root_ca_crl_url=None)
    if tee is Tee.COMPOSITE:
        return CompositeVerifier(cpu_verifiers=verifiers, gpu_verifier=verifiers[Tee.NVIDIA_GPU])
    return verifiers.get(tee)


def _maa_verifier(issuer: str | None) -> MaaVerifier:
    try:
        return MaaVerifier(issuer=issuer)
    except ValueError as exc:
        raise UsageError(f"--issuer: {exc}") from None


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ccdeploy" / "collateral"


def _tee(name: str, evidence: bytes) -> Tee:
    if name != "auto":
        return Tee(name)
    try:
        return detect_tee(evidence)
    except MalformedEvidence as error:
        raise UsageError(error.message) from None


def _load_reference(path: Path) -> ReferenceValues:
    try:
        return ReferenceValues.load(path)
    except ReferenceValuesInvalid as error:
        raise UsageError(error.message) from None


def _parse_time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--at {text!r} is not an RFC 3339 time such as 2024-09-07T14:37:39Z") from None
    if when.tzinfo is None:
        raise UsageError(f"--at {text!r} needs a time zone (Z or an offset)")
    try:
        return when.astimezone(UTC)
    except OverflowError:
        raise UsageError(f"--at {text!r} is out of range") from None


def _hex_option(name: str, text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        value = bytes.fromhex(text.strip().removeprefix("0x"))
    except ValueError:
        raise UsageError(f"{name} must be hex") from None
    if not value:
        raise UsageError(f"{name} is empty: an empty value binds nothing")
    return value


def _read_file(path: Path, what: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None


def _load_certificates(path: Path, option: str) -> tuple[x509.Certificate, ...]:
    try:
        certs = load_certificates(_read_file(path, option), f"{option} {path}")
    except AttestationError as error:
        raise UsageError(error.message) from None
    if not certs:
        raise UsageError(f"{option} {path} holds no certificate")
    return certs


def _load_crl(path: Path) -> x509.CertificateRevocationList:
    data = _read_file(path, "--crl")
    try:
        if b"-----BEGIN X509 CRL-----" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except (ValueError, x509.InvalidVersion):
        raise UsageError(f"--crl {path} is not a DER or PEM certificate revocation list") from None


def _load_ear_key(path: Path) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(_read_file(path, "--ear-key"), password=None)
    except (ValueError, TypeError):
        raise UsageError(f"--ear-key {path} is not an unencrypted PEM private key") from None
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa  # noqa: PLC0415

    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        raise UsageError(f"--ear-key {path}: use an EC, Ed25519 or RSA key")
    return key


def _write_ear(
    target: Path, result: VerificationResult, key: SigningKey, reference_file: Path | None, nonce: bytes | None
) -> None:
    assert result.appraisal is not None
    policy = "ccdeploy:no-reference-values" if reference_file is None else f"ccdeploy:reference-values:{reference_file}"
    claims = attestation_result(
        result.appraisal,
        issued_at=datetime.now(UTC),
        verifier_build=f"ccdeploy {__version__}",
        policy_id=policy,
        nonce=nonce,
    )
    try:
        token = sign_ear(claims, key)
    except ValueError as exc:
        raise UsageError(f"--ear-key: {exc}") from None
    with atomic_output_file(target, overwrite=True, mode=0o644) as fd:
        pwrite_all(fd, token.encode() + b"\n", 0)


def _print_result(result: VerificationResult) -> None:
    platform = f", {result.claims.platform}" if result.claims is not None else ""
    say(f"verdict: {result.verdict} ({result.tee.value}{platform})")
    for check in result.checks:
        mark = "ok  " if check.ok else "FAIL"
        say(f"  {mark} {check.name}: {check.detail}")
    if result.claims is not None:
        say("claims:")
        _print_fields(result.claims.to_dict(), indent="  ")


def _print_fields(fields: Mapping[str, Any], indent: str) -> None:
    for name, value in fields.items():
        if isinstance(value, Mapping):
            say(f"{indent}{name}:")
            _print_fields(value, indent + "  ")
        else:
            say(f"{indent}{name}: {_text(value)}")


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.hex() or "(empty)"
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, list | tuple):
        return ", ".join(_text(item) for item in value) or "(none)"
    # Decoded fields are unauthenticated: never let them send control sequences to an auditor's terminal.
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in str(value))
