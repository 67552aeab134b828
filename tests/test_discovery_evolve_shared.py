"""The offline ``evolve`` proposer improves on its starting controller on real replay data (Pareto-wise)."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotts.discovery.config import load_config
from autotts.discovery.loop import DiscoveryLoop
from autotts.discovery.proposers.evolve import genome_of, start_genome
from autotts.discovery.selection import best_point
from tests.conftest import shared_store_path
from tests.discovery_support import write_config


@pytest.mark.shared_data
@pytest.mark.slow
def test_evolve_improves_on_its_starting_controller(tmp_path: Path) -> None:
    search = shared_store_path("Qwen3-4B", "aime24")
    cfg_path = write_config(
        tmp_path / "evolve.toml",
        {"name": "evolve-shared", "rounds": 5, "candidates_per_round": 2, "parallel": 2, "seed": 0},
        {
            "stores": {"search": [search]},
            "evaluation": {
                "betas": [0.0, 0.5, 1.0],
                "search_runs": 4,
                "final_runs": 3,
                "seeds": ["sc"],
                "baselines": ["sc:n=8"],
            },
            "proposer": {"kind": "evolve", "population": 3},
            "sandbox": {"cpu_seconds": 60.0, "wall_seconds": 90.0, "memory_mb": 1024},
            "checks": {"leak_runs": 1},
        },
    )
    loop = DiscoveryLoop.start(load_config(cfg_path), run_dir=tmp_path / "run")
    outcome = loop.run()
    records = loop.run_dir.candidates()
    start = records[0]
    assert genome_of(loop.run_dir.code(start)) == start_genome()
    assert start.ok, start.message
    start_best = best_point(start, loop.config.selection)
    assert start_best is not None
    assert all(r.ok for r in records), [(r.id, r.status, r.message) for r in records]
    assert outcome.selection is not None
    assert outcome.selection.candidate != start.id
    # The starting genome already uses up to the full budget at β = 1, which on this store reaches
    # the accuracy ceiling, so "improves" means Pareto-better: no less accurate, and either more
    # accurate or cheaper (tokens per question) at that accuracy.
    picked = outcome.selection
    assert picked.accuracy >= start_best.accuracy
    assert picked.accuracy > start_best.accuracy or picked.tokens < start_best.tokens, (picked, start_best)
