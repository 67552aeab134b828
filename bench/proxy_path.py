"""The proxy's own per-call path in one process: CPU time (and optionally a profile) per upstream call.

What ``autotts serve`` runs for a request, minus FastAPI and uvicorn: a live session on
:class:`~autotts.online.upstream.RecipeSteps` (the recipe over the one completions
client), a built-in controller driven in a greenlet on the event loop
(:func:`~autotts.online.runner.start_episode`), against the stamped replay server of
``proxy_bench.py`` in another process. This process does nothing else, so its CPU time
(``time.process_time``) per upstream call is the proxy path's own cost per call: with
``--latency 0`` hot (back to back), with ``--latency 0.02`` after a 20 ms sleep each time
(what a deployment pays). ``--profile`` prints cProfile's top functions by own time and
the number of Python function calls per upstream call. Used while making that path
lean; ``proxy_bench.py overhead`` stays the figure of record.

    python bench/proxy_path.py --latency 0 --requests 20 [--controller consistency-exit:beta=0.5] [--profile]

``--encode N`` measures something else, without any server: the CPU time per call to
build and encode a request body for a branch of N generated tokens (grown by 2000
tokens per call, token-id prompts as vLLM takes them, and text), with the encoding the
branch keeps and encoded afresh (what every call paid before); a long branch is where
that difference shows, and the replay store above has short ones.

    python bench/proxy_path.py --encode 30000
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import multiprocessing as mp
import pstats
import statistics
import time
from typing import Any

from proxy_bench import STORE_ARGS, _upstream

from autotts.controllers import ControllerSpec
from autotts.llm import RetryPolicy
from autotts.online import LiveLimits
from autotts.online.runner import start_episode
from autotts.online.session import LiveSession
from autotts.online.upstream import RecipeSteps, live_recipe
from autotts.testing import tiny_store


async def _run(url: str, pipe: Any, args: argparse.Namespace) -> None:
    store = tiny_store(**STORE_ARGS)
    steps = await RecipeSteps.connect(
        [url],
        "replay",
        live_recipe("qwen3"),
        max_in_flight=64,
        timeout_seconds=600.0,
        policy=RetryPolicy(max_retries=3, backoff_seconds=0.5, max_backoff_seconds=10.0),
    )
    loop = asyncio.get_running_loop()
    spec = ControllerSpec.parse(args.controller)
    limits = LiveLimits(deadline=600.0, max_branches=STORE_ARGS["branches"])

    async def one(k: int) -> int:
        qi, run = k % 4, k // 4
        session = LiveSession(
            store.questions[qi].text, steps, loop, delta=STORE_ARGS["delta"], limits=limits, seed=run * 16
        )
        await start_episode(spec.build(), session, label=spec.label)
        return session.requests

    for k in range(4):
        await one(90 + k)
    pipe.send("log")
    pipe.recv()
    per_call, gaps = [], []
    calls = 0
    profiler = cProfile.Profile() if args.profile else None
    c_all = time.process_time()
    for k in range(args.requests):
        c0 = time.process_time()
        if profiler is not None:
            profiler.enable()
        n = await one(k)
        if profiler is not None:
            profiler.disable()
        per_call.append((time.process_time() - c0) / n)
        calls += n
        pipe.send("log")
        log = sorted(pipe.recv())
        gaps.extend(b[0] - a[1] for a, b in itertools.pairwise(log))
    total = time.process_time() - c_all
    await steps.aclose()
    print(
        f"{args.controller}, upstream {args.latency * 1000:.0f} ms: {calls} upstream calls; CPU per call "
        f"median {statistics.median(per_call) * 1e6:.0f} µs, overall {total / calls * 1e6:.0f} µs; "
        f"upstream idle between two calls median {statistics.median(gaps) * 1e6:.0f} µs"
    )
    if profiler is not None:
        stats = pstats.Stats(profiler)
        print(f"Python function calls per upstream call: {stats.total_calls / calls:.0f}")  # type: ignore[attr-defined]
        stats.sort_stats(args.sort).print_stats(args.top)


def _encode(tokens: int) -> None:
    import dataclasses
    import random

    import orjson

    from autotts.collect.recipe import Brancher, Recipe
    from autotts.llm import Completion, CompletionRequest

    rng = random.Random(0)
    delta = 2000
    for ids_mode in (True, False):

        class Stub:
            def __init__(self, with_ids: bool) -> None:
                self.with_ids = with_ids

            async def tokenize(self, text: str) -> tuple[int, ...]:
                return tuple(rng.randrange(150_000) for _ in range(200))

            async def complete(self, request: CompletionRequest) -> Completion:
                ids = tuple(rng.randrange(150_000) for _ in range(delta))
                return Completion("word " * delta, delta, "length", token_ids=ids if self.with_ids else None)

        brancher = Brancher(Stub(ids_mode), Recipe(), suffix_ids=(1, 2, 3) if ids_mode else None)  # type: ignore[arg-type]

        async def grow(b: Brancher = brancher) -> Any:
            state = await b.start("question")
            while state.tokens < tokens:
                state = await b.grow(state, delta, seed=0)
            return state

        state = asyncio.run(grow())
        afresh = dataclasses.replace(state, wire=None)

        def body(st: Any, b: Brancher = brancher) -> bytes:
            request = CompletionRequest(b._prompt(st, probe=True), max_tokens=32, temperature=0.0, top_p=1.0, seed=0)
            return orjson.dumps(request.body("m"))

        assert body(state) == body(afresh)
        for label, st in (("kept encoding", state), ("encoded afresh", afresh)):
            n = 200
            c0 = time.process_time()
            for _ in range(n):
                body(st)
            per = (time.process_time() - c0) / n
            kind = "token ids" if ids_mode else "text"
            print(f"{kind:<9} prompt, {state.tokens} generated tokens, {label:<14}: {per * 1e6:7.0f} µs CPU per call")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--requests", type=int, default=20)
    p.add_argument("--controller", default="consistency-exit:beta=0.5")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--sort", default="tottime")
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--encode", type=int, default=0, metavar="TOKENS")
    args = p.parse_args()
    if args.encode:
        _encode(args.encode)
        return
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    pipe, theirs = ctx.Pipe()
    up = ctx.Process(target=_upstream, args=(args.latency, q, theirs), daemon=True)
    up.start()
    try:
        asyncio.run(_run(q.get(timeout=60), pipe, args))
    finally:
        pipe.send("stop")
        up.join(timeout=10)


if __name__ == "__main__":
    main()
