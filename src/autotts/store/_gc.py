"""Pause the cyclic garbage collector while a reader builds many small objects."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Run the block with the cyclic collector off, restoring its previous state.

    Loading a store creates ~10^5 tuples and dataclass instances, none of them in
    reference cycles; the collector's repeated passes over them cost a third of the
    load time and find nothing. Reference counting still frees everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
