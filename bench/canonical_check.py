"""Check that the filtered math-verify canonicaliser gives the unfiltered reference's mapping.

``MathCanonicalizer`` skips ``verify`` calls whose result is known beforehand (see
``autotts.collect.canonical``). This script canonicalises a slice of a real store both
ways — filters on, and the straightforward reference (every candidate pair through
``verify``) — and prints the time of each and every answer whose canonical form differs.

    python bench/canonical_check.py STORE [--questions 0:2] [--timeout 2]

The reference costs minutes per question on small models' stores (hundreds of distinct
garbage answers); run it under ``nice -n 19``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from equivalence import light

from autotts.collect.canonical import MathCanonicalizer, canonicalize_questions
from autotts.store import load_store


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("--questions", default="0:2", help="slice START:STOP of the store's questions")
    ap.add_argument("--timeout", type=float, default=2.0)
    args = ap.parse_args()
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    start, stop = (int(x) for x in args.questions.split(":"))
    store = light(load_store(args.store))
    qs = store.questions[start:stop]
    out = {}
    for name, use_filter in (("filtered", True), ("reference", False)):
        c = MathCanonicalizer(args.timeout)
        c.use_filter = use_filter
        t0, c0 = time.monotonic(), time.process_time()
        out[name], merged = canonicalize_questions(qs, c)
        print(
            f"{name}: {time.monotonic() - t0:.1f} s wall, {time.process_time() - c0:.1f} s CPU, "
            f"{merged} merged, {c.verify_calls} verify calls, {c.filtered} skipped",
            flush=True,
        )
    diffs = 0
    for qa, qb in zip(out["filtered"], out["reference"], strict=True):
        for ba, bb in zip(qa.branches, qb.branches, strict=True):
            for x, y in zip((*ba.probes, ba.final), (*bb.probes, bb.final), strict=True):
                if x != y:
                    diffs += 1
                    print(f"{qa.id}: filtered {x!r} reference {y!r}")
    print(f"{store.name} questions {args.questions}: {diffs} cells differ")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
