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
index and field. That holds for JSON syntax errors too (a truncated download, a stray
character): :func:`locate_json_error` recovers the question, branch and field around
the position the decoder stopped at. Unknown question keys are ignored with a logged
warning (they would be lost on export), usually a misspelt ``final_answers_trace``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from autotts._atomic import atomic_open
from autotts.errors import StoreError, StoreFormatError, StoreNotFoundError
from autotts.store._gc import paused_gc
from autotts.store.schema import Branch, Question, ReplayStore, StoreMeta
from autotts.store.validate import MAX_INT64, ensure_valid

logger = logging.getLogger(__name__)

_REQUIRED = ("question", "gold_answer", "probe_freq", "each_branch")
_KNOWN = frozenset((*_REQUIRED, "final_answers_trace", "id"))
#: Names of the three positions of a branch entry, used in error messages.
BRANCH_FIELDS = ("probe_answers", "branch_tokens", "final_answer")
_STR_ONLY = frozenset((str,))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_name(value: Any) -> str:
    """JSON's name for the type of a parsed value (what the user sees in the file)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _got(value: Any) -> str:
    """``got <type>``, plus the fix when a number stands where an answer string belongs."""
    hint = '; answers are strings, quote it (e.g. "42")' if isinstance(value, int | float) else ""
    return f"got {_type_name(value)}{hint}"


def parse_question(obj: Any, *, index: int, path: str) -> Question:
    """Validate one question object of the AutoTTS format and build a :class:`Question`."""

    def fail(message: str, *, branch: int | None = None, field: str | None = None) -> StoreFormatError:
        return StoreFormatError(message, path=path, question=index, branch=branch, field=field)

    if not isinstance(obj, dict):
        raise fail(f"expected a JSON object for the question, got {_type_name(obj)}")
    for key in _REQUIRED:
        if key not in obj:
            present = ", ".join(repr(k) for k in obj) or "no keys"
            raise fail(f"required key is missing (the object has {present})", field=key)
    text, gold, delta, raw_branches = obj["question"], obj["gold_answer"], obj["probe_freq"], obj["each_branch"]
    if not isinstance(text, str):
        raise fail(f"expected a string, got {_type_name(text)}", field="question")
    if not isinstance(gold, str):
        raise fail(f"expected a string, {_got(gold)}", field="gold_answer")
    if not _is_int(delta) or not 0 < delta <= MAX_INT64:
        raise fail(f"expected a positive integer (tokens per interval), got {_type_name(delta)}", field="probe_freq")
    if not isinstance(raw_branches, list):
        raise fail(f"expected a list of branches, got {_type_name(raw_branches)}", field="each_branch")
    if not raw_branches:
        raise fail("the branch list is empty; a question needs at least one branch", field="each_branch")
    qid = obj.get("id", str(index))
    if not isinstance(qid, str) or not qid:
        raise fail(f"expected a non-empty string, got {_type_name(qid)}", field="id")

    branches = []
    for b, raw in enumerate(raw_branches):
        if not isinstance(raw, list) or len(raw) != 3:
            got = f"a list of {len(raw)}" if isinstance(raw, list) else _type_name(raw)
            raise fail(
                f"expected [probe_answers, branch_tokens, final_answer] (a list of 3), got {got}",
                branch=b,
                field="each_branch",
            )
        probes, tokens, final = raw
        if not isinstance(probes, list):
            raise fail(f"expected a list of answers, got {_type_name(probes)}", branch=b, field="probe_answers")
        # One C-level pass over the types; the slow search only runs on failure.
        if probes and not set(map(type, probes)) <= _STR_ONLY:
            k, bad = next((k, a) for k, a in enumerate(probes) if not isinstance(a, str))
            raise fail(
                f"probe {k}: expected a string answer, {_got(bad)}",
                branch=b,
                field="probe_answers",
            )
        if not _is_int(tokens):
            raise fail(f"expected an integer, got {_type_name(tokens)}", branch=b, field="branch_tokens")
        if tokens < 0:
            raise fail(f"token count is negative ({tokens})", branch=b, field="branch_tokens")
        if tokens > MAX_INT64:
            raise fail(f"token count {tokens} does not fit in 64 bits", branch=b, field="branch_tokens")
        if not isinstance(final, str):
            raise fail(f"expected a string, {_got(final)}", branch=b, field="final_answer")
        branches.append(Branch(probes=tuple(probes), tokens=tokens, final=final))

    if "final_answers_trace" in obj:
        trace = obj["final_answers_trace"]
        if not isinstance(trace, list):
            raise fail(f"expected a list of answers, got {_type_name(trace)}", field="final_answers_trace")
        if len(trace) != len(branches):
            raise fail(
                f"has {len(trace)} answers but each_branch has {len(branches)} branches; they must match one to one",
                field="final_answers_trace",
            )
        for b, (listed, branch) in enumerate(zip(trace, branches, strict=True)):
            if listed != branch.final:
                raise fail(
                    f"says {listed!r} but the branch's final answer (each_branch[{b}][2]) is {branch.final!r}",
                    branch=b,
                    field="final_answers_trace",
                )
    return Question(id=qid, text=text, gold=gold, delta=delta, branches=tuple(branches))


# A JSON string (possibly cut off by truncation) or one structural character.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{},:]')


def locate_json_error(text: str, pos: int) -> tuple[int | None, int | None, str | None]:
    """``(question, branch, field)`` enclosing character ``pos`` of an AutoTTS JSON text.

    Used only after a syntax error, so that a truncated or damaged file is reported
    with the same coordinates as any other problem. The scan tracks the open
    containers up to ``pos``: the top-level list's index is the question, the key being
    read in the question object is the field, and inside ``each_branch`` (or
    ``final_answers_trace``) the list index is the branch.
    """
    stack: list[list[Any]] = []  # [opening char, element index, current key]
    last_string = ""
    for match in _JSON_TOKEN.finditer(text, 0, pos):
        token = match.group()
        char = token[0]
        if char == '"':
            last_string = token
        elif char in "[{":
            stack.append([char, 0, None])
        elif char in "]}":
            if stack:
                stack.pop()
        elif char == ",":
            if stack:
                stack[-1][1] += 1
                stack[-1][2] = None
        elif stack and stack[-1][0] == "{":  # ':' ends the key of an object member
            stack[-1][2] = last_string[1:-1]
    if not stack or stack[0][0] != "[":
        return None, None, None
    question: int | None = stack[0][1]
    branch: int | None = None
    field: str | None = None
    if len(stack) >= 2 and stack[1][0] == "{":
        field = stack[1][2]
        if field in ("each_branch", "final_answers_trace") and len(stack) >= 3 and stack[2][0] == "[":
            branch = stack[2][1]
            if field == "each_branch" and len(stack) >= 4 and stack[3][0] == "[" and stack[3][1] < 3:
                field = BRANCH_FIELDS[stack[3][1]]
    return question, branch, field


def _syntax_error(exc: json.JSONDecodeError, text: str, where: str) -> StoreFormatError:
    if not text.strip():
        return StoreFormatError("the file is empty; expected a JSON list of question objects", path=where)
    # The decoder reports an unterminated string only when it reached the end of the text.
    truncated = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
    hint = " (the file looks truncated; re-download or re-export it)" if truncated else ""
    question, branch, field = locate_json_error(text, exc.pos)
    if question is None and not truncated:
        hint = "; is this an AutoTTS JSON file?"
    message = exc.msg if exc.msg.endswith(" at") else f"{exc.msg} at"
    return StoreFormatError(
        f"not valid JSON: {message} line {exc.lineno} column {exc.colno}{hint}",
        path=where,
        question=question,
        branch=branch,
        field=field,
    )


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
        raw_text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise StoreNotFoundError("no such file; check the path", path=where) from None
    except IsADirectoryError:
        raise StoreNotFoundError("is a directory, expected a .json file", path=where) from None
    except UnicodeDecodeError as exc:
        raise StoreFormatError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start}); is this an AutoTTS JSON file?", path=where
        ) from None
    except OSError as exc:
        raise StoreNotFoundError(f"cannot be read: {exc.strerror}", path=where) from None
    with paused_gc():
        try:
            data = json.loads(raw_text)
        except json.JSONDecodeError as exc:
            raise _syntax_error(exc, raw_text, where) from None
        except RecursionError:
            raise StoreFormatError("nested too deeply to be an AutoTTS JSON file", path=where) from None
        del raw_text
        if not isinstance(data, list):
            raise StoreFormatError(
                f"expected a JSON list of question objects at the top level, got {_type_name(data)}", path=where
            )
        if not data:
            raise StoreFormatError("the file holds no questions (an empty list)", path=where)
        questions = []
        seen: dict[str, int] = {}
        unknown: set[str] = set()
        for i, obj in enumerate(data):
            q = parse_question(obj, index=i, path=where)
            if q.id in seen:
                raise StoreFormatError(
                    f"duplicate question id {q.id!r} (first used by question {seen[q.id]}); ids must be unique",
                    path=where,
                    question=i,
                    field="id",
                )
            seen[q.id] = i
            unknown.update(k for k in obj if k not in _KNOWN)
            questions.append(q)
    if unknown:
        logger.warning("%s: ignoring unknown question keys %s", where, ", ".join(sorted(map(repr, unknown))))
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
    """Write a store in the AutoTTS JSON format (atomically; metadata is not representable).

    The store is validated first so that the file reads back; on failure no file is left.
    """
    where = str(path)
    ensure_valid(store, path=where)
    try:
        with atomic_open(path) as handle:
            json.dump(store_to_autotts_objects(store), handle, ensure_ascii=False)
    except UnicodeEncodeError as exc:
        raise StoreFormatError(
            f"a string is not valid Unicode ({exc.reason}: {exc.object[exc.start : exc.end]!r}); fix the source text",
            path=where,
        ) from None
    except OSError as exc:
        raise StoreError(f"cannot write the JSON file: {exc}", path=where) from exc
