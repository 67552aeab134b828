"""Import planning in the library (``plan_import`` / ``import_stores``): the CLI is a shell over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotts.errors import ConfigError, StoreError, StoreNotFoundError
from autotts.store import load_store
from autotts.store.io import import_stores, plan_import
from tests.test_store_malformed import files_under, valid_doc, write_doc


def test_plan_names_targets_and_refuses_collisions(tmp_path: Path) -> None:
    a = write_doc(tmp_path / "a" / "M" / "b.json", valid_doc())
    b = write_doc(tmp_path / "b" / "M" / "b.json", valid_doc())
    plan = plan_import([a], tmp_path / "out")
    assert [(i.model, i.benchmark, i.target) for i in plan] == [("M", "b", tmp_path / "out" / "M" / "b.parquet")]
    with pytest.raises(ConfigError, match="would both be written"):
        plan_import([a, b], tmp_path / "out")
    assert [i.target.name for i in plan_import([a], tmp_path / "o", model="x/y", suffix=".json")] == ["b.json"]
    assert plan_import([a], tmp_path / "o", model="x/y")[0].target.parent.name == "x--y"
    with pytest.raises(ConfigError, match="cannot be used as a file name"):
        plan_import([a], tmp_path / "o", benchmark="..")
    with pytest.raises(StoreNotFoundError):
        plan_import([tmp_path / "nowhere"], tmp_path / "o")


def test_import_stops_at_a_bad_store_keeping_earlier_ones(tmp_path: Path) -> None:
    good = write_doc(tmp_path / "M" / "a.json", valid_doc())
    bad_doc = valid_doc()
    bad_doc[0].pop("gold_answer", None)
    bad_doc[0].pop("gold", None)
    bad = write_doc(tmp_path / "M" / "b.json", bad_doc)
    seen: list[str] = []
    plan = plan_import([good, bad], tmp_path / "out")
    with pytest.raises(StoreError):
        import_stores(plan, on_store=lambda item, store: seen.append(item.benchmark))
    assert seen == ["a"]
    assert files_under(tmp_path / "out") == [tmp_path / "out" / "M" / "a.parquet"]
    assert load_store(tmp_path / "out" / "M" / "a.parquet").meta.benchmark == "a"
