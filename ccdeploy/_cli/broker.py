"""``ccdeploy broker``: set up, run and administer the key broker, and re-verify its logs."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import click

from ccdeploy._cli._output import emit_json, json_option, say

_SEALED_SUFFIX = ".ccseal"
_PROVENANCE_SUFFIX = ".provenance.sigstore.json"


@click.group()
def broker() -> None:
    """Run the key broker: attested release of model keys."""


@broker.command("init")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@json_option
def init(directory: Path, json_output: bool) -> None:
    """Create a broker state directory: receipt and checkpoint signing keys, admin token, broker id."""
    from ccdeploy.broker.keys import ADMIN_TOKEN_FILE, init_state, load_state  # noqa: PLC0415 - lazy CLI import

    broker_id = init_state(directory)
    state = load_state(directory)
    token_file = directory / ADMIN_TOKEN_FILE
    if json_output:
        emit_json(
            {
                "ok": True,
                "broker_id": broker_id,
                "state_dir": str(directory),
                "admin_token_file": str(token_file),
                "receipt_public_key": state.receipt_public_pem(),
            }
        )
    else:
        say(f"created broker {broker_id} in {directory}")
        say(f"admin token: {token_file} (mode 0600; give it to `ccdeploy broker register --token-file`)")


@broker.command("serve")
@click.option("--state", "state_dir", required=True, type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--db", "db_url", required=True, help="sqlite:///abs/path.db, a file path, or postgresql://...")
@click.option("--kek", "keks", required=True, multiple=True, metavar="URI", help="A KEK to unwrap data keys with.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8440, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256))
@click.option("--nonce-ttl", default=60.0, show_default=True, type=click.FloatRange(1, 3600), help="Seconds.")
@click.option("--rate-limit", default="50/s", show_default=True, help="Challenge and release calls per client.")
@click.option(
    "--trust-proxy",
    is_flag=True,
    help="Behind a proxy that terminates TLS: take the client address from X-Forwarded-For.",
)
@click.option(
    "--tls-cert", type=click.Path(path_type=Path, dir_okay=False, exists=True), help="Serve HTTPS: PEM certificate."
)
@click.option(
    "--tls-key", type=click.Path(path_type=Path, dir_okay=False, exists=True), help="The certificate's key (mode 0600)."
)
@click.option(
    "--insecure-plain-http",
    is_flag=True,
    help="INSECURE: plain HTTP on a non-loopback host (the admin token crosses the network in clear).",
)
@click.option(
    "--fetch-collateral",
    is_flag=True,
    help="Fetch collateral evidence does not carry (SEV-SNP VCEKs from AMD KDS, Intel PCS collateral, an Azure "
    "Attestation provider's key set), cached in STATE/collateral. Off: such evidence is unverifiable.",
)
def serve(
    state_dir: Path,
    db_url: str,
    keks: tuple[str, ...],
    host: str,
    port: int,
    workers: int,
    nonce_ttl: float,
    rate_limit: str,
    trust_proxy: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
    insecure_plain_http: bool,
    fetch_collateral: bool,
) -> None:
    """Serve the key broker (HTTPS with --tls-cert/--tls-key, else HTTP on loopback) until interrupted."""
    from ccdeploy.broker.app import CONFIG_ENVIRONMENT_VARIABLE, build_app  # noqa: PLC0415 - lazy CLI import
    from ccdeploy.broker.config import BrokerConfig, parse_rate  # noqa: PLC0415
    from ccdeploy.broker.keys import check_secret_file, load_state  # noqa: PLC0415
    from ccdeploy.broker.listen import Listener, is_loopback, serve_uvicorn  # noqa: PLC0415
    from ccdeploy.kek import kek_from_uri  # noqa: PLC0415

    rate = parse_rate(rate_limit)
    if tls_key is not None:
        check_secret_file(tls_key)
    config = BrokerConfig(
        state_dir=state_dir.resolve(),
        db_url=db_url,
        kek_uris=keks,
        host=host,
        port=port,
        workers=workers,
        nonce_ttl=timedelta(seconds=nonce_ttl),
        rate_limit=rate,
        rate_burst=max(1.0, 2 * rate),
        trust_proxy=trust_proxy,
        tls_cert=None if tls_cert is None else tls_cert.resolve(),
        tls_key=None if tls_key is None else tls_key.resolve(),
        insecure_plain_http=insecure_plain_http,
        fetch_collateral=fetch_collateral,
    )
    listener = Listener(host, port, workers, config.tls_cert, config.tls_key)
    if listener.scheme == "http" and not is_loopback(host) and insecure_plain_http and not trust_proxy:
        say(f"WARNING: serving plain HTTP on {host}: the admin token and registrations cross the network in clear")
    where = f"{listener.scheme}://{host}:{port}"
    if workers == 1:
        app = build_app(config)  # built before listening, so configuration errors surface as such
        say(f"ccdeploy broker listening on {where} ({len(keks)} KEK(s), nonce TTL {nonce_ttl:g} s)")
        serve_uvicorn(app, listener)
        return
    state = load_state(config.state_dir)  # check the configuration before forking workers
    for uri in keks:
        kek_from_uri(uri)
    os.environ[CONFIG_ENVIRONMENT_VARIABLE] = config.to_json()
    say(f"ccdeploy broker {state.broker_id} listening on {where} with {workers} workers")
    serve_uvicorn("ccdeploy.broker.app:app_from_environment", listener, factory=True)


@broker.command("register")
@click.argument("sealed", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--policy", "policy_file", required=True, type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--url", required=True, help="The broker, e.g. https://broker.internal:8440 or http://127.0.0.1:8440.")
@click.option("--token-file", required=True, type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--ca-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="PEM CA certificate(s) to verify an https broker with (default: the system's).",
)
@click.option(
    "--signature",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The provenance bundle (default: NAME.provenance.sigstore.json beside SEALED, if present).",
)
@click.option("--name", help="The model name releases ask for (default: SEALED's name less .ccseal).")
@json_option
def register(
    sealed: Path,
    policy_file: Path,
    url: str,
    token_file: Path,
    ca_file: Path | None,
    signature: Path | None,
    name: str | None,
    json_output: bool,
) -> None:
    """Register a sealed model and its release policy with a running broker."""
    from ccdeploy.broker.admin import AdminClient, require_file, sealed_registration  # noqa: PLC0415
    from ccdeploy.broker.auth import read_token_file  # noqa: PLC0415

    base = sealed.name.removesuffix(_SEALED_SUFFIX) or sealed.name
    if signature is None:
        candidate = sealed.with_name(base + _PROVENANCE_SUFFIX)
        signature = candidate if candidate.is_file() else None
    provenance = require_file(signature, "provenance bundle") if signature is not None else None
    policy = require_file(policy_file, "policy")
    registration = sealed_registration(sealed, policy, provenance=provenance, name=name)
    token = read_token_file(token_file)
    with AdminClient(url, token, ca_file=ca_file) as client:
        registered = client.register(registration)
    if json_output:
        emit_json({"ok": True, "model": registered, "provenance": str(signature) if signature else None})
        return
    say(f"registered {registered['name']} (artifact {registered['artifact_id']})")
    say(f"  policy digest:   {registered['policy_digest']}")
    say(f"  artifact digest: ccseal.v1.blake3:{registered['artifact_digest']['ccseal.v1.blake3']}")
    say(f"  provenance:      {signature if signature else 'none registered'}")
    if registered.get("log_index") is not None:
        say(f"  logged at transparency-log index {registered['log_index']}")


@broker.group("audit")
def audit() -> None:
    """Re-verify the broker's audit log and transparency log."""


@audit.command("verify")
@click.option("--db", "db_url", required=True, help="The broker's database URL.")
@click.option(
    "--state",
    "state_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="The broker's state directory: also sign a checkpoint of the recomputed tree.",
)
@json_option
def audit_verify(db_url: str, state_dir: Path | None, json_output: bool) -> None:
    """Verify the audit hash chain and recompute the transparency log over it (exit 1 if broken)."""
    from ccdeploy.broker.keys import load_state  # noqa: PLC0415
    from ccdeploy.broker.logcheck import verify_logs  # noqa: PLC0415
    from ccdeploy.broker.store import open_store  # noqa: PLC0415
    from ccdeploy.transparency import Checkpoint, NoteSigner, sign_checkpoint  # noqa: PLC0415

    with open_store(db_url) as store:
        report = verify_logs(store)
    checkpoint = None
    if state_dir is not None:
        state = load_state(state_dir)
        signer = NoteSigner(state.log_origin, state.checkpoint_key)
        checkpoint = sign_checkpoint(Checkpoint(state.log_origin, report.log_size, report.root_hash), signer)
    if json_output:
        emit_json(
            {
                "ok": True,
                "entries": report.entries,
                "kinds": report.kinds,
                "log_size": report.log_size,
                "root_hash": report.root_hash.hex(),
                "checkpoint": checkpoint,
            }
        )
        return
    kinds = ", ".join(f"{count} {kind}" for kind, count in report.kinds.items()) or "none"
    say(f"audit chain verifies: {report.entries} entries ({kinds})")
    say(f"transparency log: {report.log_size} leaves, root {report.root_hash.hex()}")
    if checkpoint is not None:
        say(checkpoint.rstrip("\n"))
