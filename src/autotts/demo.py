"""The library side of ``autotts demo``: the whole idea end to end on synthetic data.

Why: a new user with no replay data, no network and no API key should see, within a
minute, what autotts does: replay stores, controllers evaluated on them with zero LLM
calls, accuracy against cost, and where to go next. The demo

1. builds two synthetic stores of profile ``large`` (:mod:`autotts.store.synthetic`): a
   *search* store (what a discovery run would search on) and a *held-out* store (what
   its result would be judged on), from seeds ``2*seed`` and ``2*seed + 1``;
2. evaluates the baselines that are registered (``sc`` at a few budgets, and ``asc``,
   ``esc``, ``parallel-probe`` at two budgets and ``cmc`` at two β when present; a name
   that is not registered is skipped, so the demo keeps working as controllers land);
3. runs a short discovery (:func:`discovery_step`) with the offline ``evolve`` proposer
   (no LLM) on the search store only, and evaluates what it selected against the
   baselines on both stores (run directory ``DIR/discovery``);
4. writes ``DIR/stores/*.parquet``, ``DIR/results.json`` and ``DIR/summary.md``, and
   the report of all of it with ``autotts report`` (:func:`report_step`): ``DIR/report/``.

Same seed and mode -> byte-identical ``results.json`` and ``summary.md`` (wall times are
returned to the caller but never written into them).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autotts import __version__
from autotts._atomic import write_text_atomic
from autotts.controllers.base import registry
from autotts.discovery.config import config_from_mapping
from autotts.discovery.loop import DiscoveryLoop
from autotts.discovery.validation import validate_source
from autotts.errors import AutoTTSError, ConfigError
from autotts.evaluation.results import CellResult
from autotts.evaluation.runner import evaluate
from autotts.store.io import save_store
from autotts.store.schema import ReplayStore
from autotts.store.synthetic import synthesize

log = logging.getLogger(__name__)

#: Profile of both demo stores.
DEMO_PROFILE = "large"

#: Runs (branch orders) per evaluated cell: the reference protocol uses 100.
FULL_RUNS = 100
QUICK_RUNS = 10

#: What the demo evaluates, in order: (registered name, specs). Missing names are skipped.
DEMO_BASELINES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sc", ("sc:n=1", "sc:n=8", "sc:n=64")),
    ("asc", ("asc:max_samples=16", "asc:max_samples=64")),
    ("esc", ("esc:max_samples=16", "esc:max_samples=64")),
    ("parallel-probe", ("parallel-probe:chains=16", "parallel-probe:chains=64")),
    ("cmc", ("cmc:beta=0.5", "cmc:beta=1.0")),
)

#: The demo's discovery run: name (marks a run directory the demo may replace), rounds, β grid, runs.
DISCOVERY_NAME = "autotts-demo"
DISCOVERY_ROUNDS = 24
QUICK_DISCOVERY_ROUNDS = 4
DISCOVERY_BETAS = (0.0, 0.25, 0.5, 0.75, 1.0)
DISCOVERY_SEARCH_RUNS = 10
QUICK_DISCOVERY_SEARCH_RUNS = 5

#: Record fields that vary between identical runs (timings); kept out of results.json.
_VOLATILE = ("seconds",)

#: Progress callback: (what is being done, steps done, steps total).
DemoProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class StepOutcome:
    """What became of an optional demo step (discovery, report)."""

    name: str
    status: str
    """``done``; ``failed`` (with the reason in ``detail``); ``not-run`` when not available yet."""
    detail: str
    outputs: tuple[str, ...] = ()
    """Files or directories it wrote, relative to the demo directory."""
    data: Mapping[str, Any] = field(default_factory=dict)
    """Deterministic, JSON-ready results of the step (no timings)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "outputs": list(self.outputs),
            **({"data": dict(self.data)} if self.data else {}),
        }


@dataclass(frozen=True)
class DemoResult:
    """Everything the demo did, for the CLI to print."""

    out_dir: Path
    seed: int
    quick: bool
    runs: int
    stores: dict[str, Path]
    results: dict[str, list[CellResult]]
    """Cell results per store role (``search``, ``heldout``)."""
    skipped: tuple[str, ...]
    """Baselines not registered in this installation."""
    steps: tuple[StepOutcome, ...]
    results_path: Path
    summary_path: Path
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per phase (reported, never written to results.json)."""


def demo_specs(available: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """The controller specs the demo evaluates and the baseline names it skips.

    ``available`` defaults to the names in :func:`autotts.controllers.registry`.
    """
    if available is None:
        available = list(registry())
    specs: list[str] = []
    skipped: list[str] = []
    for name, named_specs in DEMO_BASELINES:
        if name in available:
            specs.extend(named_specs)
        else:
            skipped.append(name)
    return specs, skipped


def demo_stores(seed: int) -> dict[str, ReplayStore]:
    """The search and held-out stores of the demo (profile ``large``, seeds ``2s`` and ``2s+1``)."""
    return {
        "search": synthesize(DEMO_PROFILE, seed=2 * seed, model=f"synthetic-{DEMO_PROFILE}", benchmark="demo-search"),
        "heldout": synthesize(
            DEMO_PROFILE, seed=2 * seed + 1, model=f"synthetic-{DEMO_PROFILE}", benchmark="demo-heldout"
        ),
    }


class _DiscoveryProgress:
    """Turns the discovery loop's events into demo progress (seeds, each round, final)."""

    def __init__(self, report: DemoProgress, rounds: int) -> None:
        self.report = report
        self.total = rounds + 2
        self.done = 0

    def event(self, kind: str, **data: Any) -> None:
        """Advance on phases and rounds; ignore the rest."""
        if kind == "phase" and data.get("name") in ("seeds", "final"):
            self.done += data.get("name") == "final"
            self.report(f"discovery: {data.get('detail', '')}", min(self.done, self.total), self.total)
        elif kind == "round":
            self.done = int(data.get("round", 1))
            self.report(
                f"discovery round {data.get('round')}/{data.get('rounds')} (evolve proposer)",
                self.done,
                self.total,
            )


def _check_discovery_dir(run_dir: Path) -> bool:
    """Whether ``run_dir`` may be (re)used: absent, empty, or an earlier demo's discovery run."""
    if not run_dir.exists():
        return True
    if not run_dir.is_dir():
        return False
    if not any(run_dir.iterdir()):
        return True
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("name") == DISCOVERY_NAME


def _discovery_data(summary: Mapping[str, Any], rounds: int, search_runs: int) -> dict[str, Any]:
    """The deterministic part of a discovery summary (no dates, paths or wall times)."""
    final = summary.get("final") or {}
    return {
        "proposer": "evolve",
        "rounds": rounds,
        "betas": list(DISCOVERY_BETAS),
        "search_runs": search_runs,
        "candidates": [
            {k: c.get(k) for k in ("id", "status", "message", "findings", "best")}
            for c in summary.get("candidates", [])
        ],
        "selection": summary.get("selection"),
        "final": {
            "runs": final.get("runs"),
            "discovered_status": final.get("discovered_status"),
            "rows": [
                {k: r.get(k) for k in ("store", "role", "controller", "beta", "accuracy", "tokens")}
                for r in final.get("rows", [])
            ],
        },
    }


def discovery_step(
    search_store: Path,
    heldout_store: Path,
    out_dir: Path,
    *,
    seed: int,
    quick: bool,
    final_runs: int,
    progress: DemoProgress | None = None,
) -> StepOutcome:
    """A short discovery run with the offline ``evolve`` proposer, written to ``out_dir/discovery``.

    The proposer sees the search store only; the held-out store is used by the final
    evaluation alone. A run directory left by an earlier demo is replaced. A failure of
    the run is reported as ``status="failed"`` rather than stopping the demo.
    """
    run_dir = out_dir / "discovery"
    if not _check_discovery_dir(run_dir):
        raise ConfigError(f"{str(run_dir)!r} exists and is not a demo discovery run; choose another --out")
    if run_dir.exists():
        shutil.rmtree(run_dir)
    rounds = QUICK_DISCOVERY_ROUNDS if quick else DISCOVERY_ROUNDS
    search_runs = QUICK_DISCOVERY_SEARCH_RUNS if quick else DISCOVERY_SEARCH_RUNS
    config = config_from_mapping(
        {
            "name": DISCOVERY_NAME,
            "rounds": rounds,
            "seed": seed,
            "parallel": max(1, min(2, os.cpu_count() or 1)),
            "stores": {"search": [str(search_store)], "heldout": [str(heldout_store)]},
            "evaluation": {"betas": list(DISCOVERY_BETAS), "search_runs": search_runs, "final_runs": final_runs},
            "proposer": {"kind": "evolve"},
        },
        base_dir=out_dir,
        source="autotts demo",
    )
    reporter = _DiscoveryProgress(progress or (lambda what, done, total: None), rounds)
    try:
        outcome = DiscoveryLoop.start(config, run_dir=run_dir, reporter=reporter).run()
    except AutoTTSError as exc:
        log.warning("the demo's discovery run failed: %s", exc)
        return StepOutcome("discovery", "failed", f"the discovery run failed: {exc}", ("discovery",))
    data = _discovery_data(outcome.summary, rounds, search_runs)
    program = run_dir / "discovered_controller.py"
    if program.is_file():
        data["program"] = "discovery/discovered_controller.py"
        data["class_name"] = validate_source(program.read_text(encoding="utf-8")).class_name
    sel = data["selection"]
    if sel is None:
        detail = f"{rounds} rounds of the offline evolve proposer; no candidate qualified"
    else:
        beta = "" if sel.get("beta") is None else f" at β={sel['beta']:g}"
        detail = (
            f"{rounds} rounds of the offline evolve proposer (no LLM) on the search store; "
            f"selected {sel['candidate']}{beta}"
        )
    return StepOutcome("discovery", "done", detail, ("discovery",), data)


def report_step(results_path: Path, out_dir: Path, stores: Sequence[ReplayStore] = ()) -> StepOutcome:
    """Write ``out_dir/report`` with ``autotts report``: tables, curves, frontier statistics, trace viewer.

    Its inputs are ``results_path`` and the demo's discovery run; ``stores`` are replayed
    for the trace viewer. A failure is reported as ``status="failed"``, not raised.
    """
    from autotts.report import ReportOptions, build_report

    inputs: list[Path] = [results_path]
    if (out_dir / "discovery" / "manifest.json").is_file():
        inputs.append(out_dir / "discovery")
    try:
        rep = build_report(inputs, out_dir / "report", ReportOptions(stores=stores, title="autotts demo report"))
    except AutoTTSError as exc:
        log.warning("the demo's report failed: %s", exc)
        return StepOutcome("report", "failed", f"autotts report failed: {exc}", ("report",))
    detail = (
        f"tables, scaling curves, frontier statistics and a trace viewer of {len(rep.traced)} cells "
        "(open report/index.html in a browser)"
    )
    return StepOutcome("report", "done", detail, ("report/index.html", "report/summary.md"))


def _record(result: CellResult, role: str) -> dict[str, Any]:
    rec = result.to_record()
    for key in _VOLATILE:
        rec.pop(key, None)
    rec["role"] = role
    rec["label"] = result.label
    return rec


def _discovery_markdown(step: StepOutcome) -> list[str]:
    """The discovery section of summary.md: the selected program against the baselines."""
    data = step.data
    final = data.get("final", {})
    lines = [
        "",
        f"## Discovery ({data.get('rounds')} rounds, offline `evolve` proposer, no LLM)",
        "",
        "The proposer saw the search store only. Final evaluation "
        f"({final.get('runs')} runs) of the selected program (`discovered`) and the registered controllers:",
        "",
        "| controller | β | search acc % | search tokens/q | held-out acc % | held-out tokens/q |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    cells: dict[tuple[str, Any], dict[str, Mapping[str, Any]]] = {}
    for row in final.get("rows", []):
        cells.setdefault((row["controller"], row["beta"]), {})[row["role"]] = row
    for (controller, beta), roles in cells.items():
        figures = []
        for role in ("search", "heldout"):
            row = roles.get(role)
            figures += ["", ""] if row is None else [f"{row['accuracy']:.2f}", f"{row['tokens']:,.0f}"]
        b = "" if beta is None else f"{beta:g}"
        lines.append(f"| {controller} | {b} | " + " | ".join(figures) + " |")
    lines += [
        "",
        "A short offline evolution is a toy explorer: compare the selected program's search and held-out "
        "figures (a gap means it fitted the search store) and its cost against the baselines. "
        "`autotts discover` with a real LLM explores far more. The run directory `discovery/` holds every "
        "candidate's code, curves and traces (`discovery/summary.md`).",
    ]
    if data.get("program"):
        lines += [
            "",
            "Evaluate the selected program yourself; from the directory holding this summary run "
            f"`{evaluate_command('stores/', data['program'], str(data.get('class_name')))}`"
            " (`autotts demo` prints the same command with paths from where you ran it).",
        ]
    return lines


def evaluate_command(stores: str, program: str, class_name: str) -> str:
    """The ``autotts eval`` command that evaluates the discovered program on the demo's stores."""
    return f"autotts eval --store {stores} --controller {program}:{class_name} --beta 0,0.5,1"


def _summary_markdown(
    *,
    seed: int,
    quick: bool,
    runs: int,
    stores: dict[str, ReplayStore],
    paths: dict[str, Path],
    results: dict[str, list[CellResult]],
    skipped: Sequence[str],
    steps: Sequence[StepOutcome],
    out_dir: Path,
) -> str:
    lines = [
        "# autotts demo",
        "",
        f"Synthetic data only (profile `{DEMO_PROFILE}`, seed {seed}{', quick mode' if quick else ''}): the numbers",
        "show how the tools work, not how any real model behaves.",
        "",
        "## Stores",
        "",
        "| role | store | file | questions | branches |",
        "|---|---|---|---:|---:|",
    ]
    for role, store in stores.items():
        rel = paths[role].relative_to(out_dir)
        lines.append(f"| {role} | {store.name} | `{rel}` | {len(store)} | {len(store.questions[0].branches)} |")
    lines += [
        "",
        f"## Baselines ({runs} runs per cell{'' if runs >= FULL_RUNS else '; the reference protocol uses 100'})",
        "",
        "| controller | search acc % | search tokens/q | held-out acc % | held-out tokens/q |",
        "|---|---:|---:|---:|---:|",
    ]
    for a, b in zip(results["search"], results["heldout"], strict=True):
        lines.append(f"| {a.label} | {a.accuracy:.2f} | {a.tokens:,.0f} | {b.accuracy:.2f} | {b.tokens:,.0f} |")
    if skipped:
        lines += ["", f"Not evaluated (not registered in this installation): {', '.join(skipped)}."]
    for step in steps:
        if step.name == "discovery" and step.status == "done":
            lines += _discovery_markdown(step)
    lines += ["", "## Steps", ""]
    for step in steps:
        where = f" (`{'`, `'.join(step.outputs)}`)" if step.outputs else ""
        lines.append(f"* {step.name}: **{step.status}** - {step.detail}{where}")
    lines += [
        "",
        "## Next steps with real data",
        "",
        "* `autotts store import PATH/TO/autotts-replay --out stores/` - import published replay data",
        "* `autotts eval --preset paper-main --store stores/` - the paper's main table on it",
        "* `autotts discover CONFIG` - discovery with a real LLM proposer (a config like `examples/discover.toml` "
        "of the autotts repository; see docs/discovery.md)",
        "",
    ]
    return "\n".join(lines)


def run_demo(
    out_dir: str | Path = "autotts-demo",
    *,
    seed: int = 0,
    quick: bool = False,
    backend: str = "processes",
    workers: int | None = None,
    progress: DemoProgress | None = None,
) -> DemoResult:
    """Run the demo into ``out_dir`` and return what it did (see the module docstring).

    ``quick`` evaluates 10 runs per cell instead of 100. ``backend``/``workers`` choose
    how cells run (results are identical on every backend).
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"demo seed must be a non-negative integer, got {seed!r}")
    # Absolute, because the discovery step resolves store paths against its own run directory.
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"demo output {str(out)!r} exists and is not a directory; choose another --out")
    if not _check_discovery_dir(out / "discovery"):
        raise ConfigError(f"{str(out / 'discovery')!r} exists and is not a demo discovery run; choose another --out")
    runs = QUICK_RUNS if quick else FULL_RUNS
    specs, skipped = demo_specs()
    seconds: dict[str, float] = {}
    report = progress or (lambda what, done, total: None)

    t0 = time.perf_counter()
    report("building synthetic stores", 0, 1)
    stores = demo_stores(seed)
    paths: dict[str, Path] = {}
    for role, store in stores.items():
        paths[role] = save_store(store, out / "stores" / f"{role}.parquet")
    seconds["stores"] = time.perf_counter() - t0

    results: dict[str, list[CellResult]] = {}
    n_cells = len(specs) * len(stores)
    done_before = 0
    t1 = time.perf_counter()
    for role, store in stores.items():
        report(f"evaluating baselines on {role} store", done_before, n_cells)

        def on_cell(done: int, total: int, result: CellResult, _role: str = role, _base: int = done_before) -> None:
            report(f"evaluating baselines on {_role} store ({result.label})", _base + done, n_cells)

        results[role] = evaluate(store, specs, runs=runs, backend=backend, workers=workers, progress=on_cell)
        done_before += len(specs)
    seconds["baselines"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    steps: tuple[StepOutcome, ...] = (
        discovery_step(
            paths["search"], paths["heldout"], out, seed=seed, quick=quick, final_runs=runs, progress=progress
        ),
    )
    seconds["discovery"] = time.perf_counter() - t2
    results_path = out / "results.json"
    payload = {
        "autotts_version": __version__,
        "demo": {"seed": seed, "quick": quick, "runs": runs, "profile": DEMO_PROFILE},
        "stores": {
            role: {
                "name": store.name,
                "file": str(paths[role].relative_to(out)),
                "source": store.meta.source,
                "seed": store.meta.settings.get("seed"),
                "questions": len(store),
            }
            for role, store in stores.items()
        },
        "skipped": skipped,
        "steps": [s.to_dict() for s in steps],
        "results": [_record(r, role) for role, rs in results.items() for r in rs],
    }
    write_text_atomic(results_path, json.dumps(payload, indent=2) + "\n")
    # The report reads results.json, so it runs once that exists; its outcome is added after.
    report("writing the report (autotts report)", 0, 1)
    t3 = time.perf_counter()
    steps = (*steps, report_step(results_path, out, list(stores.values())))
    seconds["report"] = time.perf_counter() - t3
    payload["steps"] = [s.to_dict() for s in steps]
    write_text_atomic(results_path, json.dumps(payload, indent=2) + "\n")
    summary_path = out / "summary.md"
    write_text_atomic(
        summary_path,
        _summary_markdown(
            seed=seed,
            quick=quick,
            runs=runs,
            stores=stores,
            paths=paths,
            results=results,
            skipped=skipped,
            steps=steps,
            out_dir=out,
        ),
    )
    seconds["total"] = time.perf_counter() - t0
    report("done", 1, 1)
    log.info("demo written to %s in %.1f s", out, seconds["total"])
    return DemoResult(
        out_dir=out,
        seed=seed,
        quick=quick,
        runs=runs,
        stores=paths,
        results=results,
        skipped=tuple(skipped),
        steps=steps,
        results_path=results_path,
        summary_path=summary_path,
        seconds=seconds,
    )
