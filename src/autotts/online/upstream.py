"""The live session's model calls, made by the collection recipe over the one HTTP client.

:class:`RecipeSteps` adapts :class:`autotts.collect.recipe.Brancher` (prompt template,
grow-by-Δ step, probe step, answer extraction) to
:class:`~autotts.online.steps.BranchSteps`; nothing here re-implements any of it.

The recipe's branch state counts generated tokens but not prompt tokens, which the
live session reports apart. :class:`UsageClient` (the completions client, plus a
per-task tally) records the prompt tokens of every completion made while a step runs:
the tally lives in a context variable, so concurrent steps of many episodes on one
event loop each see only their own requests.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from typing import Any

from autotts.collect.recipe import Brancher, BranchState, Recipe, Sampling, TokenPrompts, template_from
from autotts.errors import ConfigError
from autotts.llm import Completion, CompletionsClient
from autotts.online.steps import Grown, Probed

_TALLY: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("autotts_prompt_tally", default=None)


class UsageClient(CompletionsClient):
    """A completions client that also adds each reply's prompt tokens to the running step's tally."""

    def _completed(self, done: Completion) -> None:
        tally = _TALLY.get()
        if tally is not None:
            tally[0] += done.prompt_tokens


class RecipeSteps:
    """:class:`~autotts.online.steps.BranchSteps` over a :class:`~autotts.collect.recipe.Brancher`."""

    def __init__(self, brancher: Brancher) -> None:
        self.brancher = brancher

    @classmethod
    async def connect(
        cls,
        base_urls: Sequence[str],
        model: str,
        recipe: Recipe | None = None,
        *,
        api_key: str = "",
        max_in_flight: int = 64,
        timeout_seconds: float = 600.0,
        **client_options: Any,
    ) -> RecipeSteps:
        """Open a client on ``base_urls`` and build the recipe's brancher on it (one probe of the server)."""
        client = UsageClient(
            base_urls,
            model,
            api_key=api_key,
            max_in_flight=max_in_flight,
            timeout_seconds=timeout_seconds,
            **client_options,
        )
        try:
            brancher = await Brancher.create(client, recipe or Recipe())
        except BaseException:
            await client.aclose()
            raise
        return cls(brancher)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.brancher.client.aclose()

    async def start(self, question: str) -> BranchState:
        """The empty branch of ``question``."""
        return await self.brancher.start(question)

    async def grow(self, state: BranchState, max_tokens: int, seed: int) -> tuple[BranchState, Grown]:
        """``state`` grown by up to ``max_tokens`` tokens with ``seed``."""
        tally = [0]
        reset = _TALLY.set(tally)
        try:
            grown = await self.brancher.grow(state, max_tokens, seed=seed)
        finally:
            _TALLY.reset(reset)
        return grown, Grown(grown.tokens - state.tokens, tally[0], grown.finished)

    async def probe(self, state: BranchState) -> Probed:
        """The answer ``state`` gives now."""
        tally = [0]
        reset = _TALLY.set(tally)
        try:
            probe = await self.brancher.probe(state)
        finally:
            _TALLY.reset(reset)
        return Probed(probe.answer, probe.tokens, tally[0])

    def final_answer(self, state: BranchState) -> str:
        """The answer of a finished branch."""
        return self.brancher.final(state)

    def text(self, state: BranchState) -> str:
        """The branch's generated text."""
        return state.text


def live_recipe(
    preset: str = "qwen3", *, temperature: float = 0.6, top_p: float = 0.95, token_prompts: str = "auto"
) -> Recipe:
    """The recipe of a deployment: a prompt preset and sampling (probes stay greedy), as ``collect`` builds them."""
    try:
        mode = TokenPrompts(token_prompts)
    except ValueError:
        raise ConfigError(f"token prompts must be one of auto, always, never; got {token_prompts!r}") from None
    if not 0.0 <= temperature <= 2.0:
        raise ConfigError(f"temperature must lie in 0..2, got {temperature}")
    if not 0.0 < top_p <= 1.0:
        raise ConfigError(f"top_p must lie in (0, 1], got {top_p}")
    return Recipe(
        template=template_from(preset), sampling=Sampling(temperature=temperature, top_p=top_p), token_prompts=mode
    )
