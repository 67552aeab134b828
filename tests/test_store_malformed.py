"""Bad input to the store readers: one clear error naming file, question, branch and field; exit 1; no output.

Every malformed-input case of issue 2 is checked twice: through the library reader
(error type and coordinates) and through ``autotts store import`` (exit code 1, the
same coordinates on stderr, no traceback, no file left in the output directory).
Hypothesis then throws random corruptions at both and asserts they fail cleanly.
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autotts.cli.main import main
from autotts.errors import StoreError, StoreFormatError, StoreNotFoundError
from autotts.store import read_autotts_json, read_parquet, write_autotts_json, write_parquet
from autotts.store.autotts_json import locate_json_error

# ----------------------------------------------------------------------------- helpers


def valid_doc() -> list[dict[str, Any]]:
    """A small valid AutoTTS JSON document: 3 questions, 3-4 branches each.

    Question 1, branch 2 holds the unique probe answer "MARK" so that tests can cut
    the serialised text at a known place.
    """
    return [
        {
            "question": "What is 1+1?",
            "final_answers_trace": ["2", "2", "3"],
            "each_branch": [[["ERR", "2"], 1200, "2"], [["2"], 700, "2"], [[], 300, "3"]],
            "gold_answer": "2",
            "probe_freq": 500,
        },
        {
            "question": "Compute $\\sqrt{16}$ — in words?",
            "final_answers_trace": ["4", "four", "4", "ERR"],
            "each_branch": [
                [["ERR", "4", "4"], 1499, "4"],
                [["four"], 501, "four"],
                [["ERR", "MARK", "4"], 1300, "4"],
                [["ERR"], 450, "ERR"],
            ],
            "gold_answer": "4",
            "probe_freq": 500,
        },
        {
            "question": "Name a prime.",
            "final_answers_trace": ["7", "11", "7"],
            "each_branch": [[["5", "7"], 1000, "7"], [["11"], 200, "11"], [["7", "7", "7"], 1500, "7"]],
            "gold_answer": "7",
            "probe_freq": 500,
        },
    ]


def write_doc(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def files_under(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ------------------------------------------------------------ the cases of issue 2


def _mutate(fn: Callable[[list[dict[str, Any]]], None]) -> Callable[[], str]:
    def make() -> str:
        doc = valid_doc()
        fn(doc)
        return json.dumps(doc)

    return make


def _truncated() -> str:
    text = json.dumps(valid_doc())
    return text[: text.index('"MARK"') + 3]


def _set(q: int, key: str, value: Any) -> Callable[[list[dict[str, Any]]], None]:
    def fn(doc: list[dict[str, Any]]) -> None:
        doc[q][key] = value

    return fn


def _set_branch(q: int, b: int, pos: int, value: Any) -> Callable[[list[dict[str, Any]]], None]:
    def fn(doc: list[dict[str, Any]]) -> None:
        doc[q]["each_branch"][b][pos] = value

    return fn


def _with_ids(*ids: str) -> Callable[[list[dict[str, Any]]], None]:
    def fn(doc: list[dict[str, Any]]) -> None:
        for q, qid in zip(doc, ids, strict=True):
            q["id"] = qid

    return fn


# name -> (text factory, question, branch, field, words the message must contain)
CASES: dict[str, tuple[Callable[[], str], int | None, int | None, str | None, str]] = {
    "missing key": (_mutate(lambda d: d[1].pop("gold_answer")), 1, None, "gold_answer", "missing"),
    "missing branch element": (_mutate(lambda d: d[1]["each_branch"][2].pop()), 1, 2, "each_branch", "list of 3"),
    "wrong type: tokens as string": (_mutate(_set_branch(1, 2, 1, "1300")), 1, 2, "branch_tokens", "integer"),
    "wrong type: probe answer as number": (_mutate(_set_branch(1, 2, 0, ["ERR", 4])), 1, 2, "probe_answers", "string"),
    "wrong type: final answer null": (_mutate(_set_branch(2, 1, 2, None)), 2, 1, "final_answer", "null"),
    "wrong type: gold as number": (_mutate(_set(0, "gold_answer", 2)), 0, None, "gold_answer", "string"),
    "wrong type: probe_freq as float": (_mutate(_set(2, "probe_freq", 500.0)), 2, None, "probe_freq", "positive"),
    "negative token count": (_mutate(_set_branch(1, 2, 1, -7)), 1, 2, "branch_tokens", "negative"),
    "empty branch list": (_mutate(_set(1, "each_branch", [])), 1, None, "each_branch", "empty"),
    "inconsistent final_answers_trace": (
        _mutate(lambda d: d[1]["final_answers_trace"].__setitem__(2, "5")),
        1,
        2,
        "final_answers_trace",
        "final answer",
    ),
    "final_answers_trace of the wrong length": (
        _mutate(lambda d: d[1]["final_answers_trace"].pop()),
        1,
        None,
        "final_answers_trace",
        "3 answers",
    ),
    "truncated file": (_truncated, 1, 2, "probe_answers", "truncated"),
    "non-JSON file": (lambda: "question,gold\nWhat is 1+1?,2\n", None, None, None, "not valid JSON"),
    "duplicate question ids": (_mutate(_with_ids("a", "b", "a")), 2, None, "id", "duplicate"),
    "top level is an object": (lambda: json.dumps({"questions": valid_doc()}), None, None, None, "JSON list"),
    "empty file": (lambda: "", None, None, None, "empty"),
    "no questions": (lambda: "[]", None, None, None, "no questions"),
}


def _check_message(message: str, path: Path, question: int | None, branch: int | None, field: str | None) -> None:
    assert str(path) in message
    if question is not None:
        assert f"question {question}" in message
    if branch is not None:
        assert f"branch {branch}" in message
    if field is not None:
        assert f"field '{field}'" in message


@pytest.mark.parametrize("case", list(CASES))
def test_reader_names_the_place_of_the_problem(case: str, tmp_path: Path) -> None:
    make, question, branch, field, words = CASES[case]
    path = tmp_path / "M" / "bench.json"
    path.parent.mkdir()
    path.write_text(make(), encoding="utf-8")
    with pytest.raises(StoreFormatError) as info:
        read_autotts_json(path)
    exc = info.value
    assert (exc.path, exc.question, exc.branch, exc.field) == (str(path), question, branch, field)
    assert words in str(exc)
    _check_message(str(exc), path, question, branch, field)


@pytest.mark.parametrize("case", list(CASES))
def test_cli_import_fails_cleanly_and_writes_nothing(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, question, branch, field, words = CASES[case]
    path = tmp_path / "src" / "M" / "bench.json"
    path.parent.mkdir(parents=True)
    path.write_text(make(), encoding="utf-8")
    out_dir = tmp_path / "out"
    code, out, err = run_cli(["store", "import", str(path), "--out", str(out_dir)], capsys)
    assert code == 1
    assert "Traceback" not in err
    assert words in err
    _check_message(err, path, question, branch, field)
    assert files_under(out_dir) == []
    assert out == ""


def test_not_utf8_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff")
    with pytest.raises(StoreFormatError, match="not UTF-8"):
        read_autotts_json(path)


def test_missing_file_is_not_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(StoreNotFoundError):
        read_autotts_json(tmp_path / "absent.json")
    code, _, err = run_cli(["store", "import", str(tmp_path / "absent.json"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2  # a path that names no store is a usage error
    assert "no such file" in err


def test_a_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "M" / "b.json"
    path.parent.mkdir()
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(valid_doc()).encode())
    assert len(read_autotts_json(path)) == 3


def test_truncation_inside_each_position_is_located() -> None:
    text = json.dumps(valid_doc())
    # Cut just after "MARK" (question 1, branch 2, inside its probe list) and at other known spots.
    assert locate_json_error(text, text.index('"MARK"') + 3) == (1, 2, "probe_answers")
    assert locate_json_error(text, text.index("1300") + 2) == (1, 2, "branch_tokens")
    assert locate_json_error(text, text.index('"Name a prime.') + 4) == (2, None, "question")
    assert locate_json_error(text, 0) == (None, None, None)


# ------------------------------------------------------- failures while writing


def test_unencodable_string_fails_at_write_and_leaves_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # "\ud800" is valid JSON but not valid Unicode: reading succeeds, writing must fail cleanly.
    text = json.dumps(valid_doc()).replace('"MARK"', '"\\ud800"')
    path = tmp_path / "src" / "M" / "b.json"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    store = read_autotts_json(path)
    with pytest.raises(StoreFormatError) as info:
        write_parquet(store, tmp_path / "direct.parquet")
    assert (info.value.question, info.value.branch, info.value.field) == (1, 2, "probes")
    assert not (tmp_path / "direct.parquet").exists()
    with pytest.raises(StoreFormatError, match="not valid Unicode"):
        write_autotts_json(store, tmp_path / "direct.json")
    assert not (tmp_path / "direct.json").exists()
    out_dir = tmp_path / "out"
    code, _, err = run_cli(["store", "import", str(path), "--out", str(out_dir)], capsys)
    assert code == 1
    assert "question 1, branch 2, field 'probes'" in err
    assert files_under(out_dir) == []


def test_failed_parquet_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_doc(tmp_path / "M" / "b.json", valid_doc())
    store = read_autotts_json(path)

    def half_write(table: pa.Table, where: Any, **kwargs: Any) -> None:
        Path(where).write_bytes(b"PAR1 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", half_write)
    out_dir = tmp_path / "out"
    with pytest.raises(StoreError, match="No space left"):
        write_parquet(store, out_dir / "b.parquet")
    assert files_under(out_dir) == []


@pytest.mark.parametrize("fmt", ["parquet", "json"])
def test_output_directory_that_is_a_file_is_a_clean_error(
    fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_doc(tmp_path / "M" / "a.json", valid_doc())
    (tmp_path / "out").write_text("not a directory")
    code, _, err = run_cli(["store", "import", str(src), "--out", str(tmp_path / "out"), "--format", fmt], capsys)
    assert code == 1
    assert "Traceback" not in err
    assert "Not a directory" in err


def test_import_keeps_good_stores_written_before_a_bad_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src" / "M"
    write_doc(src / "a.json", valid_doc())
    bad = valid_doc()
    bad[2]["each_branch"][0][1] = -1
    write_doc(src / "b.json", bad)
    write_doc(src / "c.json", valid_doc())
    out_dir = tmp_path / "out"
    code, out, err = run_cli(["store", "import", str(tmp_path / "src"), "--out", str(out_dir)], capsys)
    assert code == 1
    assert files_under(out_dir) == [out_dir / "M" / "a.parquet"]
    assert "a.parquet" in out
    assert "1 store(s) written before it stay" in err
    assert "1 later input(s) were not imported" in err
    assert "b.json, question 2, branch 0, field 'branch_tokens'" in err
    read_parquet(out_dir / "M" / "a.parquet")  # the good store is complete


# ----------------------------------------------------------- malformed native files


def _table_of(doc_store_path: Path) -> pa.Table:
    from autotts.store.parquet import _to_table

    return _to_table(read_autotts_json(doc_store_path))


def _replace(table: pa.Table, name: str, array: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, array)


NATIVE_CASES: dict[str, tuple[Callable[[pa.Table], pa.Table], int | None, int | None, str | None, str]] = {
    "missing column": (lambda t: t.drop_columns(["tokens"]), None, None, "tokens", "missing"),
    "wrong column type": (
        lambda t: _replace(t, "tokens", pa.array([["a"], ["b"], ["c"]])),
        None,
        None,
        "tokens",
        "expected type",
    ),
    "negative tokens": (
        lambda t: _replace(t, "tokens", pa.array([[1200, 700, 300], [1499, 501, -5, 450], [1000, 200, 1500]])),
        1,
        2,
        "tokens",
        "negative",
    ),
    "empty branch list": (
        lambda t: (
            t.set_column(5, "probes", pa.array([[[]], [], [[]]], type=pa.list_(pa.list_(pa.int32()))))
            .set_column(6, "tokens", pa.array([[1], [], [1]], type=pa.list_(pa.int64())))
            .set_column(7, "finals", pa.array([[0], [], [0]], type=pa.list_(pa.int32())))
        ),
        1,
        None,
        "probes",
        "empty",
    ),
    "branch counts disagree": (
        lambda t: _replace(t, "finals", pa.array([[0, 0, 1], [0, 1], [0, 1, 0]], type=pa.list_(pa.int32()))),
        1,
        None,
        "finals",
        "branches",
    ),
    "answer code out of range": (
        lambda t: _replace(t, "finals", pa.array([[0, 0, 1], [0, 1, 9, 2], [0, 1, 0]], type=pa.list_(pa.int32()))),
        1,
        2,
        "finals",
        "vocabulary",
    ),
    "duplicate ids": (lambda t: _replace(t, "id", pa.array(["a", "b", "a"])), 2, None, "id", "duplicate"),
    "null probe answer code": (
        lambda t: _replace(
            t,
            "probes",
            pa.array(
                [[[0, 1], [1], []], [[0, 1, 1], [2], [0, None, 1], [0]], [[0, 1], [2], [1, 1, 1]]],
                type=pa.list_(pa.list_(pa.int32())),
            ),
        ),
        1,
        2,
        "probes",
        "null",
    ),
    "null value": (lambda t: _replace(t, "gold", pa.array(["2", None, "7"])), 1, None, "gold", "null"),
    "non-positive delta": (lambda t: _replace(t, "delta", pa.array([500, 0, 500])), 1, None, "delta", "positive"),
    "no questions": (lambda t: t.slice(0, 0), None, None, None, "no questions"),
}


@pytest.mark.parametrize("case", list(NATIVE_CASES))
def test_native_reader_rejects_malformed_tables(case: str, tmp_path: Path) -> None:
    change, question, branch, field, words = NATIVE_CASES[case]
    table = change(_table_of(write_doc(tmp_path / "M" / "b.json", valid_doc())))
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path)
    with pytest.raises(StoreFormatError) as info:
        read_parquet(path)
    exc = info.value
    assert (exc.question, exc.branch, exc.field) == (question, branch, field)
    assert words in str(exc)
    _check_message(str(exc), path, question, branch, field)


def _with_meta(table: pa.Table, meta: dict[bytes, bytes] | None) -> pa.Table:
    return table.replace_schema_metadata(meta)


@pytest.mark.parametrize(
    ("meta", "words"),
    [
        (None, "not an autotts replay store"),
        ({b"autotts": b"{not json"}, "not valid JSON"),
        ({b"autotts": json.dumps({"schema_version": 99}).encode()}, "upgrade autotts"),
        ({b"autotts": json.dumps({"schema_version": "1"}).encode()}, "positive integer"),
        ({b"autotts": json.dumps({"schema_version": 1, "settings": [1]}).encode()}, "JSON object"),
    ],
)
def test_native_reader_checks_metadata_and_version(
    meta: dict[bytes, bytes] | None, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _with_meta(_table_of(write_doc(tmp_path / "M" / "b.json", valid_doc())), meta)
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path)
    with pytest.raises(StoreFormatError, match=words):
        read_parquet(path)
    code, out, err = run_cli(["store", "validate", str(path)], capsys)
    assert code == 1
    assert words in out
    assert "Traceback" not in err


def test_native_reader_rejects_non_parquet_and_truncated_files(tmp_path: Path) -> None:
    good = tmp_path / "good.parquet"
    write_parquet(read_autotts_json(write_doc(tmp_path / "M" / "b.json", valid_doc())), good)
    data = good.read_bytes()
    contents = {"json.parquet": b'[{"question": 1}]', "cut.parquet": data[: len(data) // 2], "empty.parquet": b""}
    for name, content in contents.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(StoreFormatError, match="not a readable Parquet file"):
            read_parquet(path)


# ------------------------------------------------------------- property-based tests

_ODD_VALUES = [None, True, -1, 0, 1.5, 2**70, "", "x", [], {}, [[]], [1, 2, 3], {"a": 1}]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every location inside a parsed JSON document."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_paths(value, (*prefix, i)))
    return found


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    node = doc
    for step in path[:-1]:
        node = node[step]
    return node


@st.composite
def corrupted_documents(draw: st.DrawFn) -> str:
    """A valid document with one random corruption applied, as JSON text."""
    doc = copy.deepcopy(valid_doc())
    if draw(st.booleans()):
        for i, q in enumerate(doc):
            q["id"] = f"q{i}"
    kind = draw(
        st.sampled_from(["delete", "retype", "negative", "truncate", "insert", "drop-char", "duplicate", "trace"])
    )
    if kind in ("delete", "retype"):
        path = draw(st.sampled_from(_paths(doc)))
        parent = _parent(doc, path)
        if kind == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(_ODD_VALUES)))
    elif kind == "negative":
        q = draw(st.integers(0, len(doc) - 1))
        b = draw(st.integers(0, len(doc[q]["each_branch"]) - 1))
        doc[q]["each_branch"][b][1] = draw(st.integers(max_value=-1))
    elif kind == "duplicate":
        doc.append(copy.deepcopy(doc[draw(st.integers(0, len(doc) - 1))]))
    elif kind == "trace":
        q = draw(st.integers(0, len(doc) - 1))
        trace = doc[q]["final_answers_trace"]
        trace[draw(st.integers(0, len(trace) - 1))] = draw(st.text(max_size=3))
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    if kind == "truncate":
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif kind == "insert":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(list('"[]{},:0-aé\\ \n'))) + text[at:]
    elif kind == "drop-char":
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + text[at + 1 :]
    return text


_PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_PROPERTY_SETTINGS
@given(text=corrupted_documents())
def test_corrupted_json_reads_or_fails_with_a_store_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "M" / "b.json"
        path.parent.mkdir()
        path.write_text(text, encoding="utf-8")
        try:
            store = read_autotts_json(path)
        except StoreError as exc:
            assert exc.path == str(path)
            assert str(path) in str(exc)
        else:
            assert len(store) >= 1  # the corruption happened to be harmless


@_PROPERTY_SETTINGS
@given(text=corrupted_documents())
def test_corrupted_json_via_cli_exits_1_without_traceback(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "src" / "M" / "b.json"
        path.parent.mkdir(parents=True)
        path.write_text(text, encoding="utf-8")
        out_dir = Path(tmp) / "out"
        code, _, err = run_cli(["store", "import", str(path), "--out", str(out_dir)], capsys)
        assert "Traceback" not in err
        if code == 0:
            assert files_under(out_dir) == [out_dir / "M" / "b.parquet"]
        else:
            assert code == 1
            assert err.count("error:") == 1
            assert files_under(out_dir) == []


@settings(max_examples=40, deadline=None, database=None)
@given(data=st.data())
def test_corrupted_parquet_reads_or_fails_with_a_store_error(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = write_doc(Path(tmp) / "M" / "b.json", valid_doc())
        path = Path(tmp) / "b.parquet"
        write_parquet(read_autotts_json(src), path)
        raw = bytearray(path.read_bytes())
        if data.draw(st.booleans()):
            raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
        else:
            for _ in range(data.draw(st.integers(1, 4))):
                raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        path.write_bytes(bytes(raw))
        try:
            read_parquet(path)
        except StoreError as exc:
            assert str(path) in str(exc)
