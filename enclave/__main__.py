"""``python -m enclave`` (console script ``ccdeploy-enclave``): attest, obtain the model key, serve over TLS.

Example::

    python -m enclave --broker http://127.0.0.1:8400 --model tiny-mlp --sealed mlp.ccseal --simulator-state sim/

Exit codes: 0 after a clean shutdown (SIGTERM or SIGINT), 1 a decision went against us (release denied,
released key unusable), 2 usage, 3 could not run (broker unreachable, no attestation device, provider
missing). This module is the enclave's only edge: it alone prints and exits.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from ccdeploy.errors import CcdError, ReleaseDenied
from ccdeploy.release.hpke import HpkeSuite
from enclave.config import EnclaveConfig
from enclave.errors import EnclaveError, ServerUnavailable
from enclave.memory import DEFAULT_RAM_ROOT

__all__ = ["main", "parse_args"]

_log = logging.getLogger("enclave")


def _clock() -> datetime:
    return datetime.now(UTC)


def _pcr(text: str) -> tuple[int, str]:
    index, sep, value = text.partition("=")
    if not sep or not index.isdigit():
        raise argparse.ArgumentTypeError(f"expected INDEX=HEX, got {text!r}")
    return int(index), value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ccdeploy-enclave",
        description="Attest to the key broker, unseal the model in memory and serve it over TLS (OIP v2).",
    )
    parser.add_argument("--broker", required=True, help="key broker base URL")
    parser.add_argument("--model", required=True, help="model name registered at the broker")
    parser.add_argument("--sealed", required=True, type=Path, help="sealed artifact (.ccseal)")
    parser.add_argument("--attester", default="simulator-nitro", help="attester name (default: simulator-nitro)")
    parser.add_argument("--attester-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--simulator-state", type=Path, help="simulator state directory (roots and keys)")
    parser.add_argument("--simulator-pcr", action="append", type=_pcr, default=[], metavar="INDEX=HEX")
    parser.add_argument("--simulator-debug", action="store_true", help="simulate a debug-mode enclave")
    parser.add_argument(
        "--simulator-bad-gpu",
        action="append",
        type=int,
        default=[],
        metavar="INDEX",
        help="simulated GPU whose measurements differ from its RIM (repeat)",
    )
    parser.add_argument("--simulator-gpu-driver", metavar="VERSION", help="driver version the simulated GPUs report")
    parser.add_argument(
        "--provider", action="append", default=None, help="ONNX Runtime execution provider (repeat, in priority order)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443, help="0 picks a free port (logged)")
    parser.add_argument("--san", action="append", default=[], help="extra TLS certificate name or IP (repeat)")
    parser.add_argument("--external-data", choices=["tmpfs", "memory"], default="tmpfs")
    parser.add_argument("--staging-root", type=Path, default=DEFAULT_RAM_ROOT, help="RAM-backed tmpfs for staging")
    parser.add_argument("--hpke-suite", choices=[s.value for s in HpkeSuite], default=HpkeSuite.XWING.value)
    parser.add_argument("--max-request-bytes", type=int, default=64 * 1024 * 1024)
    parser.add_argument("--broker-timeout", type=float, default=10.0)
    parser.add_argument("--broker-ca-file", type=Path, help="PEM CA certificates of an https broker (a private CA)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (never secrets)")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> tuple[EnclaveConfig, bool]:
    """Parse the command line into a configuration and the verbosity flag (argparse exits 2 on bad usage)."""
    parser = _parser()
    args = parser.parse_args(argv)
    options = {}
    for item in args.attester_option:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--attester-option expects KEY=VALUE, got {item!r}")
        options[key] = value
    try:
        config = EnclaveConfig(
            broker_url=args.broker,
            model=args.model,
            sealed_path=args.sealed,
            attester=args.attester,
            attester_options=options,
            simulator_state=args.simulator_state,
            simulator_pcrs=dict(args.simulator_pcr),
            simulator_debug=args.simulator_debug,
            simulator_bad_gpus=tuple(args.simulator_bad_gpu),
            simulator_gpu_driver=args.simulator_gpu_driver,
            providers=tuple(args.provider or ("CPUExecutionProvider",)),
            host=args.host,
            port=args.port,
            san_names=tuple(args.san),
            external_data=args.external_data,
            staging_root=args.staging_root,
            hpke_suite=HpkeSuite(args.hpke_suite),
            max_request_bytes=args.max_request_bytes,
            broker_timeout=args.broker_timeout,
            broker_ca_file=args.broker_ca_file,
        )
    except ValidationError as exc:
        parser.error(str(exc).splitlines()[0] + ": " + "; ".join(e["msg"] for e in exc.errors()))
    return config, args.verbose


def run(config: EnclaveConfig) -> None:
    """Bootstrap the enclave and serve until SIGTERM/SIGINT (uvicorn's handlers stop it cleanly)."""
    import uvicorn  # noqa: PLC0415 - the server stack is loaded only once the release went through

    from ccdeploy.release.client import ReleaseClient  # noqa: PLC0415
    from enclave.bootstrap import attester_for, bootstrap  # noqa: PLC0415
    from enclave.server import server_config  # noqa: PLC0415

    try:  # bind first: a busy port should not cost a nonce and a release
        listener = socket.create_server((config.host, config.port))
    except OSError as exc:
        raise ServerUnavailable(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from None
    with listener:
        attester = attester_for(config, _clock)
        with ReleaseClient(config.broker_url, timeout=config.broker_timeout, ca_file=config.broker_ca_file) as client:
            enclave = bootstrap(config, attester=attester, release_client=client, clock=_clock)
        app = enclave.app()
        host, port = listener.getsockname()[:2]
        with enclave.keys.tls.uvicorn_ssl_files() as (certfile, keyfile):
            server = server_config(app, host=host, port=port, certfile=certfile, keyfile=keyfile, log_config=None)
            server.load()  # reads the key from the memfds, which close when this block ends
        _log.info("serving model %r on https://%s:%d (OIP v2, /v1/attestation, /v1/receipt)", config.model, host, port)
        # uvicorn re-raises the stop signal once it has shut down; let it land on a handler that just returns.
        stopped: list[int] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda number, _frame: stopped.append(number))
        uvicorn.Server(server).run(sockets=[listener])
    _log.info("stopped (%s)", ", ".join(signal.Signals(n).name for n in stopped) or "server exited")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: returns the process exit code (see the module docstring)."""
    config, verbose = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        run(config)
    except ReleaseDenied as exc:
        _log.error("release denied (%s, HTTP %d): %s", exc.reason, exc.status, exc.message)
        return exc.exit_code
    except CcdError as exc:
        _log.error("%s: %s", type(exc).__name__, exc.diagnostics())
        return exc.exit_code
    except EnclaveError as exc:
        _log.error("%s: %s", type(exc).__name__, exc)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
