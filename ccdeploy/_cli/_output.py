"""Output helpers shared by the commands: JSON results, human text, progress bars."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

from ccdeploy.seal.writer import Progress as ProgressCallback


class CliState:
    """Per-invocation state the root group shares with commands."""

    def __init__(self) -> None:
        self.json = False


def emit_json(document: dict[str, Any]) -> None:
    """Print one JSON result document on stdout."""
    click.echo(json.dumps(document, indent=2, sort_keys=True))


def say(text: str) -> None:
    """Print human-readable output on stdout."""
    click.echo(text)


def progress_enabled(json_output: bool) -> bool:
    """Progress bars only for a person watching: stdout a TTY and no --json."""
    return sys.stdout.isatty() and not json_output


@contextlib.contextmanager
def progress_bar(description: str, total: int, enabled: bool) -> Iterator[ProgressCallback | None]:
    """A rich progress bar on stderr, yielding the callback to feed it (or ``None`` when disabled)."""
    if not enabled:
        yield None
        return
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    obj = ctx.find_object(CliState)
    if obj is not None and value:
        obj.json = True
    return value


json_option = click.option(
    "--json",
    "json_output",
    is_flag=True,
    expose_value=True,
    is_eager=True,
    callback=_set_json,
    help="Print a machine-readable JSON result on stdout.",
)
"""The ``--json`` flag every reporting command carries."""
