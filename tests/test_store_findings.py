"""``validate_store``'s findings as ``autotts store validate`` shows them: code, location and words.

Each warning points at the first place to look (question, branch, field) and says what
it means for numbers computed on the store; a long list of branches is cut after twelve.
``tests/test_store_cli.py`` covers which codes fire; this file pins what each one says.
"""

from __future__ import annotations

from autotts.store.schema import ERR, Branch, Question, ReplayStore, StoreMeta
from autotts.store.validate import Finding, Severity, validate_store


def q(qid: str, branches: list[Branch], *, delta: int = 10, gold: str = "A", text: str = "") -> Question:
    return Question(qid, text or f"text of {qid}", gold, delta, tuple(branches))


def ok(final: str = "A", tokens: int = 25, probes: tuple[str, ...] = ("A", "B")) -> Branch:
    return Branch(probes, tokens, final)


def store(*questions: Question) -> ReplayStore:
    return ReplayStore(StoreMeta("m", "b"), tuple(questions))


def warnings(s: ReplayStore) -> list[Finding]:
    found = validate_store(s)
    assert all(f.severity is Severity.WARNING for f in found)
    return found


def test_a_finding_reads_as_severity_code_location_message() -> None:
    f = Finding(Severity.WARNING, "zero-tokens", "reading costs nothing", question=3, branch=5, field="tokens")
    assert str(f) == "warning [zero-tokens] question 3, branch 5, field 'tokens': reading costs nothing"
    assert f.location == "question 3, branch 5, field 'tokens'"
    assert not f.is_error
    store_wide = Finding(Severity.ERROR, "no-questions", "the store holds no questions")
    assert str(store_wide) == "error [no-questions] the store holds no questions"
    assert store_wide.location == "" and store_wide.is_error
    assert Finding(Severity.ERROR, "x", "m", field="gold").location == "field 'gold'"
    assert f.to_dict() == {
        "severity": "warning",
        "code": "zero-tokens",
        "message": "reading costs nothing",
        "question": 3,
        "branch": 5,
        "field": "tokens",
    }


def test_mixed_deltas_point_at_the_first_odd_question() -> None:
    s = store(q("a", [ok()]), q("b", [ok()], delta=20), q("c", [ok()]), q("d", [ok()], delta=20), q("e", [ok()]))
    assert warnings(s) == [
        Finding(
            Severity.WARNING,
            "delta-mixed",
            "the probe interval differs across questions: Δ=10 (3 questions), Δ=20 (2 questions); "
            "costs are not comparable across them",
            question=1,
            field="delta",
        )
    ]
    # the usual value is the most common one, wherever it comes first
    s2 = store(q("a", [ok()], delta=20), q("b", [ok()]), q("c", [ok()]))
    assert [(f.code, f.question) for f in warnings(s2)] == [("delta-mixed", 0)]


def test_mixed_branch_counts_point_at_the_first_odd_question() -> None:
    s = store(q("a", [ok(), ok()]), q("b", [ok(), ok()]), q("c", [ok()]), q("d", [ok(), ok(), ok()]))
    assert warnings(s) == [
        Finding(
            Severity.WARNING,
            "branches-mixed",
            "questions hold different numbers of branches: 2 branches (2 questions), 1 branches (1 questions), "
            "3 branches (1 questions); controllers needing N branches may run out",
            question=2,
            field="branches",
        )
    ]
    s2 = store(q("a", [ok()]), q("b", [ok(), ok()]), q("c", [ok(), ok()]))
    assert [(f.code, f.question) for f in warnings(s2)] == [("branches-mixed", 0)]


def test_duplicate_texts_name_the_first_copy_and_empty_texts_are_not_duplicates() -> None:
    s = store(
        q("a", [ok()], text="What is 2+2?"),
        Question("b", "", "A", 10, (ok(),)),
        Question("c", "", "A", 10, (ok(),)),
        q("d", [ok()], text="Other"),
        q("e", [ok()], text="What is 2+2?"),
        q("f", [ok()], text="Other"),
    )
    assert warnings(s) == [
        Finding(
            Severity.WARNING,
            "duplicate-text",
            "same question text as question 0; a benchmark question counted twice skews accuracy",
            question=4,
            field="text",
        ),
        Finding(
            Severity.WARNING,
            "duplicate-text",
            "same question text as question 3; a benchmark question counted twice skews accuracy",
            question=5,
            field="text",
        ),
    ]


def test_more_probes_than_the_length_allows_lists_the_branches() -> None:
    # Δ = 10: 25 tokens hold at most ceil(2.5) = 3 probes; 30 tokens exactly 3.
    branches = [ok(tokens=30, probes=("A",) * 3), ok(tokens=25, probes=("A",) * 4), ok(tokens=21, probes=("A",) * 3)]
    branches += [ok(tokens=5, probes=("A", "A"))] * 14
    found = warnings(store(q("a", branches)))
    assert found == [
        Finding(
            Severity.WARNING,
            "probes-exceed-length",
            "15 branch(es) have more probes than their length allows (K > ceil(tokens / Δ)): "
            "branches 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, ...; probe or token counts may be wrong",
            question=0,
            branch=1,
            field="probes",
        )
    ]


def test_zero_token_branches_and_a_list_of_exactly_twelve() -> None:
    branches = [ok()] + [ok(tokens=0, probes=())] * 12
    assert warnings(store(q("a", branches))) == [
        Finding(
            Severity.WARNING,
            "zero-tokens",
            "12 branch(es) have 0 tokens: branches 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12; reading them costs nothing",
            question=0,
            branch=1,
            field="tokens",
        )
    ]


def test_suspicious_gold_and_all_err_finals() -> None:
    s = store(q("a", [ok(final=ERR), ok(final=ERR)], gold=ERR), q("b", [ok(), ok()], gold=""), q("c", [ok(), ok(ERR)]))
    found = [f for f in warnings(s) if f.code != "gold-unreached"]
    assert found == [
        Finding(
            Severity.WARNING,
            "gold-suspicious",
            "the gold answer is 'ERR', which looks like a missing answer rather than a real one",
            question=0,
            field="gold",
        ),
        Finding(
            Severity.WARNING,
            "all-err",
            "every branch's final answer is 'ERR'; answer extraction probably failed for this question",
            question=0,
            field="final",
        ),
        Finding(
            Severity.WARNING,
            "gold-suspicious",
            "the gold answer is '', which looks like a missing answer rather than a real one",
            question=1,
            field="gold",
        ),
    ]


def test_unreached_gold_is_one_store_wide_finding_with_probe_hints() -> None:
    s = store(
        q("a", [ok(final="B", probes=("A", "B"))]),  # gold A only among the probes
        q("b", [ok()]),
        q("c", [ok(final="C", probes=("C",))]),
    )
    assert warnings(s) == [
        Finding(
            Severity.WARNING,
            "gold-unreached",
            "no branch ends with the gold answer in 2 of 3 questions (0, 2), so answering with a branch's final "
            "answer cannot be right there; it does appear among the probes of questions 0; if that is "
            "unexpected, check how gold answers were normalised",
            field="gold",
        )
    ]
    s2 = store(q("a", [ok(final="C", probes=("C",))]), q("b", [ok()]))
    assert warnings(s2)[0].message == (
        "no branch ends with the gold answer in 1 of 2 questions (0), so answering with a branch's final answer "
        "cannot be right there; if that is unexpected, check how gold answers were normalised"
    )


def test_a_clean_store_has_no_findings() -> None:
    assert validate_store(store(q("a", [ok(), ok("B")]), q("b", [ok(), ok()]))) == []
