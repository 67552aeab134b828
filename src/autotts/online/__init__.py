"""Deploying controllers on a live model: the live session, ``autotts run`` and the ``autotts serve`` proxy.

* :class:`~autotts.online.session.LiveSession` — the replay session's API over an
  OpenAI-compatible server (:mod:`autotts.online.session`);
* :func:`~autotts.online.runner.run_episode` / :class:`~autotts.online.runner.LiveRunner`
  — run a controller live and get a :class:`~autotts.online.runner.LiveResult`;
  :func:`~autotts.online.runner.start_episode` runs one in a greenlet on the event loop
  (where: :class:`~autotts.online.runner.Placement`);
* :mod:`autotts.online.upstream` — the model calls, made by the collection recipe;
* :mod:`autotts.online.proxy` — the OpenAI-compatible test-time-scaling proxy
  (needs the ``serve`` extra).
"""

from autotts.online.errors import EpisodeStopped, OnlineError, UpstreamError
from autotts.online.runner import (
    LiveResult,
    LiveRunner,
    LoopThread,
    Placement,
    best_answer,
    run_episode,
    runs_on_loop,
    start_episode,
)
from autotts.online.session import LiveLimits, LiveSession
from autotts.online.steps import BranchSteps, Grown, Probed

__all__ = [
    "BranchSteps",
    "EpisodeStopped",
    "Grown",
    "LiveLimits",
    "LiveResult",
    "LiveRunner",
    "LiveSession",
    "LoopThread",
    "OnlineError",
    "Placement",
    "Probed",
    "UpstreamError",
    "best_answer",
    "run_episode",
    "runs_on_loop",
    "start_episode",
]
