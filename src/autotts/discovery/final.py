"""The final evaluation: the selected controller and the baselines on search and held-out stores.

This is the first moment held-out stores are loaded. The discovered controller still
runs in the sandbox (it is untrusted code) — one process per β, several in parallel —
and is graded here; the baselines are project code and run in-process. Every point
carries a 95 % bootstrap interval of accuracy over questions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from autotts.discovery.config import DiscoverConfig
from autotts.discovery.sandbox import SandboxJob, SandboxLimits, StorePayload, orders_for, run_sandbox
from autotts.discovery.seeds import evaluate_specs, point_dict, seed_specs
from autotts.discovery.validation import validate_source
from autotts.env.protocols import Protocol
from autotts.evaluation.results import grade_cell
from autotts.store.schema import ReplayStore

log = logging.getLogger(__name__)


def _point(store: ReplayStore, beta: float | None, cell: Mapping[str, Any], protocol: Protocol) -> dict[str, Any]:
    """Grade one sandbox cell (answers and costs, no golds) the way every cell is graded."""
    result = grade_cell(
        store,
        controller="discovered",
        params={} if beta is None else {"beta": beta},
        protocol=protocol.label,
        answers=cell["answers"],
        cost=cell["cost"],
        sequential=cell["seq"],
    )
    return point_dict(result, beta)


def evaluate_discovered(
    code: str,
    stores: Sequence[ReplayStore],
    *,
    betas: Sequence[float | None],
    runs: int,
    protocol: Protocol,
    limits: SandboxLimits,
    workers: int = 1,
) -> dict[str, Any]:
    """Curves of the discovered controller per store, or the failure that stopped it."""
    v = validate_source(code, require_beta=betas != [None])
    if not v.ok:
        return {"status": "invalid", "message": v.message, "curves": {}}
    payloads = [StorePayload(s.name, tuple(s.replay)) for s in stores]
    run_ids = list(range(runs))
    orders = orders_for(payloads, run_ids, protocol.order)

    def one(beta: float | None) -> tuple[float | None, Any]:
        return beta, run_sandbox(SandboxJob(code, v.class_name, payloads, [beta], run_ids, orders), limits)

    curves: dict[str, list[dict[str, Any]]] = {s.name: [] for s in stores}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        outcomes = list(pool.map(one, betas))
    for beta, outcome in outcomes:
        if outcome.kind != "ok" or outcome.data is None:
            status = "timeout" if outcome.kind == "timeout" else "crashed"
            return {"status": status, "message": f"β={beta}: {outcome.message}", "curves": {}}
        for cell in outcome.data["cells"]:
            store = stores[int(cell["store"])]
            curves[store.name].append(_point(store, beta, cell, protocol))
    return {"status": "ok", "message": "", "curves": curves}


def final_evaluation(
    config: DiscoverConfig,
    *,
    search: Sequence[ReplayStore],
    heldout: Sequence[ReplayStore],
    code: str | None,
    takes_beta: bool,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Evaluate the selected program (if any) and the baselines with ``final_runs`` runs."""
    protocol = Protocol(config.protocol, config.subsample_size)
    stores = [*search, *heldout]
    roles = {s.name: "search" for s in search} | {s.name: "heldout" for s in heldout}
    out: dict[str, Any] = {
        "runs": config.final_runs,
        "protocol": protocol.label,
        "stores": [{"name": s.name, "role": roles[s.name], "questions": len(s)} for s in stores],
    }
    if code is not None:
        if on_step:
            on_step("discovered controller")
        limits = SandboxLimits(
            cpu_seconds=config.sandbox.final_wall_seconds,
            wall_seconds=config.sandbox.final_wall_seconds,
            memory_mb=config.sandbox.memory_mb,
            output_mb=config.sandbox.output_mb,
            isolation=config.sandbox.isolation,
            start=config.sandbox.start,
        )
        betas: list[float | None] = list(config.betas) if takes_beta else [None]
        out["discovered"] = evaluate_discovered(
            code, stores, betas=betas, runs=config.final_runs, protocol=protocol, limits=limits, workers=config.parallel
        )
    baselines = list(config.baselines) if config.baselines is not None else seed_specs(config.seeds)
    if on_step:
        on_step(f"{len(baselines)} baselines")
    evaluated = evaluate_specs(
        baselines, stores, betas=config.betas, runs=config.final_runs, protocol=protocol, workers=config.parallel
    )
    out["baselines"] = evaluated
    return out
