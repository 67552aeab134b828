"""The ``autotts`` command line (Typer + rich); the only place that prints."""
