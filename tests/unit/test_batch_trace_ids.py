"""A batch worker continues its first message's trace; its access line names every message's trace
(services/kernel/messaging.py `Batch`, `batch_trace_ids`; services/kernel/metrics.py)."""
from types import SimpleNamespace

from services.kernel import tracing
from services.kernel.messaging import Batch, batch_trace_ids

A, B = "a" * 32, "b" * 32


def message(trace_id=None, raw=None):
    headers = {} if trace_id is None and raw is None else {"nameko.traceparent": raw or tracing.traceparent(trace_id)}
    return SimpleNamespace(headers=headers)


def test_the_distinct_traces_of_a_batch_in_order():
    assert batch_trace_ids([message(B), message(A), message(B), message(), message(raw="garbage")]) == [B, A]
    assert batch_trace_ids([SimpleNamespace(headers=None)]) == []


def test_a_batch_is_a_list_with_its_traces():
    items = Batch([{"n": 1}, {"n": 2}])
    items.trace_ids = [A]
    assert items == [{"n": 1}, {"n": 2}] and isinstance(items, list)
    assert Batch().trace_ids == []
