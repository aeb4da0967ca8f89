"""What a process remembers having written (services/kernel/process_memo.py): one budget, PROCESS_MEMO_MB,
shared by the memos of every service; each memo's entry size is measured here, not assumed."""
import gc
import tracemalloc
from datetime import timedelta

import pytest
from nameko import config

from services.kernel import process_memo as known
from services.kernel.config import DEFAULTS
from services.kernel import findings_index
from services.penalty import projections
from services.penalty import service as penalty_service
from services.penalty import store
from tests.unit.test_penalty_service import DEPT, at, item, officer


def case_id(n: int) -> str:
    return f"511322-SJ-pm2026-{n:04d}"  # the simulator's form (services/simulator/generator.py)


# One entry of each memo as its writer makes it: fresh key strings and values, the database and
# collection names shared (pymongo hands out the same name object); an answer's entry (the officer or
# item built once) is shared by its answers, each asked at its own instant.
DB, COL = "zhifa_penalty", "cases"
ITEM = projections._Built(item(), projections.projected_item(item()))
HOLDER = projections._Built(officer(), projections.holder_from_payload(officer()))
T0 = at("2026-03-01T10:00")


def instant(n: int):
    return T0 + timedelta(seconds=37 * n)
ENTRIES = {
    "penalty.case_refs": lambda n: ((DB, store.ref_bucket("officer_ids", f"511322-SJ-{n % 97:04d}", case_id(n)),
                                     case_id(n)), None),
    "penalty.case_list_at": lambda n: ((DB, case_id(n)),
                                       (f"511322-scjg|investigating|{n % 2}", f"{n * 7919:016x}", n)),
    "penalty.decisions": lambda n: ((DB, case_id(n)), hash(f"decision {n}")),
    "penalty.judged_reads": lambda n: ((DB, case_id(n)), projections.judged_reads({
        "officer_ids": [f"511322-SJ-{n % 97:04d}", f"511322-SJ-{(n + 1) % 97:04d}"],
        "item_codes": [f"511322-scjg-{n % 31:04d}"], "party_id": f"91511322MA{n:08d}",
        "decisions": [{"fine_amount": 500 + n, "act_code": "A01", "party": {"id": f"91511322MA{n:08d}"}}]})),
    "findings_at": lambda n: ((DB, COL, case_id(n)), n + 3),
    "penalty.item_answers": lambda n: ((ITEM, DEPT, *projections._when(instant(n))),
                                       projections.item_view(ITEM.value, DEPT, ITEM.payload["item_code"], instant(n))),
    "penalty.officer_answers": lambda n: ((HOLDER, "market", *projections._when(instant(n))),
                                          projections.officer_verdict(HOLDER.value, "market", instant(n))),
}


def budgeted():
    return {m.name: m for m in known.memos()}


def test_every_memo_of_the_budget_is_here_and_the_shares_add_up_to_at_most_one():
    memos = budgeted()
    assert set(memos) == set(ENTRIES)  # a new memo: measure its entry here
    assert sum(m.share for m in memos.values()) <= 1.0 + 1e-9
    assert memos["penalty.decisions"] is penalty_service._WRITTEN_DECISIONS
    assert memos["penalty.judged_reads"] is penalty_service._JUDGED_READS
    assert memos["penalty.case_list_at"] is store._known and memos["findings_at"] is findings_index._known
    assert memos["penalty.case_refs"] is penalty_service._INDEXED_REFS
    assert memos["penalty.item_answers"] is projections._ITEM_ANSWERS
    assert memos["penalty.officer_answers"] is projections._OFFICER_ANSWERS


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_a_full_memo_takes_its_share_of_the_budget_as_measured(name):
    """Filled to its bound under the default budget (a mapping's cost per entry depends on how many it
    holds: measured where it runs), a memo's traced memory is within 15% of its share (an
    entry size set too low would let the memos outgrow the budget; too high would waste it)."""
    budget = DEFAULTS["PROCESS_MEMO_MB"]
    with config.patch({"PROCESS_MEMO_MB": budget}):
        memo = known.ProcessMemo(f"{name} (measured)", share=budgeted()[name].share,
                                 entry_bytes=budgeted()[name].entry_bytes)
        known._memos.remove(memo)
        make = ENTRIES[name]
        assert memo.limit == int(budget * known.MB * memo.share) // memo.entry_bytes
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for n in range(memo.limit + 500):  # (past the bound: the oldest are forgotten)
                key, value = make(n)
                memo.put(key, value)
            gc.collect()
            used = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert len(memo) == memo.limit
        share = budget * known.MB * memo.share
        assert 0.85 * share <= used <= 1.15 * share, f"{name}: {used / memo.limit:.0f} bytes per entry"


def test_the_bound_is_read_at_the_first_write_and_again_after_a_reset():
    memo = known.ProcessMemo("t", share=0.5, entry_bytes=100)
    known._memos.remove(memo)
    with config.patch({"PROCESS_MEMO_MB": 1}):
        memo.put("a")
        assert memo.limit == known.MB // 2 // 100
    with config.patch({"PROCESS_MEMO_MB": 0}):
        assert memo.limit == known.MB // 2 // 100  # (read once)
        memo.reset()
        memo.put("b")
        assert memo.limit == 0 and len(memo) == 0 and "b" not in memo  # a budget of 0 keeps nothing


def test_least_recently_written_is_forgotten_first_and_reads_do_not_refresh():
    memo = known.ProcessMemo("t", share=1, entry_bytes=1, limit=2)
    memo.put("a", 1)
    memo.put("b", 2)
    assert memo.get("a") == 1 and "a" in memo  # read: not refreshed
    memo.put("c", 3)
    assert "a" not in memo and memo.get("b") == 2 and memo.get("c") == 3
    memo.put("b", 4)  # written again: the most recent
    memo.put("d", 5)
    assert list(memo._entries) == ["b", "d"] and memo.pop("b") == 4 and len(memo) == 1
    assert memo not in known.memos()  # a test's own bound is not the budget's


def test_a_memo_of_the_budget_is_made_once():
    with pytest.raises(ValueError, match="made twice"):
        known.ProcessMemo("penalty.decisions", share=0.1, entry_bytes=1)
    assert store.known_refs(limit=5) not in known.memos()  # (a test's own bound: allowed, not counted)


def test_the_setting_is_checked():
    memo = known.ProcessMemo("t (setting)", share=1, entry_bytes=1)
    known._memos.remove(memo)
    with config.patch({"PROCESS_MEMO_MB": -1}):
        with pytest.raises(ValueError, match="PROCESS_MEMO_MB"):
            memo.limit
    with pytest.raises(ValueError):
        known.ProcessMemo("t", share=0, entry_bytes=1)


def test_an_answer_found_is_refreshed_and_one_not_found_is_computed_once():
    memo = known.ProcessMemo("t", share=1, entry_bytes=1, limit=2)
    asked = []

    def compute(value):
        return lambda: asked.append(value) or value

    assert memo.answer("a", compute(1)) == 1 and memo.answer("b", compute(2)) == 2
    assert memo.answer("a", compute(99)) == 1  # found: not computed again, and now the most recent
    memo.answer("c", compute(3))  # forgets "b", the least recently asked
    assert "b" not in memo and "a" in memo and asked == [1, 2, 3]
