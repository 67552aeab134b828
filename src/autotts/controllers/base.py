"""Controller protocol, β-schedules and the registry of built-in controllers.

A controller is any object with ``solve(session) -> answer | None``, constructed from
keyword parameters. It must not keep state from one question to the next and must be
deterministic given the branch order, so replay results are exactly reproducible.

A *β-controller* exposes a single knob ``beta`` in [0, 1] that trades cost for accuracy
monotonically; every internal setting comes from ``schedule(beta)``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, runtime_checkable

from autotts.env.session import ReplaySession


@runtime_checkable
class Controller(Protocol):
    """Anything that answers a question by acting on a session."""

    def solve(self, session: ReplaySession) -> str | None:
        """Spend compute through ``session`` and return an answer (``None`` = no answer)."""
        ...


def clamp_beta(beta: float) -> float:
    """β clipped to [0, 1], the range every schedule is defined on (the one place it is enforced)."""
    return min(1.0, max(0.0, float(beta)))


class BetaController(abc.ABC):
    """Base of every controller that takes the knob ``beta``; subclasses define :meth:`schedule` and :meth:`solve`.

    ``beta`` is clipped to [0, 1] and ``settings`` is ``schedule(beta)``. A controller
    whose β is optional (its other parameters can be given directly) passes ``None``
    and gets :meth:`default_settings` instead; it then overrides single settings with
    the parameters it was given.
    """

    name: ClassVar[str] = ""

    def __init__(self, beta: float | None = 1.0) -> None:
        self.beta: float | None = None if beta is None else clamp_beta(beta)
        self.settings: dict[str, Any] = self.default_settings() if self.beta is None else self.schedule(self.beta)

    @classmethod
    @abc.abstractmethod
    def schedule(cls, beta: float) -> dict[str, Any]:
        """Every internal setting as a function of ``beta`` (implementations clip it with :func:`clamp_beta`)."""

    @classmethod
    def default_settings(cls) -> dict[str, Any]:
        """Settings without a β (only for controllers whose β is optional): ``schedule(1.0)`` unless overridden."""
        return cls.schedule(1.0)

    @abc.abstractmethod
    def solve(self, session: ReplaySession) -> str | None:
        """Answer one question through ``session``."""


ControllerFactory = Callable[..., Controller]

_REGISTRY: dict[str, ControllerFactory] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register(name: str, description: str = "") -> Callable[[type[Any]], type[Any]]:
    """Class decorator: make a controller available by ``name`` in specs and the CLI."""

    def deco(cls: type[Any]) -> type[Any]:
        _REGISTRY[name] = cls
        _DESCRIPTIONS[name] = description or (cls.__doc__ or "").strip().splitlines()[0]
        cls.name = name
        return cls

    return deco


def registry() -> dict[str, ControllerFactory]:
    """Registered controllers by name (``autotts.controllers`` imports every built-in module)."""
    return dict(_REGISTRY)


def descriptions() -> dict[str, str]:
    """One-line description of each built-in controller."""
    registry()
    return dict(_DESCRIPTIONS)
