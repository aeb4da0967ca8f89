"""Penalty reads ahead for a batch (services/penalty/service.py `PenaltyService.prefetch`): the batch's
case documents in one find (the kernel's `AggregateStore.prefetch`), then the officer and item
projections and the parties' decision lists their judgements will read, one find per kind
(store.read_ahead) — not one per case that misses. The judgements are the ones the cases would reach
reading on their own (a double fine between two cases of one party is found either way). On the real
FerretDB, through the service's own batch path (`apply_batch`)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from plugins.host import build_plugin_manager
from services.kernel import aggregates, process_memo, projection_cache
from services.penalty import store
from services.penalty.service import PenaltyService
from tests.db_recorder import Recorder
from tests.helpers import SCJG, envelope, offline_recorded

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=CST)
OFFICERS = ["511322-scjg-0901", "511322-scjg-0902"]
PARTIES = {p: {"type": "org", "id": f"91511322MA3C4X09{p}", "name": f"营山县第{p}食品有限公司"} for p in ("01", "02")}
CASES = {f"511322-scjg-2026-09{n:02d}": PARTIES["01" if n < 3 else "02"] for n in range(1, 5)}


@pytest.fixture
def penalty(servers):
    """(the service on a scratch database whose commands are recorded, that database, the recorder)"""
    with offline_recorded(servers, PenaltyService, "penalty", host=build_plugin_manager(enabled=[]), preset="seed001",
                          indexes=store.ensure_indexes, clock=lambda: T0 + timedelta(days=10)) as recorded:
        yield recorded


def fact(type_: str, case_id: str, days: int, **payload) -> dict:
    return envelope(type_, {"case_id": case_id, **payload}, SCJG, occurred_at=(T0 + timedelta(days=days)).isoformat())


def story(case_id: str, party: dict) -> list[dict]:
    """Filed, investigated, notified and fined, all for one act: two cases of one party fine it twice."""
    return [
        fact("case.filed", case_id, 0, item_code="330217001000", case_no=f"营市监立〔2026〕{case_id[-3:]}号",
             party=party, summary="群众举报销售过期食品"),
        fact("case.investigated", case_id, 1, act_kind="evidence", officers=OFFICERS, text="现场检查，提取证据"),
        fact("case.notified", case_id, 2, hearing_right=False, proposed_kinds=["fine"]),
        fact("case.decided", case_id, 3, decision_no=f"营市监罚〔2026〕{case_id[-3:]}号", kinds=["fine"],
             fine_amount=5000, tier="normal", party=party, act_code="FOOD-EXPIRED-SALE", officers=OFFICERS),
    ]


def a_new_process() -> None:
    """Forget what this process cached and remembers (documents, projections, every memo of the
    PROCESS_MEMO_MB budget: what each case's judgement read, the reverse-index pairs written — keyed
    without the database, so another test's cases of the same ids would count as written here)."""
    aggregates._caches.clear()
    projection_cache._caches.clear()
    for memo in process_memo.memos():
        memo.reset()


def finds(recorder: Recorder) -> dict[str, int]:
    counted: dict[str, int] = {}
    for command, collection in recorder.seen:
        if command == "find":
            counted[collection] = counted.get(collection, 0) + 1
    return counted


def double_fined(db) -> set[str]:
    """The cases whose stored judgement holds a double fine (PEN-DOUBLE-FINE)."""
    return {case_id for case_id in CASES
            if "PEN-DOUBLE-FINE" in store.cases(db).get(case_id)["snapshot"].get("finding_rules", ())}


@pytest.fixture(autouse=True)
def fresh_process():
    a_new_process()
    yield
    a_new_process()


def test_a_batch_of_known_cases_reads_their_documents_and_what_they_are_judged_on_once_each(penalty):
    service, db, recorder = penalty
    assert service.apply_batch([f for case_id, party in CASES.items() for f in story(case_id, party)]) == [None] * 16
    a_new_process()  # another process takes the next batch: nothing of the cases cached
    recorder.seen.clear()
    served = [fact("case.served", case_id, 5, method="direct") for case_id in CASES]
    assert service.apply_batch(served) == [None] * 4
    counted = finds(recorder)
    assert counted.get("cases") == 1  # the four documents in one find
    assert counted.get("case_refs") == 1 and counted.get("decisions") == 1  # both parties' decision lists
    assert counted.get("officers", 0) <= 1 and counted.get("items", 0) <= 1
    # judged on the parties' decision lists read ahead: each case of a party is fined for the act the
    # other case of that party was fined for (in the first batch each decision was not yet indexed)
    assert double_fined(db) == set(CASES)
    assert all("case.served" in [f["type"] for f in store.cases(db).get(c)["facts"]] for c in CASES)


def test_in_the_process_that_saved_them_a_batch_reads_nothing_ahead_of_its_cases(penalty):
    service, db, recorder = penalty
    service.apply_batch([f for case_id, party in CASES.items() for f in story(case_id, party)])
    recorder.seen.clear()
    assert service.apply_batch([fact("case.served", case_id, 5, method="direct") for case_id in CASES]) == [None] * 4
    counted = finds(recorder)
    assert "cases" not in counted and "officers" not in counted and "items" not in counted
