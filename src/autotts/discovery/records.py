"""Named records of the discovery loop: statuses, findings, curves, usage, candidates.

They are plain frozen dataclasses with explicit JSON round-trips, because they are what
the run directory stores and what a resumed run reads back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from autotts.evaluation.results import CellResult


class Status(StrEnum):
    """What became of a candidate. A failed candidate is data, not an exception."""

    OK = "ok"
    INVALID = "invalid"
    """Did not parse, broke the static policy, or no code could be extracted."""
    CRASHED = "crashed"
    """Raised, ran out of memory or died on a signal while replaying."""
    TIMEOUT = "timeout"
    """Exceeded its CPU or wall-clock limit; its process group was killed."""
    LEAKED = "leaked"
    """Behaved differently on data it was never shown: it read hidden data or kept state."""


@dataclass(frozen=True)
class Finding:
    """A problem short of failure (e.g. a non-monotone β curve), shown to the explorer."""

    code: str
    message: str

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"code": self.code, "message": self.message}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Finding:
        """Inverse of :meth:`to_json`."""
        return cls(str(d["code"]), str(d["message"]))


@dataclass(frozen=True)
class CurvePoint:
    """Accuracy and cost at one β (``beta`` is None for a controller without β)."""

    beta: float | None
    accuracy: float
    tokens: float
    sequential_tokens: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "beta": self.beta,
            "accuracy": self.accuracy,
            "tokens": self.tokens,
            "sequential_tokens": self.sequential_tokens,
        }

    @classmethod
    def of(cls, result: CellResult, beta: float | None = None) -> CurvePoint:
        """The point of one graded cell (β from its parameters unless given)."""
        if beta is None and result.params.get("beta") is not None:
            beta = float(result.params["beta"])
        return cls(beta, result.accuracy, result.tokens, result.sequential_tokens)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CurvePoint:
        """Inverse of :meth:`to_json`."""
        beta = d.get("beta")
        return cls(
            None if beta is None else float(beta),
            float(d["accuracy"]),
            float(d["tokens"]),
            float(d.get("sequential_tokens", 0.0)),
        )


def mean_curve(curves: Iterable[Sequence[CurvePoint]]) -> tuple[CurvePoint, ...]:
    """Average several per-store curves point by point (same β grid), each store weighing the same."""
    lists = [list(c) for c in curves]
    if not lists:
        return ()
    n = min(len(c) for c in lists)
    out = []
    for i in range(n):
        pts = [c[i] for c in lists]
        k = len(pts)
        out.append(
            CurvePoint(
                pts[0].beta,
                sum(p.accuracy for p in pts) / k,
                sum(p.tokens for p in pts) / k,
                sum(p.sequential_tokens for p in pts) / k,
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class Usage:
    """Explorer usage of one or more calls: tokens, money (from configured prices), time."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    money: float = 0.0
    seconds: float = 0.0
    attempts: int = 0
    reported: bool = True
    """False when the explorer did not report its token usage (e.g. an agent command)."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.calls + other.calls,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.money + other.money,
            self.seconds + other.seconds,
            self.attempts + other.attempts,
            self.reported and other.reported,
        )

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "money": round(self.money, 6),
            "seconds": round(self.seconds, 3),
            "attempts": self.attempts,
            "reported": self.reported,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Usage:
        """Inverse of :meth:`to_json`."""
        return cls(
            int(d.get("calls", 0)),
            int(d.get("input_tokens", 0)),
            int(d.get("output_tokens", 0)),
            float(d.get("money", 0.0)),
            float(d.get("seconds", 0.0)),
            int(d.get("attempts", 0)),
            bool(d.get("reported", True)),
        )


def candidate_id(round_: int, index: int) -> str:
    """``r02c01``: how files and prompts name candidate ``index`` of round ``round_`` (1-based)."""
    return f"r{round_:02d}c{index:02d}"


@dataclass(frozen=True)
class CandidateRecord:
    """Everything known about one evaluated candidate (its ``candidate.json``)."""

    id: str
    round: int
    index: int
    status: Status
    message: str = ""
    stderr_tail: str = ""
    findings: tuple[Finding, ...] = ()
    class_name: str = ""
    curves: Mapping[str, tuple[CurvePoint, ...]] = field(default_factory=dict)
    """Per search store name: one point per β."""
    search_curve: tuple[CurvePoint, ...] = ()
    """Mean over search stores, per β: what selection ranks."""
    settings: Mapping[str, str] = field(default_factory=dict)
    """``repr(schedule(β))`` per β (truncated), so the explorer sees what β did."""
    eval_seconds: float = 0.0
    usage: Usage = field(default_factory=Usage)

    @property
    def ok(self) -> bool:
        """Whether the candidate ran cleanly (findings aside)."""
        return self.status is Status.OK

    @property
    def best_point(self) -> CurvePoint | None:
        """Highest mean search accuracy (fewer tokens break ties)."""
        if not self.search_curve:
            return None
        return max(self.search_curve, key=lambda p: (p.accuracy, -p.tokens))

    def with_usage(self, usage: Usage) -> CandidateRecord:
        """A copy with the proposer usage attached."""
        return replace(self, usage=usage)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "id": self.id,
            "round": self.round,
            "index": self.index,
            "status": self.status.value,
            "message": self.message,
            "stderr_tail": self.stderr_tail,
            "findings": [f.to_json() for f in self.findings],
            "class_name": self.class_name,
            "curves": {k: [p.to_json() for p in v] for k, v in self.curves.items()},
            "search_curve": [p.to_json() for p in self.search_curve],
            "settings": dict(self.settings),
            "eval_seconds": round(self.eval_seconds, 3),
            "usage": self.usage.to_json(),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CandidateRecord:
        """Inverse of :meth:`to_json`."""
        return cls(
            id=str(d["id"]),
            round=int(d["round"]),
            index=int(d["index"]),
            status=Status(d["status"]),
            message=str(d.get("message", "")),
            stderr_tail=str(d.get("stderr_tail", "")),
            findings=tuple(Finding.from_json(f) for f in d.get("findings", [])),
            class_name=str(d.get("class_name", "")),
            curves={k: tuple(CurvePoint.from_json(p) for p in v) for k, v in d.get("curves", {}).items()},
            search_curve=tuple(CurvePoint.from_json(p) for p in d.get("search_curve", [])),
            settings={str(k): str(v) for k, v in d.get("settings", {}).items()},
            eval_seconds=float(d.get("eval_seconds", 0.0)),
            usage=Usage.from_json(d.get("usage", {})),
        )
