"""The handover service's `case.changed` batches on real FerretDB: the handovers linked to the cases a
batch saved are found with one read of the index of linked cases per batch (services/handover/store.py),
not one read of `case_handovers` per case, and are marked due for re-evaluation all the same.

Its penalty cases are inserted without a read first (`CaseAdapter.creating`): a `case.changed` of a case
this process has not cached is guessed new; a case that exists after all (saved by another consumer,
or evicted from the cache) loses the insert on its key and is read and decided again."""
from __future__ import annotations

import copy

import pytest

from contracts.events.penalty_internal import CONTRACTS
from services.handover import store
from services.handover.service import HandoverService
from services.simulator.bench_replay import suite_settings
from tests.db_recorder import Recorder
from tests.helpers import envelope, offline_recorded

CASE_CHANGED = next(c.example for c in CONTRACTS if c.type == "case.changed")


@pytest.fixture
def handover(servers):
    """(the service on a scratch database whose commands are recorded, that database, the recorder)"""
    preset, host = suite_settings()
    with offline_recorded(servers, HandoverService, "handover", host=host, preset=preset,
                          indexes=store.ensure_indexes) as recorded:
        yield recorded


def case_changed(case_id: str) -> dict:
    """A decided case below every crime threshold (its 以罚代刑 rule reads no handover)."""
    return envelope("case.changed", {**copy.deepcopy(CASE_CHANGED), "case_id": case_id, "measures": {}})


def finds(recorder: Recorder, collection: str) -> int:
    return sum(1 for command, name in recorder.seen if command == "find" and name == collection)


def test_a_batch_of_cases_reads_the_linked_cases_once_and_marks_the_linked_handover_due(handover):
    service, db, recorder = handover
    db.handovers.insert_one({"_id": "h7", "version": 3, "snapshot": {"case_id": "c7"}})
    store.link_case(db, "h7", None, "c7", set())
    recorder.seen.clear()
    outcomes = service.apply_batch([case_changed(f"c{i}") for i in range(20)])
    assert outcomes == [None] * 20 and db.penalty_cases.count_documents({}) == 20
    assert finds(recorder, "linked_cases") == 1    # once for the batch
    assert finds(recorder, "case_handovers") == 1  # only for the one case a handover names
    marked = db.handovers.find_one({"_id": "h7"})
    assert marked["version"] == 4 and marked["due_at"] is not None
    assert db.handovers_due.find_one({"_id": "h7"})["due_at"] == marked["due_at"]  # the sweep will find it
    # a redelivered batch (its cases unchanged) marks the linked handover again: a crash between the
    # saves and the end of the batch loses nothing
    service.apply_batch([case_changed("c7")])
    assert db.handovers.find_one({"_id": "h7"})["version"] == 5


def test_a_batch_of_cases_no_handover_names_reads_no_link(handover):
    service, db, recorder = handover
    recorder.seen.clear()
    assert service.apply_batch([case_changed(f"d{i}") for i in range(10)]) == [None] * 10
    assert finds(recorder, "linked_cases") == 1 and finds(recorder, "case_handovers") == 0


def test_a_fine_decided_after_the_transfer_reaches_the_handover_through_the_batch_s_mark(handover):
    """The direction the index serves, end to end: a handover transferred for a case; a later batch of
    `case.changed` brings a fine decided after the transfer; the handover is due, and its re-evaluation
    (the deadline sweep's) raises HOV-PENALTY-CONTINUES."""
    from datetime import datetime, timedelta

    from services.common.chinatime import CST
    from services.handover import domain as d
    from tests.helpers import SCJG

    service, db, _ = handover
    t0 = datetime.now(CST).replace(microsecond=0) - timedelta(days=3)

    def step(type_, when, **payload):
        return envelope(f"handover.{type_}", {"handover_id": "h9", **payload}, SCJG, occurred_at=when.isoformat())

    service.apply_batch([
        step("suspicion_raised", t0, case_id="c9", suspected_crime="涉嫌销售伪劣产品罪",
             officers=["51132200123", "51132200456"], report_ref="营市监移报〔2026〕9号"),
        step("head_decided", t0 + timedelta(hours=1), approved=True, head="王建国"),
        step("transferred", t0 + timedelta(hours=2), police_dept="511322-ga", police_unit="营山县公安局经侦大队",
             documents=["transfer_letter", "investigation_report", "exhibit_list"], copy_to="511322-jcy")])
    assert store.handover_ids_of_case(db, "c9") == ["h9"]
    before = db.handovers.find_one({"_id": "h9"})
    version = before["version"]
    assert d.PENALTY_CONTINUES not in {f["rule_id"] for f in before["findings_open"].values()}
    fined = copy.deepcopy(CASE_CHANGED)
    fined.update(case_id="c9", dept=SCJG, measures={}, revision=12, payments=[],
                 decision={**fined["decision"], "decided_at": (t0 + timedelta(days=1)).isoformat(), "kinds": ["fine"]})
    assert service.apply_batch([envelope("case.changed", fined)]) == [None]
    assert db.handovers.find_one({"_id": "h9"})["version"] == version + 1
    now = datetime.now(CST)
    repo = service.repository(service.aggregate("handover"))
    assert "h9" in {due["_id"] for due in repo.store.due(now)}
    doc, _ = repo.reevaluate("h9", now)
    assert d.PENALTY_CONTINUES in {f["rule_id"] for f in doc["findings_open"].values()}


# ---- penalty cases inserted without a read first ------------------------------------------------------

def revised(case_id: str) -> dict:
    """The next `case.changed` of a case (`case_changed` is revision 9)."""
    changed = case_changed(case_id)
    changed["payload"]["revision"] = 10
    return changed


def cases_commands(recorder: Recorder, command: str) -> int:
    return sum(1 for c, name in recorder.seen if c == command and name == "penalty_cases")


def test_new_cases_are_inserted_without_a_read(handover):
    service, db, recorder = handover
    recorder.seen.clear()
    assert service.apply_batch([case_changed(f"n{i}") for i in range(12)]) == [None] * 12
    assert db.penalty_cases.count_documents({}) == 12
    assert cases_commands(recorder, "find") == 0 and cases_commands(recorder, "insert") >= 1


def test_a_case_this_process_saved_is_updated_from_its_cache(handover):
    service, db, recorder = handover
    assert service.apply_batch([case_changed("c1")]) == [None]
    recorder.seen.clear()
    assert service.apply_batch([revised("c1")]) == [None]
    assert cases_commands(recorder, "find") == 0 and cases_commands(recorder, "insert") == 0  # (not guessed: cached)
    doc = service.aggregate_doc("case", "c1")
    assert doc["version"] == 2 and [f["payload"]["revision"] for f in doc["facts"]] == [9, 10]


def test_a_case_that_exists_but_is_not_cached_loses_the_insert_and_is_updated(handover):
    service, db, recorder = handover
    first = case_changed("c2")
    assert service.apply_batch([first]) == [None]
    cases = service.store(service.aggregate("case"))
    cases.cache.drop(cases._key("c2"))  # (saved by another consumer, or evicted)
    recorder.seen.clear()
    assert service.apply_batch([revised("c2")]) == [None]
    assert cases_commands(recorder, "insert") == 1 and cases_commands(recorder, "find") >= 1  # guessed, lost, read
    doc = service.aggregate_doc("case", "c2")
    assert doc["version"] == 2 and [f["payload"]["revision"] for f in doc["facts"]] == [9, 10]
    # a redelivery of the first fact, not cached again: guessed, lost, read — and changes nothing
    cases.cache.drop(cases._key("c2"))
    assert service.apply_batch([first]) == [None]
    assert service.aggregate_doc("case", "c2")["version"] == 2
