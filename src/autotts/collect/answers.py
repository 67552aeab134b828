r"""Answer extraction and normalisation: one recipe for gold answers, probes and finals.

A replay store compares answers as exact strings, so whatever turns model text into an
answer string decides every accuracy computed on the store. This module is that one
place:

* :func:`boxed_answers` / :func:`last_boxed` find ``\boxed{…}`` (and ``\fbox{…}``)
  with nested braces (``\boxed{\frac{1}{2}}`` → ``\frac{1}{2}``);
* :func:`take_braced` reads a probe reply, which starts *inside* an opened
  ``\boxed{``: the answer runs up to the matching closing brace;
* :func:`normalize_answer` maps surface variants to one string. ``basic`` trims
  whitespace, enclosing ``$``/``\(…\)`` and a trailing period and collapses inner
  whitespace; ``light`` (the collection default) also drops every space, ``\left`` /
  ``\right``, spacing commands and degree signs and writes ``\dfrac``/``\tfrac`` as
  ``\frac`` — cheap, safe rewrites that fix the most common mismatches with gold;
  ``exact`` only trims. Semantic equivalence (``0.5`` = ``\frac{1}{2}``) is the opt-in
  job of :mod:`autotts.collect.canonical`.

Every function is pure and total: unusable text gives :data:`~autotts.store.ERR`, never
an exception.
"""

from __future__ import annotations

import enum
import re

from autotts.store.schema import ERR

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")


class Normalization(enum.Enum):
    """How much surface variation :func:`normalize_answer` removes."""

    EXACT = "exact"
    BASIC = "basic"
    LIGHT = "light"


def take_braced(text: str) -> str | None:
    r"""The text before the brace that closes an already-open ``{``; None when it never closes.

    ``take_braced(r"\frac{1}{2}} and more") == r"\frac{1}{2}"``. Escaped braces
    (``\{``, ``\}``) count as characters, not as grouping.
    """
    depth = 0
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in "{}":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            if depth == 0:
                return text[:i]
            depth -= 1
        i += 1
    return None


def boxed_answers(text: str) -> list[str]:
    r"""The contents of every complete ``\boxed{…}`` in ``text``, in order (nested braces handled)."""
    found: list[str] = []
    pos = 0
    while True:
        m = _BOX.search(text, pos)
        if m is None:
            return found
        inner = take_braced(text[m.end() :])
        if inner is None:
            return found  # an unclosed box (text cut off): nothing after it can be complete
        found.append(inner)
        pos = m.end() + len(inner) + 1


def last_boxed(text: str) -> str | None:
    r"""The content of the last complete ``\boxed{…}``, or None."""
    found = boxed_answers(text)
    return found[-1] if found else None


_WRAPPERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_SPACING = re.compile(r"\\[,;:! ]|\\q?quad\b|~")
_LEFT_RIGHT = re.compile(r"\\(?:left|right)(?![A-Za-z])\s*")
_DEGREE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree\b")
_FRAC = re.compile(r"\\[dt]frac(?![A-Za-z])")
_TEXT_EMPTY = re.compile(r"\\(?:text|mathrm)\{\s*\}")


_PLAIN = re.compile(r"[^\s\\$~^°]*")
"""Text no rule below changes unless it ends with a period: no whitespace, ``\\``, ``$``, ``~``, ``^``, ``°``."""


def normalize_answer(answer: str, style: Normalization | str = Normalization.LIGHT) -> str:
    """``answer`` in the chosen normal form (see the module docstring); '' stays ''."""
    if style.__class__ is not Normalization:
        style = Normalization(style)
    s = answer.strip()
    if style is Normalization.EXACT:
        return s
    # Most answers (``42``, ``x=3``) hold nothing to rewrite: skip the rules (a live session
    # normalises every probe's answer between two model calls).
    if _PLAIN.fullmatch(s) is not None and not s.endswith("."):
        return s
    return _normalize(s, style)


def _normalize(s: str, style: Normalization) -> str:
    """The rules of :func:`normalize_answer` applied to stripped text."""
    changed = True
    while changed:  # "$\(x\)$." — peel wrappers and a final period in any order
        changed = False
        if s.endswith(".") and not s.endswith("..."):
            s, changed = s[:-1].rstrip(), True
        for left, right in _WRAPPERS:
            if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
                s, changed = s[len(left) : len(s) - len(right)].strip(), True
    s = " ".join(s.split())
    if style is Normalization.LIGHT:
        s = _SPACING.sub("", s)
        s = _LEFT_RIGHT.sub("", s)
        s = _DEGREE.sub("", s)
        s = _FRAC.sub(r"\\frac", s)
        s = _TEXT_EMPTY.sub("", s)
        s = s.replace(" ", "")
    return s


def answer_or_err(answer: str | None, style: Normalization | str = Normalization.LIGHT) -> str:
    """The normalised answer, or ``ERR`` when there is none or it normalises to nothing."""
    if answer is None:
        return ERR
    s = normalize_answer(answer, style)
    return s if s else ERR


def extract_final(text: str, style: Normalization | str = Normalization.LIGHT) -> str:
    r"""A finished branch's answer: its last ``\boxed{…}``, normalised; ``ERR`` without one."""
    return answer_or_err(last_boxed(text), style)


def extract_probe(reply: str, style: Normalization | str = Normalization.LIGHT) -> str:
    r"""A probe's answer: the reply (which starts inside ``\boxed{``) up to the matching brace; else ``ERR``."""
    return answer_or_err(take_braced(reply), style)


def normalize_gold(gold: str, style: Normalization | str = Normalization.LIGHT) -> str:
    r"""A benchmark's gold answer in the same normal form (a boxed gold is unboxed first)."""
    inner = last_boxed(gold)
    return answer_or_err(inner if inner is not None else gold, style)
