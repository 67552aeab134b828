"""The configuration of one collection (``autotts collect CONFIG.toml``), read and checked up front.

Example (every key but ``benchmark.path``, ``server.base_urls`` and ``server.model``
has a default)::

    [benchmark]
    path = "aime25.jsonl"        # JSONL, CSV or Parquet
    question = "problem"         # column names (defaults: question, answer, id)
    answer = "answer"
    id = "id"                    # optional: row numbers when the column is absent

    [server]
    base_urls = ["http://gpu1:8000/v1", "http://gpu2:8000/v1"]
    model = "Qwen/Qwen3-4B"
    api_key_env = ""             # the *name* of the variable holding the key
    max_in_flight = 64           # requests in flight per server

    [collect]
    branches = 128
    delta = 500
    max_tokens = 32768           # per-branch token cap
    mode = "interval"            # or "full" (servers that return token ids)
    out = "stores/Qwen3-4B/aime25.parquet"

    [sampling]
    temperature = 0.6
    top_p = 0.95
    seed = 0

    [prompt]
    preset = "qwen3"             # or text = "...{question}..."

    [probe]
    max_tokens = 32

Everything that changes what the store means (model, benchmark, recipe, Δ, cap,
branches, mode) is fingerprinted: ``--resume`` refuses a state written under another
configuration. Servers, concurrency and retry settings may change between runs.
"""

from __future__ import annotations

import enum
import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autotts._toml import TomlTable
from autotts.collect.answers import Normalization
from autotts.collect.recipe import ProbeRecipe, Recipe, Sampling, TokenPrompts, template_from
from autotts.errors import ConfigError
from autotts.llm import RetryPolicy


class Mode(enum.Enum):
    """How branches are generated: Δ at a time (any server) or in one request (token-id servers)."""

    INTERVAL = "interval"
    FULL = "full"


class Canonicalize(enum.Enum):
    """Answer canonicalisation applied when the store is written (opt-in; never the default)."""

    NONE = "none"
    MATH = "math"


@dataclass(frozen=True)
class BenchmarkSpec:
    """Where the questions are and which columns hold what."""

    path: Path
    question: str = "question"
    answer: str = "answer"
    id: str | None = "id"
    name: str = ""
    """The store's benchmark name (default: the file's stem)."""
    limit: int | None = None
    """Collect only the first ``limit`` questions."""


@dataclass(frozen=True)
class ServerSpec:
    """The model servers (OpenAI-compatible) and how to talk to them."""

    base_urls: tuple[str, ...]
    model: str
    api_key_env: str = ""
    max_in_flight: int = 32
    timeout_seconds: float = 600.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    price_input_per_mtok: float = 0.0
    price_output_per_mtok: float = 0.0

    def money(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Cost of that much traffic at the configured prices."""
        return (prompt_tokens * self.price_input_per_mtok + completion_tokens * self.price_output_per_mtok) / 1e6


@dataclass(frozen=True)
class CollectConfig:
    """One collection: benchmark, servers, recipe and shape of the store."""

    benchmark: BenchmarkSpec
    server: ServerSpec
    out: Path
    recipe: Recipe = field(default_factory=Recipe)
    branches: int = 128
    delta: int = 500
    max_tokens: int = 32768
    mode: Mode = Mode.INTERVAL
    canonicalize: Canonicalize = Canonicalize.NONE
    canonicalize_timeout: float = 5.0
    store_model: str = ""
    """The store's model name (default: the served model's last path component)."""
    state: Path | None = None
    """The SQLite checkpoint (default: next to ``out``, ``<out>.state.sqlite``)."""

    @property
    def state_path(self) -> Path:
        """Where progress is committed."""
        return self.state if self.state is not None else self.out.with_name(self.out.name + ".state.sqlite")

    @property
    def model_name(self) -> str:
        """The model name written into the store."""
        return self.store_model or self.server.model.rstrip("/").split("/")[-1]

    @property
    def benchmark_name(self) -> str:
        """The benchmark name written into the store."""
        return self.benchmark.name or self.benchmark.path.stem

    def fingerprint_data(self) -> dict[str, Any]:
        """What fixes the store's meaning (compared on ``--resume``)."""
        return {
            "model": self.server.model,
            "benchmark": str(self.benchmark.path.name),
            "columns": [self.benchmark.question, self.benchmark.answer, self.benchmark.id],
            "recipe": self.recipe.describe(),
            "branches": self.branches,
            "delta": self.delta,
            "max_tokens": self.max_tokens,
            "mode": self.mode.value,
        }

    def fingerprint(self) -> str:
        """Hash of :meth:`fingerprint_data`."""
        blob = json.dumps(self.fingerprint_data(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _resolve(base: Path, text: str) -> Path:
    p = Path(text).expanduser()
    return p if p.is_absolute() else (base / p)


def config_from_mapping(data: Mapping[str, Any], *, base_dir: Path, source: str = "config") -> CollectConfig:
    """Build and check a :class:`CollectConfig` from parsed TOML (relative paths against ``base_dir``)."""
    top = TomlTable(data, "", source)

    b = top.table("benchmark")
    path = b.str_("path", "")
    if not path:
        raise b.fail("path", "is required: the benchmark file (JSONL, CSV or Parquet)")
    id_col = b.str_("id", "id")
    limit = b.int_("limit", 0, minimum=0)
    bench = BenchmarkSpec(
        _resolve(base_dir, path),
        question=b.str_("question", "question"),
        answer=b.str_("answer", "answer"),
        id=id_col or None,
        name=b.str_("name", ""),
        limit=limit or None,
    )
    b.check_unknown()

    s = top.table("server")
    urls = s.str_list("base_urls", []) or []
    if not urls:
        raise s.fail(
            "base_urls", 'is required: a list of OpenAI-compatible base URLs, e.g. ["http://localhost:8000/v1"]'
        )
    for u in urls:
        if not u.startswith(("http://", "https://")):
            raise s.fail("base_urls", f"entries must start with http:// or https://, got {u!r}")
    model = s.str_("model", "")
    if not model:
        raise s.fail("model", "is required: the model name the server serves (see GET /v1/models)")
    server = ServerSpec(
        tuple(urls),
        model,
        api_key_env=s.str_("api_key_env", ""),
        max_in_flight=s.int_("max_in_flight", 32, minimum=1),
        timeout_seconds=s.float_("timeout_seconds", 600.0, positive=True),
        retry=RetryPolicy(
            max_retries=s.int_("max_retries", 5, minimum=0),
            backoff_seconds=s.float_("backoff_seconds", 2.0, minimum=0.0),
            max_backoff_seconds=s.float_("max_backoff_seconds", 60.0, minimum=0.0),
        ),
        price_input_per_mtok=s.float_("price_input_per_mtok", 0.0, minimum=0.0),
        price_output_per_mtok=s.float_("price_output_per_mtok", 0.0, minimum=0.0),
    )
    s.check_unknown()

    c = top.table("collect")
    out = c.str_("out", "")
    if not out:
        raise c.fail("out", "is required: the store file to write (.parquet)")
    if not out.endswith(".parquet"):
        raise c.fail("out", f"must name a .parquet file (the native store), got {out!r}")
    state = c.str_("state", "")
    branches = c.int_("branches", 128, minimum=1)
    delta = c.int_("delta", 500, minimum=1)
    max_tokens = c.int_("max_tokens", 32768, minimum=1)
    mode = Mode(c.str_("mode", "interval", choices=tuple(m.value for m in Mode)))
    token_prompts = TokenPrompts(c.str_("token_prompts", "auto", choices=tuple(t.value for t in TokenPrompts)))
    canon = Canonicalize(c.str_("canonicalize", "none", choices=tuple(m.value for m in Canonicalize)))
    canon_timeout = c.float_("canonicalize_timeout", 5.0, positive=True)
    norm = Normalization(c.str_("normalization", "light", choices=tuple(n.value for n in Normalization)))
    store_model = c.str_("store_model", "")
    c.check_unknown()

    sm = top.table("sampling")
    extra = sm.get("extra", {})
    if not isinstance(extra, Mapping):
        raise sm.fail("extra", "must be a table of extra request fields")
    sampling = Sampling(
        temperature=sm.float_("temperature", 0.6, minimum=0.0),
        top_p=sm.float_("top_p", 0.95, positive=True),
        seed=sm.int_("seed", 0, minimum=0),
        extra=dict(extra),
    )
    sm.check_unknown()

    pr = top.table("prompt")
    text = pr.get("text", None)
    if text is not None and not isinstance(text, str):
        raise pr.fail("text", "must be a string containing {question}")
    preset = pr.str_("preset", "qwen3")
    pb = top.table("probe")
    suffix = pb.get("suffix", None)
    if suffix is not None and not isinstance(suffix, str):
        raise pb.fail("suffix", "must be a string")
    try:
        template = template_from(preset, text=text, probe_suffix=suffix)
    except ConfigError as exc:
        raise ConfigError(f"{source}: [prompt] {exc}") from None
    probe = ProbeRecipe(suffix=suffix, max_tokens=pb.int_("max_tokens", 32, minimum=1))
    pr.check_unknown()
    pb.check_unknown()
    top.check_unknown()
    if mode is Mode.FULL and token_prompts is TokenPrompts.NEVER:
        raise ConfigError(f"{source}: collect.mode = 'full' needs token-id prompts; token_prompts cannot be 'never'")

    recipe = Recipe(template, sampling, probe, norm, token_prompts)
    return CollectConfig(
        benchmark=bench,
        server=server,
        out=_resolve(base_dir, out),
        recipe=recipe,
        branches=branches,
        delta=delta,
        max_tokens=max_tokens,
        mode=mode,
        canonicalize=canon,
        canonicalize_timeout=canon_timeout,
        store_model=store_model,
        state=_resolve(base_dir, state) if state else None,
    )


def load_config(path: str | Path) -> CollectConfig:
    """Read a collection config file (TOML); relative paths are relative to the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the config file ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return config_from_mapping(data, base_dir=p.parent, source=str(p))
