"""The discovery run configuration: a TOML file, validated into frozen dataclasses.

Every table and key is checked: an unknown key (usually a typo) is an error naming the
key, its table and the keys that are allowed, so a misspelt cap never silently turns
into "no cap". Relative paths are resolved against the directory of the config file.
The resolved configuration is written into the run directory (``config.json``), which is
what ``--resume`` reads back; it names the API key's *environment variable*, never the key.

Layout (every key optional except the search stores; see ``examples/discover.toml``)::

    name, rounds, candidates_per_round, parallel, seed, run_dir
    [stores]     search, heldout
    [evaluation] betas (sorted and de-duplicated), search_runs, final_runs, protocol, subsample_size, seeds, baselines
    [proposer]   kind, model, base_url, api_key_env, temperature, max_tokens, timeout_seconds,
                 max_retries, backoff_seconds, max_backoff_seconds, price_input_per_mtok,
                 price_output_per_mtok, extra_body, command, agent_timeout_seconds, population,
                 niches, random_starts, starts
    [budget]     max_money, max_wall_seconds
    [selection]  rule, gamma, require_monotone, robustness, spread_weight, token_range
    [ablation]   traces, require_beta
    [sandbox]    cpu_seconds, wall_seconds, memory_mb, output_mb, final_wall_seconds, isolation, start, processes,
                 backend, ray_address
    [checks]     smoke, leak, leak_runs, monotone_tolerance, full_budget_fraction
    [prompt]     template_dir, max_chars, digest_chars, trace_runs, worst_failures, failure_actions
"""

from __future__ import annotations

import json
import logging
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from autotts._toml import TomlTable
from autotts.errors import ConfigError

logger = logging.getLogger(__name__)

PROPOSER_KINDS = ("openai", "anthropic", "agent", "evolve")
SELECTION_RULES = ("accuracy", "objective", "frontier")
ROBUSTNESS = ("mean", "worst", "spread")
#: The paper's β grid: 0.0, 0.1, ..., 1.0.
PAPER_BETAS = tuple(round(i / 10, 1) for i in range(11))


@dataclass(frozen=True)
class ProposerConfig:
    """Which explorer proposes candidates, and how it is called and priced."""

    kind: str = "evolve"
    model: str = ""
    base_url: str = ""
    api_key_env: str = ""
    temperature: float | None = 0.7
    max_tokens: int = 16000
    timeout_seconds: float = 600.0
    max_retries: int = 5
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 60.0
    price_input_per_mtok: float = 0.0
    price_output_per_mtok: float = 0.0
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    command: tuple[str, ...] = ()
    agent_timeout_seconds: float = 1800.0
    population: int = 4
    niches: int = 0
    """``evolve``: cells of the archive over the token range (0 = rank by the selection rule only)."""
    random_starts: int = 0
    """``evolve``: how many proposals after the starts are random genomes instead of variations."""
    starts: tuple[str, ...] = ("vote",)
    """``evolve``: named starting genomes proposed first (``vote``: full reads; ``momentum``: probing)."""


@dataclass(frozen=True)
class SelectionConfig:
    """How the final controller and β are chosen from the search results."""

    rule: str = "accuracy"
    """``accuracy`` (paper: highest search-set accuracy over all candidates and β) or
    ``objective`` (highest ``accuracy − gamma · tokens``)."""
    gamma: float = 0.0
    """Accuracy points (percent) traded per token of mean cost per question."""
    require_monotone: bool = False
    """Skip candidates whose token curve is not monotone in β (the paper does not)."""
    robustness: str = "mean"
    """How per-store frontier areas combine: ``mean``, ``worst`` store, or ``spread`` (mean − w·std)."""
    spread_weight: float = 1.0
    """The ``w`` of ``robustness = "spread"``."""
    token_range: tuple[float, float] | None = None
    """Token range (per question) of the frontier metrics; None = each store's seed-frontier span."""


@dataclass(frozen=True)
class SandboxConfig:
    """Resource limits of one candidate process."""

    cpu_seconds: float = 240.0
    wall_seconds: float = 300.0
    memory_mb: int = 1024
    output_mb: int = 256
    final_wall_seconds: float = 3600.0
    isolation: str = "seccomp"
    """``seccomp`` (the kernel filter; the run refuses to start without it) or ``process-only``."""
    start: str = "fork-server"
    """How candidate processes start: ``fork-server`` (forked from a pre-imported interpreter)
    or ``spawn`` (a fresh interpreter per job, ~1 s of imports each)."""
    processes: int = 0
    """Candidate processes per sweep and leak job (episodes dealt out among them, results
    identical); 0 = automatic: the cores left over when ``min(parallel,
    candidates_per_round)`` candidates are judged at once (at most 4; 1 on Ray)."""
    backend: str = "local"
    """Where candidates are judged: ``local`` or ``ray`` (``ray_address``, or a local Ray)."""
    ray_address: str = ""


@dataclass(frozen=True)
class ChecksConfig:
    """Evaluation stages and honesty checks."""

    smoke: bool = True
    """Run a quick smoke stage (β extremes, one run, three questions) before the sweep."""
    leak: bool = True
    leak_runs: int = 2
    """Runs replayed a second time on perturbed data by the leak test."""
    monotone_tolerance: float = 0.02
    """Relative drop of mean tokens allowed between neighbouring β values."""
    full_budget_fraction: float = 0.25
    """At the largest β, mean tokens must reach this fraction of full-budget SC's."""


@dataclass(frozen=True)
class PromptConfig:
    """What the explorer is shown and how much of it."""

    template_dir: Path | None = None
    max_chars: int = 120_000
    digest_chars: int = 5_000
    trace_runs: int = 1
    worst_failures: int = 2
    failure_actions: int = 40


@dataclass(frozen=True)
class StoresConfig:
    """``[stores]``: the search stores the explorer sees and the held-out stores of the final evaluation."""

    search: tuple[Path, ...] = ()
    heldout: tuple[Path, ...] = ()


@dataclass(frozen=True)
class EvaluationConfig:
    """``[evaluation]``: the β grid, runs and protocol of search and final evaluation."""

    betas: tuple[float, ...] = PAPER_BETAS
    search_runs: int = 10
    final_runs: int = 100
    protocol: str = "shuffle"
    subsample_size: int = 64
    seeds: tuple[str, ...] | None = None
    """Seed controllers shown to the explorer (registry names or specs); None = all registered."""
    baselines: tuple[str, ...] | None = None
    """Baselines of the final evaluation; None = the seeds."""


@dataclass(frozen=True)
class BudgetConfig:
    """``[budget]``: caps that stop the run (None = no cap)."""

    max_money: float | None = None
    max_wall_seconds: float | None = None


@dataclass(frozen=True)
class AblationConfig:
    """``[ablation]``: switches of the paper's ablations."""

    traces: bool = True
    """Show execution traces to the explorer."""
    require_beta: bool = True
    """Require candidates to take β."""


@dataclass(frozen=True)
class DiscoverConfig:
    """A whole discovery run; one field per TOML key or table (see the module docstring).

    The flat names (``betas``, ``search_stores``, ``max_money``, ...) are read-only views of
    the nested tables, for code that only reads one setting.
    """

    stores: StoresConfig = field(default_factory=StoresConfig)
    name: str = "discover"
    run_dir: Path | None = None
    rounds: int = 5
    candidates_per_round: int = 1
    parallel: int = 1
    seed: int = 0
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    proposer: ProposerConfig = field(default_factory=ProposerConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    ablation: AblationConfig = field(default_factory=AblationConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    checks: ChecksConfig = field(default_factory=ChecksConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)

    # Read-only views of single settings.
    @property
    def search_stores(self) -> tuple[Path, ...]:
        """``stores.search``."""
        return self.stores.search

    @property
    def heldout_stores(self) -> tuple[Path, ...]:
        """``stores.heldout``."""
        return self.stores.heldout

    @property
    def betas(self) -> tuple[float, ...]:
        """``evaluation.betas``."""
        return self.evaluation.betas

    @property
    def search_runs(self) -> int:
        """``evaluation.search_runs``."""
        return self.evaluation.search_runs

    @property
    def final_runs(self) -> int:
        """``evaluation.final_runs``."""
        return self.evaluation.final_runs

    @property
    def protocol(self) -> str:
        """``evaluation.protocol``."""
        return self.evaluation.protocol

    @property
    def subsample_size(self) -> int:
        """``evaluation.subsample_size``."""
        return self.evaluation.subsample_size

    @property
    def seeds(self) -> tuple[str, ...] | None:
        """``evaluation.seeds``."""
        return self.evaluation.seeds

    @property
    def baselines(self) -> tuple[str, ...] | None:
        """``evaluation.baselines``."""
        return self.evaluation.baselines

    @property
    def max_money(self) -> float | None:
        """``budget.max_money``."""
        return self.budget.max_money

    @property
    def max_wall_seconds(self) -> float | None:
        """``budget.max_wall_seconds``."""
        return self.budget.max_wall_seconds

    @property
    def traces(self) -> bool:
        """``ablation.traces``."""
        return self.ablation.traces

    @property
    def require_beta(self) -> bool:
        """``ablation.require_beta``."""
        return self.ablation.require_beta

    def to_dict(self) -> dict[str, Any]:
        """The TOML-shaped dict of this configuration (JSON-able: paths as strings, tuples as lists)."""
        out = _plain(self)
        assert isinstance(out, dict)
        return out

    def to_json(self) -> str:
        """``to_dict`` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2) + "\n"


def _plain(value: Any) -> Any:
    """Dataclasses to dicts, paths to strings, tuples to lists, recursively (``None`` stays: JSON null = unset)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


# ----------------------------------------------------------------------------- parsing
_Table = TomlTable


def _resolve(base: Path, text: str) -> Path:
    p = Path(text).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _paths(t: _Table, key: str, base: Path) -> tuple[Path, ...]:
    items = t.str_list(key, []) or []
    return tuple(_resolve(base, s) for s in items)


def _parse_proposer(t: _Table) -> ProposerConfig:
    d = ProposerConfig()
    kind = t.str_("kind", d.kind, choices=PROPOSER_KINDS)
    temp_raw = t.get("temperature", d.temperature)
    if temp_raw is not None and (not isinstance(temp_raw, (int, float)) or isinstance(temp_raw, bool)):
        raise t.fail("temperature", f"must be a number, got {temp_raw!r}")
    extra = t.get("extra_body", {})
    if not isinstance(extra, Mapping):
        raise t.fail("extra_body", "must be a table of request fields")
    command = t.get("command", [])
    if isinstance(command, str):
        import shlex

        command = shlex.split(command)
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        raise t.fail("command", f"must be a list of strings (argv) or a command line string, got {command!r}")
    cfg = ProposerConfig(
        kind=kind,
        model=t.str_("model", d.model),
        base_url=t.str_("base_url", d.base_url),
        api_key_env=t.str_("api_key_env", d.api_key_env),
        temperature=None if temp_raw is None else float(temp_raw),
        max_tokens=t.int_("max_tokens", d.max_tokens, minimum=1),
        timeout_seconds=t.float_("timeout_seconds", d.timeout_seconds, positive=True),
        max_retries=t.int_("max_retries", d.max_retries, minimum=0),
        backoff_seconds=t.float_("backoff_seconds", d.backoff_seconds, minimum=0.0),
        max_backoff_seconds=t.float_("max_backoff_seconds", d.max_backoff_seconds, minimum=0.0),
        price_input_per_mtok=t.float_("price_input_per_mtok", d.price_input_per_mtok, minimum=0.0),
        price_output_per_mtok=t.float_("price_output_per_mtok", d.price_output_per_mtok, minimum=0.0),
        extra_body=dict(extra),
        command=tuple(command),
        agent_timeout_seconds=t.float_("agent_timeout_seconds", d.agent_timeout_seconds, positive=True),
        population=t.int_("population", d.population, minimum=1),
        niches=t.int_("niches", d.niches, minimum=0),
        random_starts=t.int_("random_starts", d.random_starts, minimum=0),
        starts=_starts(t, d.starts),
    )
    t.check_unknown()
    if kind in ("openai", "anthropic") and not cfg.model:
        raise t.fail("model", f'is required for proposer kind {kind!r} (e.g. model = "gpt-4.1")')
    if kind == "openai" and not cfg.base_url:
        raise t.fail("base_url", "is required for proposer kind 'openai' (e.g. https://api.openai.com/v1)")
    if kind in ("openai", "anthropic") and cfg.api_key_env and not cfg.api_key_env.replace("_", "").isalnum():
        raise t.fail("api_key_env", f"must name an environment variable (e.g. OPENAI_API_KEY), got {cfg.api_key_env!r}")
    if kind == "agent" and not cfg.command:
        raise t.fail("command", 'is required for proposer kind \'agent\' (e.g. ["claude", "-p", "{task}"])')
    return cfg


EVOLVE_STARTS = ("vote", "momentum")


def _starts(t: _Table, default: tuple[str, ...]) -> tuple[str, ...]:
    names = t.str_list("starts", list(default)) or []
    bad = [n for n in names if n not in EVOLVE_STARTS]
    if bad or not names:
        raise t.fail("starts", f"must name one or more of {', '.join(EVOLVE_STARTS)}; got {names!r}")
    return tuple(dict.fromkeys(names))


def _token_range(t: _Table) -> tuple[float, float] | None:
    raw = t.get("token_range", None)
    if raw is None:
        return None
    ok = isinstance(raw, list) and len(raw) == 2
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in raw)
    if not ok or not math.isfinite(raw[0]) or not raw[0] < raw[1] < math.inf:
        raise t.fail("token_range", f"must be [lo, hi] with 0 < lo < hi tokens per question, got {raw!r}")
    return (float(raw[0]), float(raw[1]))


def config_from_mapping(data: Mapping[str, Any], *, base_dir: Path, source: str = "config") -> DiscoverConfig:
    """Validate a TOML-shaped mapping into a :class:`DiscoverConfig`."""
    top = _Table(data, "", source)
    stores = top.table("stores")
    search = _paths(stores, "search", base_dir)
    heldout = _paths(stores, "heldout", base_dir)
    stores.check_unknown()
    if not search:
        raise ConfigError(f"{source}: stores.search must name at least one store file or directory")
    overlap = set(search) & set(heldout)
    if overlap:
        raise ConfigError(
            f"{source}: {', '.join(sorted(map(str, overlap)))} is both a search and a held-out store; "
            "held-out stores must be disjoint from the search set"
        )

    dflt = DiscoverConfig()
    ev = top.table("evaluation")
    dev = dflt.evaluation
    betas_raw = ev.get("betas", list(dev.betas))
    if not isinstance(betas_raw, list) or not betas_raw:
        raise ev.fail("betas", "must be a non-empty list of numbers in [0, 1]")
    betas: list[float] = []
    for b in betas_raw:
        if not isinstance(b, (int, float)) or isinstance(b, bool) or not 0.0 <= float(b) <= 1.0:
            raise ev.fail("betas", f"values must be numbers in [0, 1]; got {b!r}")
        betas.append(float(b))
    # The grid is a set of points on one curve: order and repeats carry no meaning, so an
    # unsorted or repeated list is normalised (ascending, unique) rather than rejected.
    tidy = sorted(set(betas))
    if tidy != betas:
        logger.info("%s: evaluation.betas %s normalised to ascending unique values %s", source, betas, tidy)
    betas = tidy
    seeds = ev.str_list("seeds", None)
    baselines = ev.str_list("baselines", None)
    evaluation = EvaluationConfig(
        betas=tuple(betas),
        search_runs=ev.int_("search_runs", dev.search_runs, minimum=1),
        final_runs=ev.int_("final_runs", dev.final_runs, minimum=1),
        protocol=ev.str_("protocol", dev.protocol, choices=("shuffle", "subsample")),
        subsample_size=ev.int_("subsample_size", dev.subsample_size, minimum=1),
        seeds=None if seeds is None else tuple(seeds),
        baselines=None if baselines is None else tuple(baselines),
    )
    ev.check_unknown()

    proposer = _parse_proposer(top.table("proposer"))

    bt = top.table("budget")
    budget = BudgetConfig(max_money=bt.opt_float("max_money"), max_wall_seconds=bt.opt_float("max_wall_seconds"))
    bt.check_unknown()

    sel_t = top.table("selection")
    dsel = dflt.selection
    selection = SelectionConfig(
        rule=sel_t.str_("rule", dsel.rule, choices=SELECTION_RULES),
        gamma=sel_t.float_("gamma", dsel.gamma, minimum=0.0),
        require_monotone=sel_t.bool_("require_monotone", dsel.require_monotone),
        robustness=sel_t.str_("robustness", dsel.robustness, choices=ROBUSTNESS),
        spread_weight=sel_t.float_("spread_weight", dsel.spread_weight, minimum=0.0),
        token_range=_token_range(sel_t),
    )
    sel_t.check_unknown()

    abl = top.table("ablation")
    ablation = AblationConfig(
        traces=abl.bool_("traces", dflt.ablation.traces),
        require_beta=abl.bool_("require_beta", dflt.ablation.require_beta),
    )
    abl.check_unknown()

    sb = top.table("sandbox")
    dsb = dflt.sandbox
    sandbox = SandboxConfig(
        cpu_seconds=sb.float_("cpu_seconds", dsb.cpu_seconds, positive=True),
        wall_seconds=sb.float_("wall_seconds", dsb.wall_seconds, positive=True),
        memory_mb=sb.int_("memory_mb", dsb.memory_mb, minimum=128),
        output_mb=sb.int_("output_mb", dsb.output_mb, minimum=1),
        final_wall_seconds=sb.float_("final_wall_seconds", dsb.final_wall_seconds, positive=True),
        isolation=sb.str_("isolation", dsb.isolation, choices=("seccomp", "process-only")),
        start=sb.str_("start", dsb.start, choices=("fork-server", "spawn")),
        processes=sb.int_("processes", dsb.processes, minimum=0),
        backend=sb.str_("backend", dsb.backend, choices=("local", "ray")),
        ray_address=sb.str_("ray_address", dsb.ray_address),
    )
    sb.check_unknown()

    ck = top.table("checks")
    dck = dflt.checks
    checks = ChecksConfig(
        smoke=ck.bool_("smoke", dck.smoke),
        leak=ck.bool_("leak", dck.leak),
        leak_runs=ck.int_("leak_runs", dck.leak_runs, minimum=1),
        monotone_tolerance=ck.float_("monotone_tolerance", dck.monotone_tolerance, minimum=0.0),
        full_budget_fraction=ck.float_("full_budget_fraction", dck.full_budget_fraction, minimum=0.0),
    )
    ck.check_unknown()

    pr = top.table("prompt")
    dpr = dflt.prompt
    tdir_raw = pr.opt_str("template_dir")
    prompt = PromptConfig(
        template_dir=_resolve(base_dir, tdir_raw) if tdir_raw else None,
        max_chars=pr.int_("max_chars", dpr.max_chars, minimum=1000),
        digest_chars=pr.int_("digest_chars", dpr.digest_chars, minimum=200),
        trace_runs=pr.int_("trace_runs", dpr.trace_runs, minimum=1),
        worst_failures=pr.int_("worst_failures", dpr.worst_failures, minimum=0),
        failure_actions=pr.int_("failure_actions", dpr.failure_actions, minimum=5),
    )
    pr.check_unknown()
    if prompt.template_dir is not None and not prompt.template_dir.is_dir():
        raise ConfigError(f"{source}: prompt.template_dir {str(prompt.template_dir)!r} is not a directory")

    run_dir_raw = top.opt_str("run_dir")
    cfg = DiscoverConfig(
        stores=StoresConfig(search=search, heldout=heldout),
        name=top.str_("name", dflt.name),
        run_dir=_resolve(base_dir, run_dir_raw) if run_dir_raw else None,
        rounds=top.int_("rounds", dflt.rounds, minimum=1),
        candidates_per_round=top.int_("candidates_per_round", dflt.candidates_per_round, minimum=1),
        parallel=top.int_("parallel", dflt.parallel, minimum=1),
        seed=top.int_("seed", dflt.seed),
        evaluation=evaluation,
        proposer=proposer,
        budget=budget,
        selection=selection,
        ablation=ablation,
        sandbox=sandbox,
        checks=checks,
        prompt=prompt,
    )
    top.check_unknown()
    return cfg


def load_config(path: str | Path) -> DiscoverConfig:
    """Read and validate a discovery TOML file (or a run directory's ``config.json``)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"discovery config {str(p)!r} does not exist; see examples/discover.toml")
    text = p.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{p}: not valid {'JSON' if p.suffix == '.json' else 'TOML'}: {exc}") from None
    return config_from_mapping(data, base_dir=p.resolve().parent, source=str(p))
