"""`make bench --keep-data` waits until the suite's queues are drained before it stops the services
(services/simulator/bench.py `drain`, `messages_handled`), and a latency phase with nothing to offer
(`--duration 0`) is reported as skipped, not as a phase of 0 events/s over hours. No timing: a fake clock."""
from __future__ import annotations

import io
from contextlib import redirect_stdout

from services.simulator.bench import drain, messages_handled, print_summary


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def reader(values):
    it = iter(values)
    last = [None]

    def read():
        last[0] = next(it, last[0])
        return last[0]
    return read


def test_drained_only_when_nothing_waits_and_the_handled_count_stayed_flat():
    t = FakeTime()
    # messages wait for 3 reads, then none; the services go on handling what they took for 2 more reads
    out = drain(reader([40, 20, 5, 0]), reader([100, 130, 160, 170, 180, 185]), timeout=60,
                clock=t.clock, sleep=t.sleep)
    assert out["drained"] is True and out["left"] == 0
    # flat from the 6th read (t = 5 s) for the quiet 3 s
    assert out["waited_s"] == 8.0


def test_messages_still_waiting_at_the_timeout_are_counted_not_called_drained():
    t = FakeTime()
    out = drain(reader([7]), reader([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), timeout=10, clock=t.clock, sleep=t.sleep)
    assert out == {"waited_s": 10.0, "drained": False, "left": 7}


def test_unreadable_counters_are_never_called_drained():
    t = FakeTime()
    out = drain(reader([0]), reader([None]), timeout=5, clock=t.clock, sleep=t.sleep)
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


def test_the_summary_says_the_latency_phase_was_skipped():
    results = {
        "machine": {"nproc": 2, "memory_mb": 1, "cpu_model": "x", "kernel": "k", "python": "3.11", "git_commit": "c"},
        "suite": {"processes": ["penalty"], "services": ["penalty"], "missing": []},
        "workload": {"counties": 1, "by_service": {"penalty": 10}},
        "sustained": {"events_per_s": 100.0, "handled": 10, "events": 10, "seconds": 0.1, "complete": True,
                      "publish_rate_per_s": 1000.0, "findings_raised": 0},
        "latency": {"skipped": "--rate 1000 --duration 0"},
        "raw_ceiling": {"events_per_s": 200.0, "consumers": 1},
        "ratio_to_raw": 0.5, "memory": {}, "notes": [], "targets": [],
        "conditions": {"load_before": [0, 0, 0], "load_after": [0, 0, 0], "others_cpu_share": 0.0, "others_top": []},
    }
    with redirect_stdout(io.StringIO()) as out:
        print_summary(results)
    text = out.getvalue()
    assert "延迟        未测量（--rate 1000 --duration 0：没有可发布的事件）" in text
    assert "原始上限    200.0 条/秒" in text and "比值 0.5" in text
