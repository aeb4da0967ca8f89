"""Inspection's projections carry the enterprises referring to them (`targets`) on real FerretDB: a
projection change is one findAndModify that hands back who to make due; references recorded before
the projection arrives wait in a placeholder; the `refs` collection of an earlier version is moved
into the projections once."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from nameko.standalone.rpc import ServiceRpcClient

from services.inspection import store
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
