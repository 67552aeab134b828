"""Store formats round-trip every field: AutoTTS JSON <-> native Parquet, native -> native."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotts.errors import StoreError, StoreFormatError
from autotts.store import (
    ERR,
    Branch,
    Question,
    ReplayStore,
    StoreMeta,
    load_store,
    read_autotts_json,
    read_parquet,
    save_store,
    write_autotts_json,
    write_parquet,
)
from autotts.store.autotts_json import store_to_autotts_objects
from autotts.store.schema import intern_question
from tests.conftest import shared_store_path


def hand_built_store() -> ReplayStore:
    """Edge cases on purpose: unicode, empty probe lists, zero tokens, ERR, ids that are not positions."""
    return ReplayStore(
        meta=StoreMeta(
            model="Qwen3-Ünïcode/4B",
            benchmark="aime24-mini",
            source="hand-built: test_store_roundtrip",
            settings={"temperature": 0.6, "top_p": [0.95], "seed": None, "nested": {"n": 3, "ok": True}, "Δ": "500"},
        ),
        questions=(
            Question(
                id="q-α",
                text='Find $x$ such that $x^2 = 4$.\nGive the positive root — "quoted" \\ backslash.',
                gold="2",
                delta=500,
                branches=(
                    Branch(probes=(ERR, "2", "2"), tokens=1499, final="2"),
                    Branch(probes=(), tokens=0, final=ERR),
                    Branch(probes=("-2",), tokens=501, final="-2"),
                    Branch(probes=("", "2"), tokens=900, final=""),
                ),
            ),
            Question(
                id="7",
                text="",
                gold="\\frac{1}{2}",
                delta=250,
                branches=(Branch(probes=("\\frac{1}{2}",) * 5, tokens=10**12, final="\\frac{1}{2}"),),
            ),
            Question(
                id="0",
                text="emoji 🧮 and CJK 数学",
                gold="🧮",
                delta=1,
                branches=(
                    Branch(probes=("🧮", "数学"), tokens=2, final="数学"),
                    Branch(probes=("数学", "🧮"), tokens=3, final="🧮"),
                ),
            ),
        ),
    )


def assert_same_store(a: ReplayStore, b: ReplayStore, *, meta: bool = True) -> None:
    """Field-by-field equality, so that a failure names the field that differs."""
    assert len(a.questions) == len(b.questions)
    for qa, qb in zip(a.questions, b.questions, strict=True):
        assert (qa.id, qa.text, qa.gold, qa.delta) == (qb.id, qb.text, qb.gold, qb.delta)
        assert len(qa.branches) == len(qb.branches)
        for ba, bb in zip(qa.branches, qb.branches, strict=True):
            assert ba.probes == bb.probes
            assert ba.tokens == bb.tokens
            assert ba.final == bb.final
            assert type(bb.probes) is tuple and type(bb.tokens) is int
    assert a.questions == b.questions
    if meta:
        for name in ("model", "benchmark", "source", "schema_version"):
            assert getattr(a.meta, name) == getattr(b.meta, name), name
        assert dict(a.meta.settings) == dict(b.meta.settings)


def assert_views_match_fresh_interning(store: ReplayStore) -> None:
    """The reader's pre-built replay views equal the ones interning the questions gives."""
    assert store.replay == tuple(intern_question(q)[0] for q in store.questions)
    assert store.golds == tuple(q.gold for q in store.questions)


# ------------------------------------------------------------------------ hand-built


def test_native_round_trip_is_lossless(tmp_path: Path) -> None:
    store = hand_built_store()
    path = write_parquet(store, tmp_path / "s.parquet")
    back = read_parquet(path)
    assert_same_store(store, back)
    assert_views_match_fresh_interning(back)


def test_native_to_native_is_lossless_and_stable(tmp_path: Path) -> None:
    once = read_parquet(write_parquet(hand_built_store(), tmp_path / "a.parquet"))
    twice = read_parquet(write_parquet(once, tmp_path / "b.parquet"))
    assert_same_store(once, twice)
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_json_to_native_to_json_is_lossless(tmp_path: Path) -> None:
    store = hand_built_store()
    first = tmp_path / "Qwen3-Ünïcode--4B" / "aime24-mini.json"
    write_autotts_json(store, first)
    from_json = read_autotts_json(first, model=store.meta.model, benchmark=store.meta.benchmark)
    assert_same_store(store, from_json, meta=False)
    native = read_parquet(write_parquet(from_json, tmp_path / "n.parquet"))
    assert_same_store(from_json, native)
    second = tmp_path / "again.json"
    write_autotts_json(native, second)
    assert json.loads(second.read_text(encoding="utf-8")) == json.loads(first.read_text(encoding="utf-8"))


def test_question_ids_survive_the_json_format(tmp_path: Path) -> None:
    objects = store_to_autotts_objects(hand_built_store())
    # Ids equal to the position are implicit; others are written out.
    assert objects[0]["id"] == "q-α"
    assert objects[1]["id"] == "7"
    assert objects[2]["id"] == "0"
    only_third = ReplayStore(hand_built_store().meta, (hand_built_store().questions[2],))
    assert "id" not in store_to_autotts_objects(only_third)[0]


def test_settings_are_json_tuples_come_back_as_lists(tmp_path: Path) -> None:
    base = hand_built_store()
    store = ReplayStore(StoreMeta("m", "b", settings={"stops": ("</think>",)}), base.questions)
    back = read_parquet(write_parquet(store, tmp_path / "s.parquet"))
    assert dict(back.meta.settings) == {"stops": ["</think>"]}


def test_settings_that_are_not_json_are_refused_before_writing(tmp_path: Path) -> None:
    store = ReplayStore(StoreMeta("m", "b", settings={"when": object()}), hand_built_store().questions)
    with pytest.raises(StoreFormatError) as info:
        write_parquet(store, tmp_path / "s.parquet")
    assert info.value.field == "settings"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("branch", "field"),
    [
        (Branch(probes=("1",), tokens=-1, final="1"), "tokens"),
        (Branch(probes=("1",), tokens=1.5, final="1"), "tokens"),  # type: ignore[arg-type]
        (Branch(probes=(1,), tokens=1, final="1"), "probes"),  # type: ignore[arg-type]
        (Branch(probes=("1",), tokens=1, final=None), "final"),  # type: ignore[arg-type]
    ],
)
def test_invalid_stores_built_in_code_are_refused_by_both_writers(branch: Branch, field: str, tmp_path: Path) -> None:
    good = hand_built_store()
    q = good.questions[0]
    bad_q = Question(q.id, q.text, q.gold, q.delta, (*q.branches[:2], branch))
    store = ReplayStore(good.meta, (good.questions[1], bad_q))
    for name in ("s.parquet", "s.json"):
        with pytest.raises(StoreFormatError) as info:
            save_store(store, tmp_path / name)
        assert (info.value.question, info.value.branch, info.value.field) == (1, 2, field)
    assert list(tmp_path.iterdir()) == []


def test_overwriting_keeps_the_old_file_until_the_new_one_is_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    path = write_parquet(hand_built_store(), tmp_path / "s.parquet")
    before = path.read_bytes()

    def half_write(table: Any, where: Any, **kwargs: Any) -> None:
        Path(where).write_bytes(b"PAR1 half")
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(pq, "write_table", half_write)
    with pytest.raises(StoreError, match="Input/output error"):
        write_parquet(hand_built_store(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.parquet"]


def test_load_store_overrides_model_and_benchmark_of_a_native_file(tmp_path: Path) -> None:
    path = write_parquet(hand_built_store(), tmp_path / "s.parquet")
    store = load_store(path, model="other", benchmark="bench")
    assert store.name == "other/bench"
    assert store.meta.source == hand_built_store().meta.source
    assert load_store(path).name == "Qwen3-Ünïcode/4B/aime24-mini"


# ------------------------------------------------------------------------ properties

_answers = st.text(alphabet=st.characters(codec="utf-8"), max_size=6) | st.sampled_from([ERR, "1", "2", "3"])
_branches = st.builds(
    Branch,
    probes=st.lists(_answers, max_size=6).map(tuple),
    tokens=st.integers(0, 2**63 - 1),
    final=_answers,
)


@st.composite
def stores(draw: st.DrawFn) -> ReplayStore:
    n = draw(st.integers(1, 4))
    ids = draw(st.lists(st.text(min_size=1, max_size=5), min_size=n, max_size=n, unique=True))
    questions = tuple(
        Question(
            id=qid,
            text=draw(st.text(max_size=20)),
            gold=draw(_answers),
            delta=draw(st.integers(1, 2**63 - 1)),
            branches=tuple(draw(st.lists(_branches, min_size=1, max_size=5))),
        )
        for qid in ids
    )
    meta = StoreMeta(
        model=draw(st.text(max_size=8)),
        benchmark=draw(st.text(max_size=8)),
        source=draw(st.text(max_size=8)),
        settings=draw(
            st.dictionaries(st.text(max_size=4), st.integers() | st.text(max_size=4) | st.none(), max_size=3)
        ),
    )
    return ReplayStore(meta, questions)


@settings(max_examples=60, deadline=None, database=None)
@given(store=stores())
def test_any_valid_store_round_trips_through_both_formats(
    store: ReplayStore, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    native = read_parquet(write_parquet(store, tmp / "s.parquet"))
    assert_same_store(store, native)
    assert_views_match_fresh_interning(native)
    write_autotts_json(native, tmp / "s.json")
    assert_same_store(store, read_autotts_json(tmp / "s.json"), meta=False)


# ------------------------------------------------------------------------ shared data


@pytest.mark.shared_data
def test_shared_store_round_trips(tmp_path: Path) -> None:
    src = shared_store_path("Qwen3-4B", "aime24")
    original_objects = json.loads(src.read_text(encoding="utf-8"))
    from_json = read_autotts_json(src)
    native = read_parquet(write_parquet(from_json, tmp_path / "Qwen3-4B" / "aime24.parquet"))
    assert_same_store(from_json, native)
    assert_views_match_fresh_interning(native)
    assert native.name == "Qwen3-4B/aime24"
    again = read_parquet(write_parquet(native, tmp_path / "again.parquet"))
    assert_same_store(native, again)
    # Exporting reproduces the published objects exactly, key by key and value by value.
    assert store_to_autotts_objects(native) == original_objects
    write_autotts_json(native, tmp_path / "export.json")
    assert json.loads((tmp_path / "export.json").read_text(encoding="utf-8")) == original_objects
