"""Controller specs: ``name[:key=value,...]`` or ``path/file.py:Class[:key=value,...]``.

A spec is parsed once into a :class:`ControllerSpec`, which builds fresh controller
instances and gives the label used in tables and JSON records.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autotts.controllers.base import Controller, descriptions, registry
from autotts.controllers.loader import instantiate, load_controller_class
from autotts.errors import ControllerSpecError


def parse_value(text: str) -> Any:
    """Turn ``"64"``, ``"0.95"``, ``"true"`` into int, float, bool; anything else stays a string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_params(text: str, *, spec: str) -> dict[str, Any]:
    """Parse ``k=v,k2=v2`` into a dict; a malformed item raises ControllerSpecError."""
    params: dict[str, Any] = {}
    if not text.strip():
        return params
    for item in text.split(","):
        if "=" not in item:
            raise ControllerSpecError(
                f"controller spec {spec!r}: parameter {item!r} is not key=value (example: sc:n=64)"
            )
        key, value = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if not key.isidentifier():
            raise ControllerSpecError(f"controller spec {spec!r}: {key!r} is not a valid parameter name")
        if key in params:
            raise ControllerSpecError(
                f"controller spec {spec!r}: parameter {key!r} is given twice; give each parameter once "
                "(for several values, repeat --controller or use --beta for β)"
            )
        parsed = parse_value(value.strip())
        if isinstance(parsed, float) and not math.isfinite(parsed):
            raise ControllerSpecError(f"controller spec {spec!r}: {key}={value.strip()} is not a finite number")
        params[key] = parsed
    return params


def format_params(params: Mapping[str, Any]) -> str:
    """Inverse of :func:`parse_params` for display: ``k=v,k2=v2``."""
    return ",".join(f"{k}={v}" for k, v in params.items())


def label(controller: str, params: Mapping[str, Any]) -> str:
    """``controller(k=v,...)``, or the bare name without parameters: the one label of a cell.

    Specs, evaluation records and tables all call this, so a cell is shown the same way
    wherever it appears.
    """
    return f"{controller}({format_params(params)})" if params else controller


#: Parameters that name how many branches a controller opens (``sc:n``, ``asc:max_samples``, ...).
_WIDTH_PARAMETERS = ("n", "max_samples", "chains", "width")


@dataclass(frozen=True)
class ControllerSpec:
    """A parsed controller spec: a registered name or a file + class, plus parameters."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    class_name: str | None = None
    target: Any = field(default=None, compare=False, repr=False)
    """A controller class or instance given directly from Python (see :meth:`of`)."""

    def __post_init__(self) -> None:
        # β-controllers clip β to [0, 1], but a row labelled beta=1.5 showing the β=1
        # numbers misleads: a β given explicitly must already be in range.
        beta = self.params.get("beta")
        if beta is not None and not (
            isinstance(beta, (int, float)) and not isinstance(beta, bool) and 0.0 <= float(beta) <= 1.0
        ):
            raise ControllerSpecError(f"controller {self.label}: beta must be a number in [0, 1], got {beta!r}")

    @classmethod
    def of(cls, target: Any, **params: Any) -> ControllerSpec:
        """A spec for a controller class (built with ``params``) or a ready instance.

        An instance is shared by every question and run of its cells, so it must not
        keep state between questions (the rule for every controller).
        """
        if inspect.isclass(target):
            name = target.__name__
        elif callable(getattr(target, "solve", None)):
            if params:
                raise ControllerSpecError(
                    f"controller {type(target).__name__}: parameters need a class, not an instance"
                )
            name = type(target).__name__
        else:
            raise ControllerSpecError(
                f"{target!r} is not a controller: pass a spec string, a class, or an object with solve(session)"
            )
        return cls(name=name, params=dict(params), target=target)

    @classmethod
    def parse(cls, text: str) -> ControllerSpec:
        """Parse a spec string; unknown names raise ControllerSpecError listing the known ones."""
        text = text.strip()
        if not text:
            raise ControllerSpecError("empty controller spec; try 'sc:n=64' or 'path/file.py:Class'")
        parts = text.split(":")
        if parts[0].endswith(".py"):
            if len(parts) < 2 or not parts[1]:
                raise ControllerSpecError(
                    f"controller spec {text!r}: name the class too, as {parts[0]}:ClassName[:k=v,...]"
                )
            params = parse_params(":".join(parts[2:]), spec=text)
            return cls(name=parts[1], params=params, path=parts[0], class_name=parts[1])
        name = parts[0].strip().lower()
        known = registry()
        if name not in known:
            raise ControllerSpecError(
                f"unknown controller {name!r}; known: {', '.join(sorted(known))} (or give path/to/file.py:ClassName)"
            )
        params = parse_params(":".join(parts[1:]), spec=text)
        return cls(name=name, params=params)

    def width_warning(self, branches: int, store: str) -> str | None:
        """A warning when an explicit width parameter asks for more branches than ``store`` has per question.

        ``sc:n=128`` on a 64-branch store reads 64 branches, so its row would really be
        SC@64 under another name; the run is still allowed (the controller stops when
        the store runs out), but the user should know.
        """
        for name in _WIDTH_PARAMETERS:
            value = self.params.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > branches:
                return (
                    f"controller {self.label}: {name}={value} exceeds the {branches} branches per question of "
                    f"{store}; it opens at most {branches}, so its results equal those of {name}={branches}"
                )
        return None

    def with_params(self, **extra: Any) -> ControllerSpec:
        """A copy with some parameters added or replaced."""
        return ControllerSpec(self.name, {**self.params, **extra}, self.path, self.class_name, self.target)

    @property
    def label(self) -> str:
        """Short display label, e.g. ``sc(n=64)`` or ``cmc(beta=0.5)`` (see :func:`label`)."""
        return label(self.name, self.params)

    @property
    def fingerprint(self) -> str:
        """Hex hash of what decides the controller's behaviour: name, parameters, and code not in the package.

        A file controller's hash covers the file's source, so editing the file changes
        the fingerprint (and a resumed sweep can tell its old results apart). A class
        given from Python is hashed with its module source when that can be read.
        Built-ins are identified by name and parameters.
        """
        h = hashlib.sha256()
        h.update(json.dumps([self.name, self.params, self.class_name], sort_keys=True, default=repr).encode())
        if self.path is not None:
            try:
                h.update(Path(self.path).read_bytes())
            except OSError as exc:
                raise ControllerSpecError(f"controller {self.label}: cannot read {self.path}: {exc}") from None
        elif self.target is not None:
            cls = self.target if inspect.isclass(self.target) else type(self.target)
            h.update(f"{cls.__module__}.{cls.__qualname__}".encode())
            try:
                h.update(inspect.getsource(cls).encode())
            except (OSError, TypeError):
                pass  # defined interactively: the name is all there is
        return h.hexdigest()

    def accepts(self, param: str) -> bool:
        """Whether the controller takes a parameter of this name (e.g. ``beta``)."""
        try:
            factory = self._factory()
        except ControllerSpecError:
            return False
        try:
            sig = inspect.signature(factory)
        except (TypeError, ValueError):
            return False
        return param in sig.parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())

    def _factory(self) -> Any:
        if self.target is not None:
            return self.target if inspect.isclass(self.target) else type(self.target)
        if self.path is not None:
            return load_controller_class(self.path, self.class_name or self.name)
        return registry()[self.name]

    def build(self) -> Controller:
        """A fresh controller instance with this spec's parameters."""
        if self.target is not None and not inspect.isclass(self.target):
            built_instance: Controller = self.target
            return built_instance
        factory = self._factory()
        if self.path is not None or self.target is not None:
            built: Controller = instantiate(factory, self.params, spec=self.label)
            return built
        try:
            return factory(**self.params)  # type: ignore[no-any-return]
        except TypeError as exc:
            try:
                allowed = ", ".join(inspect.signature(factory).parameters)
            except (TypeError, ValueError):
                allowed = "?"
            raise ControllerSpecError(
                f"controller {self.label}: {exc}; its parameters are: {allowed or '(none)'}"
            ) from None
        except ValueError as exc:
            raise ControllerSpecError(f"controller {self.label}: {exc}") from None


@dataclass(frozen=True, slots=True)
class ParameterInfo:
    """One constructor parameter of a registered controller."""

    name: str
    default: Any
    required: bool = False

    @property
    def default_text(self) -> str:
        """The default as written in a spec (``-`` when the parameter is required, ``auto`` for ``None``)."""
        if self.required:
            return "(required)"
        if self.default is None:
            return "auto"
        return str(self.default)


@dataclass(frozen=True, slots=True)
class ControllerInfo:
    """A registered controller: name, one-line description and parameters."""

    name: str
    description: str
    parameters: tuple[ParameterInfo, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``autotts controllers --json``)."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": [{"name": p.name, "default": p.default, "required": p.required} for p in self.parameters],
        }


def controller_catalog() -> list[ControllerInfo]:
    """Every registered controller with its parameters (from the constructor) and description, by name."""
    text = descriptions()
    catalog = []
    for name, factory in sorted(registry().items()):
        params = []
        for p in inspect.signature(factory).parameters.values():
            if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                continue
            required = p.default is inspect.Parameter.empty
            params.append(ParameterInfo(p.name, None if required else p.default, required))
        catalog.append(ControllerInfo(name, text.get(name, ""), tuple(params)))
    return catalog
