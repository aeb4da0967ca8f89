"""Inspection's projections carry the enterprises referring to them (`targets`) on real FerretDB: a
projection change is one findAndModify that hands back who to make due (a batch's: one read, one
insert and one bulk guarded by the version and the targets read); references recorded before the
projection arrives wait in a placeholder; the `refs` collection of an earlier version is moved
into the projections once."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from nameko.standalone.rpc import ServiceRpcClient

from services.inspection import store
from services.inspection.service import InspectionService, _officer_read_changed
from services.kernel.aggregates import AggregateStore
from tests.db_recorder import recorded_database
from tests.helpers import credential_issued, officer_registered, publish, wait_for
from tests.integration.test_inspection import ENTS, OFFICERS, land, registered, suite  # noqa: F401  (its fixture)
from tests.integration.test_inspection import db as inspection_db

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def db(servers):
    with recorded_database(servers["MONGO_URI"], "inspection") as database:
        yield database


def test_a_reference_before_the_projection_waits_in_a_placeholder_and_comes_back_with_its_store(db):
    store.index_refs(db, "E1", ["officer:O1", "item:I1"], set())
    store.index_refs(db, "E2", ["officer:O1"], set())
    assert store.officer_payloads(db, ["O1"]) == {} and store.item_payloads(db, ["I1"]) == {}   # not projections
    assert store.officers_of_dept(db, "511322-scjg") == []
    db.recorder.seen.clear()
    stored, old = store.store_projection(db.officers, "O1", 3, {"officer_id": "O1", "dept": "511322-scjg"}, NOW)
    assert stored and sorted(old["targets"]) == ["E1", "E2"] and old["version"] == store.PLACEHOLDER
    assert db.recorder.seen == [("findAndModify", "officers")]       # who refers to it: no read of its own
    assert store.officer_payloads(db, ["O1"]) == {"O1": {"officer_id": "O1", "dept": "511322-scjg"}}
    assert store.officers_of_dept(db, "511322-scjg") == [{"officer_id": "O1", "dept": "511322-scjg"}]
    store.index_refs(db, "E3", ["officer:O1"], set())                 # a reference after it: kept beside it
    assert store.store_projection(db.officers, "O1", 2, {"officer_id": "O1"}, NOW) == (False, None)  # older: refused
    stored, old = store.store_projection(db.officers, "O1", 4, {"officer_id": "O1", "dept": "511322-scjg"}, NOW)
    assert stored and old["version"] == 3 and sorted(old["targets"]) == ["E1", "E2", "E3"]


def officer(officer_id: str, version: int) -> dict:
    return {"officer_id": officer_id, "version": version, "dept": "511322-scjg"}


def test_a_batch_of_projections_is_one_read_one_insert_and_one_guarded_bulk_with_the_same_answers(db):
    store.index_refs(db, "E1", ["officer:O1"], set())                  # a placeholder
    store.store_projection(db.officers, "O2", 5, officer("O2", 5), NOW)
    store.index_refs(db, "E2", ["officer:O2"], set())
    db.recorder.seen.clear()
    entries = [("O1", 1, officer("O1", 1)), ("O2", 6, officer("O2", 6)), ("O3", 1, officer("O3", 1)),
               ("O2", 4, officer("O2", 4)), ("O3", 2, officer("O3", 2)), ("O2", 6, officer("O2", 6))]
    answers = store.store_projections(db.officers, entries, NOW)
    assert db.recorder.seen == [("find", "officers"), ("insert", "officers"), ("update", "officers")]
    (s1, o1), (s2, o2), (s3, o3), (s4, o4), (s5, o5), (s6, o6) = answers
    assert s1 and o1["version"] == store.PLACEHOLDER and o1["targets"] == ["E1"]
    assert s2 and o2["version"] == 5 and o2["targets"] == ["E2"]
    assert (s3, o3) == (True, None)                                     # new
    assert (s4, o4) == (False, None)                                    # older than 6: refused
    assert s5 and o5["version"] == 1 and o5["payload"] == officer("O3", 1)  # after the batch's first of it
    assert s6 and o6["version"] == 6 and o6["targets"] == ["E2"]        # the same again: stored again
    assert [db.officers.find_one({"_id": o})["version"] for o in ("O1", "O2", "O3")] == [1, 6, 2]
    assert db.officers.find_one({"_id": "O2"})["targets"] == ["E2"]   # kept


def test_an_enterprise_referring_since_the_batch_read_misses_the_guard_and_is_in_the_answer(db, monkeypatch):
    store.store_projection(db.officers, "O1", 1, officer("O1", 1), NOW)
    real = store.by_id

    def read_then_referred(col, ids, projection=None):
        found = real(col, ids, projection)
        store.index_refs(db, "E9", ["officer:O1", "officer:O2"], set())  # O2: a placeholder since the read
        return found
    monkeypatch.setattr(store, "by_id", read_then_referred)
    (s1, o1), (s2, o2) = store.store_projections(db.officers, [("O1", 2, officer("O1", 2)),
                                                               ("O2", 1, officer("O2", 1))], NOW)
    assert s1 and o1["targets"] == ["E9"] and o1["version"] == 1         # written alone: the guard missed
    assert s2 and o2["targets"] == ["E9"] and o2["version"] == store.PLACEHOLDER  # the insert collided
    assert [db.officers.find_one({"_id": o})["version"] for o in ("O1", "O2")] == [2, 1]


def test_the_service_makes_due_the_enterprises_of_the_changed_officers_of_a_batch_and_fails_alone_what_is_broken(db):
    for ent in ("E1", "E2", "E3"):
        db.enterprises.insert_one({"_id": ent, "version": 1})
    store.index_refs(db, "E1", ["officer:O1"], set())
    store.index_refs(db, "E2", ["officer:O2"], set())
    store.index_refs(db, "E3", ["item:I1"], set())
    store.store_projection(db.officers, "O2", 3, officer("O2", 3), NOW)
    svc = type("S", (), {"db": db, "clock": staticmethod(lambda: NOW)})()
    batch = [{"payload": officer("O1", 1)}, {"payload": {"officer_id": "O9"}},  # no version: fails alone
             {"payload": {**officer("O2", 4), "name": "改名"}}]               # what the rules read: unchanged
    outcomes = InspectionService._projections(svc, batch, db.officers, "officer_id", "version", _officer_read_changed)
    assert outcomes[0] is None and outcomes[2] is None and outcomes[1][0] is KeyError
    versions = {d["_id"]: d["version"] for d in db.enterprises.find({})}
    assert versions == {"E1": 2, "E2": 1, "E3": 1}                     # E1 made due; E2's officer read the same
    assert AggregateStore(db.enterprises).deadlines.find_one({"_id": "E1"})["due_at"] == NOW.replace(tzinfo=None)


def test_a_projection_whose_key_is_not_a_string_fails_alone_and_writes_nothing(db):
    store.store_projection(db.officers, "O1", 1, officer("O1", 1), NOW)
    odd, good = store.store_projections(db.officers, [({"$gt": ""}, 9, officer("X", 9)), ("O2", 1, officer("O2", 1))],
                                        NOW)
    assert isinstance(odd, store.Failed) and odd.exc_info[0] is TypeError
    assert good == (True, None)
    assert db.officers.find_one({"_id": "O1"})["version"] == 1  # not selected by the operator
    assert db.officers.count_documents({}) == 2


def test_the_refs_of_an_earlier_version_move_into_the_projections_once(db):
    db.officers.insert_one({"_id": "O1", "version": 2, "payload": {"officer_id": "O1"}, "received_at": NOW})
    db.refs.insert_many([{"_id": "officer:O1", "targets": ["E1", "E2"]}, {"_id": "item:I9", "targets": ["E1"]}])
    store.ensure_indexes(db)
    assert sorted(db.officers.find_one({"_id": "O1"})["targets"]) == ["E1", "E2"]
    assert db.officers.find_one({"_id": "O1"})["version"] == 2
    assert db.items.find_one({"_id": "I9"}) == {"_id": "I9", "targets": ["E1"], "version": store.PLACEHOLDER}
    assert "refs" not in db.list_collection_names()
    db.refs.insert_one({"_id": "officer:O1", "targets": ["E7"]})      # (nothing writes it any more)
    store.ensure_indexes(db)
    assert sorted(db.officers.find_one({"_id": "O1"})["targets"]) == ["E1", "E2"]


# ---- the service: a late officer projection makes the inspections that name the officer due -------------------

def test_an_officer_known_after_the_inspection_that_names_him_resolves_its_finding(suite):  # noqa: F811
    late = "511322-scjg-0204"
    land(suite, "enterprises", registered("JC-101", ENTS[3], [list(OFFICERS)[0], late]))
    suite["clock"].shift = timedelta(seconds=30)          # the arrivals have settled: judged now
    with ServiceRpcClient("inspection") as ins:
        def unqualified():
            return [f for f in ins.list_findings(rule_id="INS-INSPECTOR-UNQUALIFIED")["items"]
                    if f["subject_id"] == "JC-101"]
        assert wait_for(unqualified, timeout=30)
        # nothing else brings the enterprise back (not due): only its officer's projection can
        due = inspection_db(suite).enterprises_due
        wait_for(lambda: all(d["due_at"].replace(tzinfo=timezone.utc) > suite["clock"]()
                             for d in due.find({"_id": ENTS[3]})), timeout=20)
        publish(suite["amqp"], [officer_registered(late, name="孙丽"), credential_issued(late, "川A5113220299")])
        wait_for(lambda: not unqualified(), timeout=40)    # its projection made the enterprise due: re-judged
