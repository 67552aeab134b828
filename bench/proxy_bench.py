"""Proxy benchmarks: overhead per controller action, and the largest concurrency held without errors.

Three processes, as in production: the upstream (the replay server serving a tiny
synthetic store, with a fixed latency per call standing in for the model), the proxy
(``autotts serve``, a real subprocess) and this driver.

* ``overhead``: one request at a time; per request, wall time / controller actions,
  minus the upstream's own latency per action (``2 × latency`` for an open/advance:
  a grow call and a probe call; ``1 × latency`` for a read). What is left is what the
  proxy adds per action: HTTP to and from the proxy, FastAPI, the thread hop of the
  sync controller, the session, the recipe, the HTTP client, loopback, and the replay
  server's own parsing. Median and p90 over requests.
* ``concurrency``: rising levels of concurrent clients (each sends 2 requests); a
  level is held when every request succeeds with the replay answer. Prints the
  latency percentiles and throughput of every level and the largest level held.

    python bench/proxy_bench.py overhead --latency 0.02
    python bench/proxy_bench.py concurrency --latency 0.2 --levels 8,16,32,64,128,256
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx

from autotts.testing import tiny_store
from autotts.testing.load import drive

STORE_ARGS = {"seed": 31, "questions": 4, "branches": 16, "delta": 2000}


def _upstream(latency: float, port_q: Any) -> None:
    from autotts.collect.recipe import Recipe
    from autotts.testing.replay_server import ReplayLLMServer

    srv = ReplayLLMServer(tiny_store(**STORE_ARGS), probe_suffix=Recipe().probe_suffix, latency=latency).start()
    port_q.put(srv.openai_base_url)
    signal.sigwait({signal.SIGTERM})


def _start(latency: float, controller: str, *extra: str) -> tuple[mp.Process, subprocess.Popen[str], str]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    up = ctx.Process(target=_upstream, args=(latency, q), daemon=True)
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
    return up, proc, line.split(" on ")[1].split()[0]


def _stop(up: mp.Process, proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    if up.pid is not None:
        os.kill(up.pid, signal.SIGTERM)
    up.join(timeout=10)


def _body(qi: int, run: int, **extra: Any) -> dict[str, Any]:
    store = tiny_store(**STORE_ARGS)
    return {
        "model": "replay",
        "messages": [{"role": "user", "content": store.questions[qi].text}],
        "seed": run * STORE_ARGS["branches"],
        **extra,
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), independent of how loaded the machine is."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def overhead(args: argparse.Namespace) -> None:
    print(f"upstream latency {args.latency * 1000:.0f} ms per call; {args.requests} sequential requests per controller")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    head = f"{'controller':<34} {'actions/req':>11} {'ms/action':>10} {'overhead ms/action (median, p90)':>34}"
    print(head + f" {'proxy CPU ms/action':>20}")
    for controller in args.controllers.split(";"):
        up, proc, url = _start(args.latency, controller)
        try:
            per_action = []
            n_actions = []
            wall = []
            with httpx.Client(base_url=url, timeout=300) as c:
                c.post("/chat/completions", json=_body(0, 99))  # warm-up
                cpu0 = _cpu_seconds(proc.pid)
                for k in range(args.requests):
                    t0 = time.perf_counter()
                    r = c.post("/chat/completions", json=_body(k % 4, k // 4))
                    took = time.perf_counter() - t0
                    r.raise_for_status()
                    info = r.json()["autotts"]["trace"]
                    actions = sum(info["actions"].values())
                    upstream = info["requests"] * args.latency
                    per_action.append((took - upstream) / actions)
                    n_actions.append(actions)
                    wall.append(took / actions)
                cpu = (_cpu_seconds(proc.pid) - cpu0) / sum(n_actions)
            q90 = statistics.quantiles(per_action, n=10)[-1]
            print(
                f"{controller:<34} {statistics.mean(n_actions):>11.1f} {statistics.median(wall) * 1000:>10.2f} "
                f"{statistics.median(per_action) * 1000:>20.2f}, {q90 * 1000:<12.2f} {cpu * 1000:>20.2f}"
            )
        finally:
            _stop(up, proc)


def concurrency(args: argparse.Namespace) -> None:
    levels = [int(x) for x in args.levels.split(",")]
    up, proc, url = _start(args.latency, args.controller, "--max-concurrency", str(max(levels)))
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
        _stop(up, proc)
    print(f"largest concurrency held without errors: {held}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--latency", type=float, default=0.02)
    o.add_argument("--requests", type=int, default=20)
    o.add_argument("--controllers", default="sc:n=4;wide-commit:beta=0.5;consistency-exit:beta=0.5")
    c = sub.add_parser("concurrency")
    c.add_argument("--latency", type=float, default=0.2)
    c.add_argument("--levels", default="8,16,32,64,128,256")
    c.add_argument("--controller", default="sc:n=4")
    args = p.parse_args()
    overhead(args) if args.mode == "overhead" else concurrency(args)


if __name__ == "__main__":
    main()
