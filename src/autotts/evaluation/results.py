"""The one record of an evaluated cell (store × controller × parameters) and the one grading path.

Every producer of results — the evaluation runner (kernels or Python controllers),
discovery's sandboxed candidates, the final evaluation, a JSON file read back for
``--resume`` — ends in :class:`CellResult`: per-(run, question) correctness, cost and
sequential tokens, plus who made them. Summaries (accuracy, tokens, sequential tokens,
bootstrap intervals) are derived from those arrays in :func:`summarize` only, so a
number means the same thing wherever it is printed.

``grade_cell`` is the public entry point for code that has raw answers (strings or
``None``) and costs: it grades against the store's gold answers and builds the record.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from autotts.controllers.spec import label as cell_label
from autotts.env.session import QuestionTrace
from autotts.errors import ConfigError
from autotts.evaluation.metrics import accuracy_pct, bootstrap_ci, mean_tokens
from autotts.store.schema import ReplayStore

__all__ = [
    "CellResult",
    "CellSummary",
    "QuestionTrace",
    "Summary",
    "cell_key",
    "cell_label",
    "grade",
    "grade_cell",
    "summarize",
]


@dataclass(frozen=True, slots=True)
class Summary:
    """What tables show of a cell, all derived from its arrays by :func:`summarize`."""

    accuracy: float
    """Percent correct, mean over runs and questions."""
    accuracy_ci: tuple[float, float]
    """95 % bootstrap interval of accuracy (percent), resampling questions."""
    tokens: float
    """Mean total tokens per question."""
    tokens_ci: tuple[float, float]
    """95 % bootstrap interval of mean tokens per question, resampling questions."""
    sequential_tokens: float
    """Mean over episodes of the longest branch's tokens (a latency proxy)."""


def summarize(correct: NDArray[np.bool_], cost: NDArray[np.int64], sequential: NDArray[np.int64]) -> Summary:
    """The summaries of one cell from its ``(runs, questions)`` arrays: the one place they are computed."""
    lo, hi = bootstrap_ci(correct.mean(axis=0).astype(np.float64)) if correct.size else (0.0, 0.0)
    return Summary(
        accuracy=accuracy_pct(correct),
        accuracy_ci=(100.0 * lo, 100.0 * hi),
        tokens=mean_tokens(cost),
        tokens_ci=bootstrap_ci(cost.mean(axis=0).astype(np.float64)) if cost.size else (0.0, 0.0),
        sequential_tokens=mean_tokens(sequential),
    )


def grade(answers: Sequence[Sequence[str | None]], golds: Sequence[str]) -> NDArray[np.bool_]:
    """Correctness ``[run, question]``: an answer is right when it equals the gold string exactly.

    ``None`` (no answer) is never right. This is the only grading rule of the project.
    """
    nq = len(golds)
    for r, row in enumerate(answers):
        if len(row) != nq:
            raise ConfigError(f"run {r} has {len(row)} answers for {nq} questions")
    flat = [a for row in answers for a in row]
    # A string equals only the same string, and None (no answer) equals no gold answer.
    same = map(operator.eq, flat, tuple(golds) * len(answers))
    return np.fromiter(same, dtype=bool, count=len(flat)).reshape(len(answers), nq)


def cell_key(store: str, controller: str, params: Mapping[str, Any], protocol: str, runs: int) -> str:
    """Identity of a cell as a string (``store`` is the store's fingerprint in :attr:`CellResult.key`)."""
    return json.dumps([store, controller, dict(params), protocol, runs], sort_keys=True, default=str)


def _int_matrix(rows: ArrayLike, what: str, shape: tuple[int, int] | None = None) -> NDArray[np.int64]:
    arr = np.asarray(rows, dtype=np.int64)
    if arr.ndim != 2 or (shape is not None and arr.shape != shape):
        want = f"{shape[0]} × {shape[1]}" if shape is not None else "runs × questions"
        raise ConfigError(f"{what} must be a {want} table of integers, got shape {arr.shape}")
    return arr


@dataclass(frozen=True, slots=True, eq=False)
class CellResult:
    """Per-run, per-question correctness and cost of one evaluated cell, and where they came from.

    ``correct``, ``cost`` and ``sequential`` have shape ``(runs, questions)``; every
    summary is derived from them (see :func:`summarize`). ``answers`` and ``traces`` are
    kept for in-process consumers and are not part of the JSON record.
    """

    store: str
    model: str
    benchmark: str
    controller: str
    params: Mapping[str, Any]
    protocol: str
    correct: NDArray[np.bool_]
    cost: NDArray[np.int64]
    sequential: NDArray[np.int64]
    answers: tuple[tuple[str | None, ...], ...] = ()
    traces: Sequence[QuestionTrace] = field(default=(), repr=False)
    seconds: float = 0.0
    store_fingerprint: str = ""
    controller_fingerprint: str = ""
    _summary: list[Summary] = field(default_factory=list, init=False, repr=False)
    """Holds the summary once computed (a list, so a frozen instance can fill it lazily)."""

    def __post_init__(self) -> None:
        shapes = {self.correct.shape, self.cost.shape, self.sequential.shape}
        if len(shapes) != 1 or self.correct.ndim != 2:
            raise ConfigError(
                f"cell {self.label} on {self.store}: correct, cost and sequential must share one "
                f"(runs, questions) shape, got {sorted(shapes)}"
            )

    # ------------------------------------------------------------------ identity
    @property
    def runs(self) -> int:
        """Number of runs."""
        return int(self.correct.shape[0])

    @property
    def questions(self) -> int:
        """Number of questions."""
        return int(self.correct.shape[1])

    @property
    def label(self) -> str:
        """``controller(k=v,...)`` as shown in tables (:func:`autotts.controllers.spec.label`)."""
        return cell_label(self.controller, self.params)

    @property
    def key(self) -> str:
        """Identity of the cell: store content, controller, parameters, protocol and runs."""
        return cell_key(self.store_fingerprint or self.store, self.controller, self.params, self.protocol, self.runs)

    # ----------------------------------------------------------------- summaries
    @property
    def summary(self) -> Summary:
        """All summaries, computed from the arrays on first use."""
        if not self._summary:
            self._summary.append(summarize(self.correct, self.cost, self.sequential))
        return self._summary[0]

    @property
    def accuracy(self) -> float:
        """Accuracy in percent under the protocol (mean over runs)."""
        return self.summary.accuracy

    @property
    def tokens(self) -> float:
        """Mean total tokens spent per question."""
        return self.summary.tokens

    @property
    def sequential_tokens(self) -> float:
        """Mean over questions of the longest branch's tokens (latency proxy)."""
        return self.summary.sequential_tokens

    @property
    def accuracy_ci(self) -> tuple[float, float]:
        """95 % bootstrap interval of accuracy (percent), resampling questions."""
        return self.summary.accuracy_ci

    @property
    def tokens_ci(self) -> tuple[float, float]:
        """95 % bootstrap interval of mean tokens per question, resampling questions."""
        return self.summary.tokens_ci

    # ---------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """The JSON record of the cell: identity, summaries, per-question means and the per-run arrays."""
        s = self.summary
        return {
            "store": self.store,
            "model": self.model,
            "benchmark": self.benchmark,
            "controller": self.controller,
            "params": dict(self.params),
            "label": self.label,
            "protocol": self.protocol,
            "runs": self.runs,
            "questions": self.questions,
            "accuracy": s.accuracy,
            "accuracy_ci95": list(s.accuracy_ci),
            "tokens": s.tokens,
            "tokens_ci95": list(s.tokens_ci),
            "sequential_tokens": s.sequential_tokens,
            "per_question_accuracy": [float(x) for x in self.correct.mean(axis=0)],
            "per_question_tokens": [float(x) for x in self.cost.mean(axis=0)],
            "per_run": {
                "correct": ["".join("1" if c else "0" for c in row) for row in self.correct.tolist()],
                "cost": self.cost.tolist(),
                "sequential": self.sequential.tolist(),
            },
            "store_fingerprint": self.store_fingerprint,
            "controller_fingerprint": self.controller_fingerprint,
            "seconds": round(self.seconds, 4),
        }

    to_record = to_dict

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> CellResult:
        """Read a record written by :meth:`to_dict` back; ``from_dict(r.to_dict()).to_dict() == r.to_dict()``.

        A record without the per-run arrays (written before they existed) cannot be
        rebuilt exactly and is refused with a :class:`~autotts.errors.ConfigError`.
        """
        try:
            per_run = record["per_run"]
            rows = per_run["correct"]
            if not isinstance(rows, list) or any(not isinstance(r, str) or set(r) - {"0", "1"} for r in rows):
                raise ConfigError("per_run.correct must be a list of strings of '0'/'1'")
            nq = len(rows[0]) if rows else int(record.get("questions", 0))
            if any(len(r) != nq for r in rows):
                raise ConfigError("per_run.correct rows differ in length")
            correct = np.array([[c == "1" for c in r] for r in rows], dtype=bool).reshape(len(rows), nq)
            shape = (correct.shape[0], correct.shape[1])
            result = cls(
                store=str(record["store"]),
                model=str(record["model"]),
                benchmark=str(record["benchmark"]),
                controller=str(record["controller"]),
                params=dict(record["params"]),
                protocol=str(record["protocol"]),
                correct=correct,
                cost=_int_matrix(per_run["cost"], "per_run.cost", shape),
                sequential=_int_matrix(per_run["sequential"], "per_run.sequential", shape),
                seconds=float(record.get("seconds", 0.0)),
                store_fingerprint=str(record.get("store_fingerprint", "")),
                controller_fingerprint=str(record.get("controller_fingerprint", "")),
            )
        except KeyError as exc:
            name = record.get("label") or record.get("controller", "?")
            raise ConfigError(
                f"evaluation record of {name} on {record.get('store', '?')} has no {exc.args[0]!r}; it was written "
                "by an older autotts or edited by hand — evaluate the cell again"
            ) from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"malformed evaluation record of {record.get('controller', '?')}: {exc}") from None
        if int(record.get("runs", result.runs)) != result.runs:
            raise ConfigError(f"evaluation record of {result.label}: runs {record['runs']} ≠ {result.runs} rows")
        return result


def grade_cell(
    store: ReplayStore,
    *,
    controller: str,
    params: Mapping[str, Any],
    protocol: str,
    answers: Sequence[Sequence[str | None]],
    cost: ArrayLike,
    sequential: ArrayLike,
    seconds: float = 0.0,
    controller_fingerprint: str = "",
    traces: Sequence[QuestionTrace] = (),
) -> CellResult:
    """Grade per-(run, question) answers against ``store``'s gold answers and build the cell's record.

    ``answers[r][q]`` is what run ``r`` answered on question ``q`` (``None``: no answer);
    ``cost`` and ``sequential`` are ``runs × questions`` integer tables. Everything that
    turns raw replay output into numbers (the runner, discovery's grading of sandboxed
    candidates, the final evaluation) goes through here.
    """
    correct = grade(answers, store.golds)
    shape = (correct.shape[0], correct.shape[1])
    return CellResult(
        store=store.name,
        model=store.meta.model,
        benchmark=store.meta.benchmark,
        controller=controller,
        params=dict(params),
        protocol=protocol,
        correct=correct,
        cost=_int_matrix(cost, "cost", shape),
        sequential=_int_matrix(sequential, "sequential", shape),
        answers=answers if isinstance(answers, tuple) else tuple(tuple(row) for row in answers),
        traces=traces,
        seconds=seconds,
        store_fingerprint=store.fingerprint,
        controller_fingerprint=controller_fingerprint,
    )


#: What tables need of a cell: the record itself (the name is kept for existing callers).
CellSummary = CellResult
