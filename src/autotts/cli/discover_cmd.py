"""``autotts discover CONFIG`` and ``autotts discover --resume RUN_DIR``: the discovery loop."""

from __future__ import annotations

import datetime as _dt
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table

from autotts.cli.app import app
from autotts.cli.output import err, out, progress_bar
from autotts.errors import ConfigError

_STATUS_STYLE = {"ok": "green", "invalid": "yellow", "crashed": "red", "timeout": "red", "leaked": "magenta"}


class RichReporter:
    """Draws the loop's events: one progress bar per round, one line per finished candidate."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None
        self._lock = threading.Lock()
        self._money = 0.0

    def _say(self, text: str) -> None:
        self.progress.console.print(text, markup=True, highlight=False)

    def event(self, kind: str, **data: Any) -> None:
        """Render one loop event."""
        with self._lock:
            if kind == "phase":
                self._say(f"[bold]{escape(str(data.get('name')))}[/]: {escape(str(data.get('detail', '')))}")
            elif kind == "round":
                if self.task is not None:
                    self.progress.remove_task(self.task)
                self.task = self.progress.add_task(
                    f"round {data['round']}/{data['rounds']}", total=int(data.get("candidates", 1))
                )
            elif kind in ("propose", "stage") and self.task is not None:
                what = f"proposing ({data.get('proposer')})" if kind == "propose" else str(data.get("stage"))
                self.progress.update(self.task, description=f"{data.get('id')}: {what}")
            elif kind == "candidate":
                rec = data["record"]
                # The loop reports the run's stored total, so a resumed run does not restart from 0.
                money = data.get("money")
                self._money = float(money) if money is not None else self._money + rec.usage.money
                if self.task is not None:
                    self.progress.advance(self.task)
                best = rec.best_point
                fig = ""
                if best is not None:
                    beta = "" if best.beta is None else f" @β={best.beta:g}"
                    fig = f" {best.accuracy:.1f}%{beta} {best.tokens:,.0f} tok"
                style = _STATUS_STYLE.get(rec.status.value, "white")
                msg = (rec.message.strip().splitlines() or [""])[0][:100]
                findings = f" [{', '.join(f.code for f in rec.findings)}]" if rec.findings else ""
                self._say(
                    f"  {rec.id} [{style}]{rec.status.value}[/]{escape(fig)}{escape(findings)}"
                    f"  money {self._money:.4f}  {escape(msg)}"
                )
            elif kind == "stop":
                self._say(f"[yellow]search stopped:[/] {escape(str(data.get('reason')))}")
            elif kind == "message":
                self._say(f"[dim]{escape(str(data.get('text')))}[/]")


def _final_table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"final evaluation ({summary['final'].get('runs')} runs)")
    for col in ("store", "role", "controller", "β", "accuracy %", "95% CI", "tokens/q"):
        table.add_column(col, justify="right" if col in ("accuracy %", "tokens/q") else "left")
    for r in summary["final"]["rows"]:
        ci = r.get("accuracy_ci95")
        table.add_row(
            r["store"],
            r["role"],
            r["controller"],
            "" if r.get("beta") is None else f"{r['beta']:g}",
            f"{r['accuracy']:.2f}",
            f"[{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "",
            f"{r['tokens']:,.0f}",
        )
    return table


@app.command("discover")
def discover_command(
    config: Annotated[Path | None, typer.Argument(help="Discovery config (TOML); see examples/discover.toml.")] = None,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue the run in this run directory (no CONFIG then).")
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Option("--run-dir", help="Run directory of a new run (default: run_dir of the config).")
    ] = None,
) -> None:
    """Discover a controller: propose, sandbox, replay-score, select, evaluate on held-out stores."""
    from autotts.discovery import DiscoveryLoop, load_config

    if (config is None) == (resume is None):
        raise ConfigError("give either a CONFIG file or --resume RUN_DIR (exactly one of them)")
    if resume is not None and run_dir is not None:
        raise ConfigError("--run-dir applies to new runs only; --resume names the run directory already")
    with progress_bar() as progress:
        reporter = RichReporter(progress)
        if resume is not None:
            loop = DiscoveryLoop.resume(resume, reporter=reporter)
            err.print(f"resuming {resume}")
        elif config is not None:
            cfg = load_config(config)
            target = run_dir or cfg.run_dir
            if target is None:
                stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
                target = Path("runs") / f"{cfg.name}-{stamp}"
            loop = DiscoveryLoop.start(
                cfg, run_dir=target, config_text=config.read_text(encoding="utf-8"), reporter=reporter
            )
            err.print(f"run directory: {target}")
        outcome = loop.run()
    summary = dict(outcome.summary)
    sel = summary.get("selection")
    if sel is None:
        out.print("no candidate qualified; see the summary for every candidate's status")
    else:
        beta = "" if sel["beta"] is None else f" at β={sel['beta']:g}"
        out.print(
            f"selected {sel['candidate']}{beta}: search accuracy {sel['search_accuracy']:.2f}% "
            f"at {sel['search_tokens']:,.0f} tokens per question"
        )
    out.print(_final_table(summary))
    out.print(f"money {summary['money']:.4f}; summary: {outcome.run_dir / 'summary.md'}")
