"""The deadline sweep judges what one scan found a share at each tick of its timer (services/kernel/base.py
`DueShare`, `_sweep_deadlines`): judged all at once every DEADLINE_SWEEP_SECONDS, a scan's hundreds of due cases held
penalty's case batches back for seconds (the latency's tail at 300 events/s, docs/benchmark.md, "Thirty-ninth
session"). One layer: the repositories and the service are fakes that record what the sweep asks of them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from nameko import config as nameko_config

from services.kernel import base, partitions
from services.kernel.base import DueShare, EventSourcedService, spread_ticks
from services.kernel.settings import RunConfig

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)


def test_a_share_each_tick_and_a_new_scan_replaces_what_is_left():
    queue = DueShare()
    assert queue.take() == []
    queue.refill(list(range(25)), ticks=10)
    shares = [queue.take() for _ in range(10)]
    assert [len(s) for s in shares] == [3] * 8 + [1, 0]  # ceil(25 / 10) each, the rest at the end
    assert [x for s in shares for x in s] == list(range(25))  # each once, in the scan's order
    queue.refill(list(range(100, 130)), ticks=10)
    queue.take()
    queue.refill(["a", "b"], ticks=10)  # (what a new scan finds is all that is due: the rest was judged)
    assert queue.take() == ["a"] and queue.take() == ["b"] and queue.take() == []
    queue.refill(list(range(7)), ticks=1)
    assert queue.take() == list(range(7))


@pytest.mark.parametrize("spread,interval,ticks", [(10, 30, 10), (10, 1, 1), (0, 30, 1), (0.5, 30, 1), (45, 30, 30),
                                                   (2.5, 30, 2)])
def test_spread_over_at_most_the_scans_interval_and_at_least_one_tick(spread, interval, ticks):
    assert spread_ticks(spread, interval) == ticks


class FakeStore:
    def __init__(self, due):
        self.due_docs, self.scans = due, []

    def due(self, now):
        self.scans.append(now)
        return list(self.due_docs)


class FakeService:
    name = "fake-spread"
    _sweep_deadlines = EventSourcedService._sweep_deadlines
    _owned = EventSourcedService._owned

    def __init__(self, spread: float, interval: float = 30):
        self.conf = RunConfig(preset="x", outbox_sweep_seconds=30, deadline_sweep_seconds=interval, recount_seconds=60,
                              deadline_spread_seconds=spread)
        self.manifest = SimpleNamespace(name=self.name, partition_key="payload.case_id",
                                        aggregates=[SimpleNamespace(name="case", partitioned=True),
                                                    SimpleNamespace(name="party", partitioned=False)])
        self.now, self.judged = T0, []

    def clock(self):
        return self.now

    def _reevaluate_due(self, repo, due, now):
        self.judged.append((repo.name, [d["_id"] for d in due], now))


def _repos(cases: int, parties: int):
    return [SimpleNamespace(name="case", store=FakeStore([{"_id": f"C{i}", "due_at": T0 - timedelta(seconds=i)}
                                                          for i in range(cases)])),
            SimpleNamespace(name="party", store=FakeStore([{"_id": f"P{i}", "due_at": T0} for i in range(parties)]))]


@pytest.fixture(autouse=True)
def _fresh_shares():
    base._due_shares.clear()
    yield
    base._due_shares.clear()


def test_one_scans_due_aggregates_are_judged_over_the_spread_each_as_of_its_tick():
    service, repos = FakeService(spread=10), _repos(20, 3)
    for tick in range(12):
        service.now = T0 + timedelta(seconds=tick)
        service._sweep_deadlines(repos, scan=tick == 0)
    assert [len(r.store.scans) for r in repos] == [1, 1]  # read once, at the scan's tick
    cases = [(ids, now) for name, ids, now in service.judged if name == "case"]
    assert [len(ids) for ids, _ in cases] == [2] * 10  # 20 over 10 ticks, none after
    assert [now for _, now in cases] == [T0 + timedelta(seconds=t) for t in range(10)]  # as of each tick
    assert sorted(i for ids, _ in cases for i in ids) == sorted(f"C{i}" for i in range(20))
    parties = [ids for name, ids, _ in service.judged if name == "party"]
    assert parties == [["P0"], ["P1"], ["P2"]]  # each aggregate kind its own share


def test_no_spread_judges_everything_at_the_scans_tick_as_before():
    service, repos = FakeService(spread=0), _repos(20, 0)
    service._sweep_deadlines(repos, scan=True)
    service.now = T0 + timedelta(seconds=1)
    service._sweep_deadlines(repos, scan=False)
    assert service.judged == [("case", [f"C{i}" for i in range(20)], T0)]


def test_a_short_interval_bounds_the_spread_and_a_new_scan_takes_over():
    service, repos = FakeService(spread=10, interval=2), _repos(6, 0)  # 2 ticks per scan
    for tick in range(4):
        service.now = T0 + timedelta(seconds=tick)
        service._sweep_deadlines(repos, scan=tick % 2 == 0)
    assert [len(ids) for _, ids, _ in service.judged] == [3, 3, 3, 3]
    assert len(repos[0].store.scans) == 2


@pytest.mark.parametrize("index", [0, 1])
def test_a_partitions_process_judges_the_due_aggregates_of_its_own_partitions_only(index):
    service, repos = FakeService(spread=0), _repos(40, 4)
    with nameko_config.patch({"PARTITIONS": "fake-spread=2", "PARTITION": index}, clear=False):
        service._sweep_deadlines(repos, scan=True)
    judged = {name: ids for name, ids, _ in service.judged}
    assert judged["case"] == [f"C{i}" for i in range(40) if partitions.of(f"C{i}", 2) == index]
    assert 0 < len(judged["case"]) < 40
    assert judged["party"] == ["P0", "P1", "P2", "P3"]  # (not keyed by the partition key: every process's)


def test_a_process_of_every_partition_or_an_unpartitioned_service_judges_them_all():
    for settings in ({"PARTITIONS": "fake-spread=2", "PARTITION": None}, {"PARTITIONS": None, "PARTITION": None}):
        service, repos = FakeService(spread=0), _repos(10, 0)
        with nameko_config.patch(settings, clear=False):
            service._sweep_deadlines(repos, scan=True)
        assert service.judged == [("case", [f"C{i}" for i in range(10)], T0)]
