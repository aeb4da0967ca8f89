"""The bench's raw-ceiling phase waits for a quiet pipeline (services/simulator/bench.py
`wait_until_flat`): the services' progress counter must stay unchanged for `quiet` seconds."""
from __future__ import annotations

from services.simulator.bench import wait_until_flat


class FakeTime:
    def __init__(self):
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def counter(values):
    it = iter(values)
    last = [None]

    def read():
        last[0] = next(it, last[0])
        return last[0]
    return read


def test_returns_once_the_counter_stayed_flat_for_the_quiet_time():
    t = FakeTime()
    # draining a backlog for 4 readings, then flat
    out = wait_until_flat(counter([10, 50, 90, 120, 150, 150, 150, 150, 150]), timeout=60, quiet=3,
                          clock=t.clock, sleep=t.sleep)
    assert out == {"waited_s": 7.0, "quiet": True}


def test_an_idle_pipeline_costs_only_the_quiet_time():
    t = FakeTime()
    assert wait_until_flat(counter([5] * 10), timeout=60, quiet=3, clock=t.clock, sleep=t.sleep) == \
        {"waited_s": 3.0, "quiet": True}


def test_a_counter_that_keeps_moving_times_out_and_says_so():
    t = FakeTime()
    out = wait_until_flat(counter(range(1000)), timeout=20, quiet=3, clock=t.clock, sleep=t.sleep)
    assert out == {"waited_s": 20.0, "quiet": False}


def test_unreadable_counters_are_not_called_quiet():
    t = FakeTime()
    out = wait_until_flat(lambda: None, timeout=60, quiet=3, clock=t.clock, sleep=t.sleep)
    assert out["quiet"] is None and out["waited_s"] == 3.0
