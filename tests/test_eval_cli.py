"""What ``autotts eval`` and the root command accept and refuse, as a user meets it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from autotts import __version__
from autotts.cli.main import main
from autotts.controllers.base import registry
from autotts.controllers.spec import ControllerSpec, controller_catalog
from autotts.errors import ConfigError, ControllerSpecError
from autotts.evaluation import evaluate
from autotts.evaluation.sweep import ResultStream, SweepConfig
from autotts.testing import tiny_store, write_tiny_store


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return write_tiny_store(tmp_path / "m" / "tiny.parquet", questions=3, branches=8)


# ----------------------------------------------------------------- root command


def test_version_and_short_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"autotts {__version__}"
    for argv in (["-h"], ["eval", "-h"], ["store", "import", "-h"], ["controllers", "-h"], ["demo", "-h"]):
        code, out, _ = run(argv, capsys)
        assert code == 0 and "Usage:" in out, argv


def _command_paths() -> list[list[str]]:
    import typer.main

    from autotts.cli.app import app

    paths: list[list[str]] = []

    def walk(command: object, prefix: list[str]) -> None:
        paths.append(prefix)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "autotts")
def test_every_command_takes_short_help(path: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([*path, "-h"], capsys)
    assert code == 0 and "Usage:" in out


def test_controllers_lists_every_registered_controller(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["controllers", "--json"], capsys)
    assert code == 0
    listed = {c["name"]: c for c in json.loads(out)}
    assert set(listed) == set(registry())
    assert {"name": "n", "default": 64, "required": False} in listed["sc"]["parameters"]
    assert all(c["description"] for c in listed.values())
    code, out, _ = run(["controllers"], capsys)
    assert code == 0 and "max_samples=64, threshold=0.95" in out
    assert [c.name for c in controller_catalog()] == sorted(registry())


# ------------------------------------------------------- controller parameters


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("asc:threshold=2", "threshold is a probability and must be in [0, 1]"),
        ("asc:threshold=nan", "threshold=nan is not a finite number"),
        ("sc:n=8,n=16", "parameter 'n' is given twice"),
        ("cmc:beta=1.5", "beta must be a number in [0, 1]"),
    ],
)
def test_bad_controller_parameters(store: Path, capsys: pytest.CaptureFixture[str], spec: str, fragment: str) -> None:
    code, _, err = run(["eval", "--store", str(store), "-c", spec, "--runs", "1"], capsys)
    assert code == 2 and fragment in err and "Traceback" not in err
    with pytest.raises(ControllerSpecError, match=r"\w"):  # the library refuses it the same way
        evaluate(tiny_store(questions=2), spec, runs=1, backend="serial")


def test_threshold_checked_by_the_controller_itself() -> None:
    cls = registry()["asc"]
    with pytest.raises(ValueError, match="threshold"):
        cls(threshold=float("nan"))


def test_spec_beta_together_with_beta_values(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["eval", "--store", str(store), "-c", "cmc:beta=0.5", "--beta", "0,1"], capsys)
    assert code == 2 and "cmc(beta=0.5) fix β in the controller spec" in err
    with pytest.raises(ConfigError, match="drop one of them"):
        evaluate(tiny_store(questions=2), "cmc:beta=0.5", betas=[0.0, 1.0], runs=1, backend="serial")


def test_width_beyond_the_store_warns(
    store: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        code, _, _ = run(["eval", "--store", str(store), "-c", "sc:n=16", "--runs", "1", "--backend", "serial"], capsys)
    assert code == 0
    assert "n=16 exceeds the 8 branches per question" in caplog.text
    assert ControllerSpec.parse("sc:n=8").width_warning(8, "s") is None


# ------------------------------------------------------------------ --json file


def test_json_onto_an_existing_file_needs_resume_or_force(store: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "r.json"
    base = ["eval", "--store", str(store), "--runs", "2", "--backend", "serial", "--json", str(out)]
    assert run([*base, "-c", "sc:n=2"], capsys)[0] == 0
    before = out.read_text()
    code, _, err = run([*base, "-c", "sc:n=4"], capsys)
    assert code == 2 and "exists already; pass --resume to continue it, --force to overwrite it" in err
    assert out.read_text() == before  # untouched
    assert run([*base, "-c", "sc:n=4", "--force"], capsys)[0] == 0
    assert [r["params"]["n"] for r in json.loads(out.read_text())] == [4]
    code, _, err = run([*base, "-c", "sc:n=4", "--force", "--resume"], capsys)
    assert code == 2 and "pass one of them" in err


@pytest.mark.parametrize("where", ["directory", "under-a-file", "read-only"])
def test_unwritable_json_target_is_refused_before_any_cell(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    if where == "directory":
        target, fragment = tmp_path, "it is a directory"
    elif where == "under-a-file":
        (tmp_path / "plain").write_text("x")
        target, fragment = tmp_path / "plain" / "sub" / "r.json", "is a file, not a directory"
    else:
        # chmod does not stop root; /sys is read-only for everybody.
        target, fragment = Path("/sys/autotts-results.json"), "is not writable"
        if not Path("/sys").is_dir():
            pytest.skip("no /sys: no directory that even root cannot write to")
    # A controller that would fail if any cell ran: the refusal must come first.
    bad = tmp_path / "boom.py"
    bad.write_text("class Boom:\n    def solve(self, s):\n        raise RuntimeError('ran')\n")
    code, _, err = run(["eval", "--store", str(store), "-c", f"{bad}:Boom", "--json", str(target)], capsys)
    assert code == 2, err
    assert fragment in err and "Traceback" not in err and "RuntimeError" not in err
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(ConfigError, match=fragment):
        ResultStream(target)


# ------------------------------------------------------------------ sweep merge


def test_merge_lays_options_over_a_sweep_file(tmp_path: Path) -> None:
    sweep = tmp_path / "s.toml"
    sweep.write_text('stores = ["a"]\ncontrollers = ["sc"]\nbetas = [0.5]\nruns = 7\nbackend = "serial"\n')
    base = SweepConfig.load(sweep)
    merged = base.merge(stores=["b"], controllers=None, betas=(), runs=None, backend="processes", workers=2)
    assert merged.stores == ("b", "a") and merged.controllers == ("sc",)
    assert merged.betas == (0.5,) and merged.runs == 7 and merged.backend == "processes" and merged.workers == 2
    assert base.merge(betas=[0.0, 1.0]).betas == (0.0, 1.0)
    with pytest.raises(ConfigError, match="--address only applies"):
        base.merge(address="127.0.0.1:1")
    with pytest.raises(ConfigError, match="preset"):
        base.merge(preset="paper-main")
    with pytest.raises(ConfigError, match="positive number of seconds"):
        base.merge(cell_timeout=0)


# ------------------------------------------------------------ user controllers

CRASH = """class Crash:
    def solve(self, session):
        session.read()
        return 1 / 0
"""


@pytest.mark.parametrize("backend", ["serial", "processes"])
def test_a_crashing_controller_names_its_file_and_line(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    f = tmp_path / "crash.py"
    f.write_text(CRASH)
    argv = ["eval", "--store", str(store), "-c", f"{f}:Crash", "-c", "sc:n=1", "--runs", "2", "--backend", backend]
    code, _, err = run(argv, capsys)
    assert code == 1
    assert f"{f} line 4 in solve: division by zero" in err
    assert "Traceback" not in err
    code, _, err = run(["--debug", *argv], capsys)
    assert code == 1
    assert "Traceback (most recent call last)" in err and 'crash.py", line 4, in solve' in err


def test_a_non_string_answer_is_refused(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "number.py"
    f.write_text("class Number:\n    def solve(self, session):\n        return int(session.read().answer)\n")
    code, _, err = run(
        ["eval", "--store", str(store), "-c", f"{f}:Number", "--runs", "1", "--backend", "serial"], capsys
    )
    assert code == 1
    assert "returned int" in err and "not a string" in err and "question 0 (run 0)" in err


# ------------------------------------------------------------------- --resume


def test_resume_refuses_another_store_under_the_same_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m" / "tiny.parquet"
    write_tiny_store(path, seed=0, questions=3, branches=8)
    out = tmp_path / "r.json"
    base = ["eval", "--store", str(path), "--runs", "2", "--backend", "serial", "--json", str(out)]
    assert run([*base, "-c", "sc:n=1"], capsys)[0] == 0
    # Other data, same model/benchmark name: the old numbers must not be reported for it.
    write_tiny_store(path, seed=5, questions=3, branches=8, benchmark="seed0")
    code, _, err = run([*base, "-c", "sc:n=1", "-c", "sc:n=3", "--resume"], capsys)
    assert code == 2
    assert "was computed on other data than the store tiny-large/seed0 now holds" in err
    assert len(json.loads(out.read_text())) == 1  # the file is left as it was


def test_resume_refuses_records_of_an_edited_controller_file(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "first.py"
    f.write_text("class First:\n    def solve(self, session):\n        return session.read().answer\n")
    out = tmp_path / "r.json"
    argv = ["eval", "--store", str(store), "-c", f"{f}:First", "--runs", "2", "--backend", "serial", "--json", str(out)]
    assert run(argv, capsys)[0] == 0
    code, _, err = run([*argv, "--resume"], capsys)
    assert code == 0 and "resuming: 1 of 1 cells" in err  # unchanged file: the cell is reused
    f.write_text("class First:\n    def solve(self, session):\n        return None\n")
    code, _, err = run([*argv, "--resume"], capsys)
    assert code == 2 and "computed with another version of" in err and "first.py" in err


def test_resume_refuses_a_file_of_another_sweep(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = write_tiny_store(tmp_path / "o" / "other.parquet", seed=9, questions=3, branches=8)
    out = tmp_path / "r.json"
    tail = ["-c", "sc:n=1", "--runs", "2", "--backend", "serial", "--json", str(out)]
    assert run(["eval", "--store", str(other), *tail], capsys)[0] == 0
    code, _, err = run(["eval", "--store", str(store), *tail, "--resume"], capsys)
    assert code == 2 and "belongs to another sweep" in err
