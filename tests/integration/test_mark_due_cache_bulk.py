"""Penalty's bulk `mark_cases_due` keeps the process's cached case documents in step with their bump
(kernel DocCache.bumped), as AggregateStore.mark_due does: the cache then equals a read of each case,
and the next save of a case reads nothing. On the real MongoDB-wire server."""
from datetime import timedelta

from services.kernel.aggregates import AggregateStore, Change
from services.penalty import store
from tests.integration.test_penalty_projections import watched  # noqa: F401 (the recorded scratch database)
from tests.integration.test_projection_cache import NOW


def _appending(event_id):
    def decide(doc):
        facts = list((doc or {}).get("facts", [])) + [{"event_id": event_id, "text": "立案"}]
        return Change({"facts": facts, "due_at": NOW + timedelta(days=5)})
    return decide


def test_the_cached_cases_follow_the_bulk_bump_and_the_next_save_reads_nothing(watched):
    db, recorder = watched
    cases = AggregateStore(db.cases)  # (the process's document cache, as mark_cases_due's own store)
    for case_id in ("C1", "C2"):
        cases.update(case_id, _appending(f"{case_id}-f1"))
    when = NOW + timedelta(minutes=3)
    assert store.mark_cases_due(db, ["C1", "C2"], when) == 2
    for case_id in ("C1", "C2"):
        stored = cases.get(case_id)
        assert stored["version"] == 2 and stored["due_at"] == when
        assert cases.cache.version(cases._key(case_id)) == 2
        assert cases.cache.get(cases._key(case_id), cases._codec) == stored
    recorder.seen.clear()
    saved, _ = cases.update("C1", _appending("C1-f2"))
    assert saved["version"] == 3 and ("find", "cases") not in recorder.seen
    assert [f["event_id"] for f in cases.get("C1")["facts"]] == ["C1-f1", "C1-f2"]


def test_a_case_missing_from_the_bulk_leaves_none_cached(watched):
    db, _ = watched
    cases = AggregateStore(db.cases)
    for case_id in ("C1", "C2"):
        cases.update(case_id, _appending(f"{case_id}-f1"))
    db.cases.delete_one({"_id": "C2"})
    assert store.mark_cases_due(db, ["C1", "C2"], NOW) == 1
    assert cases.cache.version(cases._key("C1")) is None and cases.cache.version(cases._key("C2")) is None
