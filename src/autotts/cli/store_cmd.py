"""``autotts store ...`` commands: import, info, validate.

* ``import`` converts AutoTTS JSON files (or native files) into ``DIR/<model>/<benchmark>.parquet``,
  one store at a time and atomically: when an input is bad, the command stops with one
  error naming the file, question, branch and field; stores already written stay, the
  failing one leaves no file.
* ``info`` prints the statistics of :mod:`autotts.store.stats`.
* ``validate`` parses each store and runs :func:`autotts.store.validate.validate_store`;
  it keeps going after a bad file so that one run reports every problem, and exits 1
  when any store has an error (warnings alone exit 0).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from autotts.cli.app import store_app
from autotts.cli.output import err, fail, out, progress_bar
from autotts.errors import AutoTTSError, StoreError

if TYPE_CHECKING:
    from autotts.store.schema import ReplayStore
    from autotts.store.stats import StoreStats
    from autotts.store.validate import Finding


class StoreFormat(enum.StrEnum):
    """Output format of ``store import``."""

    parquet = "parquet"
    json = "json"


_SUFFIX = {StoreFormat.parquet: ".parquet", StoreFormat.json: ".json"}


@contextlib.contextmanager
def _progress(description: str, total: int) -> Iterator[Callable[[str], None]]:
    """A transient progress bar on stderr for more than one item; yields ``step(label)``.

    Without a terminal on stderr (logs, CI, pipes) there is no bar: it would only add noise.
    """
    if total <= 1 or not err.is_terminal:
        yield lambda label: None
        return
    from rich.progress import TextColumn

    # stdout is not redirected: results stay on stdout even when only stderr is a terminal.
    with progress_bar(TextColumn("{task.fields[label]}"), console=err) as bar:
        task = bar.add_task(description, total=total, label="")

        def step(label: str) -> None:
            bar.update(task, advance=1, label=label)

        yield step


def _store_files(paths: list[Path]) -> list[Path]:
    from autotts.store import find_stores

    files: list[Path] = []
    for path in paths:
        files.extend(find_stores(path))
    return files


# ------------------------------------------------------------------------------ import


def _describe(store: ReplayStore) -> str:
    branches = sum(len(q.branches) for q in store.questions)
    return f"{store.name}: {len(store)} questions, {branches} branches"


@store_app.command("import")
def import_command(
    src: Annotated[
        list[Path],
        typer.Argument(
            metavar="SRC", help="AutoTTS JSON files (or native .parquet files) or directories searched for *.json."
        ),
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Output directory; each store goes to DIR/<model>/<benchmark>.parquet.")
    ],
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model name (default: each file's parent directory).")
    ] = None,
    benchmark: Annotated[
        str | None, typer.Option("--benchmark", "-b", help="Benchmark name (default: each file's name).")
    ] = None,
    fmt: Annotated[
        StoreFormat, typer.Option("--format", "-f", help="Output format: parquet (native) or json (AutoTTS).")
    ] = StoreFormat.parquet,
    canonicalize: Annotated[
        str,
        typer.Option(
            "--canonicalize",
            help="Answer canonicalisation: none (exact strings, the published protocol) or math "
            "(math-verify merges equivalent answers; recorded in the store metadata).",
        ),
    ] = "none",
    canonicalize_timeout: Annotated[
        float, typer.Option("--canonicalize-timeout", help="Seconds per math-verify parse or comparison.")
    ] = 5.0,
) -> None:
    """Import replay stores into DIR/<model>/<benchmark>.parquet (one atomic file per store)."""
    from autotts.store.io import ImportItem, import_stores, plan_import

    if canonicalize not in ("none", "math"):
        raise typer.BadParameter("must be 'none' or 'math'", param_hint="--canonicalize")
    transform: Callable[[ReplayStore], ReplayStore] | None = None
    if canonicalize == "math":
        from autotts.collect.canonical import canonicalize_store

        transform = functools.partial(canonicalize_store, timeout=canonicalize_timeout)

    plan = plan_import(src, out_dir, model=model, benchmark=benchmark, suffix=_SUFFIX[fmt])
    written: list[str] = []
    with _progress("importing", len(plan)) as step:

        def done(item: ImportItem, store: ReplayStore) -> None:
            written.append(f"{item.target}  {_describe(store)}  (from {item.source})")
            step(f"{item.model}/{item.benchmark}")

        try:
            import_stores(plan, on_store=done, transform=transform)
        except AutoTTSError:
            for line in written:
                out.print(line, markup=False)
            failed = plan[len(written)].source
            skipped = len(plan) - len(written) - 1
            err.print(
                f"stopped at {failed}: it left no output file; "
                + (
                    f"{len(written)} store(s) written before it stay in {out_dir}"
                    if written
                    else "no store was written"
                )
                + (f"; {skipped} later input(s) were not imported" if skipped else ""),
                markup=False,
            )
            raise
    for line in written:
        out.print(line, markup=False)


# -------------------------------------------------------------------------------- info


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _stats_rows(s: StoreStats) -> list[tuple[str, str]]:
    n = f"{s.branches_min}" if s.branches_min == s.branches_max else f"{s.branches_min}–{s.branches_max}"
    return [
        ("questions", f"{s.questions}"),
        ("branches per question", n),
        ("probe interval Δ (tokens)", ", ".join(str(d) for d in s.deltas)),
        ("depth (probes per branch) mean / median / max", f"{s.depth_mean:.1f} / {s.depth_median:g} / {s.depth_max}"),
        (
            "branch tokens mean / median / max",
            f"{s.tokens_mean:,.0f} / {s.tokens_median:,.0f} / {s.tokens_max:,}",
        ),
        ("tokens to read every branch, per question", f"{s.tokens_per_question:,.0f}"),
        ("ERR rate: probes / finals (%)", f"{_pct(s.err_rate_probes)} / {_pct(s.err_rate_finals)}"),
        ("pass@1 (%)", _pct(s.pass_at_1)),
        (f"majority@{n} (%)", _pct(s.majority_at_n)),
        (f"pass@{n}: some branch right (%)", _pct(s.pass_at_n)),
        ("distinct final answers per question mean / max", f"{s.distinct_answers_mean:.1f} / {s.distinct_answers_max}"),
    ]


def _one_store_table(path: Path, s: StoreStats) -> Table:
    table = Table(title=f"{s.store}  ({path})", show_header=False, title_justify="left")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for name, value in _stats_rows(s):
        table.add_row(name, value)
    return table


def _many_stores_table(items: list[tuple[Path, StoreStats]]) -> Table:
    table = Table()
    for name, justify in (
        ("store", "left"),
        ("questions", "right"),
        ("N", "right"),
        ("depth mean/med/max", "right"),
        ("tokens mean/med/max", "right"),
        ("ERR % probes/finals", "right"),
        ("pass@1 %", "right"),
        ("maj@N %", "right"),
        ("pass@N %", "right"),
        ("answers/q", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for _, s in items:
        n = f"{s.branches_min}" if s.branches_min == s.branches_max else f"{s.branches_min}–{s.branches_max}"
        table.add_row(
            s.store,
            str(s.questions),
            n,
            f"{s.depth_mean:.1f}/{s.depth_median:g}/{s.depth_max}",
            f"{s.tokens_mean:,.0f}/{s.tokens_median:,.0f}/{s.tokens_max:,}",
            f"{_pct(s.err_rate_probes)}/{_pct(s.err_rate_finals)}",
            _pct(s.pass_at_1),
            _pct(s.majority_at_n),
            _pct(s.pass_at_n),
            f"{s.distinct_answers_mean:.1f}",
        )
    return table


@store_app.command("info")
def info_command(
    paths: Annotated[
        list[Path], typer.Argument(metavar="PATH", help="Store files (.parquet/.json) or directories of stores.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON instead of a table.")] = False,
) -> None:
    """Show questions, branches, depth and length statistics, ERR rates, pass@1 and majority@N."""
    from autotts.store import load_store
    from autotts.store.stats import store_stats

    files = _store_files(paths)
    items: list[tuple[Path, StoreStats]] = []
    with _progress("reading", len(files)) as step:
        for f in files:
            items.append((f, store_stats(load_store(f))))
            step(f.name)
    if as_json:
        records = [{"path": str(f), **s.to_dict()} for f, s in items]
        out.print(json.dumps(records, indent=2), markup=False, highlight=False, emoji=False)
    elif len(items) == 1:
        out.print(_one_store_table(*items[0]))
    else:
        out.print(_many_stores_table(items))


# ---------------------------------------------------------------------------- validate


def _print_findings(path: Path, name: str, findings: list[Finding]) -> None:
    errors = sum(f.is_error for f in findings)
    warnings = len(findings) - errors
    if errors:
        status = f"[bold red]✗[/] {escape(str(path))} ({escape(name)}): {errors} error(s), {warnings} warning(s)"
    elif warnings:
        status = f"[yellow]✓[/] {escape(str(path))} ({escape(name)}): valid, {warnings} warning(s)"
    else:
        status = f"[green]✓[/] {escape(str(path))} ({escape(name)}): valid"
    out.print(status)
    for f in findings:
        colour = "red" if f.is_error else "yellow"
        where = f"{escape(f.location)}: " if f.location else ""
        out.print(f"    [{colour}]{f.severity.value}[/] [dim]\\[{f.code}][/] {where}{escape(f.message)}")


@store_app.command("validate")
def validate_command(
    paths: Annotated[
        list[Path], typer.Argument(metavar="PATH", help="Store files (.parquet/.json) or directories of stores.")
    ],
) -> None:
    """Parse stores and check them; exit 1 if any store has an error (warnings are shown but pass)."""
    from autotts.store import load_store
    from autotts.store.validate import Finding, Severity, validate_store

    files = _store_files(paths)
    failed = 0
    results: list[tuple[Path, str, list[Finding]]] = []
    with _progress("validating", len(files)) as step:
        for f in files:
            try:
                store = load_store(f)
            except StoreError as exc:
                finding = Finding(
                    Severity.ERROR,
                    "unreadable",
                    exc.message,
                    question=exc.question,
                    branch=exc.branch,
                    field=exc.field,
                )
                results.append((f, "not loaded", [finding]))
            else:
                results.append((f, store.name, validate_store(store)))
            step(f.name)
    for f, name, findings in results:
        _print_findings(f, name, findings)
        failed += any(x.is_error for x in findings)
    if failed:
        fail(f"{failed} of {len(results)} store(s) have errors (listed above)")
    out.print(f"{len(results)} store(s) valid")
