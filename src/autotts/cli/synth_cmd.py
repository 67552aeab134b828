"""``autotts store synth``: write a synthetic replay store from a calibrated profile.

The store comes from :mod:`autotts.store.synthetic` (a seeded generative model, same seed
-> same store). ``--set KNOB=VALUE`` changes any knob of the model; ``--list`` shows the
profiles and every knob with its default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from autotts.cli.app import store_app
from autotts.cli.output import err, out
from autotts.errors import ConfigError


def _overrides(items: list[str] | None) -> dict[str, Any]:
    from autotts.store.synthetic import parse_knob

    knobs: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ConfigError(f"--set {item!r} is not KNOB=VALUE (example: --set err_rate=0.1)")
        knobs[name.strip()] = parse_knob(name.strip(), value.strip())
    return knobs


def _print_catalogue() -> None:
    from autotts.store.synthetic import PROFILES, knob_help

    table = Table(title="profiles")
    table.add_column("name")
    table.add_column("resembles")
    for profile in PROFILES.values():
        table.add_row(profile.name, profile.description)
    out.print(table)
    values = {name: profile.config().to_dict() for name, profile in PROFILES.items()}
    knobs = Table(title="knobs (value in each profile; change one with --set KNOB=VALUE)")
    knobs.add_column("knob")
    for name in PROFILES:
        knobs.add_column(name, justify="right")
    knobs.add_column("meaning")
    for knob, text in knob_help().items():
        knobs.add_row(knob, *(str(values[name][knob]) for name in PROFILES), text)
    out.print(knobs)


@store_app.command("synth")
def synth_command(
    out_path: Annotated[
        Path | None, typer.Option("--out", "-o", help="Store file to write: .parquet (native) or .json (AutoTTS).")
    ] = None,
    profile: Annotated[str, typer.Option("--profile", "-p", help="Calibrated profile: small or large.")] = "large",
    questions: Annotated[
        int | None, typer.Option("--questions", "-q", help="Number of questions (default: 30).")
    ] = None,
    branches: Annotated[int | None, typer.Option("--branches", help="Branches per question (default: 128).")] = None,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Random seed; same seed -> same store.")] = 0,
    model: Annotated[
        str | None, typer.Option(help="Model name recorded in the store (default: synthetic-PROFILE).")
    ] = None,
    benchmark: Annotated[
        str | None, typer.Option(help="Benchmark name recorded in the store (default: seedS).")
    ] = None,
    knob: Annotated[
        list[str] | None, typer.Option("--set", help="Override a model knob, KNOB=VALUE; repeatable (see --list).")
    ] = None,
    list_all: Annotated[bool, typer.Option("--list", help="List profiles and knobs, then exit.")] = False,
) -> None:
    """Generate a synthetic replay store (no model, no network) resembling a real one."""
    from autotts.store import save_store
    from autotts.store.synthetic import get_profile, synthesize

    if list_all:
        _print_catalogue()
        return
    if out_path is None:
        raise ConfigError("--out is required: the store file to write, e.g. --out synth/large.parquet")
    if out_path.suffix not in (".parquet", ".json"):
        raise ConfigError(f"--out {str(out_path)!r}: use a .parquet (native) or .json (AutoTTS) file name")
    if seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {seed}")
    get_profile(profile)
    knobs = _overrides(knob)
    if questions is not None:
        knobs["questions"] = questions
    if branches is not None:
        knobs["branches"] = branches
    store = synthesize(profile, seed=seed, model=model, benchmark=benchmark, **knobs)
    save_store(store, out_path)
    n_branches = len(store.questions[0].branches)
    out.print(
        f"wrote {out_path}: {store.name}, {len(store)} questions x {n_branches} branches "
        f"(synthetic:{profile}, seed {seed})"
    )
    if out_path.suffix == ".json":
        err.print("note: AutoTTS JSON keeps no metadata; use .parquet to keep the profile, seed and knobs")
