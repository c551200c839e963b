"""``ccdeploy sign``: sign a sealed artifact (provenance, model signature, BOM) or a plaintext model.

Outputs and naming are described in :mod:`ccdeploy.provenance.sign`. ``--json`` prints
``{"ok": true, "signer": {...}, "bundles": [{"path", "predicate_type", "subjects"}], ...}``; errors
follow the root's ``{"ok": false, "error": {...}}`` with exit 2 (usage: bad URI, key or options) or 3
(the signer could not be reached).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ccdeploy._cli._output import emit_json, json_option, say
from ccdeploy.errors import UsageError
from ccdeploy.provenance.predicates import DEFAULT_BUILDER_ID
from ccdeploy.provenance.sign import MODEL_SIGNATURE_SUFFIX, SignResult, sign_model, sign_sealed
from ccdeploy.provenance.signers.base import SignerOptions, signer_from_uri
from ccdeploy.seal import is_sealed_artifact


def _read_bom(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the BOM {path}: {exc.strerror}") from None


def _report(target: Path, signer: dict[str, Any], result: SignResult, json_output: bool) -> None:
    if json_output:
        document: dict[str, Any] = {
            "ok": True,
            "target": str(target),
            "signer": signer,
            "bundles": [bundle.to_json() for bundle in result.bundles],
        }
        if result.sealed is not None:
            document["sealed"] = {
                "artifact_id": result.sealed.artifact_id,
                "digest": result.sealed.digest_set(),
                "digest_from_record": result.digest_from_record,
            }
        emit_json(document)
        return
    say(f"signed {target} with {signer.get('kind', 'signer')} {signer.get('uri', '')}".rstrip())
    if result.sealed is not None:
        source = "seal-time digest record" if result.digest_from_record else "computed from the artifact"
        say(f"  artifact digest {result.sealed.value} ({source})")
    for bundle in result.bundles:
        say(f"  {bundle.predicate_type} -> {bundle.path}")


@click.command()
@click.argument("target", type=click.Path(path_type=Path, exists=True))
@click.option(
    "--signer",
    "signer_uri",
    required=True,
    metavar="URI",
    help="file:KEY.pem, x509:KEY.pem?chain=CHAIN.pem, pkcs11:..., or sigstore:",
)
@click.option(
    "--certificate-chain",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    metavar="PEM",
    help="Signing certificate then intermediates, for a file: or pkcs11: key (private PKI).",
)
@click.option(
    "--identity-token",
    metavar="TOKEN",
    envvar="SIGSTORE_ID_TOKEN",
    show_envvar=True,
    help="OIDC token for sigstore: (default: ambient CI credentials). Prefer the environment variable: "
    "a token on the command line is visible to other processes.",
)
@click.option(
    "--trust-config",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    metavar="JSON",
    help="Sigstore ClientTrustConfig for a private Sigstore deployment.",
)
@click.option(
    "--bom",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    metavar="FILE",
    help="CycloneDX AI BOM (JSON) to sign over a sealed artifact; must match its recorded BOM digest.",
)
@click.option("--builder-id", metavar="URI", help=f"SLSA builder id (default: {DEFAULT_BUILDER_ID}).")
@click.option(
    "--hash",
    "hash_algorithm",
    type=click.Choice(["sha256", "blake3"]),
    default="sha256",
    show_default=True,
    help="Per-file digest when signing a plaintext model.",
)
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Directory for the bundles (default: beside TARGET).",
)
@click.option("--force", is_flag=True, help="Replace existing bundle files.")
@json_option
def sign(
    target: Path,
    signer_uri: str,
    certificate_chain: Path | None,
    identity_token: str | None,
    trust_config: Path | None,
    bom: Path | None,
    builder_id: str | None,
    hash_algorithm: str,
    output_dir: Path | None,
    force: bool,
    json_output: bool,
) -> None:
    """Sign TARGET: a sealed artifact (provenance, model signature, BOM) or a model file/directory.

    A sealed NAME.ccseal gets NAME.provenance.sigstore.json (SLSA), NAME.model.sig (OpenSSF
    model_signing, verifiable on the unsealed model) and, with --bom, NAME.bom.sigstore.json. A
    plaintext model gets NAME.model.sig only. Nothing is written unless every signature succeeded.
    """
    if output_dir is not None and not output_dir.is_dir():
        raise UsageError(f"output directory {output_dir} does not exist")
    sealed = is_sealed_artifact(target)
    if not sealed and (bom is not None or builder_id is not None):
        raise UsageError("--bom and --builder-id apply to sealed artifacts only")
    options = SignerOptions(
        certificate_chain=certificate_chain, identity_token=identity_token, trust_config=trust_config
    )
    bom_bytes = _read_bom(bom) if bom is not None else None
    signer = signer_from_uri(signer_uri, options)
    try:
        if sealed:
            result = sign_sealed(
                target,
                signer,
                output_dir=output_dir,
                bom=bom_bytes,
                builder_id=builder_id or DEFAULT_BUILDER_ID,
                overwrite=force,
            )
        else:
            output = None
            if output_dir is not None:
                output = output_dir / (Path(target).resolve().name + MODEL_SIGNATURE_SUFFIX)
            result = sign_model(target, signer, output=output, hash_type=hash_algorithm, overwrite=force)
        described = signer.describe()
    finally:
        signer.close()
    _report(target, described, result, json_output)
