"""Collector throughput against a saturating raw client on the same server, and per-request client overhead.

1. Throughput. The collector (``autotts.collect``, interval mode) builds a store on a
   server; then a raw client (plain ``httpx``, no retries, no bookkeeping, no
   dependencies between requests) sends the *same* requests — every growth step on its
   prefix and every probe, rebuilt from the collector's checkpoint — with the same
   number in flight. Both figures are completion tokens per second of wall time; the
   ratio is the collector's efficiency (target ≥ 90 %). By default the server is llama.cpp
   (``llama_cpp.server``) with the tiny generated model; ``--base-url``/``--model`` point both clients at any running
   OpenAI-compatible server instead (vLLM on a GPU: see bench/README.md).
2. Overhead. Both clients against an instant in-process fake server: wall time per
   request; the difference is what ``CompletionsClient`` (scheduling, retries, parsing)
   adds per request.

    python bench/collect_speed.py [--concurrency 4] [--questions 4] [--branches 8] [--delta 32] [--max-tokens 256]
    python bench/collect_speed.py --base-url http://gpu:8000/v1 --model Qwen/Qwen3-4B --concurrency 256 \
        --questions 30 --branches 16 --delta 500 --max-tokens 8192
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

import autotts.store.parquet  # noqa: F401  (loaded up front: its import time is not collection time)
from autotts.collect.config import CollectConfig, config_from_mapping
from autotts.collect.runner import collect_async
from autotts.llm import CompletionRequest, CompletionsClient
from autotts.testing.completions_server import CompletionCall, CompletionsServer, Generation
from autotts.testing.llama_server import LlamaCppServer
from autotts.testing.tiny_gguf import write_tiny_llama


def workload(state: Path, cfg: CollectConfig) -> list[dict[str, Any]]:
    """The collector's requests, rebuilt from its checkpoint: every growth step and every probe."""
    recipe = cfg.recipe
    bodies: list[dict[str, Any]] = []
    with sqlite3.connect(state) as db:
        texts = {q: t for q, t in db.execute("SELECT q, text FROM questions")}
        segs: dict[tuple[int, int], list[str]] = {}
        for q, b, _k, text in db.execute("SELECT q, b, k, text FROM segments ORDER BY q, b, k"):
            segs.setdefault((q, b), []).append(text)
    for (q, _b), parts in segs.items():
        prefix = recipe.template.render(texts[q])
        for i, part in enumerate(parts):
            bodies.append({"prompt": prefix, "max_tokens": cfg.delta, "temperature": recipe.sampling.temperature})
            prefix += part
            if i < len(parts) - 1:  # the collector probes every completed interval
                probe = prefix + recipe.probe_suffix
                bodies.append({"prompt": probe, "max_tokens": recipe.probe.max_tokens, "temperature": 0.0})
    return bodies


async def raw_client(
    base_url: str, model: str, concurrency: int, bodies: list[dict[str, Any]]
) -> tuple[int, float, int]:
    """Send the same requests with ``concurrency`` workers and nothing else: no retries, no dependencies."""
    done = 0
    # A shuffled order: the collector interleaves branches, so the server's prefix cache
    # helps neither side more than the other.
    queue = list(bodies)
    random.Random(0).shuffle(queue)
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=concurrency)) as http:

        async def worker() -> None:
            nonlocal done
            while queue:
                body = {"model": model, **queue.pop()}
                r = await http.post(base_url + "/completions", json=body)
                r.raise_for_status()
                done += int(r.json()["usage"]["completion_tokens"])

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done, time.monotonic() - t0, len(bodies)


async def collector(
    tmp: Path, base_url: str, model: str, args: argparse.Namespace
) -> tuple[int, float, int, CollectConfig]:
    bench = tmp / "bench.jsonl"
    bench.write_text(
        "".join(
            json.dumps({"question": f"What is {i} * 7?", "answer": str(7 * i)}) + "\n" for i in range(args.questions)
        )
    )
    cfg = config_from_mapping(
        {
            "benchmark": {"path": str(bench)},
            "server": {
                "base_urls": [base_url],
                "model": model,
                "max_in_flight": args.concurrency,
                "api_key_env": args.api_key_env,
            },
            "collect": {
                "branches": args.branches,
                "delta": args.delta,
                "max_tokens": args.max_tokens,
                "out": str(tmp / "s.parquet"),
            },
            "sampling": {"temperature": 0.8},
            "prompt": {"preset": args.preset},
        },
        base_dir=tmp,
    )
    t0 = time.monotonic()
    result = await collect_async(cfg)
    seconds = time.monotonic() - t0
    s = result.store.meta.settings
    return int(s["tokens"]) + int(s["probe_tokens"]), seconds, result.requests, cfg


class Instant(CompletionsServer):
    def generate(self, call: CompletionCall) -> Generation:
        return Generation(self.tokenizer.encode("x" * call.max_tokens), "length")


async def overhead(n: int, concurrency: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with Instant(model="m") as srv:
        url = srv.openai_base_url
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as http:
            sem = asyncio.Semaphore(concurrency)

            async def one() -> None:
                async with sem:
                    r = await http.post(url + "/completions", json={"model": "m", "prompt": "a", "max_tokens": 4})
                    r.json()

            t0 = time.monotonic()
            await asyncio.gather(*(one() for _ in range(n)))
            out["raw"] = (time.monotonic() - t0) / n
        async with CompletionsClient([url], "m", max_in_flight=concurrency) as c:
            t0 = time.monotonic()
            await asyncio.gather(*(c.complete(CompletionRequest("a", max_tokens=4)) for _ in range(n)))
            out["client"] = (time.monotonic() - t0) / n
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", default="")
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--api-key-env", default="")
    ap.add_argument("--preset", default="plain")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--questions", type=int, default=4)
    ap.add_argument("--branches", type=int, default=8)
    ap.add_argument("--delta", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads (default server only)")
    ap.add_argument("--overhead-requests", type=int, default=2000)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        server: LlamaCppServer | None = None
        base_url, model = args.base_url, args.model
        if not base_url:
            server = LlamaCppServer(write_tiny_llama(tmp / "tiny.gguf"), alias="tiny", threads=args.threads).start()
            base_url, model = server.base_url, "tiny"
        try:
            tokens, secs, reqs, cfg = asyncio.run(collector(tmp, base_url, model, args))
            bodies = workload(cfg.state_path, cfg)
            rtokens, rsecs, rreqs = asyncio.run(raw_client(base_url, model, args.concurrency, bodies))
        finally:
            if server is not None:
                server.stop()
    c_rate, r_rate = tokens / secs, rtokens / rsecs
    print(f"collector  {tokens:,} tokens in {secs:.1f} s ({reqs} requests): {c_rate:,.0f} tok/s")
    print(f"raw client {rtokens:,} tokens in {rsecs:.1f} s ({rreqs} requests): {r_rate:,.0f} tok/s")
    print(f"ratio      {100 * c_rate / r_rate:.1f} %  (target >= 90 %)")
    o = asyncio.run(overhead(args.overhead_requests, args.concurrency))
    print(
        f"per request against an instant local server: raw httpx {o['raw'] * 1e6:,.0f} µs, "
        f"CompletionsClient {o['client'] * 1e6:,.0f} µs, overhead {(o['client'] - o['raw']) * 1e6:+,.0f} µs"
    )


if __name__ == "__main__":
    main()
