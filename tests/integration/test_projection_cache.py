"""Penalty's officer and item projections through the process cache on the real MongoDB-wire server
(services/kernel/projection_cache.py, services/penalty/store.py): kept across units of work, dropped
in every process once any process stores a newer one, a case judged on the old one during the
change made due; and the reverse index and decisions index written without reads, deferred to the
unit's end (services/kernel/sidewrites.py)."""
import uuid
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from nameko import config

from services.kernel.aggregates import AggregateStore
from services.kernel.metrics import REGISTRY
from services.kernel.projection_cache import CHANGES, MISSING, ProjectionCache, ProjectionReader
from services.kernel.sidewrites import SideWrites
from services.penalty import store
from services.penalty.service import PenaltyService
from tests.integration.test_penalty_projections import watched  # noqa: F401 (the recorded scratch database)

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def each_unit_reads_the_log():
    """These tests follow each unit's own read of the change log (PROJECTION_LOG_REUSE_MS 0); a unit
    starting from a recent read is tested in test_a_unit_right_after_another_starts_from_its_read."""
    with config.patch({"PROJECTION_LOG_REUSE_MS": 0}, clear=False):
        yield


def officer(officer_id: str, version: int, valid_to: str = "2028-12-31", training_hours: int = 10) -> dict:
    return {"officer_id": officer_id, "version": version, "kind": "officer", "active": True,
            "training_hours": training_hours,
            "credentials": [{"number": "川执法123", "areas": ["market"], "valid_to": valid_to, "status": "valid"}]}


def changed_officer(db, payload: dict) -> None:
    """What penalty's `officer.changed` handler does (another process here): store, log, mark due."""
    stored, changed = store.store_officer(db, payload, NOW)
    if stored:
        store.projection_changed(db, store.OFFICERS, payload["officer_id"])
    if changed:
        store.mark_due(db, "officer_ids", payload["officer_id"], NOW)


def read(db, cache, officer_ids, case_id=None) -> tuple[ProjectionReader, dict]:
    reader = ProjectionReader(db, cache)
    return reader, store.projected(db, officer_ids, [], reader=reader, case_id=case_id)[0]


def test_projections_are_read_once_across_batches_and_a_change_by_another_process_is_seen(watched):
    db, recorder = watched
    changed_officer(db, officer("O1", 1))
    changed_officer(db, officer("O2", 1))
    mine = ProjectionCache(100)  # this process's cache; the changes come from "another process"
    recorder.seen.clear()
    _, found = read(db, mine, ["O1", "O2", "O3"])
    assert sorted(found) == ["O1", "O2"]
    assert recorder.seen.count(("find", "officers")) == 1  # one `_id $in` find; O3 unknown: remembered as absent too

    recorder.seen.clear()
    _, found = read(db, mine, ["O1", "O2", "O3"])  # the next batch
    assert recorder.seen == [("find", CHANGES)]  # the change log only
    assert found["O1"]["version"] == 1

    changed_officer(db, officer("O1", 2, valid_to="2026-06-30"))  # stored by another process
    recorder.seen.clear()
    _, found = read(db, mine, ["O1", "O2"])
    assert found["O1"]["version"] == 2 and found["O1"]["credentials"][0]["valid_to"] == "2026-06-30"
    assert recorder.seen == [("find", CHANGES), ("find", "officers")]  # O1 read again, O2 still cached

    changed_officer(db, officer("O1", 1))  # an older version arriving late: not stored, nothing logged
    later = officer("O2", 2, training_hours=40)
    later["credentials"][0].update(status="expiring", usable=[{"from": "2024-01-01", "to": "2028-12-31"}])
    changed_officer(db, later)  # stored, but nothing penalty reads changed (statuses as of personnel's as_of)
    assert db.officers.find_one({"_id": "O2"})["payload"]["credentials"][0]["status"] == "expiring"
    assert db[CHANGES].find_one({"_id": "epoch"})["n"] == 3
    changed_officer(db, later)  # redelivered (a crash before its log?): logged
    assert db[CHANGES].find_one({"_id": "epoch"})["n"] == 4


def test_a_case_judged_on_an_officer_changed_during_the_batch_is_made_due_at_its_end(watched):
    db, _ = watched
    changed_officer(db, officer("O1", 1))
    cases = AggregateStore(db.cases, cache=None)
    cases.update("C1", lambda doc: store.Change(fields={"snapshot": {"officer_ids": ["O1"]}, "due_at": None}))
    cases.update("C2", lambda doc: store.Change(fields={"snapshot": {"officer_ids": ["O2"]}, "due_at": None}))

    mine = ProjectionCache(100)
    reader, found = read(db, mine, ["O1"], case_id="C1")  # the batch judges C1 on O1 v1 ...
    read_o2 = store.projected(db, ["O2"], [], reader=reader, case_id="C2")
    assert found["O1"]["version"] == 1 and read_o2 == ({}, {})
    # ... another process stores O1 v2 and marks due the cases the reverse index knows: none yet
    changed_officer(db, officer("O1", 2, valid_to="2026-06-30"))
    assert db.cases_due.find_one({"_id": "C1"}) is None
    cases.update("C1", lambda doc: store.Change(fields={"snapshot": {"officer_ids": ["O1"]}, "due_at": None}))
    reader.saved.update({"C1", "C2"})  # (the store listener `_saved` in the service)

    service = SimpleNamespace(db=db, clock=lambda: NOW)
    PenaltyService._judged_on_changed(service, reader)  # the unit's end, after its side writes
    assert db.cases_due.find_one({"_id": "C1"})["due_at"] == NOW  # the sweep re-evaluates it
    assert db.cases_due.find_one({"_id": "C2"}) is None  # O2 did not change
    assert mine.get(db.name, "officers", "O1") is MISSING  # dropped by the end check already
    _, again = read(db, mine, ["O1"])  # the sweep's own unit reads the new version
    assert again["O1"]["version"] == 2


def test_the_reverse_index_is_one_bulk_per_unit_written_after_the_unit(watched):
    db, recorder = watched
    known: set = set()
    writes = SideWrites()
    for case_id in ("C1", "C2", "C3"):
        store.index_refs(db, case_id, {"officer_ids": ["O1", "O2"], "item_codes": ["I1"], "party_id": "P1"},
                         known, writes)
    assert recorder.seen == [] and not known  # nothing sent, nothing remembered before the flush
    writes.flush()
    assert recorder.seen == [("update", "case_refs")]
    assert sorted(store.cases_referring(db, "officer_ids", "O1")) == ["C1", "C2", "C3"]
    assert (db.name, "party_id:P1", "C2") in known
    recorder.seen.clear()
    writes = SideWrites()
    store.index_refs(db, "C1", {"officer_ids": ["O1"], "party_id": "P1"}, known, writes)
    writes.flush()
    assert recorder.seen == []  # written before by this process


def saved_case(case_id: str, fact_types: list[str], decisions: list[dict], version: int = 1) -> dict:
    return {"_id": case_id, "version": version, "snapshot": {"dept": "511322-scjgj", "officer_ids": ["O1"],
                                                            "item_codes": ["I1"], "party_id": "P1",
                                                            "decisions": decisions},
            "facts": [{"event_id": f"{case_id}-{i}", "type": t} for i, t in enumerate(fact_types)]}


DECISION = {"decision_no": "营市监罚〔2026〕1号", "party": {"id": "P1"}, "act_code": "A1", "at": "2026-03-20",
            "fine_amount": 5000, "kinds": ["fine"]}


def test_the_decisions_index_is_written_from_the_old_and_new_versions_without_a_read(watched):
    db, recorder = watched
    case_id, other = f"C{uuid.uuid4().hex[:6]}", f"C{uuid.uuid4().hex[:6]}"
    store.lists(db).case_refs.insert_one({"_id": "party_id:P1", "cases": [case_id, other]})
    AggregateStore(db.cases, cache=None).update(other, lambda doc: store.Change(fields={"due_at": None}))
    svc = SimpleNamespace(db=db, clock=lambda: NOW, writes=SideWrites())

    filed = saved_case(case_id, ["case.filed"], [])
    PenaltyService._index_decision(svc, None, filed)
    assert svc.writes.ops == 0 and not len(svc.writes)  # never decided: nothing at all

    decided = saved_case(case_id, ["case.filed", "case.decided"], [DECISION], version=2)
    PenaltyService._index_decision(svc, filed, decided)
    assert not [s for s in recorder.seen if s[1] == "decisions"]
    svc.writes.flush()
    assert [s for s in recorder.seen if s[1] == "decisions"] == [("update", "decisions")]  # one bulk, no find
    assert db.decisions.find_one({"_id": case_id})["decision_no"] == DECISION["decision_no"]
    assert db.cases_due.find_one({"_id": other})["due_at"] == NOW  # the party's other case re-judged

    db.cases_due.delete_many({})
    recorder.seen.clear()
    served = saved_case(case_id, ["case.filed", "case.decided", "case.served"], [DECISION], version=3)
    svc.writes = SideWrites()
    PenaltyService._index_decision(svc, decided, served)
    svc.writes.flush()
    assert recorder.seen == []  # same entry, written by this process: nothing to send
    assert db.cases_due.find_one({"_id": other}) is None

    # the index lost its entry (a crash between a save and the flush): a redelivery that saves
    # nothing (old is new) reads the index and repairs it
    db.decisions.delete_many({})
    PenaltyService._index_decision(svc, served, served)
    assert db.decisions.find_one({"_id": case_id})["decision_no"] == DECISION["decision_no"]
    assert db.cases_due.find_one({"_id": other})["due_at"] == NOW  # (it changed: the party's cases re-judged)
    db.cases_due.delete_many({})
    logged = db[CHANGES].find_one({"_id": "epoch"})["n"]
    PenaltyService._index_decision(svc, served, served)  # again: this process wrote and logged that entry
    assert db[CHANGES].find_one({"_id": "epoch"})["n"] == logged and db.cases_due.find_one({"_id": other}) is None

    # another process never wrote this case's entry: its first save writes it, however unchanged
    from services.penalty import service as penalty_service

    penalty_service._WRITTEN_DECISIONS.clear()
    db.decisions.delete_many({})
    svc.writes = SideWrites()
    PenaltyService._index_decision(svc, served, saved_case(case_id, ["case.filed", "case.decided", "case.served",
                                                                     "case.paid"], [DECISION], version=4))
    svc.writes.flush()
    assert db.decisions.find_one({"_id": case_id})["decision_no"] == DECISION["decision_no"]
    assert db.cases_due.find_one({"_id": other}) is None  # (unchanged: nobody else falls due)

    # the decision left the fold: the entry is dropped
    svc.writes = SideWrites()
    PenaltyService._index_decision(svc, served, saved_case(case_id, ["case.filed", "case.decided"], [], version=5))
    svc.writes.flush()
    assert db.decisions.find_one({"_id": case_id}) is None
    assert db.cases_due.find_one({"_id": other})["due_at"] == NOW


def test_a_partys_decisions_are_cached_across_batches_until_one_of_them_changes(watched):
    """The double-fine rule's look-up (`other_decisions`): the party's cases and their decisions-index
    entries read once per process; a decision written anywhere is logged and read again."""
    db, recorder = watched
    store.lists(db).case_refs.insert_one({"_id": "party_id:P1", "cases": ["C1", "C2", "C3"]})
    db.decisions.insert_one({"_id": "C2", "case_id": "C2", "decision_no": "罚〔2026〕2号"})
    mine = ProjectionCache(100)
    recorder.seen.clear()
    first = store.other_decisions(db, "P1", "C1", ProjectionReader(db, mine))
    assert [d["decision_no"] for d in first] == ["罚〔2026〕2号"]
    assert store.other_decisions(db, "P1", "C1") == first  # the same as without the cache
    recorder.seen.clear()
    assert store.other_decisions(db, "P1", "C3", ProjectionReader(db, mine)) == first  # C3: the same list
    assert store.other_decisions(db, "P1", "C2", ProjectionReader(db, mine)) == []  # its own entry left out
    assert [c for _, c in recorder.seen if c != CHANGES] == []

    # another process decides C3 (the write, then the log, then the party's other cases due)
    store.put_decision(db, "C3", {"case_id": "C3", "decision_no": "罚〔2026〕3号"})
    store.decision_changed(db, ["P1"], NOW, "C3")
    assert db.cases_due.find_one({"_id": "C1"})["due_at"] == NOW
    found = store.other_decisions(db, "P1", "C1", ProjectionReader(db, mine))
    assert [d["decision_no"] for d in found] == ["罚〔2026〕2号", "罚〔2026〕3号"]


def test_a_units_decided_cases_log_their_parties_in_one_write_and_make_each_others_cases_due(watched):
    db, recorder = watched
    a, b, c, other = (f"C{uuid.uuid4().hex[:6]}" for _ in range(4))
    store.lists(db).case_refs.insert_many([{"_id": "party_id:P1", "cases": [a, b, other]}, {"_id": "party_id:P2", "cases": [c]}])
    for case_id in (a, b, c, other):
        AggregateStore(db.cases, cache=None).update(case_id, lambda doc: store.Change(fields={"due_at": None}))
    svc = SimpleNamespace(db=db, clock=lambda: NOW, writes=SideWrites())
    for case_id, party in ((a, "P1"), (b, "P1"), (c, "P2")):
        filed = saved_case(case_id, ["case.filed"], [])
        decided = saved_case(case_id, ["case.filed", "case.decided"], [DECISION], version=2)
        filed["snapshot"]["party_id"] = decided["snapshot"]["party_id"] = party
        PenaltyService._index_decision(svc, filed, decided)
    logged = (db[CHANGES].find_one({"_id": "epoch"}) or {}).get("n", 0)
    recorder.seen.clear()
    svc.writes.flush()
    assert [s for s in recorder.seen if s[1] == CHANGES] == [("update", CHANGES)]  # P1 and P2 in one write
    assert db[CHANGES].find_one({"_id": "epoch"})["n"] == logged + 2
    # a and b are each other's other case: both fall due with the rest of P1's; c is P2's only case
    assert {d["_id"] for d in db.cases_due.find({"due_at": NOW})} == {a, b, other}


def test_a_partys_list_this_process_read_after_logging_its_decision_is_served_from_the_cache(watched, monkeypatch):
    from services.kernel import projection_cache as pc

    db, recorder = watched
    cache = pc.ProjectionCache(100)
    monkeypatch.setattr(store, "shared_cache", lambda: cache)
    case_id, party = f"C{uuid.uuid4().hex[:6]}", f"P{uuid.uuid4().hex[:6]}"
    store.lists(db).case_refs.insert_one({"_id": f"party_id:{party}", "cases": [case_id]})
    AggregateStore(db.cases, cache=None).update(case_id, lambda doc: store.Change(fields={"due_at": None}))
    ProjectionReader(db, cache).payloads("items", ["I0"], lambda keys: {})  # (this process follows the log)
    svc = SimpleNamespace(db=db, clock=lambda: NOW, writes=SideWrites())
    filed = saved_case(case_id, ["case.filed"], [])
    decided = saved_case(case_id, ["case.filed", "case.decided"], [DECISION], version=2)
    filed["snapshot"]["party_id"] = decided["snapshot"]["party_id"] = party
    PenaltyService._index_decision(svc, filed, decided)
    svc.writes.flush()
    recorder.seen.clear()
    reader = ProjectionReader(db, cache)  # the case's next fact asks for the party's other decisions
    found = store.other_decisions(db, party, "C-another", reader)
    assert recorder.seen == [("find", CHANGES)]  # the log only: the list came from the cache
    assert found == [db.decisions.find_one({"_id": case_id}, {"_id": 0})]  # as stored
    other = pc.ProjectionCache(100)  # another process (or this one without the seed) reads it
    ProjectionReader(db, other).payloads("items", ["I0"], lambda keys: {})
    recorder.seen.clear()
    assert store.other_decisions(db, party, "C-another", ProjectionReader(db, other)) == found
    assert ("find", "case_refs") in recorder.seen


def test_the_end_check_makes_due_a_case_whose_read_of_its_partys_list_changed_not_one_whose_own_entry_did(watched):
    """Both cases of a party judged in one unit, which also decides one of them (its entry written, its
    party logged): the other case read the decided one's entry (none then) and falls due; the decided
    case's own entry is not part of what it read, so its own decision does not make it due."""
    db, _ = watched
    a, b, party = f"C{uuid.uuid4().hex[:6]}", f"C{uuid.uuid4().hex[:6]}", f"P{uuid.uuid4().hex[:6]}"
    store.lists(db).case_refs.insert_one({"_id": f"party_id:{party}", "cases": [a, b]})
    store.put_decision(db, b, {"case_id": b, "decision_no": "罚〔2026〕2号"})
    reader = ProjectionReader(db, ProjectionCache(100))
    assert [d["decision_no"] for d in store.other_decisions(db, party, a, reader)] == ["罚〔2026〕2号"]
    assert store.other_decisions(db, party, b, reader) == []  # a is not decided yet
    reader.saved.update({a, b})
    store.put_decision(db, a, {"case_id": a, "decision_no": "罚〔2026〕1号"})  # this unit decides a
    store.decision_changed(db, [party], NOW, a, make_due=False)  # (logged: the party's list changed)
    for case_id in (a, b):
        AggregateStore(db.cases, cache=None).update(case_id, lambda doc: store.Change(fields={"due_at": None}))
    counted = REGISTRY.get_sample_value("zhifa_marked_due_total", {"service": "penalty", "cause": "projection_read"}) or 0
    PenaltyService._judged_on_changed(SimpleNamespace(db=db, clock=lambda: NOW), reader)  # the unit's end
    assert db.cases_due.find_one({"_id": b})["due_at"] == NOW
    assert db.cases_due.find_one({"_id": a}) is None
    assert REGISTRY.get_sample_value("zhifa_marked_due_total", {"service": "penalty", "cause": "projection_read"}) \
        == counted + 1  # (what `make bench` prints per event)


def test_a_unit_right_after_another_starts_from_its_read(watched):
    """PROJECTION_LOG_REUSE_MS: a unit starting within it of its process's last read of the change log
    reads no log at its start; a change another process logs in between is served old from the cache,
    and the unit's end check reads the log, reads the key again and hands back the case judged on it."""
    db, recorder = watched
    changed_officer(db, officer("O1", 1))
    mine = ProjectionCache(100)
    with config.patch({"PROJECTION_LOG_REUSE_MS": 10000}, clear=False):
        read(db, mine, ["O1"])
        recorder.seen.clear()
        _, found = read(db, mine, ["O1"])  # the next batch: nothing read
        assert recorder.seen == [] and found["O1"]["version"] == 1

        changed_officer(db, officer("O1", 2, valid_to="2026-06-30"))  # another process
        recorder.seen.clear()
        reader, found = read(db, mine, ["O1"], case_id="C1")
        assert found["O1"]["version"] == 1  # served from memory: the log was not read at the start
        reader.saved.add("C1")
        assert reader.finish() == ["C1"]  # judged on version 1: made due, judged again by the sweep
        assert recorder.seen[0] == ("find", CHANGES) and ("find", "officers") in recorder.seen

        recorder.seen.clear()
        _, found = read(db, mine, ["O1"])  # starts from the end check's read: O1 was dropped there
        assert found["O1"]["version"] == 2 and recorder.seen == [("find", "officers")]
    with config.patch({"PROJECTION_LOG_REUSE_MS": 0}, clear=False):
        recorder.seen.clear()
        read(db, mine, ["O1"])
        assert recorder.seen == [("find", CHANGES)]
