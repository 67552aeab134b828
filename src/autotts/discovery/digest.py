"""Trace digests: what a candidate actually did, condensed for the explorer.

Per question (one run, one β): branches opened, their depths, prunes, finishes,
tokens, why it stopped and whether it was right; then the worst failures action by
action — wrong answers where the correct answer had already been revealed come first,
since those are the ones a better rule could have saved. Gold answers are never
printed; only right/wrong.
"""

from __future__ import annotations

from collections.abc import Sequence

from autotts.discovery.evaluate import Episode


def stop_reason(ep: Episode) -> str:
    """Why the episode ended, in a few words."""
    alive = sum(1 for d, fin, pr in ep.branches if not fin and not pr)
    opened = len(ep.branches)
    if ep.answer is None:
        return "returned no answer"
    if alive:
        return f"answered with {alive} branch{'es' if alive != 1 else ''} still alive"
    if ep.n_total and opened >= ep.n_total:
        return "answered after using every branch"
    return "answered with no branch alive"


def _question_line(ep: Episode) -> str:
    depths = [d for d, _, _ in ep.branches]
    finished = sum(1 for _, f, _ in ep.branches if f)
    pruned = sum(1 for _, _, p in ep.branches if p)
    dtxt = f"{max(depths)}/{sum(depths) / len(depths):.1f}" if depths else "-"
    mark = "right" if ep.correct else "WRONG"
    return (
        f"q{ep.question:<3} {mark:<5} opened {len(ep.branches)}/{ep.n_total}, depth max/mean {dtxt}, "
        f"finished {finished}, pruned {pruned}, {ep.cost:,} tokens, {ep.n_events} actions; {stop_reason(ep)}"
    )


def _actions(ep: Episode, limit: int) -> list[str]:
    notes: dict[int, list[str]] = {}
    for k, text in ep.notes:
        notes.setdefault(k, []).append(text)
    lines = []
    events = list(ep.events)
    shown: list[tuple[int, tuple[object, ...]] | None]
    if len(events) > limit:
        head = limit - 10
        shown = [(i, e) for i, e in enumerate(events[:head])]
        shown.append(None)
        shown += [(i, e) for i, e in enumerate(events) if i >= len(events) - 10]
    else:
        shown = list(enumerate(events))
    for item in shown:
        if item is None:
            lines.append(f"      … {len(events) - limit} actions omitted …")
            continue
        i, e = item
        action, branch, depth, answer, cost, total = e
        for t in notes.get(i, []):
            lines.append(f"      note: {t}")
        shown_answer = "" if answer is None else f" -> {answer!r}"
        lines.append(
            f"      {i + 1:>4} {action:<7} b{branch:<3} depth {depth:<3}{shown_answer}  (+{cost:,}, total {total:,})"
        )
    if ep.n_events > len(events):
        lines.append(f"      ({ep.n_events - len(events)} later actions were not recorded)")
    for t in notes.get(len(ep.events), []):
        lines.append(f"      note: {t}")
    lines.append(f"      => answered {ep.answer!r}")
    return lines


def build_digest(
    episodes: Sequence[Episode],
    *,
    beta: float | None,
    max_chars: int,
    worst_failures: int = 2,
    failure_actions: int = 40,
) -> str:
    """The digest of the traced episodes at ``beta`` (first traced run), at most ``max_chars`` long."""
    chosen = [e for e in episodes if e.beta == beta]
    if not chosen:
        return ""
    first_run = min(e.run for e in chosen)
    chosen = sorted((e for e in chosen if e.run == first_run), key=lambda e: (e.store, e.question))
    failures = sorted((e for e in chosen if not e.correct), key=lambda e: (not e.gold_seen, -e.cost))
    fail_parts: list[str] = []
    for ep in failures[:worst_failures]:
        seen = "the correct answer HAD been revealed" if ep.gold_seen else "the correct answer was never revealed"
        fail_parts.append(f"  Failure {ep.store} q{ep.question} ({seen}):")
        fail_parts.extend(_actions(ep, failure_actions))
    fail_text = ("\nWorst failures, action by action:\n" + "\n".join(fail_parts)) if fail_parts else ""

    def overview(right_lines: bool) -> str:
        parts: list[str] = []
        for store in sorted({e.store for e in chosen}):
            eps = [e for e in chosen if e.store == store]
            right = sum(e.correct for e in eps)
            mean = sum(e.cost for e in eps) / len(eps)
            beta_txt = "" if beta is None else f" at β={beta:g}"
            parts.append(f"{store}{beta_txt}, run {first_run}: {right}/{len(eps)} right, {mean:,.0f} tokens/question")
            parts.extend("  " + _question_line(e) for e in eps if right_lines or not e.correct)
            if not right_lines and right:
                parts.append(f"  ({right} questions answered right are not listed)")
        return "\n".join(parts)

    # The failures matter most; when space is short, list only the wrong questions.
    text = overview(True)
    if len(text) + len(fail_text) > max_chars:
        text = overview(False)
    text += fail_text
    if len(text) > max_chars:
        cut = text[: max_chars - 40]
        text = cut[: cut.rfind("\n")] + "\n  … digest truncated to its size budget"
    return text
