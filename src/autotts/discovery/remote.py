"""Where judge/candidate pairs run: in this process's machine (``local``) or as Ray tasks (``ray``).

A judged job is self-contained — the candidate's source, the interned stores it is judged
on, the orders and the secret go in, a :class:`~autotts.discovery.sandbox.SandboxOutcome`
comes out — so a Ray worker can play the judge and start the candidate process on its own
node. The result is the same as local: the judge is deterministic given the job.
"""

from __future__ import annotations

import threading
from typing import Any

from autotts.discovery.sandbox import SandboxJob, SandboxLimits, SandboxOutcome, run_sandbox
from autotts.errors import ConfigError

BACKENDS = ("local", "ray")
_RAY_LOCK = threading.Lock()
_RAY_STARTED = [False]


def run_judged(job: SandboxJob, limits: SandboxLimits, backend: str = "local", address: str = "") -> SandboxOutcome:
    """Run one judged job on ``backend``; Ray is started (or joined at ``address``) on first use."""
    if backend == "local":
        return run_sandbox(job, limits)
    if backend != "ray":
        raise ConfigError(f"sandbox.backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    ray = _ray(address)
    remote = ray.remote(num_cpus=1, max_retries=0)(run_sandbox)
    outcome: SandboxOutcome = ray.get(remote.remote(job, limits))
    return outcome


def _ray(address: str) -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("sandbox.backend = 'ray' needs Ray: pip install 'autotts[ray]'") from None
    with _RAY_LOCK:
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                kwargs["address"] = address
            try:
                ray.init(**kwargs)
            except Exception as exc:
                raise ConfigError(f"cannot start or reach a Ray cluster at {address or 'local'}: {exc}") from None
            _RAY_STARTED[0] = True
    return ray


def shutdown() -> None:
    """Stop the Ray runtime if :func:`run_judged` started it."""
    with _RAY_LOCK:
        if _RAY_STARTED[0]:
            import ray

            ray.shutdown()
            _RAY_STARTED[0] = False
