"""One module per `colorize` subcommand: typer options -> a library call -> stdout and exit code."""
