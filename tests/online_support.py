"""Shared plumbing of the live-deployment tests: the proxy app in a thread, replay stores, offline references."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from autotts.collect.recipe import Recipe
from autotts.controllers.spec import ControllerSpec
from autotts.env.protocols import shuffle_order
from autotts.env.session import ReplaySession
from autotts.online.proxy import ProxyConfig, create_app
from autotts.online.upstream import RecipeSteps
from autotts.store.schema import ReplayStore
from autotts.testing.replay_server import ReplayLLMServer

RECIPE = Recipe()


def replay_server(store: ReplayStore, **kwargs: Any) -> ReplayLLMServer:
    """A replay server speaking the default recipe's probe suffix."""
    return ReplayLLMServer(store, probe_suffix=RECIPE.probe_suffix, **kwargs)


def offline(store: ReplayStore, spec: ControllerSpec, qi: int, run: int) -> tuple[str | None, ReplaySession]:
    """``(answer, session)`` of ``spec`` solving question ``qi`` offline in run ``run``."""
    q = store.replay[qi]
    session = ReplaySession(q, shuffle_order(q.n_branches, run))
    return spec.build().solve(session), session


@contextmanager
def proxy(config: ProxyConfig, upstream_url: str, **connect: Any) -> Iterator[str]:
    """Run the proxy app with uvicorn on a free port in a thread; yield its base URL (``…/v1``)."""
    app = create_app(config, lambda: RecipeSteps.connect([upstream_url], config.model, RECIPE, **connect))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the proxy did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def wait_for(predicate: Any, seconds: float = 30) -> None:
    """Poll ``predicate`` every 10 ms until it holds; fail the test after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)
