"""`python -m colorize_cli` runs the `colorize` command line."""

from colorize_cli.cli import app

app(prog_name="colorize")
