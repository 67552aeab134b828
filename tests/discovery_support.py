"""Small hand-built stores and scripted controller sources for the discovery tests."""

from __future__ import annotations

import random
from pathlib import Path

from autotts.store.schema import Branch, Question, ReplayStore, StoreMeta


def make_store(
    model: str = "tiny-model",
    benchmark: str = "tiny-bench",
    *,
    n_questions: int = 6,
    n_branches: int = 16,
    seed: int = 0,
    p_correct: float = 0.55,
    delta: int = 100,
    text_prefix: str = "Question",
) -> ReplayStore:
    """A synthetic store whose branches drift toward their final answer as they deepen.

    Each question's gold answer is the most likely final answer, so voting over more
    branches helps, and probing early tells something about the final answer.
    """
    rng = random.Random(seed)
    questions = []
    for qi in range(n_questions):
        gold = f"{qi + 1}{rng.randint(0, 9)}"
        wrongs = [f"{qi + 1}{x}" for x in range(10) if f"{qi + 1}{x}" != gold][:3]
        branches = []
        for _ in range(n_branches):
            final = gold if rng.random() < p_correct else rng.choice(wrongs)
            k = rng.randint(0, 6)
            probes = []
            for j in range(k):
                if j == 0 and rng.random() < 0.5:
                    probes.append("ERR")
                elif rng.random() < 0.4 + 0.1 * j:
                    probes.append(final)
                else:
                    probes.append(rng.choice([gold, *wrongs]))
            tokens = k * delta + rng.randint(1, delta)
            branches.append(Branch(tuple(probes), tokens, final))
        questions.append(Question(str(qi), f"{text_prefix} {qi}: what is {qi} + {seed}?", gold, delta, tuple(branches)))
    return ReplayStore(StoreMeta(model, benchmark, source="test"), tuple(questions))


def save_json_store(store: ReplayStore, path: Path) -> Path:
    """Write a store as AutoTTS JSON (the format every reader accepts)."""
    from autotts.store import save_store

    path.parent.mkdir(parents=True, exist_ok=True)
    return save_store(store, path)


GOOD = '''
from collections import Counter


class Controller:
    """Open a few branches, advance them, stop once the finished answers agree."""

    def __init__(self, beta=1.0):
        self.beta = min(1.0, max(0.0, float(beta)))
        self.settings = self.schedule(self.beta)

    @classmethod
    def schedule(cls, beta):
        return {"width": max(1, round(2 + 10 * beta)), "agree": max(1, round(1 + 3 * beta))}

    def solve(self, session):
        s = self.settings
        finals = []
        for _ in range(s["width"]):
            r = session.open()
            if r is None:
                break
            if r.finished:
                finals.append(r.answer)
        while session.alive():
            for b in session.alive():
                r = session.advance(b)
                if r.finished:
                    finals.append(r.answer)
            if finals:
                top, n = Counter(finals).most_common(1)[0]
                if n >= s["agree"]:
                    return top
        if not finals:
            return None
        return Counter(finals).most_common(1)[0][0]
'''

SYNTAX_ERROR = """
class Controller:
    def __init__(self, beta=1.0)
        self.beta = beta
"""

INFINITE_LOOP = """
class Controller:
    def __init__(self, beta=1.0):
        self.beta = beta

    @staticmethod
    def schedule(beta):
        return {}

    def solve(self, session):
        x = 0
        while True:
            x += 1
"""

MEMORY_HOG = """
class Controller:
    def __init__(self, beta=1.0):
        self.beta = beta

    @staticmethod
    def schedule(beta):
        return {}

    def solve(self, session):
        hog = []
        while True:
            hog.append(bytearray(50_000_000))
"""

FORBIDDEN_IMPORT = """
import os


class Controller:
    def __init__(self, beta=1.0):
        self.beta = beta

    @staticmethod
    def schedule(beta):
        return {}

    def solve(self, session):
        return os.environ.get("X")
"""

# Reads the session's private state through format fields, which static checks do not
# see (the dunder is assembled at run time), and decides how many branches to read
# from it. It does not depend on how the session names its internals. Judged, it can
# reach no hidden data, but its reads depend on its own process: the leak test fails it.
PEEKER = """
class Controller:
    def __init__(self, beta=1.0):
        self.beta = beta

    @staticmethod
    def schedule(beta):
        return {"n": 1 + round(3 * beta)}

    def solve(self, session):
        us = "_" * 2
        names = ("{0." + us + "slots" + us + "}").format(session)
        # Under the judge the private state holds nothing hidden; the session's own address
        # (different in every process) is what makes this controller's actions wander.
        hidden = "{0!r}".format(session)
        for name in names.replace("(", " ").replace(")", " ").replace("'", " ").replace(",", " ").split():
            try:
                hidden += ("{0." + name + "}").format(session)
            except Exception:
                pass
        n = 1 + sum(ord(c) for c in hidden) % 4
        answers = []
        for _ in range(n):
            r = session.read()
            if r is None:
                break
            answers.append(r.answer)
        return max(set(answers), key=answers.count) if answers else None
"""

# Spends less at high beta than at low beta.
NON_MONOTONE = """
class Controller:
    def __init__(self, beta=1.0):
        self.beta = beta
        self.settings = self.schedule(beta)

    @classmethod
    def schedule(cls, beta):
        return {"n": max(1, round(12 - 11 * beta))}

    def solve(self, session):
        answers = []
        for _ in range(self.settings["n"]):
            r = session.read()
            if r is None:
                break
            answers.append(r.answer)
        best = None
        for a in answers:
            if best is None or answers.count(a) > answers.count(best):
                best = a
        return best
"""


def fenced(code: str, prose: str = "Here is my controller.") -> str:
    """An explorer reply: some prose and the code in a python fence."""
    return f"{prose}\n\n```python\n{code.strip()}\n```\n"


def toml_value(value: object) -> str:
    """A TOML literal for the simple values the test configs use."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"cannot write {value!r} as TOML")


def write_config(path: Path, top: dict[str, object], tables: dict[str, dict[str, object]]) -> Path:
    """Write a discovery config from top-level keys and tables."""
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    for name, table in tables.items():
        lines.append(f"\n[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tiny_setup(tmp: Path, *, heldout_prefix: str = "HELDOUT-SECRET") -> tuple[Path, Path]:
    """A search store and a held-out store (distinctive names and question texts) under ``tmp``."""
    # AutoTTS JSON files name their store by path: <model>/<benchmark>.json.
    search = save_json_store(
        make_store("tiny-model", "search-bench", seed=1), tmp / "stores" / "tiny-model" / "search-bench.json"
    )
    heldout = save_json_store(
        make_store("secret-model", "secret-bench", seed=2, text_prefix=heldout_prefix),
        tmp / "stores" / "secret-model" / "secret-bench.json",
    )
    return search, heldout


def fast_tables(search: Path, heldout: Path | None, **overrides: dict[str, object]) -> dict[str, dict[str, object]]:
    """Config tables tuned for quick tests: few β, few runs, tight sandbox limits."""
    tables: dict[str, dict[str, object]] = {
        "stores": {"search": [search], **({"heldout": [heldout]} if heldout else {})},
        "evaluation": {"betas": [0.0, 0.5, 1.0], "search_runs": 3, "final_runs": 4, "seeds": ["sc", "cmc"]},
        "sandbox": {"cpu_seconds": 2.0, "wall_seconds": 8.0, "memory_mb": 400, "final_wall_seconds": 60.0},
        "checks": {"leak_runs": 2},
    }
    for name, table in overrides.items():
        tables[name] = {**tables.get(name, {}), **table}
    return tables


ONE_LINE_BODY = """
class Controller:
    def __init__(self, beta=1.0):
        self.beta = beta

    @classmethod
    def schedule(cls, beta):
        return {{}}

    def solve(self, session):
        {line}
        return None
"""
ONE_LINE_AT = 11
"""The source line of ``{line}`` in :data:`ONE_LINE_BODY` (one more per header line)."""


def body(line: str, header: str = "") -> str:
    """A minimal controller whose ``solve`` runs ``line``: one construct under the static checks."""
    return header + ONE_LINE_BODY.format(line=line)
