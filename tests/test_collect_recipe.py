"""The branch recipe (grow by Δ, probe, final) against the scripted completions server over real HTTP."""

from __future__ import annotations

import asyncio
import dataclasses

import orjson
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


class _Recorder:
    """A client stand-in: records each request's encoded body, answers with awkward text (and ids)."""

    PIECES = ('say "hi" \\ back\n', "\u00e9\u4e2d\U0001f600\t\x01", "", "}{\\boxed{4}")

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.plain: list[object] = []

    async def tokenize(self, text: str) -> tuple[int, ...]:
        return (101, 102, 103)

    async def complete(self, request: object) -> object:
        from autotts.llm import Completion, CompletionRequest

        assert isinstance(request, CompletionRequest)
        self.bodies.append(orjson.dumps(request.body("m")))
        k = len(self.bodies)
        text = self.PIECES[k % len(self.PIECES)]
        return Completion(text, 2, "length", token_ids=(k, 1000 + k), prompt_tokens=0)


@pytest.mark.parametrize("ids", [False, True])
def test_request_bodies_encode_the_whole_branch_byte_for_byte(ids: bool) -> None:
    """The branch's encoding is kept and extended per grow; the bytes sent equal encoding it afresh."""
    from autotts.collect.recipe import BranchState
    from autotts.llm import CompletionRequest

    async def go() -> None:
        rec = _Recorder()
        br = Brancher(rec, Recipe(), suffix_ids=(7, 8) if ids else None)  # type: ignore[arg-type]
        state = await br.start('Q: "x" \\ y\n')
        for _ in range(5):
            state = await br.grow(state, 2, seed=3)
            await br.probe(state)
        # Encoding afresh: the same states without their kept encoding.
        fresh = BranchState(state.prompt, state.prompt_ids, state.text, state.ids, state.tokens, False, "length")
        assert fresh.wire is None and fresh == state
        prompt: object = br._prompt(fresh, probe=True)
        assert not isinstance(prompt, bytes)
        want = orjson.dumps(CompletionRequest(prompt, max_tokens=32, temperature=0.0, top_p=1.0, seed=0).body("m"))
        assert rec.bodies[-1] == want
        # A state rebuilt with dataclasses.replace (as a resumed collection does) carries a stale encoding:
        # it must not be sent.
        more = dataclasses.replace(state, text=state.text + "X", ids=None if state.ids is None else (*state.ids, 5))
        stale = br._prompt(more)
        assert orjson.loads(orjson.dumps(CompletionRequest(stale, max_tokens=1).body("m")))["prompt"] == (
            [*(more.prompt_ids or ()), *(more.ids or ())] if ids else more.prompt + more.text
        )
        sent = orjson.loads(rec.bodies[-1])["prompt"]
        if ids:
            assert sent == [101, 102, 103, *[t for k in range(1, 11, 2) for t in (k, 1000 + k)], 7, 8]
        else:
            assert sent == state.prompt + state.text + Recipe().probe_suffix

    asyncio.run(go())
