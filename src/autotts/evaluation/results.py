"""The result of evaluating one cell (store × controller × parameters) and its JSON record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from autotts.env.session import TraceEvent
from autotts.evaluation.metrics import accuracy_pct, bootstrap_ci, mean_tokens


@dataclass(frozen=True)
class QuestionTrace:
    """The execution trace of one (run, question) episode."""

    run: int
    question: int
    answer: str | None
    correct: bool
    events: Sequence[TraceEvent]
    notes: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class CellResult:
    """Per-run, per-question correctness and cost of one evaluated cell.

    Summaries are derived from the arrays, never stored instead of them.
    ``correct``, ``cost`` and ``sequential`` have shape ``(runs, questions)``.
    """

    store: str
    model: str
    benchmark: str
    controller: str
    params: dict[str, Any]
    protocol: str
    correct: NDArray[np.bool_]
    cost: NDArray[np.int64]
    sequential: NDArray[np.int64]
    answers: tuple[tuple[str | None, ...], ...] = ()
    traces: Sequence[QuestionTrace] = field(default=(), repr=False)
    seconds: float = 0.0

    @property
    def runs(self) -> int:
        """Number of runs."""
        return int(self.correct.shape[0])

    @property
    def questions(self) -> int:
        """Number of questions."""
        return int(self.correct.shape[1])

    @cached_property
    def accuracy(self) -> float:
        """Accuracy in percent under the protocol (mean over runs)."""
        return accuracy_pct(self.correct)

    @cached_property
    def tokens(self) -> float:
        """Mean total tokens spent per question."""
        return mean_tokens(self.cost)

    @cached_property
    def sequential_tokens(self) -> float:
        """Mean over questions of the longest branch's tokens (latency proxy)."""
        return mean_tokens(self.sequential)

    @cached_property
    def accuracy_ci(self) -> tuple[float, float]:
        """95 % bootstrap interval of accuracy (percent), resampling questions."""
        lo, hi = bootstrap_ci(self.correct.mean(axis=0).astype(np.float64))
        return 100.0 * lo, 100.0 * hi

    @cached_property
    def tokens_ci(self) -> tuple[float, float]:
        """95 % bootstrap interval of mean tokens per question, resampling questions."""
        return bootstrap_ci(self.cost.mean(axis=0).astype(np.float64))

    @property
    def label(self) -> str:
        """``controller(k=v,...)`` as shown in tables."""
        if not self.params:
            return self.controller
        return f"{self.controller}(" + ",".join(f"{k}={v}" for k, v in self.params.items()) + ")"

    def to_record(self) -> dict[str, Any]:
        """The JSON record of the cell (summaries plus per-question means)."""
        return {
            "store": self.store,
            "model": self.model,
            "benchmark": self.benchmark,
            "controller": self.controller,
            "params": dict(self.params),
            "protocol": self.protocol,
            "runs": self.runs,
            "questions": self.questions,
            "accuracy": self.accuracy,
            "accuracy_ci95": list(self.accuracy_ci),
            "tokens": self.tokens,
            "tokens_ci95": list(self.tokens_ci),
            "sequential_tokens": self.sequential_tokens,
            "per_question_accuracy": [float(x) for x in self.correct.mean(axis=0)],
            "per_question_tokens": [float(x) for x in self.cost.mean(axis=0)],
            "seconds": round(self.seconds, 4),
        }


class CellSummary(Protocol):
    """What tables need of a cell: a live :class:`CellResult` or a record read back from JSON."""

    @property
    def store(self) -> str:
        """See :class:`CellResult`."""

    @property
    def model(self) -> str:
        """See :class:`CellResult`."""

    @property
    def benchmark(self) -> str:
        """See :class:`CellResult`."""

    @property
    def controller(self) -> str:
        """See :class:`CellResult`."""

    @property
    def params(self) -> dict[str, Any]:
        """See :class:`CellResult`."""

    @property
    def runs(self) -> int:
        """See :class:`CellResult`."""

    @property
    def accuracy(self) -> float:
        """See :class:`CellResult`."""

    @property
    def tokens(self) -> float:
        """See :class:`CellResult`."""

    @property
    def sequential_tokens(self) -> float:
        """See :class:`CellResult`."""

    @property
    def accuracy_ci(self) -> tuple[float, float]:
        """See :class:`CellResult`."""

    @property
    def label(self) -> str:
        """See :class:`CellResult`."""


@dataclass(frozen=True)
class RecordSummary:
    """A cell summary rebuilt from its JSON record (cells finished by an earlier, resumed run)."""

    record: dict[str, Any]

    @property
    def store(self) -> str:
        """Store name."""
        return str(self.record["store"])

    @property
    def model(self) -> str:
        """Model of the store."""
        return str(self.record["model"])

    @property
    def benchmark(self) -> str:
        """Benchmark of the store."""
        return str(self.record["benchmark"])

    @property
    def controller(self) -> str:
        """Controller name."""
        return str(self.record["controller"])

    @property
    def params(self) -> dict[str, Any]:
        """Controller parameters."""
        return dict(self.record["params"])

    @property
    def runs(self) -> int:
        """Number of runs."""
        return int(self.record["runs"])

    @property
    def accuracy(self) -> float:
        """Accuracy in percent."""
        return float(self.record["accuracy"])

    @property
    def tokens(self) -> float:
        """Mean tokens per question."""
        return float(self.record["tokens"])

    @property
    def sequential_tokens(self) -> float:
        """Mean sequential tokens per question."""
        return float(self.record.get("sequential_tokens", 0.0))

    @property
    def accuracy_ci(self) -> tuple[float, float]:
        """95 % bootstrap interval of accuracy."""
        lo, hi = self.record.get("accuracy_ci95", (self.accuracy, self.accuracy))
        return float(lo), float(hi)

    @property
    def label(self) -> str:
        """``controller(k=v,...)``."""
        if not self.params:
            return self.controller
        return f"{self.controller}(" + ",".join(f"{k}={v}" for k, v in self.params.items()) + ")"
