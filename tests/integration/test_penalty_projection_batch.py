"""Penalty's `officer.changed` / `item.changed` handlers take a batch (services/penalty/service.py
`_projections_changed`): each projection stored as before (one write each), the batch's changes
logged in one write, the cases referring to the changed ones read in one reverse-index find and made
due in one bulk per collection (services/penalty/store.py `mark_cases_due`), each case once; a
projection whose write fails fails alone, a failure after the writes fails the messages whose
projection was stored. On the real MongoDB-wire server."""
from datetime import timedelta
from types import SimpleNamespace

import pytest
from pymongo import ReplaceOne

from services.kernel.aggregates import AggregateStore
from services.kernel.projection_cache import CHANGES
from services.kernel.sidewrites import SideWrites
from services.penalty import store
from services.penalty.service import PenaltyService
from tests.integration.test_penalty_projections import watched  # noqa: F401 (the recorded scratch database)
from tests.integration.test_projection_cache import NOW, officer


def service(db):
    svc = SimpleNamespace(db=db, clock=lambda: NOW)
    svc._store_projections = lambda kind, envelopes: PenaltyService._store_projections(svc, kind, envelopes)
    svc._projections_changed = lambda kind, envelopes: PenaltyService._projections_changed(svc, kind, envelopes)
    return svc


def cases_referring(db, refs: dict[str, list[str]]) -> None:
    ids = sorted({c for cases in refs.values() for c in cases})
    db.cases.insert_many([{"_id": c, "version": 1} for c in ids])
    store.lists(db).case_refs.insert_many([{"_id": key, "cases": cases} for key, cases in refs.items()])


def logged(db) -> int:
    return (db[CHANGES].find_one({"_id": "epoch"}) or {}).get("n", 0)


def test_a_batch_of_officer_changes_is_one_log_write_one_reverse_index_read_and_one_bulk_per_collection(watched):
    db, recorder = watched
    store.store_officer(db, officer("O3", 5), NOW)
    cases_referring(db, {"officer_ids:O1": ["C1", "C2"], "officer_ids:O2": ["C2", "C3"], "officer_ids:O3": ["C4"]})
    before = logged(db)
    recorder.seen.clear()
    batch = [{"payload": officer("O1", 1)}, {"payload": officer("O2", 1)},
             {"payload": officer("O3", 4)},  # older than the stored one: neither stored nor logged
             {"payload": officer("O1", 2, valid_to="2026-06-30")}]
    outcomes = PenaltyService.handle_officer_changed(service(db), batch)
    assert outcomes == [None] * 4
    # the batch's officers read at once; the new ones' first versions inserted together, O1's second
    # then in the bulk, guarded by the version its first inserted
    assert recorder.seen == [("find", "officers"), ("insert", "officers"), ("update", "officers"),
        ("update", CHANGES), ("find", "case_refs"), ("update", "cases_due"), ("update", "cases")]
    assert logged(db) == before + 2  # O1 and O2, once each
    assert db.officers.find_one({"_id": "O1"})["version"] == 2
    assert db.officers.find_one({"_id": "O3"})["version"] == 5
    for case_id in ("C1", "C2", "C3"):  # C2 refers to both: made due once
        assert db.cases.find_one({"_id": case_id}) == {"_id": case_id, "version": 2, "due_at": NOW}
        assert db.cases_due.find_one({"_id": case_id})["due_at"] == NOW
    assert db.cases.find_one({"_id": "C4"}) == {"_id": "C4", "version": 1}  # O3 not stored: not due
    assert db.cases_due.find_one({"_id": "C4"}) is None


def test_projections_stored_already_are_one_read_and_one_bulk_and_only_a_rule_relevant_change_makes_cases_due(watched):
    db, recorder = watched
    for officer_id in ("O1", "O2"):
        store.store_officer(db, officer(officer_id, 1), NOW)
    cases_referring(db, {"officer_ids:O1": ["C1"], "officer_ids:O2": ["C2"]})
    recorder.seen.clear()
    batch = [{"payload": officer("O1", 2, valid_to="2026-06-30")},  # what the credential rule reads changed
             {"payload": {**officer("O2", 2), "name": "改名"}},      # read by penalty, not by the rule
             {"payload": officer("O1", 3, valid_to="2026-06-30")}]  # the same again, newer
    assert PenaltyService.handle_officer_changed(service(db), batch) == [None] * 3
    assert recorder.seen[:2] == [("find", "officers"), ("update", "officers")]  # one read, one bulk
    assert "findAndModify" not in [c for c, _ in recorder.seen]
    assert [db.officers.find_one({"_id": o})["version"] for o in ("O1", "O2")] == [3, 2]
    assert db.officers.find_one({"_id": "O2"})["payload"]["name"] == "改名"
    assert db.cases.find_one({"_id": "C1"})["version"] == 2  # made due once
    assert db.cases.find_one({"_id": "C2"})["version"] == 1  # the rule reads nothing that changed


def test_a_projection_another_process_stored_between_the_read_and_the_bulk_is_written_again_alone(watched,
                                                                                                   monkeypatch):
    db, recorder = watched
    store.store_officer(db, officer("O1", 1), NOW)
    cases_referring(db, {"officer_ids:O1": ["C1"]})
    real = store.by_id

    def read_then_raced(col, ids, projection=None):
        found = real(col, ids, projection)
        if col.name == "officers":  # another process stores version 2 after our read
            store.store_officer(db, officer("O1", 2), NOW)
        return found
    monkeypatch.setattr(store, "by_id", read_then_raced)
    outcomes = PenaltyService.handle_officer_changed(service(db), [{"payload": officer("O1", 3, valid_to="2026-06-30")}])
    assert outcomes == [None]
    assert db.officers.find_one({"_id": "O1"})["version"] == 3  # the guard missed; written alone then
    assert ("findAndModify", "officers") in recorder.seen
    assert db.cases.find_one({"_id": "C1"})["version"] == 2


@pytest.mark.parametrize("raced_version, stored_version, due", [(2, 3, True), (4, 4, False)])
def test_a_new_projection_another_process_inserted_since_the_read_is_written_alone(watched, monkeypatch,
                                                                                    raced_version, stored_version, due):
    """The batch read found O1 absent; another process stores a version before the batch's insert:
    that insert collides and the version is written alone — stored and its cases made due when newer
    than the other's, else neither."""
    db, recorder = watched
    cases_referring(db, {"officer_ids:O1": ["C1"], "officer_ids:O2": ["C2"]})
    real = store.by_id

    def read_then_raced(col, ids, projection=None):
        found = real(col, ids, projection)
        if col.name == "officers":
            store.store_officer(db, officer("O1", raced_version, valid_to="2026-03-31"), NOW)
        return found
    monkeypatch.setattr(store, "by_id", read_then_raced)
    recorder.seen.clear()
    batch = [{"payload": officer("O1", 3, valid_to="2026-06-30")}, {"payload": officer("O2", 1)}]
    assert PenaltyService.handle_officer_changed(service(db), batch) == [None, None]
    seen = [c for c in recorder.seen if c[1] == "officers"]
    assert seen[seen.index(("insert", "officers")) + 1] == ("findAndModify", "officers")  # O1 alone, after it
    assert db.officers.find_one({"_id": "O1"})["version"] == stored_version
    assert db.officers.find_one({"_id": "O2"})["version"] == 1  # inserted with the batch
    assert (db.cases.find_one({"_id": "C1"})["version"] == 2) is due
    assert db.cases.find_one({"_id": "C2"})["version"] == 2


def test_an_item_batch_makes_the_cases_of_the_stored_items_due(watched):
    db, recorder = watched
    cases_referring(db, {"item_codes:I1": ["C1"], "item_codes:I2": ["C2", "C1"]})
    item = lambda code, revision: {"item_code": code, "revision": revision, "name": code}  # noqa: E731
    store.upsert_item(db, item("I2", 9), NOW)
    recorder.seen.clear()
    outcomes = PenaltyService.handle_item_changed(service(db), [{"payload": item("I1", 1)}, {"payload": item("I2", 3)}])
    assert outcomes == [None, None]
    assert recorder.seen.count(("find", "case_refs")) == 1
    assert db.cases.find_one({"_id": "C1"})["version"] == 2  # I1 stored; I2's revision 3 is older: not
    assert db.cases.find_one({"_id": "C2"})["version"] == 1
    assert db.items.find_one({"_id": "I2"})["version"] == 9


def test_an_officer_whose_write_fails_fails_alone(watched):
    db, _ = watched
    cases_referring(db, {"officer_ids:O1": ["C1"], "officer_ids:O2": ["C2"]})
    broken = officer("O2", 1)
    del broken["version"]
    outcomes = PenaltyService.handle_officer_changed(service(db), [{"payload": broken}, {"payload": officer("O1", 1)}])
    assert outcomes[1] is None
    assert outcomes[0] is not None and outcomes[0][0] is KeyError  # retried / dead-lettered alone
    assert db.cases.find_one({"_id": "C1"})["version"] == 2
    assert db.cases.find_one({"_id": "C2"})["version"] == 1


def test_a_failure_after_the_writes_fails_the_messages_whose_projection_was_stored(watched, monkeypatch):
    db, _ = watched
    store.store_officer(db, officer("O3", 5), NOW)
    cases_referring(db, {"officer_ids:O1": ["C1"]})

    def broken(*args, **kwargs):
        raise RuntimeError("database gone")
    monkeypatch.setattr(store, "mark_due_each", broken)
    outcomes = PenaltyService.handle_officer_changed(service(db), [{"payload": officer("O1", 1)},
                                                                   {"payload": officer("O3", 4)}])
    assert outcomes[0] is not None and outcomes[0][0] is RuntimeError
    assert outcomes[1] is None  # older: nothing of it was written, nothing to redo


def test_one_envelope_without_batching_is_handled_and_its_failure_raised(watched):
    db, _ = watched
    cases_referring(db, {"officer_ids:O1": ["C1"]})
    assert PenaltyService.handle_officer_changed(service(db), {"payload": officer("O1", 1)}) is None
    assert db.cases.find_one({"_id": "C1"})["version"] == 2
    broken = officer("O1", 2)
    del broken["officer_id"]
    with pytest.raises(KeyError):
        PenaltyService.handle_officer_changed(service(db), {"payload": broken})


def test_cases_made_due_together_go_after_a_due_date_a_unit_still_holds(watched):
    db, recorder = watched
    cases_referring(db, {"officer_ids:O1": ["C1", "C2"]})
    deadlines = AggregateStore(db.cases).deadlines
    unit = SideWrites()  # another batch worker's unit: an older due date of C1 deferred to its end
    unit.add(deadlines, ReplaceOne({"_id": "C1"}, {"due_at": NOW + timedelta(days=30)}, upsert=True), key="C1")
    recorder.seen.clear()
    assert store.mark_cases_due(db, ["C1", "C2", "C1"], NOW) == 2
    assert recorder.seen == [("update", "cases_due"), ("update", "cases")]
    unit.flush()
    assert db.cases_due.find_one({"_id": "C1"})["due_at"] == NOW  # not the older one
    assert [d["version"] for d in db.cases.find({}, sort=[("_id", 1)])] == [2, 2]


def test_a_projection_whose_key_is_not_a_string_fails_alone(watched):
    db, _ = watched
    cases_referring(db, {"officer_ids:O1": ["C1"]})
    odd = {**officer("O1", 1), "officer_id": {"$gt": ""}}
    outcomes = PenaltyService.handle_officer_changed(service(db), [{"payload": odd}, {"payload": officer("O1", 1)}])
    assert outcomes[0] is not None and outcomes[0][0] is TypeError
    assert outcomes[1] is None and db.officers.count_documents({}) == 1


def test_an_envelope_without_a_payload_fails_alone(watched):
    db, _ = watched
    cases_referring(db, {"officer_ids:O1": ["C1"]})
    outcomes = PenaltyService.handle_officer_changed(service(db), [{"type": "officer.changed"},
                                                                   {"payload": officer("O1", 1)}])
    assert outcomes[0] is not None and outcomes[0][0] is KeyError
    assert outcomes[1] is None and db.cases.find_one({"_id": "C1"})["version"] == 2


def test_a_batch_redelivered_after_a_failure_past_its_writes_makes_the_cases_due(watched, monkeypatch):
    db, _ = watched
    cases_referring(db, {"officer_ids:O1": ["C1"]})
    real = store.mark_due_each

    def broken(*args, **kwargs):
        raise RuntimeError("database gone")
    monkeypatch.setattr(store, "mark_due_each", broken)
    first = PenaltyService.handle_officer_changed(service(db), [{"payload": officer("O1", 1)}])
    assert first[0] is not None and db.officers.find_one({"_id": "O1"})["version"] == 1  # stored, not made due
    assert db.cases.find_one({"_id": "C1"})["version"] == 1
    monkeypatch.setattr(store, "mark_due_each", real)
    # the redelivery finds its own version stored: it still logs the change and makes the cases due
    assert PenaltyService.handle_officer_changed(service(db), [{"payload": officer("O1", 1)}]) == [None]
    assert db.cases.find_one({"_id": "C1"}) == {"_id": "C1", "version": 2, "due_at": NOW}
