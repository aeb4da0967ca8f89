"""Batch workers ack their applied messages with one multiple `basic.ack`, sent only when it cannot
cover a delivery that is still open (messaging.BatchCollector._ack_ready)."""
import sys

from kombu.message import Message

from services.kernel.messaging import BatchCollector


class Channel:
    def __init__(self):
        self.acks: list[tuple[int, bool]] = []
        self.connection = object()
        self.no_ack_consumers = None

    def basic_ack(self, delivery_tag, multiple=False):
        self.acks.append((delivery_tag, multiple))


class Collector(BatchCollector):
    """A BatchCollector without a container: collected messages are handed out by the test."""

    def __init__(self):
        self.batch_max, self._buffer, self._flush_dues, self._inflight, self._acks = 1000, [], [], 2, {}
        self.batch_backlog, self.batch_wait = 0, 0.005  # (no backlog rule: the test hands batches out itself)
        self.failed: list[int] = []

    def _flush(self):
        pass

    def _flush_within(self, wait):  # (no timers either)
        pass

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is None:
            message.ack()
        else:  # the retry / dead-letter path: republished, then acked alone
            self.failed.append(message.delivery_tag)
            message.ack()


def deliveries(collector, channel, tags):
    messages = [Message(body=b"{}", delivery_tag=t, channel=channel) for t in tags]
    for m in messages:
        collector.collect({}, m)
    return messages


def failure():
    try:
        raise ValueError("refused")
    except ValueError:
        return sys.exc_info()


def test_a_batch_with_no_earlier_open_delivery_is_acked_with_one_multiple_ack():
    ch, c = Channel(), Collector()
    first = deliveries(c, ch, range(1, 6))
    deliveries(c, ch, range(6, 9))  # the next batch, being collected: later tags, not covered
    c.handle_batch_result(first, None, [None] * 5)
    assert ch.acks == [(5, True)]


def test_a_batch_finishing_before_an_earlier_one_waits_for_it_and_both_are_acked_together():
    ch, c = Channel(), Collector()
    first, second = deliveries(c, ch, [1, 2, 3]), deliveries(c, ch, [4, 5, 6])
    c.handle_batch_result(second, None, [None] * 3)
    assert ch.acks == []  # 1–3 are still being worked on: an ack through 6 would cover them
    c.handle_batch_result(first, None, [None] * 3)
    assert ch.acks == [(6, True)]
    assert c._acks[ch].collected == set() and c._acks[ch].floor == 6


def test_an_earlier_batch_that_failed_releases_the_later_one():
    ch, c = Channel(), Collector()
    first, second = deliveries(c, ch, [1, 2]), deliveries(c, ch, [3, 4])
    c.handle_batch_result(second, None, [None, None])
    c.handle_batch_result(first, None, None, failure())
    assert c.failed == [1, 2]
    assert ch.acks == [(1, False), (2, False), (4, True)]


def test_after_a_delivery_that_was_not_collected_the_channel_acks_one_by_one():
    ch, c = Channel(), Collector()
    first = deliveries(c, ch, [1, 2])
    c.handle_batch_result(first, None, [None, None])
    later = deliveries(c, ch, [4, 5])  # 3 never reached collect: an ack through 5 would cover it
    c.handle_batch_result(later, None, [None, None])
    more = deliveries(c, ch, [6, 7])
    c.handle_batch_result(more, None, [None, None])
    assert ch.acks == [(2, True), (4, False), (5, False), (6, False), (7, False)]


def test_a_failed_message_is_settled_alone_before_the_others_are_acked_together():
    ch, c = Channel(), Collector()
    batch = deliveries(c, ch, [1, 2, 3, 4])
    c.handle_batch_result(batch, None, [None, failure(), None, None])
    assert c.failed == [2]
    assert ch.acks == [(2, False), (4, True)]


def test_a_failed_worker_settles_every_message_alone():
    ch, c = Channel(), Collector()
    batch = deliveries(c, ch, [1, 2])
    c.handle_batch_result(batch, None, None, failure())
    assert c.failed == [1, 2] and ch.acks == [(1, False), (2, False)]
    assert c._acks[ch].collected == set() and c._acks[ch].floor == 2
    c.handle_batch_result(deliveries(c, ch, [3, 4]), None, [None, None])
    assert ch.acks[2:] == [(4, True)]


def test_messages_of_an_earlier_channel_are_acked_on_their_own_channel():
    old, new, c = Channel(), Channel(), Collector()
    batch = deliveries(c, old, [1, 2, 3]) + deliveries(c, new, [1, 2])  # a reconnection between them
    c.handle_batch_result(batch, None, [None] * 5)
    assert old.acks == [(3, True)] and new.acks == [(2, True)]


def test_nothing_is_acked_on_a_channel_whose_connection_is_gone():
    ch, c = Channel(), Collector()
    batch = deliveries(c, ch, [1, 2])
    ch.connection = None
    c.handle_batch_result(batch, None, [None, None])
    assert ch.acks == []


class BundleCollector(Collector):
    """Also a bundle's parts: a failed one is rerouted alone (`rerouted`), or the reroute fails."""

    def __init__(self, reroute_fails: bool = False):
        super().__init__()
        self.rerouted: list[str] = []
        self.reroute_fails = reroute_fails
        self.consumer = type("Consumer", (), {"requeue_message": lambda _, m: self.requeued.append(m.delivery_tag)})()
        self.requeued: list[int] = []

    def _reroute_failure(self, message, exc_info):
        if self.reroute_fails:
            raise ConnectionError("broker gone")
        self.rerouted.append(message.envelope["event_id"])


def bundle(collector, channel, tag, count):
    """A bundle message of `count` events collected as its parts (BatchEventHandler.handle_message)."""
    from services.kernel.messaging import BundlePart, _OpenBundle

    message = Message(body=b"{}", delivery_tag=tag, channel=channel, headers={"nameko.call_id_stack": ["x"],
                                                                              "x-zhifa-attempts": 3})
    collector._register(message)
    opened = _OpenBundle(message, count)
    parts = [BundlePart(opened, f"00-{i:032x}-{i:016x}-01", {"event_id": f"e{tag}.{i}", "type": "case.filed"})
             for i in range(count)]
    for part in parts:
        collector.collect(part.envelope, part)
    return parts


def test_a_bundle_is_acked_once_when_its_last_part_is_settled_and_a_failed_part_goes_alone():
    ch, c = Channel(), BundleCollector()
    before = deliveries(c, ch, [1])
    parts = bundle(c, ch, 2, 3)
    after = deliveries(c, ch, [3])
    assert len(c._buffer) == 5 and c._acks[ch].collected == {1, 2, 3}  # the bundle is one delivery
    c.handle_batch_result(before + parts[:2], None, [None, None, failure()])
    assert ch.acks == [(1, True)] and c.rerouted == ["e2.1"]  # part 2 of 3 is still open: no ack through 2
    c.handle_batch_result(parts[2:] + after, None, [None, None])
    assert ch.acks == [(1, True), (3, True)] and c.requeued == []


def test_a_part_whose_reroute_failed_requeues_its_bundle_and_nothing_else():
    ch, c = Channel(), BundleCollector(reroute_fails=True)
    parts = bundle(c, ch, 1, 2)
    after = deliveries(c, ch, [2])
    c.handle_batch_result(parts + after, None, [failure(), None, None])
    assert c.requeued == [1]  # the whole bundle comes again (its applied part is de-duplicated)
    assert ch.acks == [(2, True)]  # the requeued delivery is settled: the next one is acked


def test_a_part_looks_like_the_message_it_would_have_been_alone():
    from services.kernel.messaging import BundlePart, _OpenBundle, delivery_of

    message = Message(body=b"{}", delivery_tag=7, channel=Channel(), headers={"nameko.call_id_stack": ["x"],
                      "x-zhifa-signature": "forged"}, properties={"user_id": "zhifa"},
                      delivery_info={"routing_key": "zhifa_bundle.penalty.0123456789ab", "exchange": "gateway.events"})
    part = BundlePart(_OpenBundle(message, 1), "00-t-p-01", {"event_id": "e1", "type": "case.filed"})
    assert part.headers == {"nameko.call_id_stack": ["x"], "nameko.traceparent": "00-t-p-01"}  # no x-zhifa-*
    assert delivery_of(part, "q") == delivery_of(type("M", (), {
        "headers": {}, "delivery_info": {"routing_key": "case.filed"}, "properties": {"user_id": "zhifa"},
        "body": part.body})(), "q")
    assert part.body == b'{"event_id": "e1", "type": "case.filed"}'
