"""`colorize info`: describe shards (data/shards.py) and models (inference/model_info.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from colorize_cli.commands import common


def info(
    files: Annotated[
        list[str],
        typer.Argument(
            help="Shard files or globs, generator **.keras** files, or **default** for the "
            "bundled model.",
            show_default=False,
        ),
    ],
    verify: Annotated[
        bool, typer.Option(help="Re-read every image of a shard and check schema and shapes.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per file on stdout.")
    ] = False,
) -> None:
    """Describe shards (counts, image size, split, attributes) or models (size, training)."""
    from colorize_cli.data import shards
    from colorize_cli.inference.model_info import describe_model

    targets: list[tuple[Path, bool]] = []  # (path, is a model)
    with common.errors():
        for name in files:
            if name == "default" or name.endswith(".keras"):
                from colorize_cli.nets.saved import DEFAULT_MODEL_PATH

                targets.append((DEFAULT_MODEL_PATH if name == "default" else Path(name), True))
            else:
                targets.extend((path, False) for path in shards.expand_shard_paths([name]))
    failed = 0
    for path, is_model in targets:
        try:
            with common.errors():
                if is_model:
                    description = describe_model(path)
                else:
                    description = shards.describe_shard(path, verify=verify)
        except typer.Exit:
            failed += 1
            continue
        if as_json:
            typer.echo(json.dumps(description, default=str))
        else:
            _print_description(description)
    if failed:
        raise typer.Exit(1 if failed < len(targets) else 2)


def _print_description(description: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=str(description.get("path", "")), show_header=False, title_justify="left")
    for key, value in description.items():
        if key == "path":
            continue
        if isinstance(value, dict):
            for sub_key, sub_value in value.items():
                table.add_row(f"{key}.{sub_key}", str(sub_value))
        else:
            table.add_row(key, str(value))
    Console(highlight=False).print(table)
