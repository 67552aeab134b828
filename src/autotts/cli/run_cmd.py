"""``autotts run``: answer questions with a controller on a live model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from autotts.cli.app import app
from autotts.cli.output import err, out
from autotts.errors import ConfigError


def read_questions(path: Path) -> list[str]:
    """Questions from a file: JSON lines with a ``question`` field, or one question per line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read --questions {path}: {exc.strerror or exc}") from None
    questions = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                item = json.loads(line)
            except ValueError:
                raise ConfigError(f"{path}:{n}: a line that starts with '{{' must be JSON") from None
            q = item.get("question") if isinstance(item, dict) else None
            if not isinstance(q, str) or not q.strip():
                raise ConfigError(f"{path}:{n}: the JSON line has no 'question' string")
            questions.append(q)
        else:
            questions.append(line.strip())
    if not questions:
        raise ConfigError(f"--questions {path} holds no question")
    return questions


@app.command("run")
def run(
    question: Annotated[str | None, typer.Argument(help="The question (or use --questions FILE).")] = None,
    controller: Annotated[str, typer.Option("--controller", "-c", help="Controller spec, e.g. cmc or sc:n=8.")] = "",
    beta: Annotated[float | None, typer.Option(help="β of a β-controller.")] = None,
    base_url: Annotated[
        list[str] | None, typer.Option("--base-url", help="OpenAI-compatible API root (…/v1); repeatable.")
    ] = None,
    model: Annotated[str, typer.Option(help="Model name on the server.")] = "",
    questions: Annotated[Path | None, typer.Option(help="File of questions (JSON lines or one per line).")] = None,
    delta: Annotated[int, typer.Option(help="Tokens per interval (Δ), as in the replay store.")] = 500,
    preset: Annotated[str, typer.Option(help="Prompt preset of the collection recipe.")] = "qwen3",
    temperature: Annotated[float, typer.Option(help="Sampling temperature of branches.")] = 0.6,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling of branches.")] = 0.95,
    token_prompts: Annotated[str, typer.Option(help="Token-id prompts: auto, always or never.")] = "auto",
    api_key_env: Annotated[str | None, typer.Option(help="Environment variable holding the server's key.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of branch 0 (branch i uses seed + i).")] = 0,
    max_branches: Annotated[int, typer.Option(help="Branches per question at most.")] = 64,
    token_budget: Annotated[int | None, typer.Option(help="Completion tokens per question at most.")] = None,
    deadline: Annotated[float | None, typer.Option(help="Seconds per question at most.")] = None,
    max_branch_tokens: Annotated[int, typer.Option(help="Longest generation of one branch.")] = 32768,
    trace: Annotated[bool, typer.Option("--trace", help="Print the action trace (replay trace format).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON record per question on stdout.")] = False,
) -> None:
    """Answer questions live with a controller; print answer, tokens, branches, wall time."""
    from autotts.controllers.spec import ControllerSpec
    from autotts.llm import read_key
    from autotts.online import LiveLimits, LiveRunner
    from autotts.online.upstream import RecipeSteps, live_recipe

    if not controller:
        raise ConfigError("--controller is required (e.g. --controller cmc --beta 0.5)")
    if not base_url:
        raise ConfigError("--base-url is required (e.g. --base-url http://localhost:8000/v1)")
    if not model:
        raise ConfigError("--model is required (the model name the server serves)")
    if (question is None) == (questions is None):
        raise ConfigError("give exactly one of a QUESTION argument or --questions FILE")
    texts = [question] if question is not None else read_questions(questions)  # type: ignore[arg-type]
    spec = ControllerSpec.parse(controller)
    if beta is not None:
        if not 0.0 <= beta <= 1.0:
            raise ConfigError(f"--beta {beta} is outside [0, 1]")
        if not spec.accepts("beta"):
            raise ConfigError(f"controller {spec.label} takes no beta; drop --beta")
        spec = spec.with_params(beta=beta)
    spec.build()  # a bad parameter fails before any model call
    limits = LiveLimits(
        token_budget=token_budget, deadline=deadline, max_branches=max_branches, max_branch_tokens=max_branch_tokens
    )
    recipe = live_recipe(preset, temperature=temperature, top_p=top_p, token_prompts=token_prompts)
    key = read_key(api_key_env) if api_key_env else ""
    urls = list(base_url)

    with LiveRunner(lambda: RecipeSteps.connect(urls, model, recipe, api_key=key), delta=delta, limits=limits) as live:
        for n, text in enumerate(texts):
            result = live.solve(spec.build(), text, seed=seed)
            if as_json:
                record = {"question": n, "controller": spec.label, "answer": result.answer, **result.summary()}
                if trace:
                    record["trace"] = [e._asdict() for e in result.trace]
                    record["notes"] = [list(x) for x in result.notes]
                out.print(json.dumps(record), markup=False, highlight=False, soft_wrap=True)
                continue
            if len(texts) > 1:
                out.print(f"question {n}", markup=False)
            out.print(f"answer: {result.answer if result.answer is not None else '(none)'}", markup=False)
            out.print(
                f"tokens: {result.cost} (probes {result.probe_tokens}, prompts {result.prompt_tokens}); "
                f"branches: {result.branches}; wall time: {result.seconds:.2f} s; stop: {result.stop_reason}",
                markup=False,
            )
            if trace:
                for e in result.trace:
                    out.print(json.dumps(e._asdict()), markup=False, highlight=False, soft_wrap=True)
    err.print(f"{len(texts)} question(s) answered with {spec.label}", markup=False)
