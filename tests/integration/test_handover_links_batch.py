"""The handover service's `case.changed` batches on real FerretDB: the handovers linked to the cases a
batch saved are found with one read of the index of linked cases per batch (services/handover/store.py),
not one read of `case_handovers` per case, and are marked due for re-evaluation all the same."""
from __future__ import annotations

import copy

import pymongo
import pytest

from contracts.events.penalty_internal import CONTRACTS
from services.handover import store
from services.handover.service import HandoverService
from services.kernel.replay import offline
from services.simulator.bench_replay import suite_settings
from tests.db_recorder import Recorder
from tests.helpers import envelope, scratch_database

CASE_CHANGED = next(c.example for c in CONTRACTS if c.type == "case.changed")


@pytest.fixture
def handover(servers):
    """(the service on a scratch database whose commands are recorded, that database, the recorder)"""
    with scratch_database(servers, "handover") as db:
        recorder = Recorder()
        client = pymongo.MongoClient(servers["MONGO_URI"], serverSelectionTimeoutMS=3000, tz_aware=True,
                                     event_listeners=[recorder])
        try:
            preset, host = suite_settings()
            service = offline(HandoverService, client[db.name], host=host, preset=preset, dispatch=lambda t, p: None)
            store.ensure_indexes(service.db)
            yield service, db, recorder
        finally:
            client.close()


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
