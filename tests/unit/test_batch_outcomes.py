"""Batch workers (messaging.BatchEventHandler): one outcome and one metrics call per message."""
import sys
from types import SimpleNamespace

from services.kernel.messaging import batch_outcomes
from services.kernel.metrics import CALLS, ERRORS, Metrics


def failure(exc):
    try:
        raise exc
    except Exception:
        return sys.exc_info()


def test_a_batch_answer_per_message_is_kept_and_anything_else_fails_every_message():
    bad = failure(ValueError("x"))
    assert batch_outcomes(3, [None, bad, None], None) == [None, bad, None]
    worker_failed = failure(RuntimeError("worker"))
    assert batch_outcomes(2, None, worker_failed) == [worker_failed, worker_failed]
    wrong = batch_outcomes(2, [None], None)  # not one outcome per message: nothing is acked blindly
    assert all(o is not None and o[0] is TypeError for o in wrong) and len(wrong) == 2


def test_metrics_count_each_message_of_a_batch_and_each_failed_one():
    metrics = Metrics()
    metrics.container = SimpleNamespace(service_name="batchtest")
    metrics._started = {}
    entrypoint = SimpleNamespace(method_name="handle_case", event_type="case.*", handle_batch_result=lambda *a: None)
    ctx = SimpleNamespace(entrypoint=entrypoint, args=([{"event_id": "a"}, {"event_id": "b"}, {"event_id": "c"}],),
                          data={})
    calls = CALLS.labels("batchtest", "handle_case", "case.*")
    errors = ERRORS.labels("batchtest", "handle_case", "case.*", "ValueError")
    before_calls, before_errors = calls._value.get(), errors._value.get()
    metrics.worker_result(ctx, [None, failure(ValueError("refused")), None], None)
    assert calls._value.get() - before_calls == 3
    assert errors._value.get() - before_errors == 1
