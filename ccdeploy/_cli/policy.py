"""``ccdeploy policy``: lint a release policy, and dry-run it against evidence and a sealed artifact.

``policy lint FILE``: exit 0 when the policy is valid (warnings are printed), 2 when it is not.
``policy test FILE --evidence EVIDENCE [--sealed SEALED]``: every check the broker would run, except the nonce
binding; exit 0 would release, 1 denied, 2 usage, 3 could not check. ``--json`` prints
``{"verdict": "release"|"deny"|"unverifiable", "denial", "detail", "checks": [{name, ok, detail}], "policy_digest"}``
(see docs/policy.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from attestation import Collateral, MalformedEvidence, decode_evidence, detect_tee
from ccdeploy._cli._output import emit_json, json_option, say
from ccdeploy._cli._time import at_or_now
from ccdeploy._cli.attest import load_dcap_json, load_signing_cert
from ccdeploy.errors import EXIT_COULD_NOT_CHECK, EXIT_DECISION, PolicyInvalid, UsageError
from ccdeploy.provenance.sign import PROVENANCE_SUFFIX
from ccdeploy.release.decide import PolicyCheck, appraise_evidence, check_model
from ccdeploy.release.policy import ReleasePolicy, lint, load_policy, policy_digest
from ccdeploy.release.protocol import DenialReason
from ccdeploy.seal.digest import sealed_digest_from_parts, sealed_head_and_parts

__all__ = ["policy"]

_FILE = click.Path(path_type=Path, dir_okay=False)
_UNVERIFIABLE = frozenset({DenialReason.EVIDENCE_UNVERIFIABLE})


@click.group()
def policy() -> None:
    """Check release policies: lint them, and dry-run them against evidence."""


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None


def _load(path: Path) -> tuple[bytes, ReleasePolicy]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PolicyInvalid(f"cannot read the release policy {path}: {exc.strerror}") from None
    return data, load_policy(data)


@policy.command("lint")
@click.argument("policy_file", metavar="FILE", type=_FILE)
@json_option
def lint_command(policy_file: Path, json_output: bool) -> None:
    """Validate FILE; print what it leaves weaker than it may look (exit 0 valid, 2 invalid)."""
    data, loaded = _load(policy_file)
    findings = lint(loaded)
    if json_output:
        emit_json(
            {
                "ok": True,
                "policy_digest": policy_digest(data),
                "platforms": loaded.platforms.names(),
                "findings": [finding.to_dict() for finding in findings],
            }
        )
        return
    say(f"{policy_file}: valid release policy ({policy_digest(data)})")
    say(f"  platforms: {', '.join(loaded.platforms.names())}")
    for finding in findings:
        say(f"  {finding.level}: {finding.message}")


def _evidence(path: Path, tee_name: str | None) -> tuple[bytes, str]:
    try:
        evidence = decode_evidence(_read(path, "evidence"))
        return evidence, tee_name if tee_name is not None else detect_tee(evidence).value
    except MalformedEvidence as exc:
        raise UsageError(f"evidence {path}: {exc.message}") from None


def _collateral(
    dcap_file: Path | None,
    rim_files: tuple[Path, ...],
    ocsp_files: tuple[Path, ...],
    jwks_file: Path | None,
    signing_cert_file: Path | None,
) -> Collateral:
    dcap = load_dcap_json(dcap_file) if dcap_file is not None else None
    signing_cert = load_signing_cert(signing_cert_file) if signing_cert_file is not None else None
    return Collateral(
        signing_cert=signing_cert,
        dcap=dcap,
        jwks=_read(jwks_file, "--jwks") if jwks_file is not None else None,
        rims=tuple(_read(path, "--rim") for path in rim_files),
        ocsp=tuple(_read(path, "--ocsp") for path in ocsp_files),
    )


def _default_signature(sealed: Path) -> Path | None:
    base = sealed.name.removesuffix(".ccseal") or sealed.name
    candidate = sealed.with_name(base + PROVENANCE_SUFFIX)
    return candidate if candidate.is_file() else None


def _human(verdict: str, denial: DenialReason | None, checks: list[PolicyCheck], skipped: str | None) -> None:
    for check in checks:
        say(f"  {'pass' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    if skipped:
        say(f"  skip  {skipped}")
    say(f"verdict: {verdict}" + (f" ({denial.value})" if denial is not None else ""))


@policy.command("test")
@click.argument("policy_file", metavar="FILE", type=_FILE)
@click.option("--evidence", "evidence_file", required=True, type=_FILE, metavar="FILE", help="Evidence to appraise.")
@click.option(
    "--type",
    "tee_name",
    type=click.Choice(["nitro", "sev-snp", "tdx", "maa", "composite"]),
    help="The evidence type (default: detected from its structure).",
)
@click.option(
    "--collateral", "collateral_file", type=_FILE, metavar="FILE", help="TDX: DCAP collateral (dcap-qvl JSON)."
)
@click.option("--rim", "rim_files", multiple=True, type=_FILE, metavar="FILE", help="NVIDIA: a RIM (repeatable).")
@click.option(
    "--ocsp", "ocsp_files", multiple=True, type=_FILE, metavar="FILE", help="NVIDIA: a DER OCSP response (repeatable)."
)
@click.option("--jwks", "jwks_file", type=_FILE, metavar="FILE", help="MAA: the provider's key set (its /certs).")
@click.option("--signing-cert", "signing_cert_file", type=_FILE, metavar="DER|PEM", help="SEV-SNP: the VCEK or VLEK.")
@click.option("--at", "at_text", metavar="RFC3339", help="Decide at this instant (default: now).")
@click.option("--sealed", type=_FILE, metavar="SEALED", help="Also check this sealed artifact's provenance and BOM.")
@click.option(
    "--signature",
    type=_FILE,
    metavar="BUNDLE",
    help="Its provenance bundle (default: NAME.provenance.sigstore.json beside it, if present).",
)
@json_option
def test_command(
    policy_file: Path,
    evidence_file: Path,
    tee_name: str | None,
    collateral_file: Path | None,
    rim_files: tuple[Path, ...],
    ocsp_files: tuple[Path, ...],
    jwks_file: Path | None,
    signing_cert_file: Path | None,
    at_text: str | None,
    sealed: Path | None,
    signature: Path | None,
    json_output: bool,
) -> None:
    """Dry-run FILE: show every check the broker would run (the nonce binding aside) and the verdict.

    Exit 0 would release, 1 denied, 3 could not check (for example SEV-SNP evidence without its VCEK, or GPU
    evidence without its RIMs). Nothing is fetched: give the collateral the broker would have.
    """
    if signature is not None and sealed is None:
        raise UsageError("--signature needs --sealed")
    data, loaded = _load(policy_file)
    at = at_or_now(at_text)
    evidence, tee = _evidence(evidence_file, tee_name)
    model: dict[str, Any] = {"name": "", "artifact_id": ""}
    checks: list[PolicyCheck] = []
    denials: list[DenialReason] = []
    skipped: str | None = "model checks (provenance, BOM): no --sealed given"
    head: bytes | None = None
    parts: tuple[str, ...] = ()
    if sealed is not None:
        head, parts = sealed_head_and_parts(sealed)
        header = sealed_digest_from_parts(head, parts).header
        model = {"name": header.model.name, "artifact_id": header.artifact_id}
        skipped = None
    collateral = _collateral(collateral_file, rim_files, ocsp_files, jwks_file, signing_cert_file)
    decision = appraise_evidence(loaded, evidence, tee, now=at, model=model, collateral=collateral)
    checks.extend(decision.checks)
    if decision.denial is not None:
        denials.append(decision.denial)
    if sealed is not None and head is not None:
        bundle_path = signature if signature is not None else _default_signature(sealed)
        bundle = _read(bundle_path, "provenance bundle") if bundle_path is not None else None
        model_decision = check_model(loaded, head=head, part_digests=parts, provenance=bundle, now=at, name=sealed.name)
        checks.extend(model_decision.checks)
        if model_decision.denial is not None:
            denials.append(model_decision.denial)
    denial = denials[0] if denials else None
    verdict = "release" if denial is None else ("unverifiable" if denial in _UNVERIFIABLE else "deny")
    failures = [f"{check.name}: {check.detail}" for check in checks if not check.ok]
    if json_output:
        emit_json(
            {
                "verdict": verdict,
                "denial": None if denial is None else denial.value,
                "detail": "; ".join(failures) if failures else "every check passed",
                "checks": [check.to_dict() for check in checks],
                "policy_digest": policy_digest(data),
                "evidence_type": tee,
                "skipped": [] if skipped is None else [skipped],
            }
        )
    else:
        _human(verdict, denial, checks, skipped)
    if verdict != "release":
        raise click.exceptions.Exit(EXIT_COULD_NOT_CHECK if verdict == "unverifiable" else EXIT_DECISION)
