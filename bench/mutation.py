"""Mutation score of the modules where a silent change corrupts numbers or security.

Runs mutmut (``pip install -e '.[mutation]'``) once per module group, each in its own
scratch copy of the repository (``src/``, ``tests/``, ``pyproject.toml``), with only
that group's files mutated and only the tests that exercise them selected, so that a
2-core machine gets through a group in minutes rather than hours. mutmut itself then
runs, for each mutant, only the selected tests that reached the mutated function.

Prints, per group, the counts by status and the score ``killed / (killed + survived)``
(timeouts count as killed, as mutmut does; mutants no selected test reaches count as
survived), then the diff of every surviving mutant, for triage in ``docs/testing.md``.
Not part of the test suite: it takes a long time.

    .venv/bin/python bench/mutation.py --list
    .venv/bin/python bench/mutation.py voting selection [--jobs 2] [--workdir DIR] [--json OUT]
    .venv/bin/python bench/mutation.py all
"""

from __future__ import annotations

import argparse
import json
import os
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
    """Files mutated together and the tests that exercise them."""

    files: tuple[str, ...]
    tests: tuple[str, ...]


GROUPS: dict[str, Group] = {
    "voting": Group(
        ("src/autotts/controllers/voting.py",),
        ("tests/test_voting.py", "tests/test_controllers_reference.py", "tests/test_engine_tables.py"),
    ),
    "selection": Group(
        ("src/autotts/discovery/selection.py",),
        ("tests/test_discovery_selection.py", "tests/test_discovery_prompt.py"),
    ),
    "history": Group(
        ("src/autotts/discovery/history.py", "src/autotts/_atomic.py"),
        ("tests/test_discovery_rundir.py", "tests/test_discovery_prompt.py"),
    ),
    "process": Group(
        ("src/autotts/env/process.py",),
        ("tests/test_process.py", "tests/test_process_contract.py"),
    ),
    "session": Group(
        ("src/autotts/env/session.py",),
        ("tests/test_session.py", "tests/test_engine_session.py", "tests/test_process.py"),
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
            "tests/test_kernel_edges.py",
        ),
    ),
    "dispatch": Group(
        ("src/autotts/engine/dispatch.py", "src/autotts/engine/__init__.py"),
        ("tests/test_engine_exact.py", "tests/test_kernel_edges.py", "tests/test_engine_shared.py"),
    ),
    "store-validation": Group(
        ("src/autotts/store/validate.py",),
        ("tests/test_store_malformed.py", "tests/test_store_roundtrip.py"),
    ),
    "leak": Group(
        ("src/autotts/discovery/leak.py",),
        ("tests/test_discovery_evaluate.py",),
    ),
    "validation": Group(
        ("src/autotts/discovery/validation.py",),
        ("tests/test_discovery_validation.py",),
    ),
    "retry": Group(
        ("src/autotts/discovery/proposers/retry.py",),
        ("tests/test_discovery_proposers.py",),
    ),
}

KILLED = {"killed", "timeout", "segfault", "caught by type check"}


def _toml_list(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def prepare(group: Group, work: Path) -> None:
    """A scratch copy of the repository whose pyproject.toml configures mutmut for ``group``."""
    missing = [p for p in (*group.files, *group.tests) if not (REPO / p).exists()]
    if missing:
        raise SystemExit(f"error: missing in the repository: {', '.join(missing)}")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    shutil.copytree(REPO / "src", work / "src", ignore=ignore)
    shutil.copytree(REPO / "tests", work / "tests", ignore=ignore)
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    text += (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"only_mutate = {_toml_list(group.files)}\n"
        f"pytest_add_cli_args_test_selection = {_toml_list(group.tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider"]\n'
        "use_git_change_detection = false\n"
    )
    (work / "pyproject.toml").write_text(text, encoding="utf-8")
    # The published replay data is looked up beside the repository; make it visible from the copy.
    shared = REPO.parent / "shared"
    if shared.is_dir() and not (work.parent / "shared").exists():
        (work.parent / "shared").symlink_to(shared)


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
    """The diff of one mutant."""
    proc = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", name], cwd=work, capture_output=True, text=True, check=False
    )
    return proc.stdout.strip()


def run_group(name: str, group: Group, root: Path, jobs: int) -> dict[str, object]:
    work = root / name
    prepare(group, work)
    started = time.monotonic()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
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
    seconds = time.monotonic() - started
    statuses = results(work)
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
        "exit_code": proc.returncode,
        "seconds": round(seconds, 1),
        "counts": counts,
        "killed": killed,
        "mutants": scored,
        "score": round(killed / scored, 4) if scored else None,
        "survivors": {m: {"status": statuses[m], "diff": show(work, m)} for m in survivors},
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
    args = parser.parse_args()
    if args.list or not args.groups:
        for name, group in GROUPS.items():
            print(f"{name:18} {' '.join(group.files)}\n{'':18} tests: {' '.join(group.tests)}")
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
        report = run_group(name, GROUPS[name], root.resolve(), args.jobs)
        reports.append(report)
        score = report["score"]
        print(
            f"   {report['killed']}/{report['mutants']} killed"
            + (f" = {100 * float(score):.1f} %" if score is not None else "")
            + f" in {report['seconds']} s; by status: {report['counts']}; mutmut exit code {report['exit_code']}",
            flush=True,
        )
        if not args.no_diffs:
            for mutant, info in report["survivors"].items():  # type: ignore[attr-defined]
                print(f"\n-- {info['status']}: {mutant}\n{info['diff']}", flush=True)
        if args.json:
            args.json.write_text(json.dumps(reports, indent=2) + "\n", encoding="utf-8")
    total_killed = sum(int(r["killed"]) for r in reports)  # type: ignore[call-overload]
    total = sum(int(r["mutants"]) for r in reports)  # type: ignore[call-overload]
    if total:
        print(f"\nall groups: {total_killed}/{total} killed = {100 * total_killed / total:.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
