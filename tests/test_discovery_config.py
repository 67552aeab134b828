"""Discovery configuration: the example file, validation messages, and the run-directory round trip."""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from pathlib import Path

import pytest

from autotts.discovery.config import PAPER_BETAS, config_from_mapping, load_config
from autotts.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def cfg(data: dict[str, object], tmp_path: Path):  # type: ignore[no-untyped-def]
    return config_from_mapping(data, base_dir=tmp_path, source="test.toml")


def test_example_config_is_valid() -> None:
    c = load_config(REPO / "examples" / "discover.toml")
    assert c.rounds == 5 and c.betas == PAPER_BETAS and c.final_runs == 100
    assert c.proposer.kind in ("openai", "anthropic", "agent", "evolve")
    assert all(p.is_absolute() for p in c.search_stores)


def test_defaults_follow_the_paper(tmp_path: Path) -> None:
    c = cfg({"stores": {"search": ["a.json"]}}, tmp_path)
    assert c.rounds == 5 and c.candidates_per_round == 1 and c.betas == PAPER_BETAS
    assert c.final_runs == 100 and c.search_runs == 10
    assert c.selection.rule == "accuracy" and c.traces and c.require_beta
    assert c.proposer.kind == "evolve"
    assert c.search_stores == ((tmp_path / "a.json").resolve(),)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "stores.search must name at least one"),
        ({"stores": {"search": ["a"]}, "roundz": 3}, "unknown key 'roundz' in the top level"),
        ({"stores": {"search": ["a"]}, "budget": {"max_mony": 1}}, "unknown key 'max_mony' in [budget]"),
        ({"stores": {"search": ["a"]}, "rounds": 0}, "rounds must be at least 1"),
        ({"stores": {"search": ["a"]}, "evaluation": {"betas": [0.5, 1.5]}}, "numbers in [0, 1]"),
        ({"stores": {"search": ["a"]}, "evaluation": {"betas": []}}, "non-empty list"),
        ({"stores": {"search": ["a"]}, "evaluation": {"betas": [0.5, True]}}, "numbers in [0, 1]"),
        ({"stores": {"search": ["a"], "heldout": ["a"]}}, "both a search and a held-out store"),
        ({"stores": {"search": ["a"]}, "proposer": {"kind": "gpt"}}, "must be one of openai"),
        ({"stores": {"search": ["a"]}, "proposer": {"kind": "openai", "base_url": "http://x"}}, "model is required"),
        ({"stores": {"search": ["a"]}, "proposer": {"kind": "openai", "model": "m"}}, "base_url is required"),
        ({"stores": {"search": ["a"]}, "proposer": {"kind": "agent"}}, "command is required"),
        ({"stores": {"search": ["a"]}, "selection": {"rule": "best"}}, "must be one of accuracy, objective"),
        ({"stores": {"search": ["a"]}, "budget": {"max_money": -1}}, "must be positive"),
        ({"stores": {"search": ["a"]}, "sandbox": {"memory_mb": "lots"}}, "must be an integer"),
        ({"stores": {"search": ["a"]}, "ablation": {"traces": "no"}}, "must be true or false"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        cfg(data, tmp_path)
    assert message in str(info.value)
    assert "test.toml" in str(info.value)


def test_beta_grid_is_sorted_and_deduplicated_with_a_note(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="autotts.discovery.config"):
        c = cfg({"stores": {"search": ["a"]}, "evaluation": {"betas": [1.0, 0.0, 0.5, 1, 0.0]}}, tmp_path)
    assert c.betas == (0.0, 0.5, 1.0)
    assert "normalised" in caplog.text and "test.toml" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="autotts.discovery.config"):
        tidy = cfg({"stores": {"search": ["a"]}, "evaluation": {"betas": [0.0, 1.0]}}, tmp_path)
    assert tidy.betas == (0.0, 1.0) and "normalised" not in caplog.text


def test_agent_command_string_is_split(tmp_path: Path) -> None:
    c = cfg({"stores": {"search": ["a"]}, "proposer": {"kind": "agent", "command": "claude -p '{task}'"}}, tmp_path)
    assert c.proposer.command == ("claude", "-p", "{task}")


def test_round_trip_through_the_run_directory_form(tmp_path: Path) -> None:
    data = tomllib.loads((REPO / "examples" / "discover.toml").read_text())
    original = config_from_mapping(data, base_dir=REPO / "examples", source="example")
    again = config_from_mapping(original.to_dict(), base_dir=tmp_path, source="again")
    assert again == original
    assert "api_key" not in original.to_json().replace("api_key_env", "")


def test_the_config_is_nested_like_its_toml_and_round_trips_unset_values(tmp_path: Path) -> None:
    data = {
        "stores": {"search": ["a"]},
        "proposer": {"kind": "evolve", "temperature": 0.2},
        "budget": {"max_money": 3.5},
        "ablation": {"traces": False},
        "evaluation": {"search_runs": 4},
    }
    c = cfg(data, tmp_path)
    assert c.evaluation.search_runs == 4 == c.search_runs and c.budget.max_money == 3.5 == c.max_money
    assert c.ablation.traces is False and c.budget.max_wall_seconds is None and c.run_dir is None
    d = c.to_dict()
    assert set(d) == {f.name for f in dataclasses.fields(c)}
    assert d["budget"] == {"max_money": 3.5, "max_wall_seconds": None}
    assert d["evaluation"]["search_runs"] == 4 and d["ablation"] == {"traces": False, "require_beta": True}
    written = tmp_path / "config.json"
    written.write_text(c.to_json())
    assert load_config(written) == c
    no_temperature = dataclasses.replace(c, proposer=dataclasses.replace(c.proposer, temperature=None))
    written.write_text(no_temperature.to_json())
    assert load_config(written).proposer.temperature is None


def test_candidate_processes_use_the_cores_left_per_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    from autotts.discovery.loop import candidate_processes

    base = load_config(REPO / "examples" / "discover.toml")
    monkeypatch.setattr("os.cpu_count", lambda: 8)

    def with_(parallel: int, per_round: int, processes: int = 0, backend: str = "local") -> int:
        sandbox = dataclasses.replace(base.sandbox, processes=processes, backend=backend)
        c = dataclasses.replace(base, parallel=parallel, candidates_per_round=per_round, sandbox=sandbox)
        return candidate_processes(c)

    assert with_(1, 1) == 2  # at most 2: the judges share one GIL
    assert with_(4, 2) == 2  # two candidates in flight: (8 - 1) // 2, capped
    assert with_(4, 4) == 1  # (8 - 1) // 4
    assert with_(16, 16) == 1
    assert with_(1, 1, processes=3) == 3  # set explicitly
    assert with_(1, 1, backend="ray") == 1
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert with_(2, 1) == 1  # the demo: one candidate per round on two cores, one core for the judge
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert with_(1, 1) == 2
