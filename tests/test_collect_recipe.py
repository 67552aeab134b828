"""The branch recipe (grow by Δ, probe, final) against the scripted completions server over real HTTP."""

from __future__ import annotations

import asyncio

import pytest

from autotts.collect import Brancher, Recipe, TokenPrompts, request_seed, template_from
from autotts.errors import ConfigError
from autotts.llm import CompletionsClient, LLMRequestError
from autotts.testing import ScriptedCompletionsServer, make_script

SCRIPT = make_script(2, 3, seed=1)


def grow_all(
    srv: ScriptedCompletionsServer, recipe: Recipe, q: int, b: int, delta: int
) -> tuple[list[str], int, str, bool]:
    async def go() -> tuple[list[str], int, str, bool]:
        async with CompletionsClient([srv.openai_base_url], "scripted") as c:
            br = await Brancher.create(c, recipe)
            state = await br.start(SCRIPT[q].text)
            probes = []
            k = 0
            while not state.finished:
                before = state.tokens
                state = await br.grow(state, delta, seed=request_seed(0, q, b, k))
                k += 1
                if state.tokens - before == delta:
                    probes.append((await br.probe(state)).answer)
            return probes, state.tokens, br.final(state), br.token_ids

    return asyncio.run(go())


@pytest.mark.parametrize("accept_ids", [True, False])
def test_grow_and_probe_match_the_script(accept_ids: bool) -> None:
    with ScriptedCompletionsServer(SCRIPT, accept_token_ids=accept_ids) as srv:
        for q in range(2):
            for b in range(3):
                probes, tokens, final, used_ids = grow_all(srv, Recipe(), q, b, 16)
                want = SCRIPT[q].expected_branch(b, 16, 10**6, 32)
                assert (tuple(probes), tokens, final) == (want.probes, want.tokens, want.final)
                assert used_ids is accept_ids
        # token-id prompts were really sent when accepted, text otherwise
        kinds = {c.prompt_ids is not None for c in srv.calls if c.prompt not in srv.foreign_prompts}
        assert kinds == {accept_ids}


def test_required_token_ids_on_a_text_only_server_is_a_clear_error() -> None:
    with ScriptedCompletionsServer(SCRIPT, accept_token_ids=False) as srv:

        async def go() -> None:
            async with CompletionsClient([srv.openai_base_url], "scripted") as c:
                with pytest.raises(LLMRequestError, match=r"token-id prompts were required.*token_prompts"):
                    await Brancher.create(c, Recipe(token_prompts=TokenPrompts.ALWAYS))

        asyncio.run(go())


def test_probe_text_never_enters_the_branch_and_cut_is_exact() -> None:
    with ScriptedCompletionsServer(SCRIPT) as srv:

        async def go() -> None:
            async with CompletionsClient([srv.openai_base_url], "scripted") as c:
                br = await Brancher.create(c, Recipe())
                state = await br.start(SCRIPT[0].text)
                full = await br.grow(state, 10**4, seed=request_seed(0, 0, 2, 0))
                assert full.finished and full.text == SCRIPT[0].branches[2].text
                await br.probe(full)
                assert full.text == SCRIPT[0].branches[2].text
                cut = br.cut(full, 20)
                assert cut.tokens == 20 and cut.ids == full.ids[:20]  # type: ignore[index]
                want = SCRIPT[0].expected_branch(2, 20, 10**6, 32).probes[0]
                assert (await br.probe(cut)).answer == want

        asyncio.run(go())


def test_templates() -> None:
    t = template_from("qwen3")
    assert t.render("1+1?").startswith("<|im_start|>user\n1+1?") and t.probe_suffix.endswith("\\boxed{")
    custom = template_from(text="Q: {question} \\boxed{} A:", probe_suffix="ANS \\boxed{")
    assert custom.render("x") == "Q: x \\boxed{} A:" and custom.probe_suffix == "ANS \\boxed{"
    with pytest.raises(ConfigError, match="placeholder"):
        template_from(text="no placeholder")
    with pytest.raises(ConfigError, match="unknown prompt preset"):
        template_from("nope")


def test_request_seed_is_a_pure_function() -> None:
    assert request_seed(0, 1, 2, 3) == request_seed(0, 1, 2, 3)
    assert len({request_seed(0, q, b, k) for q in range(5) for b in range(5) for k in range(5)}) == 125
    assert 0 <= request_seed(9, 9, 9, 9) < 2**31
