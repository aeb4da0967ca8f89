"""The sustained phase's count (services/simulator/bench.py `sustained`): a service's /metrics page that
does not answer once (a process busy for a moment) is no reading, not the end of the run."""
import threading
import time
from types import SimpleNamespace

from services.simulator import bench


class _Store:
    scan_seconds = 0.0

    def persisted(self):
        return 0

    def commands(self):
        return None


class _Handled:
    """Service counters that answer 0, then nothing once, then every event handled."""

    every: dict = {}

    def __init__(self, total):
        self.readings = [0, None, total // 2, None, total]

    def __call__(self):
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]


def test_a_counter_page_that_does_not_answer_once_is_skipped(monkeypatch):
    events = [{"event_id": f"e{i}"} for i in range(10)]
    started = time.monotonic()
    monkeypatch.setattr(bench, "publish_amqp", lambda evs, uri: SimpleNamespace(elapsed=0.01, rate=1000.0, started=started))
    monkeypatch.setattr(bench, "metric_pages", lambda urls: {})
    monkeypatch.setattr(bench.time, "sleep", lambda s: None)
    output = SimpleNamespace(counts={}, lock=threading.Lock(), last=None)
    out = bench.sustained(events, "amqp://x", _Store(), output, stall=60, max_seconds=60, handled=_Handled(10))
    assert out["handled"] == 10 and out["complete"] is True and out["completion"].startswith("service counters")


def test_counters_that_stop_answering_end_the_phase_as_a_stall(monkeypatch):
    events = [{"event_id": f"e{i}"} for i in range(10)]
    clock = [100.0]
    monkeypatch.setattr(bench.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(bench, "publish_amqp", lambda evs, uri: SimpleNamespace(elapsed=0.01, rate=1000.0, started=100.0))
    monkeypatch.setattr(bench, "metric_pages", lambda urls: {})

    def sleep(seconds):
        clock[0] += seconds
    monkeypatch.setattr(bench.time, "sleep", sleep)
    handled = _Handled(10)
    handled.readings = [0, 0, 4, None]  # (the first is the baseline) then never again
    output = SimpleNamespace(counts={}, lock=threading.Lock(), last=None)
    out = bench.sustained(events, "amqp://x", _Store(), output, stall=5, max_seconds=600, handled=handled)
    assert out["handled"] == 4 and out["complete"] is False
    assert out["seconds"] == 0.5  # (the window ends at the last progress seen)
    assert 5 < clock[0] - 100.5 <= 6  # it waited out the stall, not one missing answer
