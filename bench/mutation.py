"""Mutation score of the modules where a silent change corrupts numbers or security.

Runs mutmut (``pip install -e '.[mutation]'``) once per module group, each in its own
scratch copy of the repository (``src/``, ``tests/``, ``pyproject.toml``), with only
that group's files mutated and only the tests that exercise them selected, so that a
2-core machine gets through a group in minutes rather than hours. mutmut itself then
runs, for each mutant, only the selected tests that reached the mutated function.

The tests run under the ``mutation`` hypothesis profile (``AUTOTTS_HYPOTHESIS=mutation``,
tests/conftest.py: derandomized, every property test capped at 25 examples), so that a
mutant of a hot function costs seconds rather than minutes. Every mutant that survives
is then re-checked (``--recheck``, on by default) with all of the group's tests under the
suite's own profile (full example counts) and with the mutated sources on
``PYTHONPATH``, so that tests that run ``autotts`` in a subprocess see the mutant too;
a mutant those tests kill counts as killed ("killed on re-check").

Prints, per group, the counts by status and the score ``killed / (killed + survived)``
(timeouts count as killed, as mutmut does; mutants no selected test reaches count as
survived unless the re-check kills them), then the diff of every surviving mutant, for
triage in ``docs/testing.md``. Not part of the test suite: it takes a long time; run it
under ``nice -n 19`` on a shared machine.

    .venv/bin/python bench/mutation.py --list
    nice -n 19 .venv/bin/python bench/mutation.py voting selection [--jobs 2] [--workdir DIR] [--json OUT]
    nice -n 19 .venv/bin/python bench/mutation.py all
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Group:
    """Files mutated together and the tests that exercise them.

    ``recheck`` names slow tests (the shared-data grids) that only the re-check of a
    surviving mutant runs, besides ``tests``: run for every mutant, they would cost hours.
    A test file is added to the re-check; a test id (``file::name``) of a file in
    ``tests`` is deselected from the mutmut run (its file runs whole in the re-check).
    """

    files: tuple[str, ...]
    tests: tuple[str, ...]
    recheck: tuple[str, ...] = ()


GROUPS: dict[str, Group] = {
    "voting": Group(
        ("src/autotts/voting.py",),
        ("tests/test_voting.py", "tests/test_controllers_reference.py", "tests/test_engine_tables.py"),
    ),
    "selection": Group(
        ("src/autotts/discovery/selection.py",),
        ("tests/test_discovery_selection.py", "tests/test_discovery_prompt.py"),
    ),
    "history": Group(
        ("src/autotts/discovery/history.py", "src/autotts/_atomic.py"),
        ("tests/test_discovery_rundir.py", "tests/test_discovery_rundir_layout.py", "tests/test_discovery_prompt.py"),
    ),
    "process": Group(
        ("src/autotts/env/process.py",),
        ("tests/test_process.py", "tests/test_process_contract.py"),
    ),
    "session": Group(
        ("src/autotts/env/session.py",),
        (
            "tests/test_session.py",
            "tests/test_session_contract.py",
            "tests/test_engine_session.py",
            "tests/test_process.py",
        ),
    ),
    "controllers": Group(
        (
            "src/autotts/controllers/self_consistency.py",
            "src/autotts/controllers/adaptive.py",
            "src/autotts/controllers/early_stopping.py",
            "src/autotts/controllers/parallel_probe.py",
            "src/autotts/controllers/cmc.py",
            "src/autotts/controllers/consistency_exit.py",
            "src/autotts/controllers/wide_commit.py",
        ),
        (
            "tests/test_controllers_reference.py",
            "tests/test_controllers_cmc.py",
            "tests/test_controllers_adaptations.py",
            "tests/test_controllers_properties.py",
            "tests/test_controllers_beta.py",
            "tests/test_controllers_compat.py",
            "tests/test_kernel_edges.py",
            # built-ins run on kernels; this compares each Python controller with its kernel
            "tests/test_engine_exact.py",
        ),
        recheck=("tests/test_controllers_compat.py::test_file_controllers_reproduce_the_self_check",),
    ),
    "dispatch": Group(
        ("src/autotts/engine/dispatch.py", "src/autotts/engine/__init__.py"),
        ("tests/test_engine_exact.py", "tests/test_kernel_edges.py", "tests/test_engine_dispatch.py"),
        recheck=("tests/test_engine_shared.py",),
    ),
    "store-validation": Group(
        ("src/autotts/store/validate.py",),
        (
            "tests/test_store_findings.py",
            "tests/test_store_malformed.py",
            "tests/test_store_roundtrip.py",
            "tests/test_store_cli.py",
        ),
        recheck=(
            "tests/test_store_cli.py::test_import_info_validate_all_shared_stores",
            "tests/test_store_roundtrip.py::test_shared_store_round_trips",
        ),
    ),
    # The leak perturbation and the static policy check as they stand after the judge
    # redesign; the judge itself (discovery/judge.py, env/judged.py) is not mutated here.
    "leak": Group(
        ("src/autotts/discovery/leak.py",),
        (
            "tests/test_discovery_leak.py",
            "tests/test_discovery_evaluate.py::test_perturbation_keeps_every_revealed_value_and_changes_the_rest",
        ),
        # every candidate evaluation replays the leak runs: seconds per test, in the re-check only
        recheck=("tests/test_discovery_evaluate.py", "tests/test_discovery_sandbox.py"),
    ),
    "validation": Group(
        ("src/autotts/discovery/validation.py",),
        ("tests/test_discovery_validation.py", "tests/test_discovery_validation_messages.py"),
    ),
    # The one retry layer for LLM calls and the redaction of API keys (src/autotts/llm/).
    "retry": Group(
        ("src/autotts/llm/retry.py", "src/autotts/llm/secrets.py"),
        ("tests/test_llm_retry.py", "tests/test_llm_client.py", "tests/test_discovery_proposers.py"),
    ),
}

KILLED = {"killed", "timeout", "segfault", "caught by type check", "killed on re-check"}


def _toml_list(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def prepare(group: Group, work: Path) -> None:
    """A scratch copy of the repository whose pyproject.toml configures mutmut for ``group``."""
    missing = [p for p in (*group.files, *group.tests, *group.recheck) if not (REPO / p.split("::")[0]).exists()]
    if missing:
        raise SystemExit(f"error: missing in the repository: {', '.join(missing)}")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    shutil.copytree(REPO / "src", work / "src", ignore=ignore)
    shutil.copytree(REPO / "tests", work / "tests", ignore=ignore)
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    selection = list(group.tests)
    for slow in group.recheck:
        if "::" in slow:
            selection += ["--deselect", slow]
    text += (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"only_mutate = {_toml_list(group.files)}\n"
        f"pytest_add_cli_args_test_selection = {_toml_list(selection)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider"]\n'
        "use_git_change_detection = false\n"
    )
    (work / "pyproject.toml").write_text(text, encoding="utf-8")
    # The published replay data is looked up beside the repository (tests/conftest.py:
    # REPO.parent / "shared"); mutmut runs the tests from its copy in ``work/mutants``.
    shared = REPO.parent / "shared"
    if shared.is_dir():
        for beside in (work.parent, work):
            if not (beside / "shared").exists():
                (beside / "shared").symlink_to(shared)


def results(work: Path) -> dict[str, str]:
    """Mutant name -> status, from mutmut's own result files."""
    from mutmut.stats import status_by_exit_code

    out: dict[str, str] = {}
    for meta in sorted((work / "mutants").rglob("*.meta")):
        data = json.loads(meta.read_text(encoding="utf-8"))
        for name, code in data.get("exit_code_by_key", {}).items():
            out[name] = status_by_exit_code[code]
    return out


def show(work: Path, name: str) -> str:
    """The diff of one mutant (mutmut's own diff, computed in this process: no process per mutant)."""
    from mutmut.configuration import reset_config
    from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant

    here = Path.cwd()
    os.chdir(work)  # mutmut resolves its files relative to the project directory
    reset_config()  # its configuration is cached per process: this group's, not the previous one's
    try:
        return str(get_diff_for_mutant(name, path=find_mutant(name).path)).strip()
    finally:
        os.chdir(here)


def recheck(work: Path, group: Group, mutant: str, timeout: float) -> str:
    """Run all of the group's tests with ``mutant`` active and full example counts.

    ``killed``, ``survived`` or ``timeout``. The mutated sources go first on
    ``PYTHONPATH`` so that subprocesses (the CLI, sandboxed candidates) run the mutant too.
    """
    env = {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "MUTANT_UNDER_TEST": mutant,
        "PYTHONPATH": str(work / "mutants" / "src"),
        "AUTOTTS_HYPOTHESIS": "deterministic",
    }
    tests = (*group.tests, *(t for t in group.recheck if "::" not in t))
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--rootdir=.", *tests]
    try:
        proc = subprocess.run(
            cmd, cwd=work / "mutants", env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return "timeout"
    if proc.returncode == 0:
        return "survived"
    if proc.returncode == 1:
        return "killed"
    raise SystemExit(f"error: re-check of {mutant} could not run the tests (exit {proc.returncode}):\n{proc.stdout}")


def run_group(
    name: str, group: Group, root: Path, jobs: int, diffs: bool = True, rechecking: bool = True
) -> dict[str, object]:
    work = root / name
    prepare(group, work)
    started = time.monotonic()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "AUTOTTS_HYPOTHESIS": "mutation"}
    log_path = root / f"{name}.log"
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.run(
            [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs)],
            cwd=work,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    mutmut_seconds = time.monotonic() - started
    statuses = results(work)
    rechecked: dict[str, str] = {}
    if rechecking:
        for mutant in sorted(m for m, s in statuses.items() if s not in KILLED):
            rechecked[mutant] = recheck(work, group, mutant, timeout=1800)
            if rechecked[mutant] in ("killed", "timeout"):
                statuses[mutant] = "killed on re-check"
    seconds = time.monotonic() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    killed = sum(n for s, n in counts.items() if s in KILLED)
    survivors = sorted(m for m, s in statuses.items() if s not in KILLED)
    scored = killed + len(survivors)
    return {
        "group": name,
        "files": list(group.files),
        "tests": list(group.tests),
        "recheck_tests": list(group.recheck),
        "exit_code": proc.returncode,
        "seconds": round(seconds, 1),
        "mutmut_seconds": round(mutmut_seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "load_average": os.getloadavg()[0],
        "counts": counts,
        "killed": killed,
        "mutants": scored,
        "score": round(killed / scored, 4) if scored else None,
        "survivors": {m: {"status": statuses[m], "diff": show(work, m) if diffs else ""} for m in survivors},
        "log": str(log_path),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("groups", nargs="*", help="module groups to run ('all' for every group)")
    parser.add_argument("--list", action="store_true", help="list the groups and exit")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested in parallel (default 2)")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch directory (default: a new temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--no-diffs", action="store_true", help="do not print the surviving mutants' diffs")
    parser.add_argument(
        "--no-recheck", action="store_true", help="do not re-check survivors with the full example counts"
    )
    args = parser.parse_args()
    if args.list or not args.groups:
        for name, group in GROUPS.items():
            print(f"{name:18} {' '.join(group.files)}\n{'':18} tests: {' '.join(group.tests)}")
            if group.recheck:
                print(f"{'':18} re-check also: {' '.join(group.recheck)}")
        return 0 if args.list else 2
    try:
        import mutmut  # noqa: F401
    except ImportError:
        print("error: mutmut is not installed; install it with: pip install -e '.[mutation]'", file=sys.stderr)
        return 2
    names = list(GROUPS) if args.groups == ["all"] else args.groups
    unknown = [n for n in names if n not in GROUPS]
    if unknown:
        print(f"error: unknown group(s) {', '.join(unknown)}; see --list", file=sys.stderr)
        return 2
    root = args.workdir or Path(tempfile.mkdtemp(prefix="autotts-mutation-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"scratch directory: {root}", flush=True)
    reports = []
    for name in names:
        print(f"\n== {name}: mutating {', '.join(GROUPS[name].files)}", flush=True)
        report = run_group(
            name, GROUPS[name], root.resolve(), args.jobs, diffs=not args.no_diffs, rechecking=not args.no_recheck
        )
        reports.append(report)
        score = report["score"]
        print(
            f"   {report['killed']}/{report['mutants']} killed"
            + (f" = {100 * float(score):.1f} %" if score is not None else "")
            + f" in {report['seconds']} s wall ({report['mutmut_seconds']} s mutmut, the rest re-checks)"
            + f", {report['cpu_seconds']} s CPU, load average {report['load_average']:.2f} at the end"
            + f"; by status: {report['counts']}; mutmut exit code {report['exit_code']}",
            flush=True,
        )
        for mutant, info in report["survivors"].items():  # type: ignore[attr-defined]
            print(f"\n-- {info['status']}: {mutant}" + (f"\n{info['diff']}" if info["diff"] else ""), flush=True)
        if args.json:
            args.json.write_text(json.dumps(reports, indent=2) + "\n", encoding="utf-8")
    total_killed = sum(int(r["killed"]) for r in reports)  # type: ignore[call-overload]
    total = sum(int(r["mutants"]) for r in reports)  # type: ignore[call-overload]
    if total:
        print(f"\nall groups: {total_killed}/{total} killed = {100 * total_killed / total:.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
