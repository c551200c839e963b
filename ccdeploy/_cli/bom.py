"""``ccdeploy bom``: placeholder, replaced by its implementation in this change."""

from __future__ import annotations

import click


@click.command()
def bom() -> None:
    """Not implemented yet."""
    raise click.UsageError("not implemented yet")
