"""Messaging: exchanges declared up front, retry with backoff, dead letters, event relay.

nameko acks and drops a message whose handler raised (or requeues it in a hot loop with
`requeue_on_error`). Our entrypoints instead republish a failed message to a per-queue delay
queue (`<queue>.retry.<ms>`, TTL + dead-letter back to the queue) and, when the configured
delays are used up — or at once for a poison message the handler can never accept — publish it
with its error to the `zhifa.dead_letters` exchange, which the gateway keeps for listing and
replay. The original is acked only after the republish is confirmed.
"""
from __future__ import annotations

import json
import logging
import traceback
import uuid
from datetime import datetime, timezone

from kombu import Exchange, Queue
from kombu.common import maybe_declare
from nameko.amqp.publish import Publisher as AmqpPublisher, get_connection
from nameko.events import EventHandler
from nameko.messaging import Consumer

from services.kernel import config

log = logging.getLogger("zhifa.messaging")

INGRESS_EXCHANGE = Exchange("ingress", type="topic", durable=True)
REJECTIONS_EXCHANGE = Exchange("ingress.rejections", type="topic", durable=True)
DEAD_LETTER_EXCHANGE = Exchange("zhifa.dead_letters", type="topic", durable=True)
DEAD_LETTER_QUEUE = Queue("zhifa.dead_letters", exchange=DEAD_LETTER_EXCHANGE, routing_key="#", durable=True)
ATTEMPTS_HEADER = "x-zhifa-attempts"
SERVICES = ("gateway", "personnel", "registry", "penalty", "coordination")


class PoisonMessage(Exception):
    """A message no retry can fix (invalid payload, refused fact): dead-letter it at once."""


def event_exchange(service: str) -> Exchange:
    return Exchange(f"{service}.events", type="topic", durable=True, auto_delete=False)


def declare_topology(amqp_uri: str | None = None) -> None:
    """Declare every exchange the suite uses, so no publisher races a missing exchange."""
    with get_connection(amqp_uri or config.get("AMQP_URI")) as conn:
        channel = conn.channel()
        for ex in (INGRESS_EXCHANGE, REJECTIONS_EXCHANGE, DEAD_LETTER_EXCHANGE, *map(event_exchange, SERVICES)):
            maybe_declare(ex, channel)
        maybe_declare(DEAD_LETTER_QUEUE, channel)
        channel.close()


def _delays() -> list[int]:
    return [int(d) for d in config.get("RETRY_DELAYS_MS")]


def _describe(exc_info) -> tuple[str, str]:
    exc = exc_info[1]
    return f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(*exc_info))[-4000:]


class RetryOrDeadLetter:
    """Mixin for nameko Consumer/EventHandler entrypoints: never ack-and-drop a failure."""

    def _publisher(self) -> AmqpPublisher:
        pub = getattr(self, "_zhifa_publisher", None)
        if pub is None:
            pub = self._zhifa_publisher = AmqpPublisher(config.get("AMQP_URI"), use_confirms=True)
        return pub

    def _queue_name(self) -> str:
        return self.queue.name

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is None:
            return self.consumer.ack_message(message)
        try:
            self._reroute_failure(message, exc_info)
        except Exception:  # broker trouble: leave it to the broker to redeliver
            log.exception("could not reroute failed message; requeueing")
            return self.consumer.requeue_message(message)
        self.consumer.ack_message(message)

    def _reroute_failure(self, message, exc_info) -> None:
        headers = dict(message.headers or {})
        attempts = int(headers.get(ATTEMPTS_HEADER, 0)) + 1
        queue = self._queue_name()
        delays = _delays()
        error, trace = _describe(exc_info)
        poison = isinstance(exc_info[1], PoisonMessage)
        headers[ATTEMPTS_HEADER] = attempts
        if not poison and attempts <= len(delays):
            delay = delays[attempts - 1]
            retry_q = Queue(
                f"{queue}.retry.{delay}", durable=True,
                queue_arguments={"x-message-ttl": delay, "x-dead-letter-exchange": "",
                                 "x-dead-letter-routing-key": queue},
            )
            log.warning("handler failed, retry %s in %sms: %s", attempts, delay, error,
                        extra={"queue": queue, "attempt": attempts})
            self._publisher().publish(message.body, exchange="", routing_key=retry_q.name,
                                      declare=[retry_q], headers=headers,
                                      content_type=message.content_type,
                                      content_encoding=message.content_encoding, serializer=None)
            return
        headers.update({
            "x-zhifa-queue": queue,
            "x-zhifa-service": self.container.service_name,
            "x-zhifa-entrypoint": self.method_name,
            "x-zhifa-error": error[:1000],
            "x-zhifa-traceback": trace,
            "x-zhifa-dead-at": datetime.now(timezone.utc).isoformat(),
            "x-zhifa-dead-id": str(uuid.uuid4()),
        })
        log.error("dead-lettering message from %s after %s attempts: %s", queue, attempts, error,
                  extra={"queue": queue})
        if poison:
            self._notify_publisher(message.body, str(exc_info[1]), headers["x-zhifa-dead-id"])
        self._publisher().publish(message.body, exchange=DEAD_LETTER_EXCHANGE,
                                  routing_key=f"{self.container.service_name}.{self.method_name}",
                                  declare=[DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE], headers=headers,
                                  content_type=message.content_type,
                                  content_encoding=message.content_encoding, serializer=None)


    def _notify_publisher(self, body, reason: str, dead_id: str) -> None:
        """A department's fact the domain refused: tell its publisher on `ingress.rejections`."""
        try:
            envelope = json.loads(body)
            dept, event_id = envelope["dept"], envelope["event_id"]
        except (ValueError, TypeError, KeyError):
            return  # not an ingress envelope: the dead letter is the only record
        notice = {"event_id": event_id, "status": "refused", "reason": "domain_refused",
                  "violations": [{"field": "payload", "rule": "domain", "message": reason[:1000]}],
                  "dead_letter_id": dead_id, "service": self.container.service_name,
                  "rejected_at": datetime.now(timezone.utc).isoformat()}
        self._publisher().publish(json.dumps(notice, ensure_ascii=False).encode(), exchange=REJECTIONS_EXCHANGE,
                                  routing_key=dept, declare=[REJECTIONS_EXCHANGE], serializer=None,
                                  content_type="application/json", content_encoding="utf-8")


class ReliableEventHandler(RetryOrDeadLetter, EventHandler):
    """`@event_handler` that retries with backoff and dead-letters instead of dropping."""


class ReliableConsumer(RetryOrDeadLetter, Consumer):
    """`@consume` with the same failure handling."""


reliable_event_handler = ReliableEventHandler.decorator
reliable_consume = ReliableConsumer.decorator
