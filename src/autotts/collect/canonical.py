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
time stays as it is, and so does one whose braces do not nest (inside ``\boxed{...}``
its first unmatched ``}`` would cut it short). ``ERR`` is never merged with anything.

Speed: ``verify`` costs ~0.1 s per pair (sympy ``simplify`` and set algebra), and small
models write hundreds of distinct garbage answers per question. Two filters avoid
calls whose answer is known beforehand, without changing any result: numbers are
compared only within their value bucket, and :func:`_value_key` evaluates plain
expressions (and finite sets of them) at one fixed positive point, so two answers
whose values differ there are not equal under any comparison ``verify`` makes.
"""

from __future__ import annotations

import hashlib
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
        self._keys: dict[str, tuple[tuple[complex, ...], tuple[str, ...]] | None] = {}
        self.timeouts = 0
        self.unbalanced = 0
        self.verify_calls = 0
        self.filtered = 0
        self.use_filter = True  # off only to compare with the unfiltered reference (tests, bench)

    def _parse(self, answer: str) -> Any:
        found = self._parsed.get(answer)
        if found is None:
            mv = self._mv
            if not _balanced(answer):
                # inside ``\boxed{...}`` the first unmatched ``}`` would end the answer early
                # (``1}^{25}(1+2k)`` would parse as ``1``): a truncated answer stays itself
                self.unbalanced += 1
                self._parsed[answer] = found = []
                return found
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
            if pa and pb and self.use_filter and self._surely_different(a, b):
                self.filtered += 1
            elif pa and pb:
                self.verify_calls += 1
                try:
                    same = bool(self._mv.verify(pa, pb, timeout_seconds=self._timeout))
                except Exception:  # a comparison sympy cannot finish counts as "not shown equal"
                    same = False
            self._same[key] = same
        return same

    def _key(self, answer: str) -> tuple[tuple[complex, ...], tuple[str, ...]] | None:
        if answer not in self._keys:
            self._keys[answer] = _value_key(self._parse(answer))
        return self._keys[answer]

    def _surely_different(self, a: str, b: str) -> bool:
        """True when ``verify(a, b)`` cannot hold: values differ at the test point, strings differ."""
        ka, kb = self._key(a), self._key(b)
        if ka is None or kb is None:
            return False
        (va, sa), (vb, sb) = ka, kb
        if any(x and x == y for x in sa for y in sb):  # verify's string-to-string fallback
            return False
        return not (_covered(va, vb) and _covered(vb, va))

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


def _balanced(answer: str) -> bool:
    """Braces nest properly (every ``}`` closes an earlier ``{``, none left open)."""
    depth = 0
    for ch in answer:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


_REAL_SYMBOL = {
    "commutative": True,
    "complex": True,
    "extended_real": True,
    "finite": True,
    "hermitian": True,
    "imaginary": False,
    "infinite": False,
    "real": True,
}
_RTOL = 1e-5  # far wider than verify's float rounding (6 decimals) and evaluation error (30 digits)


def _point(name: str) -> float:
    """A fixed value in [0.5, 3) for the symbol ``name`` (same name, same value, in every process)."""
    h = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return 0.5 + 2.5 * h / 2**64


def _value_key(parsed: Sequence[Any]) -> tuple[tuple[complex, ...], tuple[str, ...]] | None:
    r"""The answer's values at the test point and its extracted strings, or None when no filter applies.

    Sound only for answers that ``verify`` compares by value: one expression that is
    an ordinary ``Expr`` (no Symbol alone — ``verify`` matches ``\text{ab}`` with
    ``a*b`` —, no relation, interval, tuple or matrix, no undefined function, no
    percentage, only real symbols without further assumptions), or a finite set of
    them. If ``verify`` finds two such answers equal (structurally, numerically,
    by ``simplify``, or as sets), their value sets at any real point coincide.
    """
    import sympy

    exprs = [p for p in parsed if not isinstance(p, str)]
    strings = tuple(p.strip() for p in parsed if isinstance(p, str))
    if len(exprs) != 1:
        return None
    top = exprs[0]
    elements = top.args if isinstance(top, sympy.FiniteSet) else (top,)
    values = []
    for e in elements:
        if (
            not isinstance(e, sympy.Expr)
            or isinstance(e, (sympy.Symbol, sympy.MatrixExpr))
            or e.has(sympy.UnevaluatedExpr)
            or e.atoms(sympy.core.function.AppliedUndef)
        ):
            return None
        point = {}
        for s in e.free_symbols:
            if not isinstance(s, sympy.Symbol) or not set(s.assumptions0.items()) <= _REAL_SYMBOL.items():
                return None
            point[s] = sympy.Float(_point(s.name), 30)
        try:
            v = complex(e.evalf(30, subs=point))
        except Exception:  # sympy cannot give a number here: no filter for this answer
            return None
        if not (math.isfinite(v.real) and math.isfinite(v.imag)):
            return None
        values.append(v)
    return tuple(values), strings


def _covered(xs: Sequence[complex], ys: Sequence[complex]) -> bool:
    """Every value of ``xs`` is within tolerance of some value of ``ys``."""
    return all(any(abs(x - y) <= _RTOL * max(1.0, abs(x), abs(y)) for y in ys) for x in xs)


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
        "unbalanced_answers": canon.unbalanced,
    }
    log.info("canonicalised %s: %d distinct answers merged", store.name, merged)
    return ReplayStore(replace(store.meta, settings=settings), questions)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return ""
