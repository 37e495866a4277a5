"""The typer CLI: CPython only, never imported on the init or core-handler path."""
