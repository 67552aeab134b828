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


class BetaController(abc.ABC):
    """Base for controllers driven by one knob ``beta``; subclasses define :meth:`schedule` and :meth:`solve`."""

    name: ClassVar[str] = ""

    def __init__(self, beta: float = 1.0) -> None:
        self.beta = min(1.0, max(0.0, float(beta)))
        self.settings = self.schedule(self.beta)

    @classmethod
    @abc.abstractmethod
    def schedule(cls, beta: float) -> dict[str, Any]:
        """Every internal setting as a function of ``beta``."""

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
