"""The ``backup-operator runner`` command group (placeholder until the runner lands)."""

import click


@click.group()
def runner() -> None:
    """Commands that run inside a backup Job."""
