"""uvicorn with a drain phase: on SIGTERM the proxy says so at once, and keeps answering while it drains.

uvicorn alone, on SIGTERM, closes its listening socket straight away: a load balancer
polling ``/health`` then sees connection errors rather than a clear "draining", and
in-flight requests get whatever is left of uvicorn's graceful timeout. Here the first
SIGTERM (or Ctrl-C):

1. marks the proxy draining (in the signal handler itself, so from the next request
   on): ``/health`` answers 503 ``{"status": "draining", ...}`` and new chat requests
   get a 503 OpenAI-style error, while the listener stays open;
2. lets in-flight requests finish, up to the configured grace;
3. aborts the episodes still running past the grace (each answers at once: its best
   answer so far with stop reason ``shutdown``, or a 503 error object when it has
   none), then hands over to uvicorn's own shutdown (close the listener and the
   connections, lifespan shutdown), which cancels whatever is left after
   :data:`BACKSTOP_SECONDS`.

A second signal skips what is left of the grace; a third Ctrl-C exits at once. The
signals received are kept in :attr:`DrainingServer.signals`, so that the command can
exit with the conventional status (143 after SIGTERM, 130 after Ctrl-C) instead of
uvicorn re-raising them.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Generator
from types import FrameType

import uvicorn

from autotts.online.proxy.app import ProxyState

log = logging.getLogger(__name__)

#: Seconds uvicorn still gives requests after the drain before it cancels them.
BACKSTOP_SECONDS = 5

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class DrainingServer(uvicorn.Server):
    """A :class:`uvicorn.Server` that drains the proxy before it stops (see the module docstring)."""

    def __init__(self, config: uvicorn.Config, state: ProxyState, *, grace: float) -> None:
        super().__init__(config)
        self.proxy = state
        self.grace = grace
        self.signals: list[int] = []
        self._drain_deadline: float | None = None
        self._hurry = False

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Handle SIGINT/SIGTERM while serving; unlike uvicorn, do not re-raise them afterwards."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Signal handler: start draining; a second signal stops waiting, a third Ctrl-C forces."""
        self.signals.append(sig)
        if not self.proxy.draining:
            self.proxy.draining = True  # /health and new requests see it from now on
        elif not self._hurry:
            self._hurry = True  # the next tick stops what is still running
        elif sig == signal.SIGINT:
            self.force_exit = True
            self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        """The uvicorn tick (every 0.1 s), plus the drain: stop once nothing is in flight or the grace is over."""
        if self.proxy.draining and not self.should_exit:
            now = time.monotonic()
            if self._drain_deadline is None:
                self._drain_deadline = now + self.grace
                log.warning(
                    "shutting down: draining %d in-flight request(s) for up to %g s", self.proxy.in_flight, self.grace
                )
            if self.proxy.in_flight == 0:
                self.should_exit = True
            elif now >= self._drain_deadline or self._hurry:
                log.warning("shutdown grace over: stopping %d request(s)", self.proxy.in_flight)
                self.proxy.abort_all("shutdown")
                self.should_exit = True
        return await super().on_tick(counter)
