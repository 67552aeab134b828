"""Paper presets, the paper-layout table and ``autotts eval --preset``."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from autotts.cli.main import main
from autotts.controllers import ControllerSpec
from autotts.errors import ConfigError
from autotts.evaluation import CellResult
from autotts.evaluation.presets import (
    BETAS,
    BUDGETS,
    method_label,
    paper_table,
    paper_tables,
    preset_names,
    preset_specs,
    search_flags,
)
from autotts.store import save_store
from autotts.store.schema import Branch, Question, ReplayStore, StoreMeta

from .conftest import shared_store_path

PP = {"T": 40, "warm_up": 15, "prune_patience": 7, "burst": 1, "max_steps": 100}


def test_paper_main_is_the_published_settings() -> None:
    specs = preset_specs("paper-main")
    assert [(s.name, s.params) for s in specs] == [
        ("sc", {"n": 64}),
        ("asc", {"max_samples": 64, "threshold": 0.95}),
        ("esc", {"max_samples": 64, "window": 8}),
        ("parallel-probe", {"chains": 64, **PP}),
        ("cmc", {"beta": 0.5}),
        ("cmc", {"beta": 1.0}),
    ]


def test_paper_curves_covers_budgets_betas_and_the_adaptations() -> None:
    specs = preset_specs("paper-curves")
    by_name: dict[str, list[dict[str, object]]] = {}
    for s in specs:
        by_name.setdefault(s.name, []).append(s.params)
    assert BUDGETS == (1, 4, 8, 16, 32, 64)
    assert [p["n"] for p in by_name["sc"]] == list(BUDGETS)
    assert [p["max_samples"] for p in by_name["asc"]] == list(BUDGETS)
    assert [p["max_samples"] for p in by_name["esc"]] == [8, 16, 32, 64]  # max_samples >= window 8
    assert all(p["window"] == 8 for p in by_name["esc"])
    assert [p["chains"] for p in by_name["parallel-probe"]] == list(BUDGETS)
    assert [p["beta"] for p in by_name["cmc"]] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert BETAS[3] == 0.3  # exact decimals, not 0.30000000000000004
    assert [p["chains"] for p in by_name["consistency-exit"]] == list(BUDGETS)
    assert [p["width"] for p in by_name["wide-commit"]] == list(BUDGETS)


@pytest.mark.parametrize("name", ["paper-main", "paper-curves"])
def test_every_preset_spec_builds(name: str) -> None:
    for spec in preset_specs(name):
        assert callable(spec.build().solve)
    assert name in preset_names()


def test_unknown_preset_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="paper-main"):
        preset_specs("paper-mian")


@pytest.mark.parametrize(
    ("controller", "params", "label"),
    [
        ("sc", {"n": 64}, "SC@64"),
        ("asc", {"max_samples": 16, "threshold": 0.95}, "ASC@16"),
        ("asc", {"max_samples": 16, "threshold": 0.9}, "ASC@16 (threshold=0.9)"),
        ("parallel-probe", {"chains": 64, **PP}, "Parallel-Probe@64"),
        ("cmc", {"beta": 0.5}, "CMC (β=0.5)"),
        ("wide-commit", {"width": 8, "depth": 2}, "Wide-Commit@8 (depth=2)"),
        ("consistency-exit", {"chains": 4}, "Consistency-Exit@4"),
        ("MyController", {"x": 1}, "MyController(x=1)"),
        ("MyController", {}, "MyController"),
    ],
)
def test_method_labels(controller: str, params: dict[str, object], label: str) -> None:
    assert method_label(controller, params) == label


# ------------------------------------------------------------------ the table
def cell(store: str, controller: str, params: dict[str, object], correct: list[bool], cost: list[int]) -> CellResult:
    model, bench = store.split("/")
    return CellResult(
        store=store,
        model=model,
        benchmark=bench,
        controller=controller,
        params=params,
        protocol="shuffle",
        correct=np.array([correct], dtype=bool),
        cost=np.array([cost], dtype=np.int64),
        sequential=np.array([cost], dtype=np.int64),
    )


STORES = ("M/aime24", "M/aime25", "M/hmmt25")


def results() -> list[CellResult]:
    out = []
    for i, store in enumerate(STORES):
        out.append(cell(store, "sc", {"n": 64}, [True, bool(i % 2)], [100 * (i + 1), 100 * (i + 1)]))
        out.append(cell(store, "cmc", {"beta": 0.5}, [True, True], [10 * (i + 1), 30 * (i + 1)]))
    return out


def test_paper_table_layout_and_default_search_store() -> None:
    table = paper_table(results())
    assert table.stores == STORES
    assert table.search == (True, False, False)  # benchmark aime24 is the default search store
    assert table.heldout_stores == ("M/aime25", "M/hmmt25")
    assert table.model == "M"
    assert [r.method for r in table.rows] == ["SC@64", "CMC (β=0.5)"]
    sc, cmc = table.rows
    assert [s.accuracy if s else None for s in sc.scores] == [50.0, 100.0, 50.0]
    assert sc.heldout is not None and (sc.heldout.accuracy, sc.heldout.tokens) == (75.0, 250.0)
    assert cmc.heldout is not None and (cmc.heldout.accuracy, cmc.heldout.tokens) == (100.0, 50.0)
    assert table.header()[:3] == ["method", "aime24* acc %", "aime24* tokens"]
    assert table.header()[-2:] == ["held-out acc %", "held-out tokens"]
    assert table.text_rows()[0] == ["SC@64", "50.00", "100", "100.00", "200", "50.00", "300", "75.00", "250"]
    assert "M/aime24" in table.caption()
    data = table.to_dict()
    assert data["search_stores"] == ["M/aime24"]
    assert data["rows"][1]["heldout"] == {"accuracy": 100.0, "tokens": 50.0}
    json.dumps(data)


def test_search_stores_can_be_chosen() -> None:
    t = paper_table(results(), ["M/hmmt25"])
    assert t.search == (False, False, True)
    assert t.rows[0].heldout is not None and t.rows[0].heldout.accuracy == 75.0
    t = paper_table(results(), ["aime25", "hmmt25"])
    assert t.search == (False, True, True)
    t = paper_table(results(), ["none"])
    assert t.search == (False, False, False)
    assert t.rows[0].heldout is not None and t.rows[0].heldout.tokens == 200.0


def test_unknown_search_store_is_an_error_naming_the_stores() -> None:
    with pytest.raises(ConfigError, match="M/aime24"):
        search_flags([("M/aime24", "aime24")], ["aime42"])


def test_missing_cells_show_as_dashes_and_void_the_average() -> None:
    rs = results()[:-1]  # cmc not evaluated on M/hmmt25
    table = paper_table(rs)
    cmc = table.rows[1]
    assert cmc.scores[2] is None and cmc.heldout is None
    assert table.text_rows()[1][-4:] == ["-", "-", "-", "-"]


def test_all_stores_searched_leaves_no_average_and_mixed_models_keep_full_names() -> None:
    rs = [cell("A/aime24", "sc", {"n": 1}, [True], [5]), cell("B/aime24", "sc", {"n": 1}, [False], [7])]
    table = paper_table(rs)
    assert table.rows[0].heldout is None
    assert table.model is None
    assert table.header()[1] == "A/aime24* acc %"


def test_one_table_per_model_with_its_own_heldout_average() -> None:
    rs = [
        cell("A/aime24", "sc", {"n": 1}, [True], [5]),
        cell("A/aime25", "sc", {"n": 1}, [False], [7]),
        cell("B/aime24", "sc", {"n": 1}, [False], [9]),
        cell("B/aime25", "sc", {"n": 1}, [True], [11]),
    ]
    a, b = paper_tables(rs)
    assert (a.model, b.model) == ("A", "B")
    assert a.rows[0].heldout == paper_table(rs[:2]).rows[0].heldout
    assert b.rows[0].heldout is not None and (b.rows[0].heldout.accuracy, b.rows[0].heldout.tokens) == (100.0, 11.0)
    # A search store named for one model is valid although the other table does not hold it.
    a, b = paper_tables(rs, ["A/aime25"])
    assert a.search == (False, True) and b.search == (False, False)
    with pytest.raises(ConfigError):
        paper_tables(rs, ["C/aime24"])


# ------------------------------------------------------------------------ CLI
def tiny_store_file(tmp_path: Path, bench: str) -> Path:
    rnd = random.Random(bench)
    qs = []
    for qi in range(4):
        bs = tuple(
            Branch(tuple(rnd.choice("12") for _ in range(rnd.randint(0, 4))), rnd.randint(100, 3000), rnd.choice("12"))
            for _ in range(70)
        )
        qs.append(Question(str(qi), "q", "1", 500, bs))
    path = tmp_path / "tiny-model" / f"{bench}.json"
    path.parent.mkdir(exist_ok=True)
    return save_store(ReplayStore(StoreMeta("tiny-model", bench), tuple(qs)), path)


def test_eval_preset_prints_the_paper_table_and_writes_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stores = [tiny_store_file(tmp_path, b) for b in ("aime24", "aime25")]
    out = tmp_path / "records.json"
    argv = ["eval", "--preset", "paper-main", "--runs", "3", "--json", str(out)]
    for s in stores:
        argv += ["--store", str(s)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    for method in ("SC@64", "ASC@64", "ESC@64", "Parallel-Probe@64", "CMC (β=0.5)", "CMC (β=1.0)"):
        assert method in text
    assert "aime24* acc %" in text and "held-out acc %" in text
    records = json.loads(out.read_text())
    assert len(records) == 12
    assert {(r["controller"], json.dumps(r["params"])) for r in records} == {
        (s.name, json.dumps(s.params)) for s in preset_specs("paper-main")
    }


def test_eval_preset_with_search_store_and_extra_controller(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stores = [tiny_store_file(tmp_path, b) for b in ("aime24", "aime25")]
    argv = ["eval", "--preset", "paper-main", "--runs", "2", "--search-store", "aime25", "-c", "sc:n=2"]
    for s in stores:
        argv += ["--store", str(s)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "aime25* acc %" in text and "aime24* acc %" not in text
    assert "SC@2" in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--preset", "paper-main", "--beta", "0.5"], "--beta"),
        (["--search-store", "aime24"], "--preset"),
        (["--preset", "nope"], "paper-main"),
        (["--preset", "paper-main", "--search-store", "gsm8k"], "gsm8k"),
    ],
)
def test_eval_preset_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    store = tiny_store_file(tmp_path, "aime24")
    assert main(["eval", "--store", str(store), "--runs", "1", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.shared_data
@pytest.mark.integration
def test_eval_preset_paper_main_on_the_self_check_store(capsys: pytest.CaptureFixture[str]) -> None:
    path = shared_store_path("Qwen3-4B", "aime24")
    assert main(["eval", "--preset", "paper-main", "--store", str(path), "--search-store", "none"]) == 0
    lines = [line.split("│") for line in capsys.readouterr().out.splitlines() if "│" in line]
    got = {cells[1].strip(): (cells[2].strip(), cells[3].strip()) for cells in lines}
    assert got["SC@64"] == ("80.00", "886,830")
    assert got["ASC@64"] == ("80.00", "214,189")
    assert got["ESC@64"] == ("80.00", "528,935")
    assert got["Parallel-Probe@64"] == ("79.73", "688,873")
    assert got["CMC (β=0.5)"] == ("81.97", "236,735")
    assert got["CMC (β=1.0)"] == ("83.53", "424,878")


def test_spec_objects_are_plain_controller_specs() -> None:
    assert all(isinstance(s, ControllerSpec) for s in preset_specs("paper-curves"))
