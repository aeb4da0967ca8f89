"""The test kit's own promises (tests/helpers.py) against the real broker."""
from __future__ import annotations

import uuid

from kombu import Connection, Exchange, Queue

from tests.helpers import drain, officer_registered, publish


def test_drain_twice_on_one_connection_loses_nothing(vhost):
    """What the broker delivered to a first drain beyond its count is there for the second one."""
    exchange = Exchange("ingress", type="topic", durable=True)
    queue = Queue(f"test-drain-{uuid.uuid4().hex[:6]}", exchange=exchange, routing_key="#", auto_delete=False)
    sent = [officer_registered(f"511322-scjg-09{i:02d}") for i in range(5)]
    with Connection(vhost["amqp_uri"]) as conn:
        queue(conn.channel()).declare()
        publish(vhost["amqp_uri"], sent)
        first = drain(conn, queue, 2)
        rest = drain(conn, queue, 3, timeout=5)
        assert drain(conn, queue, 1, timeout=1) == []
    assert sorted(m["event_id"] for m in first + rest) == sorted(m["event_id"] for m in sent)
