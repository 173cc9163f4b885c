"""The ``backup-operator`` command: ``run`` the operator, write the ``crds``, and the ``runner``."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from backup_operator.runner.cli import runner


@click.group()
@click.version_option(package_name="backup-operator")
def main() -> None:
    """Kubernetes operator for MongoDB and volume backups as Jobs."""


@main.command()
@click.option(
    "-n", "--namespace", "namespaces", multiple=True, help="Watch this namespace (repeatable)."
)
@click.option("-A", "--all-namespaces", is_flag=True, help="Watch every namespace.")
@click.option(
    "--liveness",
    default="http://0.0.0.0:8080/healthz",
    show_default=True,
    help="Liveness endpoint; empty to disable.",
)
@click.option(
    "--log-format", type=click.Choice(["json", "plain", "full"]), default="json", show_default=True
)
@click.option("--verbose", is_flag=True, help="Log debug messages.")
def run(
    namespaces: tuple[str, ...], all_namespaces: bool, liveness: str, log_format: str, verbose: bool
) -> None:
    """Run the operator against the current kubeconfig, or in-cluster."""
    import kopf

    from backup_operator import handlers, settings

    if not namespaces and not all_namespaces:
        raise click.UsageError("give --namespace (one or more) or --all-namespaces")
    try:
        config = settings.from_env()
    except settings.SettingsError as error:
        raise click.UsageError(str(error)) from error
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat[log_format.upper()])
    logging.getLogger("pymongo").setLevel(logging.INFO)  # its debug log echoes every command
    registry = kopf.OperatorRegistry()
    handlers.register(registry, config)
    asyncio.run(
        kopf.operator(
            registry=registry,
            standalone=True,
            clusterwide=all_namespaces,
            namespaces=list(namespaces),
            liveness_endpoint=liveness or None,
        )
    )


@main.command()
@click.option(
    "--output-dir", type=click.Path(path_type=Path), default=Path("crds"), show_default=True
)
@click.option("--check", is_flag=True, help="Fail when the files differ instead of writing them.")
def crds(output_dir: Path, check: bool) -> None:
    """Write the CustomResourceDefinitions generated from the API models."""
    from backup_operator.api.crd import render_all

    stale = []
    for name, text in render_all().items():
        path = output_dir / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
            continue
        output_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        click.echo(f"wrote {path}")
    if stale:
        click.echo(f"out of date, run `backup-operator crds`: {', '.join(stale)}", err=True)
        sys.exit(1)


main.add_command(runner)
