"""Compact execution traces written by the kernels, turned into ``TraceEvent`` tuples on demand.

A kernel records each session action it takes as one ``int32``: ``branch * 4 + action``
(the action codes of :mod:`autotts.env.session`). Everything else a ``TraceEvent``
holds (depth, revealed answer, charge, running total) follows from the actions, the
question and the run's branch order, so a trace is materialized by replaying its
actions through a real :class:`~autotts.env.session.ReplaySession` with recording on:
the events are then the session's own, by construction. Recording costs a kernel one
store per action (4 bytes), nothing is built for episodes nobody reads, and a cell's
traces cross process boundaries as one array.

``EpisodeEvents`` (one episode's events) and ``CellTraces`` (a cell's
``QuestionTrace`` records) are read-only sequences that compare equal to the tuples
the Python path produces.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, cast, overload

import numpy as np
from numpy.typing import NDArray

from autotts.env.protocols import Protocol
from autotts.env.session import ADVANCE, OPEN, PRUNE, QuestionTrace, ReplaySession, TraceEvent
from autotts.errors import AutoTTSError
from autotts.store.schema import ReplayQuestion


class CellEvents:
    """Every recorded action of a cell.

    Episode ``e = run * questions + question`` owns ``codes[offsets[e]:offsets[e + 1]]``.
    """

    __slots__ = ("codes", "offsets", "protocol", "questions")

    def __init__(
        self,
        codes: NDArray[np.int32],
        offsets: NDArray[np.int64],
        questions: tuple[ReplayQuestion, ...],
        protocol: Protocol,
    ) -> None:
        self.codes = codes
        self.offsets = offsets
        self.questions = questions
        self.protocol = protocol

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def n_events(self, episode: int) -> int:
        """Number of events of one episode (without materializing them)."""
        return int(self.offsets[episode + 1] - self.offsets[episode])

    def materialize(self, episode: int) -> tuple[TraceEvent, ...]:
        """The episode's ``TraceEvent`` tuples: its actions replayed through a recording session."""
        nq = len(self.questions)
        run, qi = divmod(episode, nq)
        question = self.questions[qi]
        session = ReplaySession(question, self.protocol.order(question.n_branches, run), record=True)
        start, stop = int(self.offsets[episode]), int(self.offsets[episode + 1])
        for code in self.codes[start:stop].tolist():
            branch, action = divmod(code, 4)
            if action == ADVANCE:
                session.advance(branch)
                continue
            if action == PRUNE:
                session.prune(branch)
                continue
            got = session.open() if action == OPEN else session.read()
            if got is None or got.branch != branch:
                # Only a kernel bug can get here; say so rather than return a wrong trace.
                raise AutoTTSError(
                    f"corrupt kernel trace: action {action} on branch {branch} (run {run}, question {qi})"
                )
        return session.trace


class EpisodeEvents(Sequence[TraceEvent]):
    """One episode's trace: a lazy, read-only sequence of ``TraceEvent``, equal to the session's tuple."""

    __slots__ = ("_cache", "_cell", "_episode")

    def __init__(self, cell: CellEvents, episode: int) -> None:
        self._cell = cell
        self._episode = episode
        self._cache: tuple[TraceEvent, ...] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"_cell": self._cell, "_episode": self._episode, "_cache": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def as_tuple(self) -> tuple[TraceEvent, ...]:
        """The events as a plain tuple (built on first use, then kept)."""
        cached = self._cache
        if cached is None:
            cached = self._cell.materialize(self._episode)
            self._cache = cached
        return cached

    def __len__(self) -> int:
        return self._cell.n_events(self._episode)

    @overload
    def __getitem__(self, index: int) -> TraceEvent: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[TraceEvent, ...]: ...

    def __getitem__(self, index: int | slice) -> TraceEvent | tuple[TraceEvent, ...]:
        return self.as_tuple()[index]

    def __iter__(self) -> Iterator[TraceEvent]:
        return iter(self.as_tuple())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EpisodeEvents):
            return self.as_tuple() == other.as_tuple()
        if isinstance(other, tuple):
            return self.as_tuple() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.as_tuple())

    def __add__(self, other: object) -> tuple[TraceEvent, ...]:
        if isinstance(other, Sequence):
            return self.as_tuple() + tuple(other)
        return NotImplemented

    def __repr__(self) -> str:
        return repr(self.as_tuple())


class CellTraces(Sequence[QuestionTrace]):
    """A cell's ``QuestionTrace`` records in (run, question) order, built on access."""

    __slots__ = ("_answers", "_built", "_cell", "_correct")

    def __init__(
        self,
        cell: CellEvents,
        answers: tuple[tuple[str | None, ...], ...],
        correct: NDArray[np.bool_],
    ) -> None:
        self._cell = cell
        self._answers = answers
        self._correct = correct
        self._built: dict[int, QuestionTrace] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"_cell": self._cell, "_answers": self._answers, "_correct": self._correct, "_built": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    @property
    def cell_events(self) -> CellEvents:
        """The cell's compact actions, for consumers that re-encode traces without materializing them."""
        return self._cell

    def __len__(self) -> int:
        return int(self._correct.size)

    def _one(self, episode: int) -> QuestionTrace:
        trace = self._built.get(episode)
        if trace is None:
            run, qi = divmod(episode, self._correct.shape[1])
            events = cast(tuple[TraceEvent, ...], EpisodeEvents(self._cell, episode))
            trace = QuestionTrace(run, qi, self._answers[run][qi], bool(self._correct[run, qi]), events, ())
            self._built[episode] = trace
        return trace

    @overload
    def __getitem__(self, index: int) -> QuestionTrace: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[QuestionTrace, ...]: ...

    def __getitem__(self, index: int | slice) -> QuestionTrace | tuple[QuestionTrace, ...]:
        n = len(self)
        if isinstance(index, slice):
            return tuple(self._one(i) for i in range(*index.indices(n)))
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(f"trace index {index} out of range for {n} episodes")
        return self._one(i)

    def __iter__(self) -> Iterator[QuestionTrace]:
        return (self._one(i) for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (CellTraces, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"CellTraces({len(self)} episodes)"
