"""The formal decision process of the AutoTTS paper (§2), Gymnasium-style.

State ``s_t = (q, m_t, I_t, ℓ_t, Ω_t)``: branches opened ``m``, the active set ``I``,
the depth ``ℓ_i`` (intervals decoded) of every branch and the revealed probes ``Ω``.
Actions:

* ``BRANCH`` opens the next branch of the run's order at depth 0 (nothing decoded yet,
  no cost);
* ``CONTINUE(i)`` decodes one more interval of branch ``i`` (Δ tokens); once the
  branch's intervals are exhausted it decodes to the end instead, charging the
  remainder ``max(0, tokens - spent)`` and revealing the final answer (the branch is
  finished);
* ``PROBE(i)`` reveals the answer at branch ``i``'s current depth for ``κ_probe · Δ``
  tokens (once per depth; not on a finished branch, whose answer is known);
* ``PRUNE(i)`` stops a live branch for good;
* ``ANSWER(a)`` ends the episode with answer ``a``.

``Cost(s) = Σ ℓ_i + κ_probe |Ω|`` in intervals, reported here in tokens (Δ per
interval, the reference remainder rule for the last one). With κ_probe = 0 a
``CONTINUE(i)`` immediately followed by ``PROBE(i)`` is exactly the session's
``advance(i)``; the test suite checks the two faces agree.

An action whose charge would take the cost past the budget ``B`` is refused with
:class:`~autotts.errors.BudgetExceededError`; every illegal action raises an
:class:`~autotts.errors.IllegalActionError` naming the action and the state and leaves
the state unchanged.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from autotts.errors import BudgetExceededError, IllegalActionError
from autotts.store.schema import ReplayQuestion


class ActionKind(enum.Enum):
    """The five action types of the decision process."""

    BRANCH = "BRANCH"
    CONTINUE = "CONTINUE"
    PROBE = "PROBE"
    PRUNE = "PRUNE"
    ANSWER = "ANSWER"


@dataclass(frozen=True, slots=True)
class Action:
    """An action: its kind, the branch it targets (if any) and the answer (for ANSWER)."""

    kind: ActionKind
    branch: int | None = None
    answer: str | None = None

    @classmethod
    def new_branch(cls) -> Action:
        """``BRANCH``."""
        return cls(ActionKind.BRANCH)

    @classmethod
    def cont(cls, branch: int) -> Action:
        """``CONTINUE(branch)``."""
        return cls(ActionKind.CONTINUE, branch)

    @classmethod
    def probe(cls, branch: int) -> Action:
        """``PROBE(branch)``."""
        return cls(ActionKind.PROBE, branch)

    @classmethod
    def prune(cls, branch: int) -> Action:
        """``PRUNE(branch)``."""
        return cls(ActionKind.PRUNE, branch)

    @classmethod
    def answer_with(cls, answer: str | None) -> Action:
        """``ANSWER(answer)``."""
        return cls(ActionKind.ANSWER, None, answer)

    def __str__(self) -> str:
        if self.kind is ActionKind.ANSWER:
            return f"ANSWER({self.answer!r})"
        if self.branch is None:
            return str(self.kind.value)
        return f"{self.kind.value}({self.branch})"


@dataclass(frozen=True, slots=True)
class Probe:
    """One revealed answer: branch, depth (intervals) and answer; ``final`` for end answers."""

    branch: int
    depth: int
    answer: str
    final: bool = False


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything a policy may see: the state minus unrevealed data and the gold answer."""

    opened: int
    """``m``: branches opened so far."""
    available: int
    """Branches that can still be opened."""
    active: tuple[int, ...]
    """``I``: opened branches that are neither finished nor pruned."""
    depths: tuple[int, ...]
    """``ℓ``: intervals decoded per opened branch."""
    finished: tuple[bool, ...]
    pruned: tuple[bool, ...]
    revealed: tuple[Probe, ...]
    """``Ω``: every answer revealed so far, in order."""
    cost: float
    """Tokens charged so far."""
    budget: float | None
    """``B`` in tokens (``None`` = unlimited)."""
    terminated: bool

    @property
    def remaining_budget(self) -> float | None:
        """Tokens left before the budget is reached."""
        return None if self.budget is None else self.budget - self.cost


@dataclass(frozen=True, slots=True)
class StepResult:
    """What ``step`` returns: the new observation, the charge, whether the episode ended."""

    observation: Observation
    cost: float
    terminated: bool
    answer: str | None = None


class ReplayEnv:
    """The decision process over one question of a replay store (see module docstring)."""

    def __init__(
        self,
        question: ReplayQuestion,
        order: Sequence[int] | None = None,
        *,
        budget: float | None = None,
        probe_price: float = 0.0,
    ) -> None:
        if probe_price < 0:
            raise IllegalActionError(f"probe price κ_probe must be >= 0, got {probe_price}")
        if budget is not None and budget < 0:
            raise IllegalActionError(f"budget must be >= 0, got {budget}")
        self._q = question
        self._default_order = tuple(order) if order is not None else tuple(range(question.n_branches))
        self._budget = budget
        self._kappa = probe_price
        self.reset()

    def reset(self, order: Sequence[int] | None = None) -> Observation:
        """Start a new episode (optionally with another branch order); return the first observation."""
        self._order = tuple(order) if order is not None else self._default_order
        self._depth: list[int] = []
        self._spent: list[int] = []
        self._finished: list[bool] = []
        self._pruned: list[bool] = []
        self._probed_at: list[int] = []
        self._revealed: list[Probe] = []
        self._cost = 0.0
        self._done = False
        self._answer: str | None = None
        return self.observation()

    # ------------------------------------------------------------------ helpers
    def observation(self) -> Observation:
        """The current observation (a snapshot; later steps do not change it)."""
        n = len(self._depth)
        return Observation(
            opened=n,
            available=len(self._order) - n,
            active=tuple(i for i in range(n) if not self._finished[i] and not self._pruned[i]),
            depths=tuple(self._depth),
            finished=tuple(self._finished),
            pruned=tuple(self._pruned),
            revealed=tuple(self._revealed),
            cost=self._cost,
            budget=self._budget,
            terminated=self._done,
        )

    def _illegal(self, action: Action, why: str) -> IllegalActionError:
        obs = self.observation()
        state = (
            f"opened={obs.opened}/{len(self._order)}, active={list(obs.active)}, "
            f"depths={list(obs.depths)}, cost={obs.cost:g}, terminated={obs.terminated}"
        )
        return IllegalActionError(f"{action} is illegal: {why} [state: {state}]", action=action, state=obs)

    def _charge(self, action: Action, amount: float) -> None:
        if self._budget is not None and self._cost + amount > self._budget:
            obs = self.observation()
            raise BudgetExceededError(
                f"{action} would charge {amount:g} tokens but only {self._budget - self._cost:g} of the "
                f"budget {self._budget:g} remain",
                action=action,
                state=obs,
            )

    def _live(self, action: Action) -> int:
        i = action.branch
        if not isinstance(i, int) or isinstance(i, bool):
            raise self._illegal(action, "it needs an integer branch id")
        if not 0 <= i < len(self._depth):
            raise self._illegal(action, f"branch {i} is not open (open: 0..{len(self._depth) - 1})")
        if self._pruned[i]:
            raise self._illegal(action, f"branch {i} is pruned")
        if self._finished[i]:
            raise self._illegal(action, f"branch {i} is finished")
        return i

    # -------------------------------------------------------------------- step
    def step(self, action: Action) -> StepResult:
        """Apply one action; illegal actions raise and leave the state unchanged."""
        if not isinstance(action, Action):
            raise IllegalActionError(f"expected an Action, got {action!r}", action=action, state=self.observation())
        if self._done:
            raise self._illegal(action, "the episode has ended (ANSWER was taken); call reset()")
        kind = action.kind
        charged = 0.0
        if kind is ActionKind.BRANCH:
            if len(self._depth) >= len(self._order):
                raise self._illegal(action, "every branch has been opened")
            self._depth.append(0)
            self._spent.append(0)
            self._finished.append(False)
            self._pruned.append(False)
            self._probed_at.append(0)
        elif kind is ActionKind.CONTINUE:
            i = self._live(action)
            b = self._order[i]
            if self._depth[i] < len(self._q.probes[b]):
                charged = float(self._q.delta)
                self._charge(action, charged)
                self._depth[i] += 1
                self._spent[i] += self._q.delta
            else:
                charged = float(max(0, self._q.tokens[b] - self._spent[i]))
                self._charge(action, charged)
                self._finished[i] = True
                self._revealed.append(Probe(i, self._depth[i], self._q.vocab[self._q.finals[b]], final=True))
        elif kind is ActionKind.PROBE:
            i = self._live(action)
            d = self._depth[i]
            if d == 0:
                raise self._illegal(action, f"branch {i} has no decoded interval to probe yet (CONTINUE first)")
            if self._probed_at[i] == d:
                raise self._illegal(action, f"branch {i} was already probed at depth {d}")
            charged = self._kappa * self._q.delta
            self._charge(action, charged)
            self._probed_at[i] = d
            code = self._q.probes[self._order[i]][d - 1]
            self._revealed.append(Probe(i, d, self._q.vocab[code]))
        elif kind is ActionKind.PRUNE:
            i = self._live(action)
            self._pruned[i] = True
        elif kind is ActionKind.ANSWER:
            self._done = True
            self._answer = action.answer
        else:  # pragma: no cover - enum is closed
            raise self._illegal(action, "unknown action kind")
        self._cost += charged
        return StepResult(self.observation(), charged, self._done, self._answer if self._done else None)

    def legal_actions(self) -> list[Action]:
        """Every action legal now (ANSWER listed once, with ``answer=None``), budget permitting or not."""
        if self._done:
            return []
        acts: list[Action] = []
        if len(self._depth) < len(self._order):
            acts.append(Action.new_branch())
        for i in range(len(self._depth)):
            if self._finished[i] or self._pruned[i]:
                continue
            acts.append(Action.cont(i))
            if self._depth[i] > 0 and self._probed_at[i] != self._depth[i]:
                acts.append(Action.probe(i))
            acts.append(Action.prune(i))
        acts.append(Action.answer_with(None))
        return acts

    @property
    def cost(self) -> float:
        """Tokens charged so far."""
        return self._cost
