"""Benchmark files: JSONL, CSV or Parquet rows with a question, a gold answer and (optionally) an id.

Errors name the file, the row (1-based, as an editor shows it) and the column, and
say how to fix them: a collection should fail before it spends anything.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autotts.collect.config import BenchmarkSpec
from autotts.errors import ConfigError


@dataclass(frozen=True, slots=True)
class BenchmarkQuestion:
    """One question to collect."""

    id: str
    text: str
    gold: str


def _rows(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}: line {n} is not valid JSON ({exc.msg}, column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise ConfigError(f"{path}: line {n} is not a JSON object")
            rows.append(obj)
        return rows
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ConfigError(f"{path}: a .json benchmark must be a list of objects (or use .jsonl)")
        return data
    if suffix in (".csv", ".tsv"):
        with path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ","))
    if suffix == ".parquet":
        import pyarrow.parquet as pq  # pyarrow is heavy; only this format needs it

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises many types for a bad file
            raise ConfigError(f"{path}: not a readable Parquet file ({exc})") from None
        rows_out: list[dict[str, Any]] = table.to_pylist()
        return rows_out
    raise ConfigError(f"{path}: unknown benchmark format {suffix or '(no suffix)'!r}; use .jsonl, .csv or .parquet")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def load_benchmark(spec: BenchmarkSpec) -> list[BenchmarkQuestion]:
    """The questions of ``spec``'s file, checked (non-empty question and answer, unique ids)."""
    path = spec.path
    if not path.is_file():
        raise ConfigError(f"{path}: no such benchmark file (benchmark.path)")
    try:
        rows = _rows(path)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    if not rows:
        raise ConfigError(f"{path}: the benchmark has no rows")
    out: list[BenchmarkQuestion] = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, start=1):
        for col, key in (("question", spec.question), ("answer", spec.answer)):
            if key not in row:
                raise ConfigError(
                    f"{path}: row {n} has no column {key!r} (benchmark.{col}); columns: {', '.join(map(str, row))}"
                )
            if not _cell(row[key]):
                raise ConfigError(f"{path}: row {n}, column {key!r} (benchmark.{col}) is empty")
        qid = str(n - 1)
        if spec.id is not None and spec.id in row:
            qid = _cell(row[spec.id])
            if not qid:
                raise ConfigError(f"{path}: row {n}, column {spec.id!r} (benchmark.id) is empty")
        if qid in seen:
            raise ConfigError(f"{path}: row {n} repeats the id {qid!r} of row {seen[qid]}; ids must be unique")
        seen[qid] = n
        out.append(BenchmarkQuestion(qid, str(row[spec.question]), _cell(row[spec.answer])))
        if spec.limit is not None and len(out) >= spec.limit:
            break
    return out
