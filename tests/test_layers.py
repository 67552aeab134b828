"""Imports point one way: store → env → controllers → engine → evaluation → applications → cli.

Every module of the package is parsed (no import is executed) and every import statement
is checked, at module level and inside functions alike, including ``TYPE_CHECKING``
blocks: a lower layer never names a higher one. Same-layer packages may use each other,
but never in a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "autotts"

#: Rank of each top-level part of ``autotts``: an import may only point to an equal or lower rank.
LAYERS: dict[str, int] = {
    # the foundation every layer may use
    "errors": 0,
    "_atomic": 0,
    "_toml": 0,
    "voting": 0,
    # data and the HTTP client
    "store": 1,
    "llm": 1,
    # the replay decision process and the session
    "env": 2,
    "controllers": 3,
    "engine": 4,
    "evaluation": 5,
    # applications built on evaluation
    "discovery": 6,
    "collect": 6,
    "online": 6,
    "report": 6,
    "demo": 6,
    "testing": 6,
    "cli": 7,
}


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def part_of(module: str) -> str | None:
    """The top-level part (``store``, ``cli``, ...) of an ``autotts.*`` module; None for the root package."""
    parts = module.split(".")
    if parts[0] != "autotts" or len(parts) < 2:
        return None
    return parts[1]


def imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every ``autotts`` module named by an import in the file, with its line (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:  # ``from autotts import cli`` names a module too
                yield f"{target}.{alias.name}", node.lineno


def backwards_imports() -> list[str]:
    problems = []
    for module, path in modules():
        here = part_of(module)
        for target, line in imports(module, path):
            there = part_of(target)
            if there is None or there not in LAYERS or target == module:
                continue
            if here is None:  # the root package: a lazy facade over the public API, never the CLI
                if there == "cli":
                    problems.append(f"{path.relative_to(SRC)}:{line}: the root package imports {target}")
                continue
            if here not in LAYERS:
                problems.append(f"{path.relative_to(SRC)}: part {here!r} has no layer in tests/test_layers.py")
                continue
            if LAYERS[there] > LAYERS[here] or (here == "testing" and there == "cli"):
                problems.append(
                    f"{path.relative_to(SRC)}:{line}: {here} (layer {LAYERS[here]}) imports {target} "
                    f"(layer {LAYERS[there]})"
                )
    return problems


def part_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in modules():
        here = part_of(module)
        if here is None:
            continue
        for target, _ in imports(module, path):
            there = part_of(target)
            if there is not None and there in LAYERS and there != here:
                graph.setdefault(here, set()).add(there)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found = []
    for start in sorted(graph):
        stack = [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    found.append([*trail, start])
                elif nxt not in trail and nxt > start:
                    stack.append((nxt, [*trail, nxt]))
    return found


def test_every_import_points_down_the_layers() -> None:
    assert list(modules()), "no modules found: is the source tree where the test expects it?"
    problems = backwards_imports()
    assert not problems, "backwards imports:\n" + "\n".join(problems)


def test_no_two_parts_import_each_other() -> None:
    found = cycles(part_graph())
    assert not found, "import cycles between parts of autotts: " + "; ".join(" → ".join(c) for c in found)


def test_every_part_has_a_layer() -> None:
    parts = {part_of(m) for m, _ in modules()} - {None}
    assert parts <= set(LAYERS), f"parts without a layer: {sorted(p for p in parts if p not in LAYERS)}"


def test_the_checker_sees_imports_inside_functions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "autotts"
    (pkg / "store").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "store" / "__init__.py").write_text("")
    (pkg / "store" / "bad.py").write_text("def f():\n    from autotts.evaluation import evaluate\n")
    (pkg / "store" / "rel.py").write_text("from ..cli import main\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["_"]), "SRC", tmp_path)
    monkeypatch.setattr(__import__(__name__, fromlist=["_"]), "PACKAGE", pkg)
    problems = backwards_imports()
    assert any("bad.py:2: store (layer 1) imports autotts.evaluation" in p for p in problems)
    assert any("rel.py:1: store (layer 1) imports autotts.cli" in p for p in problems)


def test_cycles_are_found() -> None:
    assert cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]
    assert cycles({"a": {"b"}, "b": {"c"}}) == []
