"""The deadline sweep judges its due aggregates as a batch is applied (services/kernel/base.py
`_reevaluate_due`): their documents read in one find, one outbox marker, several at a time. One at a time,
each read its own document and the outbox markers naming it and waited for each of its commands alone;
after a burst of facts penalty's sweep took longer than its interval (docs/benchmark.md, 2026-12-03).
One layer: the repository and the store are fakes that record what the sweep asks of them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import eventlet
from nameko import config as nameko_config

from services.kernel.base import EventSourcedService

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


class FakeStore:
    def __init__(self):
        self.covered, self.prefetched, self.set_due = [], [], {}

    def cover(self, ids):
        self.covered.append(list(ids))

    def prefetch(self, ids):
        self.prefetched.append(list(ids))
        return {}

    def _set_due(self, agg_id, when):
        self.set_due[agg_id] = when


class FakeRepo:
    def __init__(self):
        self.store, self.judged, self.running, self.most = FakeStore(), [], 0, 0

    def reevaluate(self, agg_id, now):
        self.running += 1
        self.most = max(self.most, self.running)
        eventlet.sleep(0.01)  # (a database round trip: the others go on meanwhile)
        self.running -= 1
        self.judged.append((agg_id, now))
        if agg_id == "gone":
            return None, []
        return {"_id": agg_id, "due_at": NOW + timedelta(days=1)}, []


class FakeService:
    name = "fake"
    prefetch_due = EventSourcedService.prefetch_due

    def __init__(self):
        self.relayed = []

    def _relay(self, repo, new, pending):
        self.relayed.append((new or {}).get("_id"))


def test_the_due_aggregates_are_read_in_one_find_and_judged_several_at_a_time():
    service, repo = FakeService(), FakeRepo()
    due = [{"_id": f"C{i}", "due_at": NOW - timedelta(seconds=i)} for i in range(20)] + [{"_id": "gone", "due_at": NOW}]
    with nameko_config.patch({"BATCH_CONCURRENCY": 8}, clear=False):
        EventSourcedService._reevaluate_due(service, repo, due, NOW)
    ids = [d["_id"] for d in due]
    assert repo.store.prefetched == [ids] and repo.store.covered == [ids]  # one read, one marker, for all
    assert sorted(a for a, _ in repo.judged) == sorted(ids) and {t for _, t in repo.judged} == {NOW}
    assert 1 < repo.most <= 8  # several at a time, never more than BATCH_CONCURRENCY
    # every due entry its save did not correct is set to the new due date (the one gone: dropped)
    assert repo.store.set_due["C3"] == NOW + timedelta(days=1) and repo.store.set_due["gone"] is None
    assert len(service.relayed) == len(ids)


def test_one_at_a_time_when_batch_concurrency_is_one_and_nothing_read_when_nothing_is_due():
    service, repo = FakeService(), FakeRepo()
    with nameko_config.patch({"BATCH_CONCURRENCY": 1}, clear=False):
        EventSourcedService._reevaluate_due(service, repo, [{"_id": "A", "due_at": NOW}, {"_id": "B", "due_at": NOW}], NOW)
        assert repo.most == 1 and [a for a, _ in repo.judged] == ["A", "B"]
        EventSourcedService._reevaluate_due(service, FakeRepo(), [], NOW)  # (nothing due: no read, no marker)
    empty = FakeRepo()
    EventSourcedService._reevaluate_due(service, empty, [], NOW)
    assert empty.store.prefetched == [] and empty.store.covered == []


def test_one_aggregate_that_fails_does_not_stop_the_others_and_keeps_its_due_entry():
    """Several at a time, an exception of one would leave the others running after the sweep's unit of work
    sent its side writes; it is logged, its due entry stays for the next sweep, the others are judged."""
    service, repo = FakeService(), FakeRepo()
    judge = repo.reevaluate

    def failing(agg_id, now):
        if agg_id == "C2":
            raise RuntimeError("database gone for a moment")
        return judge(agg_id, now)

    repo.reevaluate = failing
    due = [{"_id": f"C{i}", "due_at": NOW} for i in range(5)]
    with nameko_config.patch({"BATCH_CONCURRENCY": 4}, clear=False):
        EventSourcedService._reevaluate_due(service, repo, due, NOW)
    assert sorted(a for a, _ in repo.judged) == ["C0", "C1", "C3", "C4"]
    assert "C2" not in repo.store.set_due and repo.running == 0
