"""Controllers: protocol, voting helpers, registry, specs and the built-in families."""

from autotts.controllers.base import BetaController, Controller, descriptions, register, registry
from autotts.controllers.spec import ControllerSpec
from autotts.controllers.voting import beta_confidence, majority, top_two

__all__ = [
    "BetaController",
    "Controller",
    "ControllerSpec",
    "beta_confidence",
    "descriptions",
    "majority",
    "register",
    "registry",
    "top_two",
]
