"""The ``ccdeploy`` command line. Its root is the only place that turns a :class:`CcdError` into words."""

from __future__ import annotations

import json
import sys

import click

from ccdeploy import __version__
from ccdeploy._cli._output import CliState
from ccdeploy._cli.attest import attest
from ccdeploy._cli.bom import bom
from ccdeploy._cli.kek import kek
from ccdeploy._cli.seal import inspect, rekey, seal, unseal
from ccdeploy._cli.sign import sign
from ccdeploy._cli.verify import verify
from ccdeploy.errors import EXIT_USAGE, CcdError

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ccdeploy")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Seal ML models, release their keys to attested enclaves, serve and audit them."""
    ctx.ensure_object(CliState)


cli.add_command(seal)
cli.add_command(unseal)
cli.add_command(inspect)
cli.add_command(rekey)
cli.add_command(kek)
cli.add_command(attest)
cli.add_command(sign)
cli.add_command(verify)
cli.add_command(bom)


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
