"""Conformance checks every environment backend must pass (Gymnasium's ``check_env`` is the model).

``check_env`` drives a :class:`~autotts.env.process.ReplayEnv`-like object with a
seeded random policy; ``check_session`` does the same for controller-facing sessions
(replay, synthetic, and later live backends). Each check raises
:class:`EnvCheckError` with a specific message; users can run them on their own
backends (``autotts.testing`` re-exports them).

Checked invariants: named result types; determinism (same actions -> same
observations); cost never decreases and equals the sum of the charges; the budget is
never exceeded; illegal actions raise :class:`~autotts.errors.IllegalActionError` and
leave the state unchanged; every revealed answer was revealed by an action; an ended
episode accepts no further action; trace recording does not change results.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from autotts.env.process import Action, ActionKind, Observation, StepResult
from autotts.env.session import Reveal
from autotts.errors import AutoTTSError, BudgetExceededError, IllegalActionError


class EnvCheckError(AutoTTSError):
    """A backend violates the environment contract."""


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise EnvCheckError(message)


def _random_episode(env: Any, rng: random.Random, max_steps: int) -> list[tuple[Action, Observation]]:
    """Play random legal actions (refused budget actions are retried with others)."""
    history: list[tuple[Action, Observation]] = []
    obs = env.reset()
    _require(isinstance(obs, Observation), f"reset() must return an Observation, got {type(obs).__name__}")
    _require(obs.cost == 0 and obs.opened == 0 and not obs.revealed, "reset() must start from an empty state")
    prev = obs
    for _ in range(max_steps):
        legal = [a for a in env.legal_actions() if a.kind is not ActionKind.ANSWER]
        if not legal or rng.random() < 0.02:
            action = Action.answer_with(None)
        else:
            action = rng.choice(legal)
        before = env.observation()
        _require(before == prev, "the state changed between two steps without an action")
        try:
            result = env.step(action)
        except BudgetExceededError:
            _require(env.observation() == before, f"a refused {action} changed the state")
            action = Action.answer_with(None)
            result = env.step(action)
        _require(isinstance(result, StepResult), f"step() must return a StepResult, got {type(result).__name__}")
        o = result.observation
        _require(o.cost >= before.cost, f"{action} decreased the cost ({before.cost} -> {o.cost})")
        _require(abs(o.cost - before.cost - result.cost) < 1e-9, f"{action}: cost delta != reported charge")
        if o.budget is not None:
            _require(o.cost <= o.budget + 1e-9, f"{action}: cost {o.cost} exceeds the budget {o.budget}")
        _require(len(o.revealed) - len(before.revealed) <= 1, f"{action} revealed more than one answer")
        if action.kind not in (ActionKind.PROBE, ActionKind.CONTINUE):
            _require(o.revealed == before.revealed, f"{action} revealed an answer")
        history.append((action, o))
        prev = o
        if result.terminated:
            break
    return history


def check_env(make_env: Callable[[], Any], *, episodes: int = 20, max_steps: int = 400, seed: int = 0) -> None:
    """Check a decision-process backend; ``make_env()`` returns a fresh environment."""
    for ep in range(episodes):
        rng_a, rng_b = random.Random(seed + ep), random.Random(seed + ep)
        env_a, env_b = make_env(), make_env()
        hist_a = _random_episode(env_a, rng_a, max_steps)
        hist_b = _random_episode(env_b, rng_b, max_steps)
        _require(hist_a == hist_b, f"episode {ep}: same actions gave different observations (non-deterministic)")
        # Illegal actions are refused without changing the state.
        env = make_env()
        env.reset()
        for bad in (Action.cont(0), Action.probe(0), Action.prune(0), Action.cont(-1)):
            before = env.observation()
            try:
                env.step(bad)
            except IllegalActionError:
                pass
            else:
                raise EnvCheckError(f"{bad} on an empty state was accepted")
            _require(env.observation() == before, f"refused {bad} changed the state")
        if hist_a and hist_a[-1][1].terminated:
            try:
                env_a.step(Action.new_branch())
            except IllegalActionError:
                pass
            else:
                raise EnvCheckError("an ended episode accepted another action")


def _random_session_run(make_session: Callable[[bool], Any], rng: random.Random, max_steps: int) -> list[Any]:
    session = make_session(True)
    log: list[Any] = []
    total = 0
    for _ in range(max_steps):
        alive = session.alive()
        choice = rng.random()
        if choice < 0.3 or not alive:
            r = session.open() if rng.random() < 0.8 else session.read()
            if r is None:
                if not alive:
                    break
                continue
        elif choice < 0.9:
            r = session.advance(rng.choice(alive))
        else:
            b = rng.choice(alive)
            session.prune(b)
            log.append(("prune", b))
            continue
        _require(isinstance(r, Reveal), f"session actions must return Reveal, got {type(r).__name__}")
        _require(r.cost >= 0, f"negative charge {r.cost}")
        total += r.cost
        _require(session.cost == total, f"session cost {session.cost} != sum of charges {total}")
        log.append(tuple(r))
    return log


def check_session(
    make_session: Callable[[bool], Any], *, episodes: int = 20, max_steps: int = 300, seed: int = 0
) -> None:
    """Check a session backend; ``make_session(record)`` returns a fresh session."""
    for ep in range(episodes):
        a = _random_session_run(make_session, random.Random(seed + ep), max_steps)
        b = _random_session_run(make_session, random.Random(seed + ep), max_steps)
        _require(a == b, f"episode {ep}: same actions gave different results (non-deterministic)")
        s = make_session(True)
        for name, arg in (("advance", 0), ("prune", 0), ("advance", -1)):
            try:
                getattr(s, name)(arg)
            except IllegalActionError:
                pass
            else:
                raise EnvCheckError("an action on a branch that is not open was accepted")
        _require(s.cost == 0 and s.n_opened == 0, "refused actions changed the session")
        # Recording off must not change any result.
        on, off = make_session(True), make_session(False)
        rng = random.Random(seed + ep)
        for _ in range(50):
            if on.alive() and rng.random() < 0.7:
                i = rng.choice(on.alive())
                _require(on.advance(i) == off.advance(i), "recording changed an advance")
            else:
                ra, rb = on.open(), off.open()
                _require(ra == rb, "recording changed an open")
                if ra is None:
                    break
        _require(on.cost == off.cost, "recording changed the cost")
        _require(len(off.trace) == 0, "recording off still recorded a trace")
        _require(len(on.trace) > 0 or on.cost == 0, "recording on recorded nothing")
