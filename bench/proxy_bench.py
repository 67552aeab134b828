"""Proxy benchmarks: overhead per controller action, and the largest concurrency held without errors.

Three processes, as in production: the upstream (the replay server serving a tiny
synthetic store, with a fixed latency per call standing in for the model), the proxy
(``autotts serve``, a real subprocess) and this driver.

* ``overhead``: one request at a time. The upstream records when it starts and ends
  handling each completion (``time.monotonic``, one clock for all processes on Linux),
  so what the upstream itself spent (its latency, and its own HTTP/JSON handling) is
  *measured*, not assumed. Per action: an action is one grow and one probe call (one
  call for a read, or a grow that finished its branch); its overhead is the idle gaps
  of the upstream before its calls, from the end of the request's first call on: the
  request's own start (client → proxy → first upstream call) and end (last upstream
  reply → client) are per-request costs, reported apart as "request start + end"
  (charging them to the first and last action, as this bench did before, made them
  half of the per-action sample of a 4-action request and its median a per-request
  figure). Per request: (wall time − the time the upstream was busy) / controller
  actions, everything included. What remains is everything the proxy path adds: the
  controller's own decision, the session, the hop to and from the controller (a thread
  hop, or a greenlet switch), the recipe, the HTTP client, loopback and the wake-ups of
  both processes. CPU: the proxy process's CPU time (all its threads,
  ``/proc/PID/task/*/schedstat``, nanoseconds) per request, divided by its actions.
  Median and p99 of each.
* ``floor``: the same measurement for a client that does nothing between its calls
  (bare asyncio streams, a prepared grow request then a prepared probe request per
  "action", one kept-alive connection, replies read by ``Content-Length``): what this
  method charges to *any* client for loopback and the two processes' wake-ups, so
  that the proxy's own share is the difference.
* ``concurrency``: rising levels of concurrent clients (each sends 2 requests); a
  level is held when every request succeeds with the replay answer. Prints the
  latency percentiles and throughput of every level and the largest level held.

    python bench/proxy_bench.py overhead --latency 0.02 --requests 40
    python bench/proxy_bench.py floor --latency 0.02 --actions 400
    python bench/proxy_bench.py concurrency --latency 0.2 --levels 8,16,32,64,128,256
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import itertools
import json
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from autotts.testing import tiny_store
from autotts.testing.load import drive

STORE_ARGS = {"seed": 31, "questions": 4, "branches": 16, "delta": 2000}


def _upstream(latency: float, port_q: Any, conn: Any) -> None:
    """The replay server, recording ``(start, end, closes an action)`` of every completion it handles."""
    from http.server import BaseHTTPRequestHandler

    from autotts.collect.recipe import Recipe
    from autotts.testing.replay_server import ReplayLLMServer

    log: list[tuple[float, float, bool]] = []
    # The upstream's own time starts when it has read a request line, before it parses
    # the headers (http.server's parsing is the upstream's cost, not the proxy's).
    parse_request = BaseHTTPRequestHandler.parse_request

    def stamped(h: BaseHTTPRequestHandler) -> bool:
        h.autotts_t0 = time.monotonic()  # type: ignore[attr-defined]
        return parse_request(h)

    BaseHTTPRequestHandler.parse_request = stamped  # type: ignore[method-assign]

    class Timed(ReplayLLMServer):
        def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
            t0 = getattr(h, "autotts_t0", None) or time.monotonic()
            super().handle(h, method)
            t1 = time.monotonic()
            probe = h.path.endswith("/completions") and self._last_probe
            log.append((t0, t1, probe or self._last_finished))

        def _payload(self, prompt: str, text: str, completion_tokens: int, finish: str) -> dict[str, Any]:
            self._last_probe = prompt.endswith(self.probe_suffix)
            self._last_finished = finish == "stop" and not self._last_probe
            return super()._payload(prompt, text, completion_tokens, finish)

    srv = Timed(tiny_store(**STORE_ARGS), probe_suffix=Recipe().probe_suffix, latency=latency).start()
    port_q.put(srv.openai_base_url)
    while conn.recv() == "log":  # anything else: stop
        conn.send(log[:])
        log.clear()


def _start(latency: float, controller: str, *extra: str) -> tuple[mp.Process, Any, subprocess.Popen[str], str]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    mine, theirs = ctx.Pipe()
    up = ctx.Process(target=_upstream, args=(latency, q, theirs), daemon=True)
    up.start()
    upstream_url = q.get(timeout=60)
    proc = subprocess.Popen(
        [sys.executable, "-m", "autotts.cli.main", "serve", "--controller", controller, "--upstream", upstream_url,
         "--model", "replay", "--port", "0", "--delta", str(STORE_ARGS["delta"]), "--max-branches", "16", *extra],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if " on http://" not in line:
        raise SystemExit(f"serve did not start: {line}")
    return up, mine, proc, line.split(" on ")[1].split()[0]


def _stop(up: mp.Process, pipe: Any, proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    pipe.send("stop")
    up.join(timeout=10)
    if up.is_alive():
        up.terminate()


def _body(qi: int, run: int, **extra: Any) -> dict[str, Any]:
    store = tiny_store(**STORE_ARGS)
    return {
        "model": "replay",
        "messages": [{"role": "user", "content": store.questions[qi].text}],
        "seed": run * STORE_ARGS["branches"],
        **extra,
    }


def _cpu_ns(pid: int) -> int:
    """CPU time of every live thread of a process, in nanoseconds (``/proc/PID/task/*/schedstat``)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def _busy(intervals: Sequence[tuple[float, float, bool]], t0: float, t1: float) -> float:
    """Seconds of ``[t0, t1]`` during which the upstream was handling at least one request."""
    busy, cursor = 0.0, t0
    for s, e, _ in sorted(intervals):
        s, e = max(s, cursor), min(e, t1)
        if e > s:
            busy += e - s
            cursor = e
    return busy


def _action_gaps(
    intervals: Sequence[tuple[float, float, bool]], t0: float, t1: float
) -> tuple[list[float], float, float]:
    """The proxy's time per action, and the request's start and end.

    Per action: the idle gaps of the upstream before each of its calls, grouped by
    action, from the first call on. Start: from ``t0`` (the client sends) to the first
    call; end: from the last call's end to ``t1`` (the client has the reply).
    """
    calls = sorted(intervals)
    gaps, current, cursor = [], 0.0, calls[0][0]
    for s, e, closes in calls:
        current += s - cursor
        cursor = e
        if closes:
            gaps.append(current)
            current = 0.0
    if current and gaps:
        gaps[-1] += current
    return gaps, calls[0][0] - t0, t1 - cursor


def _pct(xs: Sequence[float], q: float) -> float:
    ys = sorted(xs)
    return ys[max(0, min(len(ys) - 1, round(q / 100 * len(ys) + 0.5) - 1))]


def overhead(args: argparse.Namespace) -> None:
    print(f"upstream latency {args.latency * 1000:.0f} ms per call; {args.requests} sequential requests per controller")
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    print(f"controllers placed by: autotts serve --run-controllers {args.run_controllers}")
    print(
        f"{'controller':<28} {'actions/req':>11} {'upstream ms/action':>18} "
        f"{'overhead/action ms: per action med p99':>39} {'request start+end ms med':>25} "
        f"{'per request med p99':>20} {'CPU ms/action med p99':>22}"
    )
    for controller in args.controllers.split(";"):
        up, pipe, proc, url = _start(args.latency, controller, "--run-controllers", args.run_controllers)
        try:
            host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
            conn = http.client.HTTPConnection(host, int(port), timeout=300)

            def post(body: dict[str, Any], conn: http.client.HTTPConnection = conn) -> dict[str, Any]:
                data = json.dumps(body).encode()
                conn.request("POST", "/v1/chat/completions", data, {"Content-Type": "application/json"})
                r = conn.getresponse()
                payload = r.read()
                if r.status != 200:
                    raise SystemExit(f"the proxy answered {r.status}: {payload[:300]!r}")
                result: dict[str, Any] = json.loads(payload)
                return result

            for k in range(3):  # warm-up (connections, imports, caches)
                post(_body(k % 4, 90 + k))
            pipe.send("log")
            pipe.recv()
            per_action, per_request, cpu, upstream, n_actions, ends = [], [], [], [], [], []
            for k in range(args.requests):
                body = _body(k % 4, k // 4)
                c0 = _cpu_ns(proc.pid)
                t0 = time.monotonic()
                info = post(body)["autotts"]["trace"]
                t1 = time.monotonic()
                c1 = _cpu_ns(proc.pid)
                pipe.send("log")
                log = pipe.recv()
                # A prune calls no model; the target is about the actions that do.
                actions = sum(n for a, n in info["actions"].items() if a != "prune")
                gaps, start, end = _action_gaps(log, t0, t1)
                ends.append(start + end)
                if len(gaps) != actions:
                    raise SystemExit(f"{controller}: {len(gaps)} upstream action boundaries for {actions} actions")
                busy = _busy(log, t0, t1)
                per_action.extend(gaps)
                if os.environ.get("PROXY_BENCH_DEBUG"):
                    print([round(g * 1000, 2) for g in gaps], file=sys.stderr)
                per_request.append((t1 - t0 - busy) / actions)
                cpu.append((c1 - c0) / 1e9 / actions)
                upstream.append(busy / actions)
                n_actions.append(actions)
            conn.close()

            def ms(xs: Sequence[float]) -> str:
                return f"{statistics.median(xs) * 1000:.2f} {_pct(xs, 99) * 1000:.2f}"

            print(
                f"{controller:<28} {statistics.mean(n_actions):>11.1f} {statistics.median(upstream) * 1000:>18.2f} "
                f"{ms(per_action):>39} {statistics.median(ends) * 1000:>25.2f} {ms(per_request):>20} {ms(cpu):>22}"
            )
        finally:
            _stop(up, pipe, proc)


async def _bare_client(url: str, requests: Sequence[bytes], actions: int) -> None:
    """Send ``requests`` in turn, ``actions`` times over, on one connection; read each reply, do nothing else."""
    host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    for _ in range(actions):
        for request in requests:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"the upstream refused the prepared request: {head[:40]!r} {body[:200]!r}")
    writer.close()
    await writer.wait_closed()


def floor(args: argparse.Namespace) -> None:
    from autotts.collect.recipe import Recipe

    recipe = Recipe()
    store = tiny_store(**STORE_ARGS)
    grow_prompt = recipe.template.render(store.questions[0].text)
    # A grow of branch 0, then a probe after its first interval (the marker tells the replay server where).
    probe_prompt = grow_prompt + "[replay q0 b0 #0] " + recipe.probe_suffix
    requests = []
    for prompt, max_tokens in ((grow_prompt, STORE_ARGS["delta"]), (probe_prompt, 32)):
        body = json.dumps({"model": "replay", "prompt": prompt, "max_tokens": max_tokens, "seed": 0}).encode()
        requests.append(
            b"POST /v1/completions HTTP/1.1\r\nHost: upstream\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    pipe, theirs = ctx.Pipe()
    up = ctx.Process(target=_upstream, args=(args.latency, q, theirs), daemon=True)
    up.start()
    try:
        url = q.get(timeout=60)
        asyncio.run(_bare_client(url, requests, 5))  # warm-up
        pipe.send("log")
        pipe.recv()
        load = os.getloadavg()
        asyncio.run(_bare_client(url, requests, args.actions))
        pipe.send("log")
        calls = sorted(pipe.recv())
    finally:
        pipe.send("stop")
        up.join(timeout=10)
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(calls)]
    per_action = [gaps[i] + gaps[i + 1] for i in range(1, len(gaps) - 1, 2)]  # before a grow + before its probe
    print(f"upstream latency {args.latency * 1000:.0f} ms per call; load average {load[0]:.2f} {load[1]:.2f}")
    print(
        f"bare client, {args.actions} actions (grow + probe): gap between calls median "
        f"{statistics.median(gaps) * 1000:.3f} ms; per action median {statistics.median(per_action) * 1000:.3f} ms, "
        f"p99 {_pct(per_action, 99) * 1000:.3f} ms"
    )


def concurrency(args: argparse.Namespace) -> None:
    levels = [int(x) for x in args.levels.split(",")]
    up, pipe, proc, url = _start(args.latency, args.controller, "--max-concurrency", str(max(levels)))
    held = 0
    try:
        from autotts.controllers import ControllerSpec
        from autotts.env.protocols import shuffle_order
        from autotts.env.session import ReplaySession

        store = tiny_store(**STORE_ARGS)
        spec = ControllerSpec.parse(args.controller)

        def expected(qi: int, run: int) -> str | None:
            q = store.replay[qi]
            answer: str | None = spec.build().solve(ReplaySession(q, shuffle_order(q.n_branches, run)))
            return answer

        print(f"controller {args.controller}, upstream latency {args.latency * 1000:.0f} ms per call, 2 cores shared")
        for level in levels:
            n = 2 * level
            cases = [(k % 4, k // 4) for k in range(n)]
            report = drive(url, [_body(qi, run) for qi, run in cases], concurrency=level, timeout=600)
            bad = sum(
                o.status != 200 or o.body["choices"][0]["message"]["content"] != (expected(*case) or "")
                for o, case in zip(report.outcomes, cases, strict=True)
            )
            print(f"  {level:>4} concurrent: {report.summary()}; errors {bad}")
            if bad:
                break
            held = level
    finally:
        _stop(up, pipe, proc)
    print(f"largest concurrency held without errors: {held}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--latency", type=float, default=0.02)
    o.add_argument("--requests", type=int, default=40)
    o.add_argument("--controllers", default="sc:n=4;wide-commit:beta=0.5;consistency-exit:beta=0.5")
    o.add_argument(
        "--run-controllers",
        default="auto",
        choices=("auto", "loop", "threads"),
        help="where the proxy runs controllers (auto: the default a user gets; built-ins on the event loop)",
    )
    f = sub.add_parser("floor")
    f.add_argument("--latency", type=float, default=0.02)
    f.add_argument("--actions", type=int, default=400)
    c = sub.add_parser("concurrency")
    c.add_argument("--latency", type=float, default=0.2)
    c.add_argument("--levels", default="8,16,32,64,128,256")
    c.add_argument("--controller", default="sc:n=4")
    args = p.parse_args()
    {"overhead": overhead, "floor": floor, "concurrency": concurrency}[args.mode](args)


if __name__ == "__main__":
    main()
