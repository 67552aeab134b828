"""``autotts serve``: an OpenAI-compatible test-time-scaling proxy in front of LLM servers."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from autotts.cli.app import app
from autotts.cli.output import err
from autotts.cli.signals import EXIT_SIGINT, EXIT_SIGTERM
from autotts.errors import ConfigError


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: any free port) for uvicorn.

    ``proto=IPPROTO_TCP``, not the default 0: asyncio sets ``TCP_NODELAY`` on accepted
    connections only when the socket says it is TCP, and without it every reply's body
    waits ~40 ms behind its headers (Nagle against the client's delayed ACK).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


@app.command("serve")
def serve(
    controller: Annotated[str, typer.Option("--controller", "-c", help="Default controller spec.")] = "",
    upstream: Annotated[
        list[str] | None, typer.Option("--upstream", help="Upstream OpenAI-compatible API root (…/v1); repeatable.")
    ] = None,
    model: Annotated[str, typer.Option(help="Upstream model name (also the advertised model id).")] = "",
    beta: Annotated[float | None, typer.Option(help="Default β of a β-controller.")] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind (0: any free port, printed at startup).")] = 8000,
    delta: Annotated[int, typer.Option(help="Tokens per interval (Δ).")] = 500,
    preset: Annotated[str, typer.Option(help="Prompt preset of the collection recipe.")] = "qwen3",
    temperature: Annotated[float, typer.Option(help="Sampling temperature of branches.")] = 0.6,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling of branches.")] = 0.95,
    token_prompts: Annotated[str, typer.Option(help="Token-id prompts: auto, always or never.")] = "auto",
    upstream_key_env: Annotated[str | None, typer.Option(help="Environment variable with the upstream key.")] = None,
    allow_controller: Annotated[
        list[str] | None, typer.Option("--allow-controller", help="Spec a request may pick by name; repeatable.")
    ] = None,
    beta_min: Annotated[float, typer.Option(help="Smallest β a request may ask for.")] = 0.0,
    beta_max: Annotated[float, typer.Option(help="Largest β a request may ask for.")] = 1.0,
    max_concurrency: Annotated[int, typer.Option(help="Requests answered at once; more get 429.")] = 16,
    max_branches: Annotated[int, typer.Option(help="Branches per request at most.")] = 64,
    token_budget: Annotated[int | None, typer.Option(help="Completion tokens per request at most.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per request at most.")] = 600.0,
    max_branch_tokens: Annotated[int, typer.Option(help="Longest generation of one branch.")] = 32768,
    upstream_in_flight: Annotated[int, typer.Option(help="Requests in flight per upstream server.")] = 64,
    upstream_retries: Annotated[int, typer.Option(help="Retries of a failed upstream call.")] = 3,
    upstream_timeout: Annotated[float, typer.Option(help="Seconds one upstream call may take.")] = 600.0,
    api_keys_file: Annotated[
        Path | None, typer.Option(help="File of accepted bearer keys (also $AUTOTTS_SERVE_API_KEYS).")
    ] = None,
    include_reasoning: Annotated[bool, typer.Option(help="Return one branch's reasoning by default.")] = False,
    shutdown_grace: Annotated[float, typer.Option(help="Seconds in-flight requests get on SIGTERM.")] = 30.0,
    access_log: Annotated[bool, typer.Option(help="Log every HTTP request.")] = False,
    run_controllers: Annotated[
        str,
        typer.Option(
            help="Where controllers run: auto (built-ins on the event loop, files in worker threads), loop, threads."
        ),
    ] = "auto",
) -> None:
    """Serve a controller as an OpenAI-compatible chat-completions endpoint."""
    try:
        import uvicorn

        from autotts.online.proxy import ProxyConfig, create_app, load_keys
        from autotts.online.proxy.server import BACKSTOP_SECONDS, DrainingServer
    except ImportError as exc:
        raise ConfigError(f"autotts serve needs the serve extra: pip install 'autotts[serve]' ({exc})") from None
    from autotts.llm import RetryPolicy, read_key
    from autotts.online import LiveLimits, Placement
    from autotts.online.upstream import RecipeSteps, live_recipe

    if not controller:
        raise ConfigError("--controller is required (e.g. --controller cmc --beta 0.5)")
    if not upstream:
        raise ConfigError("--upstream is required (e.g. --upstream http://localhost:8000/v1)")
    if not model:
        raise ConfigError("--model is required (the model name the upstream serves)")
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be 0..65535, got {port}")
    try:
        placement = Placement(run_controllers)
    except ValueError:
        raise ConfigError(f"--run-controllers must be auto, loop or threads; got {run_controllers!r}") from None
    if timeout <= 0 or shutdown_grace < 0:
        raise ConfigError("--timeout must be positive and --shutdown-grace non-negative")
    config = ProxyConfig(
        controller=controller,
        model=model,
        delta=delta,
        beta=beta,
        allowed_controllers=tuple(allow_controller or ()),
        beta_range=(beta_min, beta_max),
        limits=LiveLimits(
            token_budget=token_budget, deadline=timeout, max_branches=max_branches, max_branch_tokens=max_branch_tokens
        ),
        max_concurrency=max_concurrency,
        include_reasoning=include_reasoning,
        shutdown_grace=shutdown_grace,
        api_keys=load_keys(file=api_keys_file),
        placement=placement,
    )
    recipe = live_recipe(preset, temperature=temperature, top_p=top_p, token_prompts=token_prompts)
    key = read_key(upstream_key_env) if upstream_key_env else ""
    urls = list(upstream)
    if upstream_retries < 0 or upstream_timeout <= 0:
        raise ConfigError("--upstream-retries must be >= 0 and --upstream-timeout positive")
    policy = RetryPolicy(max_retries=upstream_retries, backoff_seconds=0.5, max_backoff_seconds=10.0)

    def connect() -> Coroutine[Any, Any, RecipeSteps]:
        return RecipeSteps.connect(
            urls,
            model,
            recipe,
            api_key=key,
            max_in_flight=upstream_in_flight,
            timeout_seconds=upstream_timeout,
            policy=policy,
        )

    async def preflight() -> None:
        # Fail here, with one clear line, rather than inside uvicorn's startup (a traceback).
        steps = await connect()
        await steps.aclose()

    asyncio.run(preflight())
    app_ = create_app(config, connect)
    try:
        sock = listen_socket(host, port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound = sock.getsockname()[1]
    uv_config = uvicorn.Config(
        app_,
        log_level="info" if access_log else "warning",
        access_log=access_log,
        timeout_graceful_shutdown=BACKSTOP_SECONDS,
        lifespan="on",
    )
    # SIGTERM/SIGINT: the server drains (``/health`` says so at once, new requests get
    # 503, in-flight ones finish within --shutdown-grace), then the command exits with
    # the CLI's conventional status (143 / 130) rather than uvicorn re-raising them.
    server = DrainingServer(uv_config, app_.state.proxy, grace=shutdown_grace)
    logging.getLogger("autotts").setLevel(logging.INFO)
    err.print(f"autotts serve: {config.default_spec().label} on http://{host}:{bound}/v1 (model {model})", markup=False)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
    if not server.started:
        from autotts.online.errors import OnlineError

        raise OnlineError("the proxy could not start (is the upstream reachable? see the log above)")
    if server.signals:
        first = server.signals[0]
        err.print(f"autotts serve: stopped ({signal.Signals(first).name})", markup=False)
        raise typer.Exit(EXIT_SIGTERM if first == signal.SIGTERM else EXIT_SIGINT)
    err.print("autotts serve: stopped", markup=False)
