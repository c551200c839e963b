"""``ccdeploy verify``: verify a signature bundle over a file, sealed artifact or model directory (for CI).

Exit 0 verified, 1 invalid (bad signature, wrong signer, subject mismatch), 2 usage, 3 could not check.
``--json`` prints exactly ``{verdict, signer, subjects, checks, error}``. Offline always: the default trust root
is the pinned Sigstore production root shipped in the package, and nothing is ever fetched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from ccdeploy._cli._output import emit_json, json_option, say
from ccdeploy._cli._time import at_or_now
from ccdeploy.errors import CcdError, DecisionError, UsageError
from ccdeploy.provenance.layout import verify_layout
from ccdeploy.provenance.verify import (
    Report,
    SignerPolicy,
    TrustInputs,
    VerificationResult,
    load_cert_roots,
    load_key,
    load_policy,
    load_trusted_root,
    open_target,
    verify_document,
)

__all__ = ["verify"]

_FILE = click.Path(path_type=Path, dir_okay=False)


def _verdict(error: CcdError) -> str:
    return "invalid" if isinstance(error, DecisionError) else "unverifiable"


def _document(report: Report, error: CcdError) -> dict[str, Any]:
    failed = [c.name for c in report.checks if not c.ok]
    return {
        "verdict": _verdict(error),
        "signer": dict(report.signer),
        "subjects": [s.to_dict() for s in report.subjects],
        "checks": [c.to_dict() for c in report.checks],
        "error": {
            "type": type(error).__name__,
            "message": error.diagnostics(),
            "check": failed[-1] if failed else None,
        },
    }


def _human(result: VerificationResult) -> None:
    signer = result.signer
    who = signer.get("identity") or signer.get("key_sha256") or signer.get("subject")
    say(
        f"verified: signed by {signer.get('kind')} {who}"
        + (f" (issuer {signer['issuer']})" if signer.get("issuer") else "")
    )
    for subject in result.subjects:
        if subject.matched:
            say(f"  subject {subject.name}: {', '.join(f'{k}:{v}' for k, v in sorted(subject.digest.items()))}")
    for skipped in signer.get("not_verified", []):
        say(f"  not verified: attestation {skipped['index']} ({skipped['predicate_type']}): {skipped['reason']}")


def _layout_mode(
    layout: Path,
    layout_keys: tuple[Path, ...],
    links: Path | None,
    at_text: str | None,
    target: Path | None,
    conflicts: list[str],
    json_output: bool,
) -> None:
    """Verify an in-toto layout; ``--json`` gives the same five keys as bundle mode, the layout under ``signer``."""
    try:
        if conflicts:
            raise UsageError(f"--layout verifies an in-toto layout and takes none of {', '.join(conflicts)}")
        if not layout_keys or links is None:
            raise UsageError("--layout needs --layout-key and --links")
        result = verify_layout(layout, layout_keys, links, at=at_or_now(at_text), workdir=target or Path.cwd())
    except CcdError as error:
        if not json_output:
            raise
        emit_json(
            {
                "verdict": _verdict(error),
                "signer": {"kind": "in-toto-layout", "layout": str(layout)},
                "subjects": [],
                "checks": [],
                "error": {"type": type(error).__name__, "message": error.diagnostics(), "check": "layout"},
            }
        )
        raise click.exceptions.Exit(error.exit_code) from None
    document = result.to_dict()
    details = document["layout"]
    if json_output:
        emit_json(
            {
                "verdict": document["verdict"],
                "signer": {**details, "kind": "in-toto-layout", "layout": str(layout)},
                "subjects": [],
                "checks": document["checks"],
                "error": None,
            }
        )
    else:
        steps = ", ".join(details["steps"])
        say(f"in-toto layout {layout} verified at {at_text or 'now'}: steps {steps}; expires {details['expires']}")


def _policy(
    policy_file: Path | None,
    identity: str | None,
    issuer: str | None,
    source: str | None,
    source_ref: str | None,
    builder_id: str | None,
    workflow: str | None,
) -> SignerPolicy:
    policy = load_policy(policy_file) if policy_file is not None else SignerPolicy()
    try:
        flags = SignerPolicy(
            identity=identity,
            issuer=issuer,
            source_repository=source,
            source_ref=source_ref,
            builder_id=builder_id,
            workflow=workflow,
        )
    except ValidationError as exc:
        names = {"source_repository": "source"}
        problems = "; ".join(
            f"--{names.get(str(e['loc'][0]), str(e['loc'][0])).replace('_', '-')}: {e['msg']}" for e in exc.errors()
        )
        raise UsageError(f"invalid signer flags: {problems}") from None
    return policy.merged(flags)


@click.command()
@click.argument("target", required=False, type=click.Path(path_type=Path))
@click.option(
    "--signature",
    "signature",
    type=_FILE,
    metavar="BUNDLE",
    help="Sigstore bundle (.sigstore.json, .intoto.jsonl, npm attestations).",
)
@click.option("--identity", help="Required signer identity (certificate SAN), exactly.")
@click.option("--issuer", help="Required OIDC issuer of the signer's identity.")
@click.option(
    "--key",
    "key_files",
    multiple=True,
    type=_FILE,
    metavar="PEM",
    help="Trust this public key (key-signed bundles; repeatable).",
)
@click.option(
    "--cert-root",
    "cert_root_files",
    multiple=True,
    type=_FILE,
    metavar="PEM",
    help="Trust this CA for certificate-signed bundles without a log entry (repeatable).",
)
@click.option(
    "--trust-root",
    "trust_root_file",
    type=_FILE,
    metavar="JSON",
    help="Sigstore trusted_root.json (default: the pinned production root).",
)
@click.option(
    "--offline",
    is_flag=True,
    help="Assert that nothing is fetched. Always true: ccdeploy verify never uses the network.",
)
@click.option(
    "--ignore-path",
    "ignore_paths",
    multiple=True,
    metavar="P",
    help="Model directories: leave this path out (repeatable).",
)
@click.option(
    "--policy",
    "policy_file",
    type=_FILE,
    metavar="FILE",
    help="YAML signer policy (identity, issuer, source_repository, source_ref, builder_id, workflow, predicate_type).",
)
@click.option(
    "--source",
    "source",
    metavar="REPO",
    help="Required source repository, e.g. github.com/owner/repo (from the certificate).",
)
@click.option("--source-ref", metavar="REF", help="Required source ref, e.g. refs/tags/v1.0.0 (from the certificate).")
@click.option(
    "--builder-id",
    metavar="URL",
    help="Required SLSA builder id, matched against the certificate (never the predicate).",
)
@click.option("--workflow", metavar="URL", help="Required build config (top-level workflow) URI from the certificate.")
@click.option(
    "--at", "at_text", metavar="RFC3339", help="Validation time for private-PKI chains and layouts (default: now)."
)
@click.option("--layout", type=_FILE, help="in-toto layout mode: the root layout to verify.")
@click.option(
    "--layout-key",
    "layout_keys",
    multiple=True,
    type=_FILE,
    metavar="PEM",
    help="Layout owner public key (repeatable).",
)
@click.option(
    "--links", "links_dir", type=click.Path(path_type=Path, file_okay=False), help="Directory of in-toto link files."
)
@json_option
@click.pass_context
def verify(
    ctx: click.Context,
    target: Path | None,
    signature: Path | None,
    identity: str | None,
    issuer: str | None,
    key_files: tuple[Path, ...],
    cert_root_files: tuple[Path, ...],
    trust_root_file: Path | None,
    offline: bool,
    ignore_paths: tuple[str, ...],
    policy_file: Path | None,
    source: str | None,
    source_ref: str | None,
    builder_id: str | None,
    workflow: str | None,
    at_text: str | None,
    layout: Path | None,
    layout_keys: tuple[Path, ...],
    links_dir: Path | None,
    json_output: bool,
) -> None:
    """Verify that BUNDLE signs TARGET (a file, a sealed artifact or a model directory), offline.

    Subject digests are always recomputed from TARGET. Keyless bundles need a signer to check
    (--identity/--issuer, --builder-id, --workflow or --policy); key-signed ones need --key;
    certificate-signed ones without a log entry need --cert-root. Signer flags that the bundle cannot
    show (any of them for a key-signed bundle; all but --identity, and --issuer where the certificate
    names one, for a private-PKI certificate) are refused, never ignored.
    """
    del offline  # verification never fetches; the flag only documents that
    if layout is not None:
        given = {
            "--signature": signature is not None,
            "--key": bool(key_files),
            "--identity": identity is not None,
            "--issuer": issuer is not None,
            "--cert-root": bool(cert_root_files),
            "--trust-root": trust_root_file is not None,
            "--policy": policy_file is not None,
            "--source": source is not None,
            "--source-ref": source_ref is not None,
            "--builder-id": builder_id is not None,
            "--workflow": workflow is not None,
            "--ignore-path": bool(ignore_paths),
        }
        conflicts = [name for name, present in given.items() if present]
        _layout_mode(layout, layout_keys, links_dir, at_text, target, conflicts, json_output)
        return
    report = Report()
    try:
        if layout_keys or links_dir is not None:
            raise UsageError("--layout-key and --links belong to --layout (in-toto layout mode)")
        if target is None or signature is None:
            raise UsageError("give TARGET and --signature BUNDLE (or --layout for in-toto layout mode)")
        policy = _policy(policy_file, identity, issuer, source, source_ref, builder_id, workflow)
        trust = TrustInputs(
            trusted_root=load_trusted_root(trust_root_file),
            at=at_or_now(at_text),
            keys=tuple(load_key(k) for k in key_files),
            cert_roots=tuple(c for f in cert_root_files for c in load_cert_roots(f)),
        )
        try:
            document = signature.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {signature}: {exc.strerror}") from None
        result = verify_document(document, open_target(target, ignore_paths, signature), trust, policy, report)
    except CcdError as error:
        if not json_output:
            raise
        emit_json(_document(report, error))
        ctx.exit(error.exit_code)
    if json_output:
        emit_json(result.to_dict())
    else:
        _human(result)
