"""The ``ccdeploy`` command line. Its root is the only place that turns a :class:`CcdError` into words."""

from __future__ import annotations

import json
import sys

import click

from ccdeploy import __version__
from ccdeploy._cli._output import CliState
from ccdeploy._lazy import load_target
from ccdeploy.errors import EXIT_USAGE, CcdError

__all__ = ["cli", "main"]

COMMANDS: dict[str, str] = {
    "seal": "ccdeploy._cli.seal:seal",
    "unseal": "ccdeploy._cli.seal:unseal",
    "inspect": "ccdeploy._cli.seal:inspect",
    "rekey": "ccdeploy._cli.seal:rekey",
    "kek": "ccdeploy._cli.kek:kek",
    "attest": "ccdeploy._cli.attest:attest",
    "sign": "ccdeploy._cli.sign:sign",
    "verify": "ccdeploy._cli.verify:verify",
    "bom": "ccdeploy._cli.bom:bom",
    "broker": "ccdeploy._cli.broker:broker",
    "infer": "ccdeploy._cli.infer:infer",
    "policy": "ccdeploy._cli.policy:policy",
    "receipt": "ccdeploy._cli.receipt:receipt",
}
"""Command name -> ``module:attribute``. Commands are imported only when used: the BOM and Sigstore
libraries take about a second to import, which a ``ccdeploy seal`` should not pay."""


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        command: click.Command = load_target(target)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ccdeploy")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Seal ML models, release their keys to attested enclaves, serve and audit them."""
    ctx.ensure_object(CliState)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit code (0 done, 1 decision, 2 usage, 3 could not check)."""
    state = CliState()
    try:
        # Without standalone mode click returns (not raises) the code of a command's click.exceptions.Exit.
        returned = cli.main(args=argv, prog_name="ccdeploy", standalone_mode=False, obj=state)
    except CcdError as error:
        if state.json:
            document = {"ok": False, "error": {"type": type(error).__name__, "message": error.diagnostics()}}
            click.echo(json.dumps(document, indent=2, sort_keys=True))
        click.echo(f"ccdeploy: error: {error.diagnostics()}", err=True)
        return error.exit_code
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.Abort:
        click.echo("ccdeploy: aborted", err=True)
        return EXIT_USAGE
    except click.ClickException as error:
        error.show()
        return EXIT_USAGE
    return returned if isinstance(returned, int) else 0


def entry_point() -> None:  # pragma: no cover - thin console-script wrapper
    """Console-script entry point."""
    sys.exit(main())
