"""Penalty's officer projection on the real MongoDB-wire server (services/penalty/store.py): the newest
version kept, one command per `officer.changed`, and "changed" only when what the rules read changed."""
import uuid
from datetime import datetime, timezone

import pymongo
import pytest

from services.kernel.mongo import drop_with_companions
from services.kernel.sidewrites import SideWrites
from services.penalty import store
from tests.db_recorder import Recorder

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def watched(servers):
    recorder = Recorder()
    client = pymongo.MongoClient(servers["MONGO_URI"], serverSelectionTimeoutMS=3000, tz_aware=True,
                                 event_listeners=[recorder])
    database = client[f"t{uuid.uuid4().hex[:8]}_penalty"]
    yield database, recorder
    drop_with_companions(client, database.name)  # (and penalty's case list: services/penalty/store.py)
    client.close()


def officer(version: int, training_hours: int = 10, credential_end: str = "2028-12-31") -> dict:
    return {"officer_id": "51132200123", "version": version, "kind": "officer", "active": True,
            "training_hours": training_hours,
            "credentials": [{"number": "川执法123", "areas": ["market"], "valid_to": credential_end, "status": "valid"}]}


def test_an_officer_projection_is_one_command_and_changed_only_for_what_rules_read(watched):
    db, recorder = watched
    assert store.upsert_officer(db, officer(1), NOW) is True  # new: the cases referring to it fall due
    assert recorder.seen == [("findAndModify", "officers")]
    recorder.seen.clear()
    assert store.upsert_officer(db, officer(2, training_hours=40), NOW) is False  # stored, rules unaffected
    assert recorder.seen == [("findAndModify", "officers")]
    assert db.officers.find_one({"_id": "51132200123"})["payload"]["training_hours"] == 40
    assert store.upsert_officer(db, officer(3, training_hours=40, credential_end="2026-12-31"), NOW) is True
    assert store.upsert_officer(db, officer(2), NOW) is False  # older, arriving late: not stored
    stored = db.officers.find_one({"_id": "51132200123"})
    assert stored["version"] == 3 and stored["payload"]["credentials"][0]["valid_to"] == "2026-12-31"
    # the same version again is a redelivery, maybe after a crash before its cases were made due: again
    assert store.upsert_officer(db, officer(3, training_hours=40, credential_end="2026-12-31"), NOW) is True
    assert store.upsert_officer(db, officer(4, training_hours=40, credential_end="2026-12-31"), NOW) is False


def saved_case(case_id: str, fact_types: list[str] | None, decisions: list[dict]) -> dict:
    """A saved case document as `after_save` gets it (only what it reads)."""
    doc = {"_id": case_id, "snapshot": {"dept": "511322-scjgj", "officer_ids": ["O1"], "item_codes": ["I1"],
                                        "party_id": "P1", "decisions": decisions}}
    if fact_types is not None:
        doc["facts"] = [{"event_id": f"{case_id}-{i}", "type": t} for i, t in enumerate(fact_types)]
    return doc


def test_the_decisions_index_is_not_touched_for_a_case_that_never_had_a_decision(watched):
    """The decisions index is neither read nor written for a case none of whose facts is a decision
    (issue 14); otherwise it is written without a read, from the old and new versions of the case
    (`_index_decision`, more in test_projection_cache.py); a decision that left the fold is dropped."""
    from types import SimpleNamespace

    from services.penalty.service import PenaltyService
    db, recorder = watched
    svc = SimpleNamespace(db=db, clock=lambda: NOW, writes=None)
    decision = {"decision_no": "营市监罚〔2026〕1号", "party": {"id": "P1"}, "act_code": "A1", "at": "2026-03-20",
                "fine_amount": 5000, "kinds": ["fine"]}
    case_id = f"C{uuid.uuid4().hex[:6]}"

    filed = saved_case(case_id, ["case.filed", "case.act_recorded"], [])
    PenaltyService.after_save(svc, None, filed)
    PenaltyService._index_decision(svc, None, filed)
    assert not [s for s in recorder.seen if s[1] == "decisions"]
    assert store.cases_referring(db, "officer_ids", "O1") == [case_id]  # the refs still indexed

    recorder.seen.clear()
    decided = saved_case(case_id, ["case.filed", "case.decided"], [decision])
    PenaltyService._index_decision(svc, filed, decided)
    assert [s for s in recorder.seen if s[1] == "decisions"] == [("update", "decisions")]
    assert db.decisions.find_one({"_id": case_id})["decision_no"] == "营市监罚〔2026〕1号"

    # the decision fact is still held but no longer folded into a decision: the entry is dropped
    PenaltyService._index_decision(svc, decided, saved_case(case_id, ["case.filed", "case.decided"], []))
    assert db.decisions.find_one({"_id": case_id}) is None
    # a document without its facts: it cannot tell, so it drops the entry (without reading it)
    recorder.seen.clear()
    PenaltyService._index_decision(svc, None, saved_case(f"C{uuid.uuid4().hex[:6]}", None, []))
    assert [s for s in recorder.seen if s[1] == "decisions"] == [("delete", "decisions")]


def test_references_go_to_buckets_and_readers_find_them_with_the_unbucketed_ones(watched):
    """case_refs split into buckets (store.REF_BUCKETS): a new reference is one `$addToSet` to the
    case's bucket; a reader finds the cases of every bucket and of the document written before the
    buckets, each once, in one find."""
    db, recorder = watched
    store.lists(db).case_refs.insert_one({"_id": "officer_ids:O1", "cases": ["OLD1", "C3"]})  # (stored before the buckets)
    recorder.seen.clear()
    writes = SideWrites()
    known = store.known_refs(limit=1000)
    cases = [f"C{i}" for i in range(40)]
    for case_id in cases:
        store.index_refs(db, case_id, {"officer_ids": ["O1"], "item_codes": ["I1"], "party_id": f"P{case_id}"},
                         known, writes)
    writes.flush()
    assert recorder.seen == [("update", "case_refs")] * 3  # 120 references in bulks of ≤ 50
    buckets = {d["_id"]: d["cases"] for d in store.lists(db).case_refs.find({"_id": {"$in": store.ref_documents("officer_ids", "O1")[1:]}})}
    assert 1 < len(buckets) <= store.REF_BUCKETS["officer_ids"]
    assert max(len(v) for v in buckets.values()) < len(cases)  # (spread: no document holds them all)
    assert all(store.ref_bucket("officer_ids", "O1", c) == doc_id for doc_id, held in buckets.items() for c in held)
    assert store.lists(db).case_refs.find_one({"_id": "party_id:PC7"})["cases"] == ["C7"]  # a party: one document
    recorder.seen.clear()
    assert sorted(store.cases_referring(db, "officer_ids", "O1")) == sorted(["OLD1", *cases])  # C3 once
    assert sorted(store.cases_referring_each(db, "item_codes", ["I1", "I2"])["I1"]) == sorted(cases)
    assert store.cases_referring_each(db, "item_codes", ["I1", "I2"])["I2"] == []
    assert recorder.seen[0] == ("find", "case_refs") and len(recorder.seen) == 3
    assert store.mark_due_each(db, "officer_ids", ["O1"], NOW) == 0  # (no case documents here: none modified)
    assert db.cases_due.count_documents({}) == 41  # every referring case's due-date entry, legacy one too


def test_a_reference_another_unit_of_work_holds_is_written_once_and_again_if_that_unit_fails(watched):
    """Two batch workers save consecutive facts of one case at once: the references the first unit holds
    deferred are not added by the second (one `$addToSet` each, not two); the second's own new reference is
    its own. When the holding unit's writes fail, the entries never became known and the case's next save
    writes them."""
    db, recorder = watched
    snap = {"officer_ids": ["O1", "O2"], "item_codes": ["I1"], "party_id": "P1"}
    known = store.known_refs(limit=1000)
    first, second = SideWrites(), SideWrites()
    store.index_refs(db, "C1", snap, known, first)
    store.index_refs(db, "C1", {**snap, "item_codes": ["I1", "I2"]}, known, second)
    assert first.ops == second.ops == 0 and len(first) == 4 + 1 and len(second) == 1 + 1  # (I2 only; + the after)
    recorder.seen.clear()
    second.flush()
    first.flush()
    assert first.ops + second.ops == 5
    assert sorted(d["_id"].split("#")[0] for d in store.lists(db).case_refs.find({"cases": "C1"})) == \
        ["item_codes:I1", "item_codes:I2", "officer_ids:O1", "officer_ids:O2", "party_id:P1"]
    store.index_refs(db, "C1", snap, known, SideWrites())  # known now: nothing to write
    other = pymongo.MongoClient(db.client.address[0], db.client.address[1], serverSelectionTimeoutMS=500)
    failing = SideWrites()
    store.index_refs(other[db.name], "C2", snap, known, failing)
    later = SideWrites()
    store.index_refs(db, "C2", snap, known, later)
    assert len(later) == 0
    other.close()  # (the holding unit's writes fail)
    with pytest.raises(pymongo.errors.InvalidOperation):
        failing.flush()
    retry = SideWrites()
    store.index_refs(db, "C2", snap, known, retry)
    assert len(retry) == 4 + 1  # not known, not held: written again


def test_a_reverse_index_kept_beside_the_cases_moves_to_the_lists_database_on_first_start(watched, monkeypatch):
    """Before 2026-12-03 `case_refs` lived in the cases' database: a start moves every document into
    `store.lists(db)` and drops the old collection. A move cut short (or a reference written in the new
    place since) leaves documents in both: their cases are merged, none lost, each once."""
    db, _ = watched
    monkeypatch.setattr(store, "MOVE_BATCH", 3)  # (several batches, one of them with a clash)
    old = {f"party_id:P{i}": [f"C{i}"] for i in range(7)}
    old["officer_ids:O1#3"] = ["C1", "C2"]
    db.case_refs.insert_many([{"_id": key, "cases": cases} for key, cases in old.items()])
    store.lists(db).case_refs.insert_many([{"_id": "party_id:P1", "cases": ["C1", "C9"]},
                                           {"_id": "officer_ids:O1#3", "cases": ["C2"]}])
    store.ensure_indexes(db)
    moved = {d["_id"]: sorted(d["cases"]) for d in store.lists(db).case_refs.find({})}
    assert moved == {**{key: sorted(cases) for key, cases in old.items()}, "party_id:P1": ["C1", "C9"]}
    assert "case_refs" not in db.list_collection_names()
    assert sorted(store.cases_referring(db, "party_id", "P1")) == ["C1", "C9"]
    store.ensure_indexes(db)  # (a later start: nothing to move, nothing changed)
    assert {d["_id"]: sorted(d["cases"]) for d in store.lists(db).case_refs.find({})} == moved
