"""The handover service's penalty cases are inserted without a read first (services/handover/service.py
`CaseAdapter.creating`): a `case.changed` of a case this process has not cached is guessed new; a case
that exists after all (saved by another consumer, or evicted from the cache) loses the insert on its
key and is read and decided again — on real FerretDB, nothing lost, nothing doubled."""
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
    with scratch_database(servers, "hocase") as db:
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


def case_changed(case_id: str, revision: int = 9) -> dict:
    return envelope("case.changed", {**copy.deepcopy(CASE_CHANGED), "case_id": case_id, "measures": {},
                                     "revision": revision})


def commands(recorder: Recorder, command: str) -> int:
    return sum(1 for c, name in recorder.seen if c == command and name == "penalty_cases")


def test_new_cases_are_inserted_without_a_read(handover):
    service, db, recorder = handover
    recorder.seen.clear()
    assert service.apply_batch([case_changed(f"n{i}") for i in range(12)]) == [None] * 12
    assert db.penalty_cases.count_documents({}) == 12
    assert commands(recorder, "find") == 0 and commands(recorder, "insert") >= 1


def test_a_case_this_process_saved_is_updated_from_its_cache(handover):
    service, db, recorder = handover
    assert service.apply_batch([case_changed("c1")]) == [None]
    recorder.seen.clear()
    assert service.apply_batch([case_changed("c1", revision=10)]) == [None]
    assert commands(recorder, "find") == 0 and commands(recorder, "insert") == 0  # (not guessed: cached)
    doc = service.aggregate_doc("case", "c1")
    assert doc["version"] == 2 and [f["payload"]["revision"] for f in doc["facts"]] == [9, 10]


def test_a_case_that_exists_but_is_not_cached_loses_the_insert_and_is_updated(handover):
    service, db, recorder = handover
    first = case_changed("c2")
    assert service.apply_batch([first]) == [None]
    cases = service.store(service.aggregate("case"))
    cases.cache.drop(cases._key("c2"))  # (saved by another consumer, or evicted)
    recorder.seen.clear()
    assert service.apply_batch([case_changed("c2", revision=10)]) == [None]
    assert commands(recorder, "insert") == 1 and commands(recorder, "find") >= 1  # guessed, lost, read
    doc = service.aggregate_doc("case", "c2")
    assert doc["version"] == 2 and [f["payload"]["revision"] for f in doc["facts"]] == [9, 10]
    # a redelivery of the first fact, not cached again: guessed, lost, read — and changes nothing
    cases.cache.drop(cases._key("c2"))
    assert service.apply_batch([first]) == [None]
    assert service.aggregate_doc("case", "c2")["version"] == 2
