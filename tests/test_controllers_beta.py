"""Every β-taking built-in is a BetaController, and β is clipped in one place."""

from __future__ import annotations

import inspect

import pytest

from autotts.controllers import BetaController, ControllerSpec, clamp_beta, registry
from autotts.errors import ControllerSpecError


def beta_builtins() -> list[str]:
    return sorted(name for name, cls in registry().items() if "beta" in inspect.signature(cls).parameters)


def test_every_beta_taking_builtin_derives_from_beta_controller() -> None:
    names = beta_builtins()
    assert {"cmc", "consistency-exit", "wide-commit"} <= set(names)
    for name in names:
        assert issubclass(registry()[name], BetaController), name  # type: ignore[arg-type]


@pytest.mark.parametrize("name", beta_builtins())
@pytest.mark.parametrize(("given", "clipped"), [(-2.0, 0.0), (0.25, 0.25), (3.0, 1.0)])
def test_beta_is_clipped_and_drives_the_schedule(name: str, given: float, clipped: float) -> None:
    # The class clips β; a spec (CLI, evaluate()) refuses an out-of-range β before building.
    controller = registry()[name](beta=given)
    assert isinstance(controller, BetaController)
    if not 0.0 <= given <= 1.0:
        with pytest.raises(ControllerSpecError, match=r"beta must be a number in \[0, 1\]"):
            ControllerSpec.parse(f"{name}:beta={given}")
    assert controller.beta == clipped
    assert type(controller).schedule(given) == type(controller).schedule(clipped)
    scheduled = type(controller).schedule(clipped)
    assert {k: controller.settings[k] for k in scheduled} == scheduled


def test_clamp_beta() -> None:
    assert clamp_beta(-0.1) == 0.0 and clamp_beta(1.5) == 1.0 and clamp_beta(0.4) == 0.4


def test_optional_beta_builtins_keep_their_defaults_without_beta() -> None:
    ce = ControllerSpec.parse("consistency-exit").build()
    wc = ControllerSpec.parse("wide-commit").build()
    assert ce.beta is None and ce.settings["chains"] == 1 and ce.settings["k"] == 10  # type: ignore[attr-defined]
    assert wc.beta is None and wc.settings == {"width": 8, "depth": 4}  # type: ignore[attr-defined]
