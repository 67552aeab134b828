"""Typed, versioned schema of a replay store.

A replay store freezes what an LLM did on a benchmark: per question, N reasoning
branches, each cut into Δ-token intervals with the answer the model would give after
every interval (its *probes*), its full length in tokens and its final answer. Any
controller can then be replayed on it without calling the model again.

The user-facing objects hold strings. For replay speed every question is also
*interned* (:class:`ReplayQuestion`): answers become small integer codes, and the gold
answer is kept apart from the data a controller may touch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from autotts.errors import StoreError

#: Version of the schema written by this release; readers accept this and older ones.
SCHEMA_VERSION = 1

#: The answer recorded when no answer could be extracted from a branch prefix.
ERR = "ERR"


@dataclass(frozen=True, slots=True)
class Branch:
    """One reasoning branch: an answer per completed interval, its length, its final answer."""

    probes: tuple[str, ...]
    tokens: int
    final: str


@dataclass(frozen=True, slots=True)
class Question:
    """A benchmark question with its gold answer and its pre-collected branches."""

    id: str
    text: str
    gold: str
    delta: int
    branches: tuple[Branch, ...]


@dataclass(frozen=True)
class StoreMeta:
    """Where a store came from: model, benchmark, source and collection settings."""

    model: str
    benchmark: str
    source: str = ""
    schema_version: int = SCHEMA_VERSION
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReplayQuestion:
    """What a replay session may read of one question: interned, without the gold answer.

    ``vocab[code]`` is the answer string of a code. ``probes[b]`` are the codes revealed
    by advancing branch ``b`` interval by interval, ``finals[b]`` its final answer code
    and ``tokens[b]`` its full length. Branch indices are store indices; the protocol
    decides the order in which a controller sees them.
    """

    vocab: tuple[str, ...]
    probes: tuple[tuple[int, ...], ...]
    tokens: tuple[int, ...]
    finals: tuple[int, ...]
    delta: int

    @property
    def n_branches(self) -> int:
        """Number of branches stored for the question."""
        return len(self.tokens)


class _Codes(dict[str, int]):
    """Answer → code, handing the next free code to an answer on its first lookup.

    ``map(codes.__getitem__, answers)`` then interns a whole probe list at C speed; only
    new answers reach :meth:`__missing__`.
    """

    def __missing__(self, answer: str) -> int:
        code = self[answer] = len(self)
        return code


def intern_question(question: Question) -> tuple[ReplayQuestion, int]:
    """Intern a question's answers; return its replay view and the gold code (-1 if unseen).

    Codes follow first appearance (branch by branch, probes then final), so the
    interning is deterministic and independent of any run order.
    """
    codes = _Codes()
    code = codes.__getitem__  # a new answer gets the next code (see _Codes.__missing__)
    probes = []
    finals = []
    for branch in question.branches:
        probes.append(tuple(map(code, branch.probes)))
        finals.append(code(branch.final))
    replay = ReplayQuestion(
        vocab=tuple(codes),  # insertion order is code order
        probes=tuple(probes),
        tokens=tuple(b.tokens for b in question.branches),
        finals=tuple(finals),
        delta=question.delta,
    )
    return replay, codes.get(question.gold, -1)


@dataclass(frozen=True)
class ReplayStore:
    """A whole replay store: metadata plus questions, with a cached interned view."""

    meta: StoreMeta
    questions: tuple[Question, ...]

    @property
    def name(self) -> str:
        """``model/benchmark``: how results and tables refer to the store."""
        return f"{self.meta.model}/{self.meta.benchmark}"

    def __len__(self) -> int:
        return len(self.questions)

    @classmethod
    def with_replay(
        cls,
        meta: StoreMeta,
        questions: tuple[Question, ...],
        replay: tuple[ReplayQuestion, ...],
    ) -> ReplayStore:
        """Build a store whose interned views are already known.

        Readers of interned formats (the native Parquet file stores answer codes) hand
        their views over here so that loading does not intern every question a second
        time. The caller guarantees that ``replay[i]`` describes ``questions[i]`` with a
        duplicate-free vocabulary; the views then behave exactly like computed ones.
        """
        store = cls(meta=meta, questions=questions)
        if len(replay) != len(questions):
            raise StoreError(f"{len(replay)} replay views given for {len(questions)} questions")
        # cached_property stores its value in the instance dict; seeding it is the
        # documented way to pre-compute one, and works on frozen dataclasses.
        store.__dict__["_interned"] = (tuple(replay), tuple(q.gold for q in questions))
        return store

    @cached_property
    def _interned(self) -> tuple[tuple[ReplayQuestion, ...], tuple[str, ...]]:
        views = []
        golds = []
        for q in self.questions:
            replay, _ = intern_question(q)
            views.append(replay)
            golds.append(q.gold)
        return tuple(views), tuple(golds)

    @property
    def replay(self) -> tuple[ReplayQuestion, ...]:
        """Interned per-question views handed to replay sessions (no gold answers)."""
        return self._interned[0]

    @property
    def golds(self) -> tuple[str, ...]:
        """Gold answers, for grading outside the session."""
        return self._interned[1]

    @cached_property
    def fingerprint(self) -> str:
        """Hex SHA-256 of the store's content (questions, gold answers, branches; not its name or source).

        Two stores with the same name but different data get different fingerprints, which
        is how evaluation records tell them apart. Computed once per store object from the
        question objects (tens of milliseconds for a 30-question, 128-branch store).
        """
        h = hashlib.sha256()
        for q in self.questions:
            # Strings, not interned codes: a store read from Parquet (codes as stored) and
            # the same store read from JSON (codes recomputed) must hash the same.
            h.update(repr((q.id, q.text, q.gold, q.delta, len(q.branches))).encode())
            h.update(repr([(b.probes, b.tokens, b.final) for b in q.branches]).encode())
        return h.hexdigest()

    def __repr__(self) -> str:
        return f"ReplayStore({self.name!r}, questions={len(self.questions)})"
