"""A consumer whose broker connection went away while its worker ran (RabbitMQ restarted) neither
raises nor loses the message: acking or requeueing on the dead socket is skipped (the broker
redelivers what it did not see acknowledged). nameko's own guard only catches amqp's
ConnectionError, so before `settle_message` a reset socket ended the worker's thread and the
whole service container (found by `make chaos`)."""
from types import SimpleNamespace

import pytest
from amqp.exceptions import ConnectionForced
from nameko.amqp.consume import Consumer as AmqpConsumer

from services.kernel.messaging import ReliableEventHandler


class DeadSocketMessage:
    """A delivered message whose connection object still exists but whose socket is gone."""

    def __init__(self, error: BaseException):
        self.channel = SimpleNamespace(connection=object())
        self.error = error
        self.tries = 0

    def ack(self):
        self.tries += 1
        raise self.error

    requeue = ack


def handler() -> ReliableEventHandler:
    entry = ReliableEventHandler("personnel", "officer.registered")
    entry.consumer = AmqpConsumer("amqp://guest:guest@127.0.0.1:1/")  # nameko's real ack/requeue
    return entry


@pytest.mark.parametrize("error", [ConnectionResetError(104, "Connection reset by peer"),
                                   BrokenPipeError(32, "Broken pipe"), ConnectionForced("broker shutdown")])
def test_ack_on_a_dead_connection_does_not_raise(error):
    msg = DeadSocketMessage(error)
    handler().handle_message_processed(msg)  # raised before: the container's worker thread died
    assert msg.tries == 1


def test_requeue_after_a_failed_reroute_on_a_dead_connection_does_not_raise(monkeypatch):
    entry = handler()

    def broker_gone(message, exc_info):
        raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr(entry, "_reroute_failure", broker_gone)
    msg = DeadSocketMessage(BrokenPipeError(32, "Broken pipe"))
    try:
        raise RuntimeError("handler failed")
    except RuntimeError:
        import sys

        entry.handle_message_processed(msg, exc_info=sys.exc_info())
    assert msg.tries == 1  # the requeue was tried once, then left to the broker


def test_other_errors_still_raise():
    msg = DeadSocketMessage(ValueError("a bug, not a lost connection"))
    with pytest.raises(ValueError):
        handler().handle_message_processed(msg)


def test_the_gateways_dead_letter_consumer_survives_a_dead_connection():
    from services.gateway.service import DeadLetterConsumer

    entry = DeadLetterConsumer(queue=None, requeue_on_error=True)
    entry.consumer = AmqpConsumer("amqp://guest:guest@127.0.0.1:1/")
    msg = DeadSocketMessage(ConnectionResetError(104, "Connection reset by peer"))
    entry.handle_message_processed(msg)
    assert msg.tries == 1
