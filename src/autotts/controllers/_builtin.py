"""Imports every built-in controller module so that each registers itself."""

from autotts.controllers import self_consistency  # noqa: F401
