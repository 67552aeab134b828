"""What a live session needs from an LLM server: start a branch, grow it, probe it, read its answer.

:class:`BranchSteps` is the narrow async interface the live session is written
against; :class:`~autotts.online.upstream.RecipeSteps` implements it with the
collection recipe (:class:`autotts.collect.recipe.Brancher`: prompt template, grow
step, probe step, answer extraction) over the one HTTP client (:mod:`autotts.llm`), so
a deployed controller sees branches built exactly as the replay data it was scored on.
Branch states are opaque to the session and immutable, so a cancelled step leaves
the branch as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Grown:
    """What one grow step generated."""

    completion_tokens: int
    prompt_tokens: int
    finished: bool
    """True when the model stopped on its own (not cut by ``max_tokens``)."""


@dataclass(frozen=True, slots=True)
class Probed:
    """What a probe revealed: the answer the branch gives now."""

    answer: str
    completion_tokens: int
    prompt_tokens: int


class BranchSteps(Protocol):
    """The model calls of a live episode plus final-answer extraction."""

    async def start(self, question: str) -> Any:
        """The empty branch state of ``question`` (shared by all its branches)."""
        ...

    async def grow(self, state: Any, max_tokens: int, seed: int) -> tuple[Any, Grown]:
        """``state`` grown by up to ``max_tokens`` tokens, sampled with ``seed``."""
        ...

    async def probe(self, state: Any) -> Probed:
        """The answer the model gives when made to conclude after ``state``."""
        ...

    def final_answer(self, state: Any) -> str:
        """The answer of a finished branch (``ERR`` when none)."""
        ...

    def text(self, state: Any) -> str:
        """The text a branch generated (its reasoning)."""
        ...
