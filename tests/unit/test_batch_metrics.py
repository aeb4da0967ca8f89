"""When a BatchCollector hands a batch to a worker (BATCH_WORKERS, BATCH_BACKLOG_SHARE) and how many
messages each got (zhifa_batch_messages)."""
import time

import pytest
from kombu.message import Message
from nameko import config as nameko_config
from prometheus_client import REGISTRY

from services.kernel.messaging import BatchCollector


class Container:
    service_name = "svc_batch_metrics"

    def __init__(self):
        self.spawned = []

    def spawn_managed_thread(self, fn, identifier=None):
        self.spawned.append(identifier)  # the flush timer and the worker hand-over: not run here


class Collector(BatchCollector):
    method_name = "handle_test"

    def __init__(self, batch_max):
        self.container, self.consumer_options = Container(), {}
        self.setup_batches(batch_max)


class Channel:
    connection = object()


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, {"service": "svc_batch_metrics", "entrypoint": "handle_test", **labels})


def test_each_batch_handed_to_a_worker_is_observed_with_its_size():
    before_count = sample("zhifa_batch_messages_count") or 0
    before_sum = sample("zhifa_batch_messages_sum") or 0
    before_one = sample("zhifa_batch_messages_bucket", le="1.0") or 0
    before_five = sample("zhifa_batch_messages_bucket", le="5.0") or 0
    c, ch = Collector(batch_max=5), Channel()
    for tag in range(1, 8):  # 7 messages: a full batch of 5 goes out, 2 wait in the buffer
        c.collect({}, Message(body=b"{}", delivery_tag=tag, channel=ch))
    assert sample("zhifa_batch_messages_count") - before_count == 1
    assert sample("zhifa_batch_messages_sum") - before_sum == 5
    c._inflight = 0  # the worker finished: the rest goes out as a batch of 2
    c._flush()
    assert sample("zhifa_batch_messages_count") - before_count == 2
    assert sample("zhifa_batch_messages_sum") - before_sum == 7
    assert sample("zhifa_batch_messages_bucket", le="1.0") - before_one == 0
    assert sample("zhifa_batch_messages_bucket", le="5.0") - before_five == 2


def test_nothing_is_observed_while_every_worker_is_busy():
    c, ch = Collector(batch_max=2), Channel()
    c._inflight = c.batch_workers
    before = sample("zhifa_batch_messages_count") or 0
    for tag in range(1, 5):
        c.collect({}, Message(body=b"{}", delivery_tag=tag, channel=ch))
    assert (sample("zhifa_batch_messages_count") or 0) == before


def handed():
    return sample("zhifa_batch_messages_count") or 0


def running(c, since=0.0):
    """One batch being worked on, handed over `since` seconds ago."""
    c._inflight, c._running_since = 1, time.monotonic() - since


@pytest.mark.parametrize("share,second_at", [(0.5, 5), (0.3, 3), (1, 10)])
def test_a_second_worker_starts_only_for_a_backlog(share, second_at):
    with nameko_config.patch({"BATCH_BACKLOG_SHARE": share, "BATCH_WORKERS": 2}, clear=False):
        c, ch = Collector(batch_max=10), Channel()
    running(c)
    before = handed()
    for tag in range(1, second_at):  # below the share of a full batch: it waits for the running one
        c.collect({}, Message(body=b"{}", delivery_tag=tag, channel=ch))
        c._flush()  # (the BATCH_WAIT_MS timer)
    assert handed() == before and len(c._buffer) == second_at - 1
    c.collect({}, Message(body=b"{}", delivery_tag=second_at, channel=ch))  # a backlog: the second worker takes it
    c._flush()
    assert handed() == before + 1 and c._buffer == [] and c._inflight == 2


def test_a_backlog_reached_while_a_batch_runs_goes_to_the_second_worker_as_it_arrives():
    with nameko_config.patch({"BATCH_BACKLOG_SHARE": 0.5, "BATCH_WORKERS": 2}, clear=False):
        c, ch = Collector(batch_max=10), Channel()
    running(c)
    before = handed()
    for tag in range(1, 5):
        c.collect({}, Message(body=b"{}", delivery_tag=tag, channel=ch))
    assert handed() == before  # (no timer runs here: only the collect itself hands it over)
    c.collect({}, Message(body=b"{}", delivery_tag=5, channel=ch))
    assert handed() == before + 1 and c._buffer == []


def test_what_waits_below_the_backlog_goes_when_the_running_batch_finishes():
    with nameko_config.patch({"BATCH_BACKLOG_SHARE": 0.5, "BATCH_WORKERS": 2}, clear=False):
        c, ch = Collector(batch_max=10), Channel()
    running(c)
    before_count, before_sum = handed(), sample("zhifa_batch_messages_sum") or 0
    for tag in range(1, 4):
        c.collect({}, Message(body=b"{}", delivery_tag=tag, channel=ch))
    c._flush()
    assert handed() == before_count
    c.handle_batch_result([], None, [])  # the running batch (no messages of its own here) finished
    assert handed() == before_count + 1
    assert sample("zhifa_batch_messages_sum") - before_sum == 3


def test_with_no_batch_running_a_free_worker_takes_even_one_message():
    with nameko_config.patch({"BATCH_BACKLOG_SHARE": 0.5}, clear=False):
        c, ch = Collector(batch_max=10), Channel()
    before = handed()
    c.collect({}, Message(body=b"{}", delivery_tag=1, channel=ch))
    c._flush()
    assert handed() == before + 1


def test_a_share_of_zero_lets_every_free_worker_take_what_waits():
    with nameko_config.patch({"BATCH_BACKLOG_SHARE": 0, "BATCH_WORKERS": 2}, clear=False):
        c, ch = Collector(batch_max=10), Channel()
    running(c)
    before = handed()
    c.collect({}, Message(body=b"{}", delivery_tag=1, channel=ch))
    c._flush()
    assert handed() == before + 1


def test_a_batch_running_longer_than_the_backlog_wait_no_longer_holds_up_what_arrived_behind_it():
    with nameko_config.patch({"BATCH_BACKLOG_SHARE": 0.5, "BATCH_BACKLOG_WAIT_MS": 3000, "BATCH_WORKERS": 2},
                             clear=False):
        c, ch = Collector(batch_max=10), Channel()
    running(c, since=1.0)
    before = handed()
    c.collect({}, Message(body=b"{}", delivery_tag=1, channel=ch))
    c._flush_dues.clear()  # (the BATCH_WAIT_MS timer has fired)
    c._flush()
    assert handed() == before and c.container.spawned[-1].endswith(".flush[svc_batch_metrics.handle_test]")
    assert c._flush_dues  # looked at again when the wait is over
    running(c, since=3.1)  # the running batch has taken longer than BATCH_BACKLOG_WAIT_MS
    c._flush()
    assert handed() == before + 1 and c._buffer == []


@pytest.mark.parametrize("value", ["-0.1", 1.5, "half", True])
def test_the_backlog_share_must_be_a_number_from_0_to_1(value):
    with nameko_config.patch({"BATCH_BACKLOG_SHARE": value}, clear=False):
        with pytest.raises(ValueError, match="^BATCH_BACKLOG_SHARE must be "):
            Collector(batch_max=10)


@pytest.mark.parametrize("value", ["-1", "soon", True])
def test_the_backlog_wait_must_be_a_non_negative_number(value):
    with nameko_config.patch({"BATCH_BACKLOG_WAIT_MS": value}, clear=False):
        with pytest.raises(ValueError, match="^BATCH_BACKLOG_WAIT_MS must be "):
            Collector(batch_max=10)


def test_once_the_entrypoint_stops_no_batch_is_handed_to_a_worker():
    """A stopping container waits for the workers running, then stops the database clients: a batch handed
    over after the entrypoint's stop (a BATCH_WAIT_MS timer firing, a finished batch handing on what
    waits) ran on closed clients and sent every message the retry way. What waits stays unacked; the
    broker hands it out again when the connection closes."""
    c, ch = Collector(batch_max=5), Channel()
    before = sample("zhifa_batch_messages_count") or 0
    for tag in range(1, 4):
        c.collect({}, Message(body=b"{}", delivery_tag=tag, channel=ch))
    c.stop_batches()
    c._flush()  # (the timer)
    for tag in range(4, 10):  # (a full batch's worth arriving late)
        c.collect({}, Message(body=b"{}", delivery_tag=tag, channel=ch))
    assert (sample("zhifa_batch_messages_count") or 0) - before == 0
    assert len(c._buffer) == 9


def test_a_message_arriving_after_the_running_batch_finished_waits_only_the_batch_wait():
    """The running batch set a timer for BATCH_BACKLOG_WAIT_MS; it finished, and the next message must not wait
    for that timer (it did until 2026-12-05: up to 500 ms with every worker free)."""
    with nameko_config.patch({"BATCH_BACKLOG_SHARE": 0.5, "BATCH_BACKLOG_WAIT_MS": 500, "BATCH_WAIT_MS": 5,
                              "BATCH_WORKERS": 2}, clear=False):
        c, ch = Collector(batch_max=10), Channel()
    started = time.monotonic()  # (the timer's due measured from here: a slow machine between the steps moves nothing)
    running(c)
    before = handed()
    c.collect({}, Message(body=b"{}", delivery_tag=1, channel=ch))  # held beside the running batch
    c._flush_dues.clear()  # (its BATCH_WAIT_MS timer has fired:)
    c._flush()  # still held: a timer for the rest of the backlog wait
    assert handed() == before and len(c._flush_dues) == 1 and c._flush_dues[0] - started > 0.4
    c.handle_batch_result([], None, [])  # the running batch finished: it hands on what waits
    assert handed() == before + 1 and c._inflight == 1
    c._inflight = 0  # that batch finished too; the backlog timer is still pending
    spawned = len(c.container.spawned)
    c.collect({}, Message(body=b"{}", delivery_tag=2, channel=ch))
    assert len(c.container.spawned) == spawned + 1  # a timer of its own …
    assert min(c._flush_dues) - time.monotonic() <= 0.005  # … within BATCH_WAIT_MS, not the backlog's 500 ms
    c.collect({}, Message(body=b"{}", delivery_tag=3, channel=ch))
    assert len(c.container.spawned) == spawned + 1  # (one timer for both)


def test_messages_held_beside_a_running_batch_add_no_timer_each():
    with nameko_config.patch({"BATCH_BACKLOG_SHARE": 0.5, "BATCH_BACKLOG_WAIT_MS": 500, "BATCH_WORKERS": 2},
                             clear=False):
        c, ch = Collector(batch_max=100), Channel()
    running(c)
    c.collect({}, Message(body=b"{}", delivery_tag=1, channel=ch))
    c._flush_dues.clear()
    c._flush()  # the backlog timer
    spawned = len(c.container.spawned)
    for tag in range(2, 30):
        c.collect({}, Message(body=b"{}", delivery_tag=tag, channel=ch))
    assert len(c.container.spawned) == spawned and len(c._buffer) == 29


def test_a_flush_timer_killed_before_it_fires_leaves_no_due_behind():
    """A due left behind would stand for a timer that never fires: no message would get a timer again."""
    import eventlet

    c, ch = Collector(batch_max=10), Channel()
    c._flush_within(30)
    assert len(c._flush_dues) == 1
    timer = eventlet.spawn(c._flush_later, 30, c._flush_dues[0])
    eventlet.sleep(0)  # (the timer sleeps)
    timer.kill()
    assert c._flush_dues == []
    spawned = len(c.container.spawned)
    c.collect({}, Message(body=b"{}", delivery_tag=1, channel=ch))
    assert len(c.container.spawned) == spawned + 1  # the next message gets its timer
