"""Per-request cost of the LLM client's transport: ``CompletionsClient`` vs raw httpx vs bare asyncio streams.

The upstream is the replay server (``autotts.testing.replay_server``, no latency) in
its own process, so the figures are this process's cost alone: wall time and CPU time
(``time.process_time``) per sequential ``/v1/completions`` request on one kept-alive
connection. The bare-streams figure is the floor of any asyncio HTTP/1.1 client.

    python bench/llm_transport.py [--requests 400]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from autotts.llm import CompletionRequest, CompletionsClient

STORE_ARGS = {"seed": 31, "questions": 4, "branches": 16, "delta": 2000}


def _upstream(q: Any) -> None:
    from autotts.collect.recipe import Recipe
    from autotts.testing import tiny_store
    from autotts.testing.replay_server import ReplayLLMServer

    srv = ReplayLLMServer(tiny_store(**STORE_ARGS), probe_suffix=Recipe().probe_suffix).start()
    q.put((srv.openai_base_url, srv.store.questions[0].text))
    signal.sigwait({signal.SIGTERM})


async def _measure(name: str, n: int, one: Callable[[], Awaitable[Any]]) -> None:
    for _ in range(20):
        await one()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        await one()
    wall, cpu = (time.perf_counter() - t0) / n, (time.process_time() - c0) / n
    print(f"{name:<26} wall {wall * 1e6:>7.0f} µs   CPU {cpu * 1e6:>7.0f} µs per request")


async def _main(url: str, question: str, n: int) -> None:
    prompt = f"<|im_start|>user\n{question}\n"
    request = CompletionRequest(prompt, max_tokens=2000, temperature=0.6, top_p=0.95, seed=3)
    body = request.body("replay")
    async with CompletionsClient([url], "replay") as client:
        await _measure("CompletionsClient", n, lambda: client.complete(request))
    async with httpx.AsyncClient() as h:

        async def raw_httpx() -> Any:
            return (await h.post(url + "/completions", json=body)).json()

        await _measure("raw httpx.AsyncClient", n, raw_httpx)
    host, port = url.split("//")[1].split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    data = json.dumps(body).encode()
    head = (
        f"POST /v1/completions HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()

    async def bare() -> Any:
        writer.write(head + data)
        lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        length = next(int(x.split(b":")[1]) for x in lines if x.lower().startswith(b"content-length:"))
        return json.loads(await reader.readexactly(length))

    await _measure("bare asyncio streams", n, bare)
    writer.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=400)
    args = p.parse_args()
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    up = ctx.Process(target=_upstream, args=(q,), daemon=True)
    up.start()
    url, question = q.get(timeout=60)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    try:
        asyncio.run(_main(url, question, args.requests))
    finally:
        if up.pid is not None:
            os.kill(up.pid, signal.SIGTERM)
        up.join(timeout=10)


if __name__ == "__main__":
    main()
