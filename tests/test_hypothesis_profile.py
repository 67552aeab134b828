"""The suite's property tests are reproducible: the same examples on every run unless asked otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent

PROBE = """
from hypothesis import given, strategies as st

SEEN = []


@given(st.integers())
def test_draws(x):
    SEEN.append(x)


def test_report():
    print("DRAWN", SEEN[:40])
"""


def test_default_profile_is_derandomized() -> None:
    if os.environ.get("AUTOTTS_HYPOTHESIS", "deterministic") != "deterministic":
        pytest.skip("random exploration was asked for with AUTOTTS_HYPOTHESIS")
    assert settings.default.derandomize is True
    assert settings.default.database is None
    assert settings.default.deadline is None


def _drawn(tmp_path: Path, env_value: str | None) -> str:
    # A copy of the real conftest beside a probe test: the examples a fresh pytest process draws.
    tmp_path.mkdir()
    (tmp_path / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text(encoding="utf-8"))
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "AUTOTTS_HYPOTHESIS"}
    if env_value is not None:
        env["AUTOTTS_HYPOTHESIS"] = env_value
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return next(line[line.index("DRAWN") :] for line in proc.stdout.splitlines() if "DRAWN" in line)


def test_two_runs_draw_the_same_examples_and_explore_draws_others(tmp_path: Path) -> None:
    first = _drawn(tmp_path / "a", None)
    second = _drawn(tmp_path / "b", None)
    assert first == second
    explored = [_drawn(tmp_path / f"e{i}", "explore") for i in range(2)]
    assert explored[0] != explored[1]  # 40 random integers drawn twice alike: practically never


def test_an_unknown_profile_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text(encoding="utf-8"))
    (tmp_path / "test_probe.py").write_text("def test_x():\n    pass\n")
    env = {**os.environ, "AUTOTTS_HYPOTHESIS": "fast"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 4
    assert "AUTOTTS_HYPOTHESIS must be one of 'deterministic', 'explore', 'mutation'" in proc.stdout + proc.stderr


CAPPED = """
from hypothesis import given, settings, strategies as st

SEEN = []


@settings(max_examples=400)
@given(st.integers())
def test_draws(x):
    SEEN.append(x)


def test_report():
    print("DRAWN", len(SEEN), SEEN[:40])
"""


def test_the_mutation_profile_caps_even_explicit_example_counts(tmp_path: Path) -> None:
    # bench/mutation.py runs the selected tests once per mutant: a test asking for 400
    # examples must run at most MUTATION_EXAMPLES of them, the same ones every time.
    (tmp_path / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text(encoding="utf-8"))
    (tmp_path / "test_probe.py").write_text(CAPPED)
    env = {**os.environ, "AUTOTTS_HYPOTHESIS": "mutation"}
    outputs = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(tmp_path)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        outputs.append(next(line for line in proc.stdout.splitlines() if "DRAWN" in line))
    count = int(outputs[0].split()[1])
    assert 1 <= count <= 25
    assert outputs[0] == outputs[1]
