"""Presets for the paper's experiments and the paper-layout results table (as data).

Two presets reproduce the AutoTTS paper's experiments:

* ``paper-main`` -- the main table: SC@64, ASC, ESC and Parallel-Probe at their
  published settings, and CMC at β = 0.5 and β = 1.0;
* ``paper-curves`` -- the scaling curves: budgets 1, 4, 8, 16, 32, 64 for SC (``n``), ASC
  (``max_samples``), Parallel-Probe (``chains``) and the two width--depth adaptations
  (``consistency-exit`` ``chains``, ``wide-commit`` ``width``); ESC over the budgets
  with ``max_samples >= window`` (8, 16, 32, 64 at the published window of 8); CMC at
  β = 0.0, 0.1, ..., 1.0.

:func:`paper_table` turns evaluated cells into the paper's layout: one row per method,
accuracy and tokens per store, and the average over the *held-out* stores, i.e. every
store the controller search did not see; :func:`paper_tables` makes one such table per
model, as the paper reports its backbones. The paper searched on AIME24, so by default a
store whose benchmark is ``aime24`` counts as a search store; pass ``search`` to
change that. The table is plain data; the CLI renders it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from autotts.controllers.spec import ControllerSpec
from autotts.errors import ConfigError
from autotts.evaluation.results import CellSummary

#: Budgets of the scaling curves (branches, samples, chains or width).
BUDGETS = (1, 4, 8, 16, 32, 64)
#: β grid of the CMC scaling curve (exact decimals, not accumulated float steps).
BETAS = tuple(i / 10 for i in range(11))
#: Published ESC window; ESC needs ``max_samples >= window``.
ESC_WINDOW = 8
#: Benchmarks treated as search stores when none are named.
DEFAULT_SEARCH_BENCHMARKS = ("aime24",)
#: ``search`` value meaning "no search store: every store is held out".
NO_SEARCH = "none"

_PARALLEL_PROBE = {"T": 40, "warm_up": 15, "prune_patience": 7, "burst": 1, "max_steps": 100}


def _main() -> list[ControllerSpec]:
    return [
        ControllerSpec("sc", {"n": 64}),
        ControllerSpec("asc", {"max_samples": 64, "threshold": 0.95}),
        ControllerSpec("esc", {"max_samples": 64, "window": ESC_WINDOW}),
        ControllerSpec("parallel-probe", {"chains": 64, **_PARALLEL_PROBE}),
        ControllerSpec("cmc", {"beta": 0.5}),
        ControllerSpec("cmc", {"beta": 1.0}),
    ]


def _curves() -> list[ControllerSpec]:
    specs = [ControllerSpec("sc", {"n": b}) for b in BUDGETS]
    specs += [ControllerSpec("asc", {"max_samples": b, "threshold": 0.95}) for b in BUDGETS]
    specs += [ControllerSpec("esc", {"max_samples": b, "window": ESC_WINDOW}) for b in BUDGETS if b >= ESC_WINDOW]
    specs += [ControllerSpec("parallel-probe", {"chains": b, **_PARALLEL_PROBE}) for b in BUDGETS]
    specs += [ControllerSpec("cmc", {"beta": b}) for b in BETAS]
    specs += [ControllerSpec("consistency-exit", {"chains": b}) for b in BUDGETS]
    specs += [ControllerSpec("wide-commit", {"width": b}) for b in BUDGETS]
    return specs


_PRESETS: dict[str, tuple[str, Callable[[], list[ControllerSpec]]]] = {
    "paper-main": ("main table: SC@64, ASC, ESC, Parallel-Probe (published settings), CMC β=0.5 and 1.0", _main),
    "paper-curves": ("scaling curves: budgets 1..64 for the baselines and adaptations, CMC β=0.0..1.0", _curves),
}


def preset_names() -> dict[str, str]:
    """Known presets and a one-line description of each."""
    return {name: desc for name, (desc, _) in _PRESETS.items()}


def preset_specs(name: str) -> list[ControllerSpec]:
    """The controller specs a preset evaluates, in table-row order."""
    entry = _PRESETS.get(name.strip().lower())
    if entry is None:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(_PRESETS)}")
    return entry[1]()


# ------------------------------------------------------------------ row labels
_DISPLAY = {
    "sc": "SC",
    "asc": "ASC",
    "esc": "ESC",
    "parallel-probe": "Parallel-Probe",
    "cmc": "CMC",
    "consistency-exit": "Consistency-Exit",
    "wide-commit": "Wide-Commit",
}
_BUDGET_PARAM = {
    "sc": "n",
    "asc": "max_samples",
    "esc": "max_samples",
    "parallel-probe": "chains",
    "consistency-exit": "chains",
    "wide-commit": "width",
}
#: Settings that are shown in a label only when they differ from these published values.
_PUBLISHED: dict[str, dict[str, Any]] = {
    "asc": {"threshold": 0.95},
    "esc": {"window": ESC_WINDOW},
    "parallel-probe": _PARALLEL_PROBE,
}


def budget_param(controller: str) -> str | None:
    """The parameter a baseline's scaling curve varies (``n`` for SC, ``chains`` for Parallel-Probe, ...)."""
    return _BUDGET_PARAM.get(controller)


def method_label(controller: str, params: dict[str, Any]) -> str:
    """Paper-style row label: ``SC@64``, ``ASC@64``, ``CMC (β=0.5)``, ``Wide-Commit@8 (depth=2)``.

    The budget knob goes after ``@``; settings equal to the published ones are left out.
    Controllers the paper does not name keep their spec label.
    """
    display = _DISPLAY.get(controller)
    if display is None:
        return f"{controller}(" + ",".join(f"{k}={v}" for k, v in params.items()) + ")" if params else controller
    rest = dict(params)
    label = display
    budget = _BUDGET_PARAM.get(controller)
    if budget is not None and budget in rest:
        label += f"@{rest.pop(budget)}"
    if "beta" in rest:
        rest = {"β": rest.pop("beta"), **rest}
    published = _PUBLISHED.get(controller, {})
    shown = {k: v for k, v in rest.items() if k not in published or published[k] != v}
    if shown:
        label += " (" + ", ".join(f"{k}={v}" for k, v in shown.items()) + ")"
    return label


# ------------------------------------------------------------------ the table
@dataclass(frozen=True)
class Score:
    """Accuracy (percent) and mean total tokens per question."""

    accuracy: float
    tokens: float


@dataclass(frozen=True)
class PaperRow:
    """One method: its score on every store (``None`` if not evaluated) and the held-out average."""

    method: str
    controller: str
    params: dict[str, Any]
    scores: tuple[Score | None, ...]
    heldout: Score | None


@dataclass(frozen=True)
class PaperTable:
    """The paper-layout table: rows = methods, columns = per-store accuracy and tokens, held-out average."""

    stores: tuple[str, ...]
    search: tuple[bool, ...]
    """Whether each store (same order as ``stores``) was a search store (excluded from the average)."""
    rows: tuple[PaperRow, ...]

    @property
    def heldout_stores(self) -> tuple[str, ...]:
        """The stores averaged in the held-out column."""
        return tuple(s for s, is_search in zip(self.stores, self.search, strict=True) if not is_search)

    @property
    def model(self) -> str | None:
        """The model shared by every store, if they all share one (then columns name benchmarks only)."""
        models = {s.rsplit("/", 1)[0] for s in self.stores if "/" in s}
        if len(models) == 1 and all("/" in s for s in self.stores):
            return models.pop()
        return None

    def header(self) -> list[str]:
        """Column titles: method, then accuracy and tokens per store, then the held-out average.

        A search store is marked with ``*``; when all stores share a model only the
        benchmark is shown (the model is in :attr:`model`).
        """
        short = self.model is not None
        cols = ["method"]
        for store, is_search in zip(self.stores, self.search, strict=True):
            name = store.rsplit("/", 1)[1] if short else store
            mark = "*" if is_search else ""
            cols += [f"{name}{mark} acc %", f"{name}{mark} tokens"]
        cols += ["held-out acc %", "held-out tokens"]
        return cols

    def caption(self) -> str:
        """One line saying which stores are averaged and which were search stores."""
        held = ", ".join(self.heldout_stores) or "none"
        searched = [s for s, f in zip(self.stores, self.search, strict=True) if f]
        text = f"held-out average over: {held}"
        if searched:
            text += f"; * search store{'s' if len(searched) > 1 else ''} (not averaged): {', '.join(searched)}"
        return text

    def text_rows(self) -> list[list[str]]:
        """Formatted cells (accuracy to 2 decimals, tokens rounded); ``-`` where nothing was evaluated."""
        rows = []
        for row in self.rows:
            cells = [row.method]
            for score in (*row.scores, row.heldout):
                cells += _fmt(score)
            rows.append(cells)
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form of the table."""
        return {
            "stores": list(self.stores),
            "search_stores": [s for s, f in zip(self.stores, self.search, strict=True) if f],
            "heldout_stores": list(self.heldout_stores),
            "rows": [
                {
                    "method": r.method,
                    "controller": r.controller,
                    "params": dict(r.params),
                    "scores": {s: _score_dict(sc) for s, sc in zip(self.stores, r.scores, strict=True)},
                    "heldout": _score_dict(r.heldout),
                }
                for r in self.rows
            ],
        }


def _score_dict(score: Score | None) -> dict[str, float] | None:
    return None if score is None else {"accuracy": score.accuracy, "tokens": score.tokens}


def _fmt(score: Score | None) -> list[str]:
    if score is None:
        return ["-", "-"]
    return [f"{score.accuracy:.2f}", f"{score.tokens:,.0f}"]


def search_flags(stores: Sequence[tuple[str, str]], search: Sequence[str] | None = None) -> tuple[bool, ...]:
    """Which of ``(store name, benchmark)`` pairs are search stores.

    ``search`` names stores (``model/benchmark``) or benchmarks (``aime24``); ``None``
    means the default (benchmark ``aime24``) and ``["none"]`` means no search store. A
    name that matches none of the stores is an error: a typo would silently change the
    held-out average.
    """
    if search is None:
        return tuple(bench in DEFAULT_SEARCH_BENCHMARKS for _, bench in stores)
    names = [s.strip() for s in search if s.strip()]
    if [n.lower() for n in names] == [NO_SEARCH]:
        return tuple(False for _ in stores)
    for name in names:
        if not any(name in (store, bench) for store, bench in stores):
            known = ", ".join(store for store, _ in stores)
            raise ConfigError(
                f"search store {name!r} matches none of the evaluated stores ({known}); "
                f"name a store as model/benchmark, a benchmark, or '{NO_SEARCH}'"
            )
    return tuple(any(name in (store, bench) for name in names) for store, bench in stores)


def _stores_of(results: Sequence[CellSummary]) -> list[tuple[str, str]]:
    stores: list[tuple[str, str]] = []
    for r in results:
        if (r.store, r.benchmark) not in stores:
            stores.append((r.store, r.benchmark))
    return stores


def paper_table(results: Sequence[CellSummary], search: Sequence[str] | None = None) -> PaperTable:
    """Arrange cell results in the paper's layout (rows in first-seen order of the methods).

    The held-out average is the plain mean over the held-out stores of accuracy and of
    tokens; a row missing any held-out store has no average rather than a biased one.
    """
    stores = _stores_of(results)
    return _build(results, stores, search_flags(stores, search))


def paper_tables(results: Sequence[CellSummary], search: Sequence[str] | None = None) -> list[PaperTable]:
    """One paper-layout table per model (in first-seen order), each with its own held-out average.

    This is how the paper reports several backbones, and it keeps each table readable.
    ``search`` is checked against all stores at once, so ``Qwen3-4B/aime24`` is valid even
    though it matches nothing in the other models' tables.
    """
    stores = _stores_of(results)
    flags = dict(zip(stores, search_flags(stores, search), strict=True))
    models: dict[str, list[CellSummary]] = {}
    for r in results:
        models.setdefault(r.model, []).append(r)
    tables = []
    for group in models.values():
        group_stores = _stores_of(group)
        tables.append(_build(group, group_stores, tuple(flags[s] for s in group_stores)))
    return tables


def _build(results: Sequence[CellSummary], stores: list[tuple[str, str]], flags: tuple[bool, ...]) -> PaperTable:
    store_index = {name: i for i, (name, _) in enumerate(stores)}
    keys: list[str] = []
    by_key: dict[str, tuple[str, dict[str, Any], list[Score | None]]] = {}
    for r in results:
        key = json.dumps([r.controller, r.params], sort_keys=True, default=str)
        if key not in by_key:
            keys.append(key)
            by_key[key] = (r.controller, dict(r.params), [None] * len(stores))
        by_key[key][2][store_index[r.store]] = Score(r.accuracy, r.tokens)
    rows = []
    for key in keys:
        controller, params, scores = by_key[key]
        held = [s for s, is_search in zip(scores, flags, strict=True) if not is_search]
        heldout = None
        if held and all(s is not None for s in held):
            done = [s for s in held if s is not None]
            heldout = Score(
                sum(s.accuracy for s in done) / len(done),
                sum(s.tokens for s in done) / len(done),
            )
        rows.append(PaperRow(method_label(controller, params), controller, params, tuple(scores), heldout))
    return PaperTable(tuple(name for name, _ in stores), flags, tuple(rows))
