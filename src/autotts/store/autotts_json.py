"""Reader and writer for the AutoTTS JSON replay format (the published shared data).

The file is a JSON list with one object per question::

    {"question": str, "gold_answer": str, "probe_freq": int,
     "each_branch": [[probe_answers, branch_tokens, final_answer], ...],
     "final_answers_trace": [final_answer, ...]}

The format carries no store metadata, so model and benchmark come from the caller
(usually the ``<model>/<benchmark>.json`` path). An optional per-question ``"id"`` is
read and written; without it the question's position is its id.

Validation is strict and specific: the first problem found raises a
:class:`~autotts.errors.StoreFormatError` naming the file, question index, branch
index and field.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from autotts._atomic import atomic_open
from autotts.errors import StoreFormatError, StoreNotFoundError
from autotts.store.schema import Branch, Question, ReplayStore, StoreMeta

_REQUIRED = ("question", "gold_answer", "probe_freq", "each_branch")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_question(obj: Any, *, index: int, path: str) -> Question:
    """Validate one question object of the AutoTTS format and build a :class:`Question`."""

    def fail(message: str, *, branch: int | None = None, field: str | None = None) -> StoreFormatError:
        return StoreFormatError(message, path=path, question=index, branch=branch, field=field)

    if not isinstance(obj, dict):
        raise fail(f"expected a JSON object, got {type(obj).__name__}")
    for key in _REQUIRED:
        if key not in obj:
            raise fail("required key is missing", field=key)
    text, gold, delta, raw_branches = obj["question"], obj["gold_answer"], obj["probe_freq"], obj["each_branch"]
    if not isinstance(text, str):
        raise fail(f"expected a string, got {type(text).__name__}", field="question")
    if not isinstance(gold, str):
        raise fail(f"expected a string, got {type(gold).__name__}", field="gold_answer")
    if not _is_int(delta) or delta <= 0:
        raise fail(f"expected a positive integer (tokens per interval), got {delta!r}", field="probe_freq")
    if not isinstance(raw_branches, list):
        raise fail(f"expected a list of branches, got {type(raw_branches).__name__}", field="each_branch")
    if not raw_branches:
        raise fail("the branch list is empty; a question needs at least one branch", field="each_branch")
    qid = obj.get("id", str(index))
    if not isinstance(qid, str) or not qid:
        raise fail(f"expected a non-empty string, got {qid!r}", field="id")

    branches = []
    for b, raw in enumerate(raw_branches):
        if not isinstance(raw, list) or len(raw) != 3:
            raise fail(
                "expected [probe_answers, branch_tokens, final_answer] (a list of 3)",
                branch=b,
                field="each_branch",
            )
        probes, tokens, final = raw
        if not isinstance(probes, list):
            raise fail(f"expected a list of answers, got {type(probes).__name__}", branch=b, field="probe_answers")
        for k, answer in enumerate(probes):
            if not isinstance(answer, str):
                raise fail(
                    f"probe {k}: expected a string answer, got {type(answer).__name__}",
                    branch=b,
                    field="probe_answers",
                )
        if not _is_int(tokens):
            raise fail(f"expected an integer, got {type(tokens).__name__}", branch=b, field="branch_tokens")
        if tokens < 0:
            raise fail(f"token count is negative ({tokens})", branch=b, field="branch_tokens")
        if not isinstance(final, str):
            raise fail(f"expected a string, got {type(final).__name__}", branch=b, field="final_answer")
        branches.append(Branch(probes=tuple(probes), tokens=tokens, final=final))

    if "final_answers_trace" in obj:
        trace = obj["final_answers_trace"]
        if not isinstance(trace, list):
            raise fail(f"expected a list, got {type(trace).__name__}", field="final_answers_trace")
        if len(trace) != len(branches):
            raise fail(
                f"has {len(trace)} answers but each_branch has {len(branches)} branches",
                field="final_answers_trace",
            )
        for b, (listed, branch) in enumerate(zip(trace, branches, strict=True)):
            if listed != branch.final:
                raise fail(
                    f"says {listed!r} but the branch's final answer is {branch.final!r}",
                    branch=b,
                    field="final_answers_trace",
                )
    return Question(id=qid, text=text, gold=gold, delta=delta, branches=tuple(branches))


def read_autotts_json(
    path: str | os.PathLike[str],
    *,
    model: str | None = None,
    benchmark: str | None = None,
) -> ReplayStore:
    """Read and validate an AutoTTS JSON file.

    ``model`` and ``benchmark`` default to the parent directory name and the file stem
    (the shared data's ``<model>/<benchmark>.json`` layout).
    """
    p = Path(path)
    where = str(p)
    try:
        raw_text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StoreNotFoundError("no such file; check the path", path=where) from None
    except IsADirectoryError:
        raise StoreNotFoundError("is a directory, expected a .json file", path=where) from None
    except UnicodeDecodeError as exc:
        raise StoreFormatError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=where) from None
    except OSError as exc:
        raise StoreNotFoundError(f"cannot be read: {exc.strerror}", path=where) from None
    try:
        data = json.loads(raw_text)
    except json.JSONDecodeError as exc:
        hint = " (the file looks truncated)" if exc.pos >= len(raw_text.rstrip()) else ""
        raise StoreFormatError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}{hint}", path=where
        ) from None
    if not isinstance(data, list):
        raise StoreFormatError(
            f"expected a JSON list of question objects at the top level, got {type(data).__name__}", path=where
        )
    if not data:
        raise StoreFormatError("the file holds no questions", path=where)
    questions = []
    seen: dict[str, int] = {}
    for i, obj in enumerate(data):
        q = parse_question(obj, index=i, path=where)
        if q.id in seen:
            raise StoreFormatError(
                f"duplicate question id {q.id!r} (first used by question {seen[q.id]})",
                path=where,
                question=i,
                field="id",
            )
        seen[q.id] = i
        questions.append(q)
    meta = StoreMeta(
        model=model or (p.parent.name or "unknown-model"),
        benchmark=benchmark or p.stem,
        source=f"autotts-json:{p.name}",
    )
    return ReplayStore(meta=meta, questions=tuple(questions))


def store_to_autotts_objects(store: ReplayStore, *, with_ids: bool = True) -> list[dict[str, Any]]:
    """Convert a store to the list of question objects of the AutoTTS format."""
    out = []
    for i, q in enumerate(store.questions):
        obj: dict[str, Any] = {
            "question": q.text,
            "final_answers_trace": [b.final for b in q.branches],
            "each_branch": [[list(b.probes), b.tokens, b.final] for b in q.branches],
            "gold_answer": q.gold,
            "probe_freq": q.delta,
        }
        if with_ids and q.id != str(i):
            obj["id"] = q.id
        out.append(obj)
    return out


def write_autotts_json(store: ReplayStore, path: str | os.PathLike[str]) -> None:
    """Write a store in the AutoTTS JSON format (atomically; metadata is not representable)."""
    with atomic_open(path) as handle:
        json.dump(store_to_autotts_objects(store), handle, ensure_ascii=False)
