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
        self.batch_max, self._buffer, self._flush_pending, self._inflight, self._acks = 1000, [], True, 2, {}
        self.failed: list[int] = []

    def _flush(self):
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
