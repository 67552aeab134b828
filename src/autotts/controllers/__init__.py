"""Controllers: protocol, voting helpers, registry, specs and the built-in families."""

# Importing the built-in modules registers them; every submodule import runs this first.
from autotts.controllers import _builtin  # noqa: F401
from autotts.controllers.base import BetaController, Controller, clamp_beta, descriptions, register, registry
from autotts.controllers.spec import ControllerSpec
from autotts.controllers.voting import beta_confidence, majority, top_two

__all__ = [
    "BetaController",
    "Controller",
    "ControllerSpec",
    "beta_confidence",
    "clamp_beta",
    "descriptions",
    "majority",
    "register",
    "registry",
    "top_two",
]
