r"""Opt-in answer canonicalisation with ``math-verify``: equivalent answers become one string.

Replay stores grade by exact string, so ``\frac{9\sqrt{23}}{23}`` and
``\frac{9}{23}\sqrt{23}`` are different answers to a vote and to the grader.
:class:`MathCanonicalizer` groups a question's distinct answers into classes of
mathematically equivalent ones (``math_verify.verify``) and writes every member as its
class's representative: the gold answer for the gold's class, otherwise the class's
first member in store order (so the result is deterministic).

Never the default: the published numbers are defined on exact strings. It runs at
collection (``collect.canonicalize = "math"``) or at import
(``autotts store import --canonicalize math``) and is recorded in the store metadata.

Each parse and each comparison is bounded by a timeout (``math-verify`` uses
``SIGALRM``, so this must run on the main thread); an answer that cannot be parsed in
time stays as it is. ``ERR`` is never merged with anything.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from autotts.errors import ConfigError
from autotts.store.schema import ERR, Branch, Question, ReplayStore

log = logging.getLogger(__name__)


def _math_verify() -> Any:
    try:
        import math_verify
    except ImportError:
        raise ConfigError(
            "answer canonicalisation needs the math-verify package: pip install 'autotts[math]'"
        ) from None
    return math_verify


class MathCanonicalizer:
    """Maps answers to canonical representatives of their equivalence classes (see the module docstring)."""

    def __init__(self, timeout: float = 5.0) -> None:
        self._mv = _math_verify()
        self._timeout = max(1, math.ceil(timeout))  # SIGALRM counts whole seconds
        self._parsed: dict[str, Any] = {}
        self._same: dict[tuple[str, str], bool] = {}
        self.timeouts = 0

    def _parse(self, answer: str) -> Any:
        found = self._parsed.get(answer)
        if found is None:
            mv = self._mv
            try:
                found = mv.parse(
                    "\\boxed{" + answer + "}",
                    extraction_config=[mv.LatexExtractionConfig(), mv.ExprExtractionConfig()],
                    parsing_timeout=self._timeout,
                )
            except Exception:  # math-verify raises whatever sympy raises; an unparsable answer stays itself
                found = []
            if not found:
                self.timeouts += 1
            self._parsed[answer] = found
        return found

    def equivalent(self, a: str, b: str) -> bool:
        """True when ``math-verify`` judges ``b`` equal to ``a`` (``a`` as the reference)."""
        if a == b:
            return True
        if ERR in (a, b):
            return False
        key = (a, b)
        same = self._same.get(key)
        if same is None:
            pa, pb = self._parse(a), self._parse(b)
            same = False
            if pa and pb:
                try:
                    same = bool(self._mv.verify(pa, pb, timeout_seconds=self._timeout))
                except Exception:  # a comparison sympy cannot finish counts as "not shown equal"
                    same = False
            self._same[key] = same
        return same

    def _bucket(self, answer: str) -> tuple[str, object]:
        """Where to look for equivalents: numbers by value (6 significant digits), the rest together.

        Comparing every answer with every class would cost a quadratic number of sympy
        calls on questions with hundreds of distinct answers; an answer can only equal
        a number of (nearly) the same value, so numbers are compared within their value
        bucket only. The value is confirmed by ``verify``, never trusted on its own.
        """
        parsed = self._parse(answer)
        for expr in parsed[:1]:
            try:
                if getattr(expr, "is_number", False):
                    value = complex(expr.evalf(15))
                    if value.imag == 0 and math.isfinite(value.real):
                        return ("num", float(f"{value.real:.6g}"))
            except Exception:  # evalf on an odd expression: fall back to the general bucket
                pass
        return ("other", None)

    def mapping(self, gold: str, answers: Iterable[str]) -> dict[str, str]:
        """Canonical form of every answer of one question (gold first, then store order)."""
        reps: dict[tuple[str, object], list[str]] = {}
        out: dict[str, str] = {}
        for a in [gold, *answers]:
            if a in out:
                continue
            if a == ERR:
                out[a] = a
                continue
            bucket = reps.setdefault(self._bucket(a), [])
            for r in bucket:
                if self.equivalent(r, a):
                    out[a] = r
                    break
            else:
                bucket.append(a)
                out[a] = a
        return out


def _answers(q: Question) -> list[str]:
    seen: dict[str, None] = {}
    for b in q.branches:
        for a in b.probes:
            seen.setdefault(a, None)
        seen.setdefault(b.final, None)
    return list(seen)


def canonicalize_questions(questions: Sequence[Question], canon: MathCanonicalizer) -> tuple[tuple[Question, ...], int]:
    """The questions with every answer canonicalised, and how many distinct answers were merged."""
    out = []
    merged = 0
    for q in questions:
        m = canon.mapping(q.gold, _answers(q))
        merged += sum(1 for a, r in m.items() if a != r)
        branches = tuple(Branch(tuple(m[a] for a in b.probes), b.tokens, m[b.final]) for b in q.branches)
        out.append(Question(q.id, q.text, q.gold, q.delta, branches))
    return tuple(out), merged


def canonicalize_store(store: ReplayStore, *, timeout: float = 5.0) -> ReplayStore:
    """``store`` with answers canonicalised by ``math-verify``; the metadata records how."""
    mv = _math_verify()
    canon = MathCanonicalizer(timeout)
    questions, merged = canonicalize_questions(store.questions, canon)
    settings = dict(store.meta.settings)
    settings["canonicalize"] = {
        "method": "math-verify",
        "version": str(getattr(mv, "__version__", "") or _version("math-verify")),
        "timeout_seconds": canon._timeout,
        "merged_answers": merged,
        "unparsed_answers": canon.timeouts,
    }
    log.info("canonicalised %s: %d distinct answers merged", store.name, merged)
    return ReplayStore(replace(store.meta, settings=settings), questions)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return ""
