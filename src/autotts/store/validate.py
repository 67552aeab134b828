"""Checks on a loaded replay store, beyond what parsing a file already guarantees.

Readers reject malformed files outright. A :class:`~autotts.store.schema.ReplayStore`
can also be built in code (synthetic generator, collection, tests), where nothing has
checked it yet, so :func:`validate_store` re-checks the structural rules too and
reports them as *errors*; writers call :func:`ensure_valid` so that a file we write
can always be read back.

On top of that come *warnings*: data that is legal but suspicious and worth a look
before trusting numbers computed on it (Δ differing between questions, more probes
than a branch's length allows, a gold answer that no branch ever produces, ...).
"""

from __future__ import annotations

import enum
import json
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from autotts.errors import StoreFormatError
from autotts.store.schema import ERR, SCHEMA_VERSION, Branch, Question, ReplayStore

logger = logging.getLogger(__name__)

#: Largest integer the native format (int64 columns) can hold.
MAX_INT64 = 2**63 - 1

#: How many branch indices a grouped finding lists before "...".
_LIST_LIMIT = 12


class Severity(enum.Enum):
    """How bad a finding is: errors make a store unusable, warnings deserve a look."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in a store, located as precisely as the check allows."""

    severity: Severity
    code: str
    """Stable short name of the check (``negative-tokens``, ``gold-unreached`` ...)."""
    message: str
    question: int | None = None
    branch: int | None = None
    field: str | None = None

    @property
    def is_error(self) -> bool:
        """True for errors (the store must not be used as is)."""
        return self.severity is Severity.ERROR

    @property
    def location(self) -> str:
        """``question 3, branch 5, field 'tokens'`` (empty for store-wide findings)."""
        parts = []
        if self.question is not None:
            parts.append(f"question {self.question}")
        if self.branch is not None:
            parts.append(f"branch {self.branch}")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.location
        return f"{self.severity.value} [{self.code}] {where + ': ' if where else ''}{self.message}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``severity`` as its string value)."""
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "question": self.question,
            "branch": self.branch,
            "field": self.field,
        }


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _listing(indices: list[int]) -> str:
    shown = ", ".join(str(i) for i in indices[:_LIST_LIMIT])
    return shown + (", ..." if len(indices) > _LIST_LIMIT else "")


# --------------------------------------------------------------------------- errors


def _meta_errors(store: ReplayStore) -> list[Finding]:
    found = []
    meta = store.meta

    def error(code: str, message: str, field: str) -> None:
        found.append(Finding(Severity.ERROR, code, message, field=field))

    for name in ("model", "benchmark", "source"):
        value = getattr(meta, name)
        if not isinstance(value, str):
            error("meta-type", f"expected a string, got {type(value).__name__}", name)
    if not _is_int(meta.schema_version) or meta.schema_version < 1:
        error("meta-type", f"expected a positive integer, got {meta.schema_version!r}", "schema_version")
    elif meta.schema_version > SCHEMA_VERSION:
        error(
            "schema-version",
            f"schema version {meta.schema_version} is newer than this release supports ({SCHEMA_VERSION})",
            "schema_version",
        )
    try:
        json.dumps(dict(meta.settings), allow_nan=False)
    except (TypeError, ValueError) as exc:
        error("settings-not-json", f"collection settings must be JSON data (str keys, no NaN): {exc}", "settings")
    return found


def _branch_errors(branch: object, qi: int, bi: int) -> list[Finding]:
    def error(code: str, message: str, field: str) -> Finding:
        return Finding(Severity.ERROR, code, message, question=qi, branch=bi, field=field)

    if not isinstance(branch, Branch):
        return [error("type", f"expected a Branch, got {type(branch).__name__}", "branches")]
    found = []
    if not isinstance(branch.probes, tuple):
        found.append(error("type", f"expected a tuple of answers, got {type(branch.probes).__name__}", "probes"))
    else:
        for k, answer in enumerate(branch.probes):
            if not isinstance(answer, str):
                found.append(error("type", f"probe {k}: expected a string, got {type(answer).__name__}", "probes"))
                break
    if not _is_int(branch.tokens):
        found.append(error("type", f"expected an integer, got {type(branch.tokens).__name__}", "tokens"))
    elif branch.tokens < 0:
        found.append(error("negative-tokens", f"token count is negative ({branch.tokens})", "tokens"))
    elif branch.tokens > MAX_INT64:
        found.append(error("too-large", f"token count {branch.tokens} does not fit in 64 bits", "tokens"))
    if not isinstance(branch.final, str):
        found.append(error("type", f"expected a string, got {type(branch.final).__name__}", "final"))
    return found


def _question_errors(q: object, qi: int) -> list[Finding]:
    def error(code: str, message: str, field: str | None) -> Finding:
        return Finding(Severity.ERROR, code, message, question=qi, field=field)

    if not isinstance(q, Question):
        return [error("type", f"expected a Question, got {type(q).__name__}", None)]
    found = []
    if not isinstance(q.id, str) or not q.id:
        found.append(error("type", f"expected a non-empty string, got {q.id!r}", "id"))
    for name in ("text", "gold"):
        value = getattr(q, name)
        if not isinstance(value, str):
            found.append(error("type", f"expected a string, got {type(value).__name__}", name))
    if not _is_int(q.delta) or q.delta <= 0 or q.delta > MAX_INT64:
        found.append(error("bad-delta", f"expected a positive integer (tokens per interval), got {q.delta!r}", "delta"))
    if not isinstance(q.branches, tuple):
        found.append(error("type", f"expected a tuple of branches, got {type(q.branches).__name__}", "branches"))
    elif not q.branches:
        found.append(error("no-branches", "the branch list is empty; a question needs at least one branch", "branches"))
    else:
        for bi, branch in enumerate(q.branches):
            found.extend(_branch_errors(branch, qi, bi))
    return found


def structural_errors(store: ReplayStore) -> list[Finding]:
    """Every violation of the schema's rules (types, ranges, non-empty, unique ids)."""
    found = _meta_errors(store)
    if not isinstance(store.questions, tuple):
        kind = type(store.questions).__name__
        found.append(Finding(Severity.ERROR, "type", f"expected a tuple, got {kind}", field="questions"))
        return found
    if not store.questions:
        found.append(Finding(Severity.ERROR, "no-questions", "the store holds no questions", field="questions"))
    seen: dict[object, int] = {}
    for qi, q in enumerate(store.questions):
        found.extend(_question_errors(q, qi))
        qid = getattr(q, "id", None)
        if isinstance(qid, str):
            if qid in seen:
                found.append(
                    Finding(
                        Severity.ERROR,
                        "duplicate-id",
                        f"duplicate question id {qid!r} (first used by question {seen[qid]})",
                        question=qi,
                        field="id",
                    )
                )
            else:
                seen[qid] = qi
    return found


def ensure_valid(store: ReplayStore, *, path: str | None = None) -> None:
    """Raise :class:`StoreFormatError` for the first structural error (writers call this)."""
    for finding in structural_errors(store):
        raise StoreFormatError(
            f"{finding.message} (refusing to write an invalid store)",
            path=path,
            question=finding.question,
            branch=finding.branch,
            field=finding.field,
        )


# ------------------------------------------------------------------------- warnings


def _warn(code: str, message: str, **where: Any) -> Finding:
    return Finding(Severity.WARNING, code, message, **where)


def _store_warnings(store: ReplayStore) -> list[Finding]:
    found = []
    deltas = Counter(q.delta for q in store.questions)
    if len(deltas) > 1:
        usual = deltas.most_common(1)[0][0]
        odd = next(i for i, q in enumerate(store.questions) if q.delta != usual)
        spread = ", ".join(f"Δ={d} ({n} questions)" for d, n in deltas.most_common())
        found.append(
            _warn(
                "delta-mixed",
                f"the probe interval differs across questions: {spread}; costs are not comparable across them",
                question=odd,
                field="delta",
            )
        )
    widths = Counter(len(q.branches) for q in store.questions)
    if len(widths) > 1:
        usual = widths.most_common(1)[0][0]
        odd = next(i for i, q in enumerate(store.questions) if len(q.branches) != usual)
        spread = ", ".join(f"{n} branches ({k} questions)" for n, k in widths.most_common())
        found.append(
            _warn(
                "branches-mixed",
                f"questions hold different numbers of branches: {spread}; controllers needing N branches may run out",
                question=odd,
                field="branches",
            )
        )
    texts: dict[str, int] = {}
    for qi, q in enumerate(store.questions):
        if not q.text:  # stores built without texts (synthetic, tests) are not duplicates
            continue
        if q.text in texts:
            found.append(
                _warn(
                    "duplicate-text",
                    f"same question text as question {texts[q.text]}; "
                    "a benchmark question counted twice skews accuracy",
                    question=qi,
                    field="text",
                )
            )
        else:
            texts[q.text] = qi
    return found


def _question_warnings(q: Question, qi: int) -> list[Finding]:
    found = []
    # -(-a // b) is ceil(a / b) in exact integer arithmetic.
    too_many = [b for b, br in enumerate(q.branches) if len(br.probes) > -(-br.tokens // q.delta)]
    if too_many:
        found.append(
            _warn(
                "probes-exceed-length",
                f"{len(too_many)} branch(es) have more probes than their length allows "
                f"(K > ceil(tokens / Δ)): branches {_listing(too_many)}; probe or token counts may be wrong",
                question=qi,
                branch=too_many[0],
                field="probes",
            )
        )
    empty = [b for b, br in enumerate(q.branches) if br.tokens == 0]
    if empty:
        found.append(
            _warn(
                "zero-tokens",
                f"{len(empty)} branch(es) have 0 tokens: branches {_listing(empty)}; reading them costs nothing",
                question=qi,
                branch=empty[0],
                field="tokens",
            )
        )
    if q.gold in ("", ERR):
        found.append(
            _warn(
                "gold-suspicious",
                f"the gold answer is {q.gold!r}, which looks like a missing answer rather than a real one",
                question=qi,
                field="gold",
            )
        )
    finals = [br.final for br in q.branches]
    if all(f == ERR for f in finals):
        found.append(
            _warn(
                "all-err",
                f"every branch's final answer is {ERR!r}; answer extraction probably failed for this question",
                question=qi,
                field="final",
            )
        )
    return found


def _gold_warnings(store: ReplayStore) -> list[Finding]:
    """One store-wide finding listing the questions no branch answers correctly.

    Hard questions legitimately have no correct branch, so one line per store keeps
    the signal (a long list often means a gold-answer normalisation mismatch) without
    burying other findings.
    """
    unreached = [qi for qi, q in enumerate(store.questions) if all(br.final != q.gold for br in q.branches)]
    if not unreached:
        return []
    qs = store.questions
    in_probes = [qi for qi in unreached if any(qs[qi].gold in br.probes for br in qs[qi].branches)]
    probes_note = f"; it does appear among the probes of questions {_listing(in_probes)}" if in_probes else ""
    return [
        _warn(
            "gold-unreached",
            f"no branch ends with the gold answer in {len(unreached)} of {len(store.questions)} questions "
            f"({_listing(unreached)}), so answering with a branch's final answer cannot be right there"
            f"{probes_note}; if that is unexpected, check how gold answers were normalised",
            field="gold",
        )
    ]


def validate_store(store: ReplayStore) -> list[Finding]:
    """All findings on ``store``: structural errors first, then semantic warnings.

    Warnings are only computed when the structure is sound, because they assume it.
    """
    errors = structural_errors(store)
    if errors:
        return errors
    found = _store_warnings(store)
    for qi, q in enumerate(store.questions):
        found.extend(_question_warnings(q, qi))
    found.extend(_gold_warnings(store))
    logger.debug("validated %s: %d findings", store.name, len(found))
    return found
