"""Operator settings of the test-time-scaling proxy, and the per-request overrides they allow.

Every knob a client may touch (controller, β, deadline, branch pool, token budget) is
bounded here by the operator; a request beyond a bound is refused with a 400 that names
the bound, never silently clamped, so a client learns what it actually got.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autotts.controllers.spec import ControllerSpec
from autotts.errors import ConfigError
from autotts.online.runner import Placement
from autotts.online.session import LiveLimits

#: Environment variable holding comma-separated bearer keys the proxy accepts.
KEYS_ENV = "AUTOTTS_SERVE_API_KEYS"


class RequestError(Exception):
    """A client request that cannot be served; becomes an OpenAI-style error object."""

    def __init__(
        self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None
    ) -> None:
        self.status = status
        self.type = type
        self.param = param
        self.code = type
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        """The OpenAI error object."""
        return {"error": {"message": str(self), "type": self.type, "param": self.param, "code": self.code}}


def load_keys(env: Mapping[str, str] | None = None, file: str | os.PathLike[str] | None = None) -> frozenset[str]:
    """Bearer keys from ``$AUTOTTS_SERVE_API_KEYS`` (comma-separated) and/or a file (one per line)."""
    env = os.environ if env is None else env
    keys = {k.strip() for k in env.get(KEYS_ENV, "").split(",") if k.strip()}
    if file is not None:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the API key file {file}: {exc.strerror or exc}") from None
        keys |= {line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")}
        if not keys:
            raise ConfigError(f"the API key file {file} holds no key (one key per line)")
    return frozenset(keys)


@dataclass(frozen=True)
class ProxyConfig:
    """What ``autotts serve`` runs with (see the module docstring)."""

    controller: str
    """Default controller spec (``name[:k=v,...]`` or ``file.py:Class[:k=v,...]``)."""
    model: str
    """Upstream model name; also the model id the proxy advertises."""
    delta: int = 500
    beta: float | None = None
    allowed_controllers: tuple[str, ...] = ()
    """Controller specs a request may pick by name (``sc`` or ``sc:n=8``: the operator fixes the parameters);
    the default controller always counts."""
    beta_range: tuple[float, float] = (0.0, 1.0)
    limits: LiveLimits = field(default_factory=LiveLimits)
    """Defaults per question; requests may lower them, never raise them."""
    max_concurrency: int = 16
    retry_after: int = 1
    max_body_bytes: int = 1 << 20
    include_reasoning: bool = False
    shutdown_grace: float = 30.0
    api_keys: frozenset[str] = field(default=frozenset(), repr=False)
    placement: Placement = Placement.AUTO
    """Where controllers run: built-ins on the event loop and others in worker threads (``auto``), or all in one."""

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be at least 1, got {self.max_concurrency}")
        lo, hi = self.beta_range
        if not 0.0 <= lo <= hi <= 1.0:
            raise ConfigError(f"beta range must satisfy 0 <= min <= max <= 1, got {lo}..{hi}")
        if self.beta is not None and not lo <= self.beta <= hi:
            raise ConfigError(f"--beta {self.beta} lies outside the allowed range {lo}..{hi}")
        if self.delta < 1:
            raise ConfigError(f"delta must be at least 1 token, got {self.delta}")
        if self.max_body_bytes < 1024:
            raise ConfigError(f"max body size must be at least 1024 bytes, got {self.max_body_bytes}")
        self.default_spec()  # fail at startup, not on the first request
        self.allowed_specs()

    def default_spec(self) -> ControllerSpec:
        """The operator's controller spec, with ``--beta`` applied."""
        spec = ControllerSpec.parse(self.controller)
        if self.beta is not None:
            if not spec.accepts("beta"):
                raise ConfigError(f"controller {spec.label} takes no beta; drop --beta")
            spec = spec.with_params(beta=self.beta)
        return spec

    def allowed_specs(self) -> list[ControllerSpec]:
        """The parsed specs of ``allowed_controllers``."""
        return [ControllerSpec.parse(text) for text in self.allowed_controllers]

    def resolve(self, body: Mapping[str, Any]) -> tuple[ControllerSpec, LiveLimits]:
        """The controller spec and limits of one request, from its extra body fields."""
        spec = self.default_spec()
        name = body.get("controller")
        if name is not None:
            if not isinstance(name, str):
                raise RequestError(400, "'controller' must be a controller name", param="controller")
            allowed = {s.name: s for s in self.allowed_specs()}
            allowed[spec.name] = spec
            if name not in allowed:
                raise RequestError(
                    400,
                    f"controller {name!r} is not allowed here; allowed: {', '.join(sorted(allowed))}",
                    param="controller",
                )
            spec = allowed[name]
        beta = body.get("beta")
        if beta is not None:
            if isinstance(beta, bool) or not isinstance(beta, int | float):
                raise RequestError(400, "'beta' must be a number", param="beta")
            lo, hi = self.beta_range
            if not lo <= float(beta) <= hi:
                raise RequestError(400, f"'beta' must lie in {lo}..{hi} on this server, got {beta}", param="beta")
            if not spec.accepts("beta"):
                raise RequestError(400, f"controller {spec.name} takes no beta", param="beta")
            spec = spec.with_params(beta=float(beta))
        limits = self.limits
        over: dict[str, Any] = {}
        for key, cap, kind in (
            ("timeout", limits.deadline, float),
            ("max_branches", limits.max_branches, int),
            ("token_budget", limits.token_budget, int),
        ):
            value = body.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and value != int(value)):
                raise RequestError(400, f"'{key}' must be a positive {kind.__name__}", param=key)
            if value <= 0 or (cap is not None and value > cap):
                limit = f"at most {cap}" if cap is not None else "positive"
                raise RequestError(400, f"'{key}' must be {limit} on this server, got {value}", param=key)
            over[key] = kind(value)
        if over:
            limits = LiveLimits(
                token_budget=over.get("token_budget", limits.token_budget),
                deadline=over.get("timeout", limits.deadline),
                max_branches=over.get("max_branches", limits.max_branches),
                max_branch_tokens=limits.max_branch_tokens,
            )
        return spec, limits
