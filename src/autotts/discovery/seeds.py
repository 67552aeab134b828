"""Seed controllers: the registered baselines shown to the explorer, with their search curves.

Seeds are taken from the controller registry at run time (whatever families exist) or
from ``evaluation.seeds`` specs. Their source is the whole module that defines them
(``inspect.getsource``), since helpers usually live beside the class. They are trusted
project code, so they are evaluated in-process by the normal evaluation runner.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from autotts.controllers.base import descriptions, registry
from autotts.controllers.spec import ControllerSpec
from autotts.discovery.prompt import SeedInfo
from autotts.discovery.records import CurvePoint
from autotts.env.protocols import Protocol
from autotts.errors import AutoTTSError
from autotts.evaluation.results import CellResult
from autotts.evaluation.runner import evaluate
from autotts.store.schema import ReplayStore

log = logging.getLogger(__name__)

#: The full-budget reference of the β check: self-consistency over (up to) 64 full reads.
FULL_BUDGET_SPEC = "sc:n=64"


def seed_specs(names: Sequence[str] | None) -> list[str]:
    """The configured seed specs, or every registered controller name."""
    return list(names) if names else sorted(registry())


def seed_source(spec: ControllerSpec) -> tuple[str, str]:
    """``(description, module source)`` of a registered or file controller."""
    if spec.path is not None:
        path = Path(spec.path)
        return f"{spec.class_name} from {path.name}", path.read_text(encoding="utf-8")
    cls = registry()[spec.name]
    module = sys.modules.get(getattr(cls, "__module__", ""))
    try:
        source = inspect.getsource(module) if module is not None else inspect.getsource(cls)
    except (OSError, TypeError):
        source = f"# source of {spec.name} is not available"
    return descriptions().get(spec.name, ""), source


def point_dict(result: CellResult, beta: float | None = None) -> dict[str, Any]:
    """A graded cell as a curve point in JSON form, with its 95 % accuracy interval and run count."""
    point = CurvePoint.of(result, beta).to_json()
    point["accuracy_ci95"] = list(result.accuracy_ci)
    point["runs"] = result.runs
    return point


def point_dicts(results: Sequence[CellResult]) -> dict[str, list[dict[str, Any]]]:
    """Per-store curve points as JSON dicts (see :func:`point_dict`), sorted by β."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        out.setdefault(r.store, []).append(point_dict(r))
    for pts in out.values():
        pts.sort(key=lambda p: -1.0 if p["beta"] is None else p["beta"])
    return out


def evaluate_specs(
    specs: Sequence[str],
    stores: Sequence[ReplayStore],
    *,
    betas: Sequence[float],
    runs: int,
    protocol: Protocol,
    workers: int = 1,
    on_done: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Curves of every spec on every store; a failing spec is recorded with its error, not raised."""
    out: dict[str, dict[str, Any]] = {}
    for text in specs:
        try:
            spec = ControllerSpec.parse(text)
            results = evaluate(
                list(stores),
                spec,
                betas=list(betas),
                runs=runs,
                protocol=protocol,
                backend="serial" if workers <= 1 else "processes",
                workers=None if workers <= 1 else workers,
            )
            out[text] = {"curves": point_dicts(results), "error": ""}
        except AutoTTSError as exc:
            log.warning("seed %s failed: %s", text, exc)
            out[text] = {"curves": {}, "error": str(exc)}
        if on_done is not None:
            on_done(text)
    return out


def seed_infos(specs: Sequence[str], evaluated: dict[str, dict[str, Any]]) -> list[SeedInfo]:
    """Seed descriptions, sources and curves as the prompt builder wants them."""
    infos = []
    seen_sources: set[str] = set()
    for text in specs:
        try:
            spec = ControllerSpec.parse(text)
            desc, source = seed_source(spec)
        except (AutoTTSError, OSError) as exc:
            infos.append(SeedInfo(text, "", "", {}, str(exc)))
            continue
        # Several seeds may share a module (e.g. the same family at two budgets): show its code once.
        if source in seen_sources:
            source = f"# same module as an earlier seed ({spec.name})"
        seen_sources.add(source)
        ev = evaluated.get(text, {})
        curves = {k: tuple(CurvePoint.from_json(p) for p in v) for k, v in ev.get("curves", {}).items()}
        infos.append(SeedInfo(text, desc, source, curves, str(ev.get("error", ""))))
    return infos
