"""One wait for a batch's confirms (services/kernel/confirms.py), against a scripted broker channel."""
from __future__ import annotations

import json

import pytest
from kombu import Exchange

from services.kernel.confirms import NotConfirmed, Outgoing, _Lane

EX = Exchange("gateway.events", type="topic")


class ScriptedBroker:
    """Stands in for the channel and connection of one lane: records publishes, answers drains with
    the acks/nacks it was told to send (delivery tag, multiple)."""

    def __init__(self, answers):
        self.published, self.answers, self.lane = [], list(answers), None
        self.connection, self.transport, self.writes = self, self, []
        self._write = self.writes.append  # the socket's sendall, as py-amqp's TCPTransport sets it

    def write(self, data):  # py-amqp's transport.write: calls _write
        self._write(data)

    def basic_publish(self, message, exchange, routing_key):
        self.published.append((exchange, routing_key, message))
        self.write(memoryview(b"frames of %d;" % len(self.published)))  # py-amqp hands a view of its buffer

    def drain_events(self, timeout):
        if not self.answers:
            import socket

            raise socket.timeout()
        kind, tag, multiple = self.answers.pop(0)
        (self.lane._on_ack if kind == "ack" else self.lane._on_nack)(tag, multiple)


def lane_for(broker: ScriptedBroker) -> _Lane:
    lane = object.__new__(_Lane)
    lane.connection = lane.channel = broker
    lane.tag, lane.pending, lane.nacked = 0, set(), 0
    broker.lane = lane
    return lane


def batch(n: int) -> list[Outgoing]:
    return [Outgoing(EX, "officer.registered", {"n": i, "名": "李明"}, {"nameko.traceparent": "t"}) for i in range(n)]


def test_every_message_is_sent_before_the_one_wait_and_a_multiple_ack_settles_the_batch():
    broker = ScriptedBroker([("ack", 2, False), ("ack", 5, True)])
    lane = lane_for(broker)
    lane.send(batch(5), timeout=5)
    assert len(broker.published) == 5 and not lane.pending and not broker.answers
    exchange, key, message = broker.published[0]
    assert (exchange, key) == ("gateway.events", "officer.registered")
    assert json.loads(message.body) == {"n": 0, "名": "李明"}
    assert message.properties["delivery_mode"] == 2 and message.properties["application_headers"] == {
        "nameko.traceparent": "t"}


def test_a_batch_s_frames_go_out_in_one_write_and_later_writes_go_to_the_socket_again():
    broker = ScriptedBroker([("ack", 3, True)])
    lane = lane_for(broker)
    lane.send(batch(3), timeout=5)
    assert broker.writes == [b"frames of 1;frames of 2;frames of 3;"]
    broker.write(b"heartbeat")  # outside a batch: straight to the socket
    assert broker.writes[-1] == b"heartbeat" and len(broker.writes) == 2


def test_a_message_that_cannot_be_sent_fails_the_batch_and_leaves_the_socket_writer_in_place():
    broker = ScriptedBroker([])
    lane = lane_for(broker)
    broken = Outgoing(EX, "officer.registered", {1, 2})  # a set: no JSON
    with pytest.raises(TypeError):
        lane.send([*batch(1), broken], timeout=5)
    assert broker.writes == [] and broker._write == broker.writes.append


def test_a_nack_fails_the_batch():
    lane = lane_for(ScriptedBroker([("ack", 1, False), ("nack", 3, True)]))
    with pytest.raises(NotConfirmed):
        lane.send(batch(3), timeout=5)


def test_no_answer_within_the_timeout_fails_the_batch():
    lane = lane_for(ScriptedBroker([("ack", 1, False)]))  # the second message is never confirmed
    with pytest.raises(NotConfirmed):
        lane.send(batch(2), timeout=0.05)


def test_tags_continue_across_batches_on_one_lane():
    broker = ScriptedBroker([("ack", 2, True), ("ack", 3, False)])
    lane = lane_for(broker)
    lane.send(batch(2), timeout=5)
    lane.send(batch(1), timeout=5)
    assert lane.tag == 3 and not lane.pending


def test_a_lone_surrogate_keeps_its_json_escape():
    message = Outgoing(EX, "x", {"event_id": "\ud800"}).message()
    assert json.loads(message.body) == {"event_id": "\ud800"}


def test_a_lane_whose_connection_py_amqp_dropped_fails_as_a_lost_connection():
    from services.kernel.confirms import CONNECTION_LOST

    broker = ScriptedBroker([("ack", 1, False)])
    broker.transport = None  # py-amqp's `collect()` after a close
    with pytest.raises(CONNECTION_LOST):  # (the publisher then sends the batch once more on a fresh lane)
        lane_for(broker).send(batch(1), timeout=5)
    assert broker.published == []
