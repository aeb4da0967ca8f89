"""The bench waits for a quiet pipeline (services/simulator/bench.py): before the raw-ceiling phase the
services' progress counter must stay unchanged for `quiet` seconds (`wait_until_flat`); before `--keep-data`
stops the suite, no message may wait in its queues and the handled count must stay flat (`drain`,
`messages_handled`), so what the services relay to each other is in the databases kept. A fake clock."""
from __future__ import annotations

from services.simulator.bench import drain, messages_handled, wait_until_flat


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


def test_drained_only_when_nothing_waits_and_the_handled_count_stayed_flat():
    t = FakeTime()
    # messages wait for 3 reads, then none; the services go on handling what they took for 2 more reads
    out = drain(counter([40, 20, 5, 0]), counter([100, 130, 160, 170, 180, 185]), timeout=60,
                clock=t.clock, sleep=t.sleep)
    assert out["drained"] is True and out["left"] == 0
    # flat from the 6th read (t = 5 s) for the quiet 3 s
    assert out["waited_s"] == 8.0


def test_messages_still_waiting_at_the_timeout_are_counted_not_called_drained():
    t = FakeTime()
    out = drain(counter([7]), counter([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), timeout=10, clock=t.clock, sleep=t.sleep)
    assert out == {"waited_s": 10.0, "drained": False, "left": 7}


def test_unreadable_counters_are_never_called_drained():
    t = FakeTime()
    out = drain(counter([0]), counter([None]), timeout=5, clock=t.clock, sleep=t.sleep)
    assert out["drained"] is False


METRICS = """\
# HELP zhifa_entrypoint_calls_total Entrypoint calls
zhifa_entrypoint_calls_total{service="coordination",entrypoint="handle_finding",event_type="finding.*"} 120.0
zhifa_entrypoint_calls_total{service="coordination",entrypoint="sweep",event_type="timer"} 9.0
zhifa_entrypoint_calls_total{service="coordination",entrypoint="list_inbox",event_type="rpc"} 4.0
zhifa_entrypoint_calls_total{service="gateway",entrypoint="ingress",event_type="consumer"} 30.0
zhifa_entrypoint_errors_total{service="coordination",entrypoint="handle_finding",event_type="finding.*",error="X"} 2.0
"""


def test_messages_handled_counts_event_and_consumer_calls_only():
    assert messages_handled(METRICS) == 150.0


def test_a_raw_round_waits_until_the_machine_is_idle_for_a_while():
    from services.simulator import bench as b

    t = [0.0]
    readings = iter([None, 0.9, 0.5, 0.1, 0.3, 0.1, 0.1, 0.1, 0.1, 0.1])
    out = b.wait_until_idle(lambda: next(readings), below=0.2, quiet=1.0, interval=0.5,
                            clock=lambda: t[0], sleep=lambda dt: t.__setitem__(0, t[0] + dt))
    assert out["idle"] is True and out["waited_s"] == 3.5  # calm from 2.5 s (the 0.3 at 2.0 s reset it), held 1 s
    stuck = b.wait_until_idle(lambda: 0.9, below=0.2, timeout=3, clock=lambda: t[0], sleep=lambda dt: t.__setitem__(0, t[0] + dt))
    assert stuck["idle"] is False and stuck["busy"] == 0.9
    read = b.machine_busy()
    sum(range(200_000))
    value = read()
    assert value is None or 0.0 <= value <= 1.0


def test_the_idle_threshold_is_a_share_of_the_machine():
    import argparse

    import pytest

    from services.simulator import bench as b

    assert b.share("0.2") == 0.2 and b.share("1") == 1.0
    for wrong in ("0", "-0.1", "1.5", "nan", "x", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            b.share(wrong)
