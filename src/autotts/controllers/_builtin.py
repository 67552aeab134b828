"""Imports every built-in controller module so that each registers itself."""

from autotts.controllers import (  # noqa: F401
    adaptive,
    cmc,
    consistency_exit,
    early_stopping,
    parallel_probe,
    self_consistency,
    wide_commit,
)
