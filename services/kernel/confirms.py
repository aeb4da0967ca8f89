"""Publishing many messages with one wait for the broker's confirms.

nameko's `Publisher` (and kombu's producer with `confirm_publish`) waits for the broker's confirm of
each message before sending the next: a batch of 50 events costs 50 round trips. Here a batch is
sent on a channel in confirm mode and the publisher waits once, until the broker has confirmed (acked)
every message of the batch; a nack, a lost connection or no answer within `timeout` raises, so a
caller that acks its incoming messages only after `publish_all` returned never acks what the broker
did not take. Messages are persistent (delivery mode 2), like nameko's.

Connections ("lanes": a connection and its confirm-mode channel) are kept for reuse, one per
concurrent caller; a lane that failed is dropped, and a send on a kept lane that finds its connection
gone is repeated once on a fresh lane (the broker may then hold a message twice: every consumer of
the suite de-duplicates by event id).
"""
from __future__ import annotations

import json
import logging
import socket
import time
from dataclasses import dataclass, field

import amqp
from amqp.exceptions import ConnectionError as AMQPConnectionError
from kombu import Connection, Exchange
from kombu.common import maybe_declare
from nameko.constants import DEFAULT_TRANSPORT_OPTIONS

log = logging.getLogger("zhifa.confirms")

PERSISTENT = 2
CONNECTION_LOST = (OSError, AMQPConnectionError)


class NotConfirmed(Exception):
    """The broker refused (nack) or did not confirm in time some message of a batch."""


@dataclass(frozen=True)
class Outgoing:
    """One message: JSON `body` (a dict, or bytes already encoded) to `exchange` with `routing_key`.
    `mandatory`: the broker returns it when no queue takes it, and `publish_all` hands it back."""

    exchange: Exchange
    routing_key: str
    body: object
    headers: dict = field(default_factory=dict)
    mandatory: bool = False

    def message(self, message_id: str | None = None) -> amqp.Message:
        extra = {"message_id": message_id} if message_id is not None else {}
        return amqp.Message(self.data(), content_type="application/json", content_encoding="utf-8",
                            delivery_mode=PERSISTENT, application_headers=dict(self.headers), **extra)

    def data(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else json_bytes(self.body)


def json_bytes(value) -> bytes:
    """`value` as UTF-8 JSON; a lone surrogate (echoed from hostile input), which UTF-8 cannot carry,
    keeps its JSON escape."""
    try:
        return json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value).encode("ascii")


def _text_id(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class _Lane:
    """A connection and one channel in confirm mode, counting the broker's acks and nacks."""

    def __init__(self, amqp_uri: str, exchanges: tuple[Exchange, ...]):
        options = dict(DEFAULT_TRANSPORT_OPTIONS)
        options.pop("confirm_publish", None)  # confirms are awaited here, once per batch
        self.connection = Connection(amqp_uri, transport_options=options)
        self.connection.ensure_connection(max_retries=1)
        # py-amqp reads the socket (timeout 0) before *every* publish on a connection that announced
        # `connection.blocked`, to notice a broker alarm early; a lane drains the socket once per batch
        # anyway (the confirms), where such a notice is read as well: no read per message
        self.connection.connection.client_properties["capabilities"] = {
            **self.connection.connection.client_properties.get("capabilities", {}), "connection.blocked": False}
        self.channel = self.connection.channel()
        for exchange in exchanges:
            maybe_declare(exchange, self.channel)
        self.channel.confirm_select()
        self.channel.events["basic_ack"].add(self._on_ack)
        self.channel.events["basic_nack"].add(self._on_nack)
        self.channel.events["basic_return"].add(self._on_return)
        self.tag = 0
        self.pending: set[int] = set()
        self.nacked = 0
        self.mandatory: dict[str, Outgoing] = {}  # this batch's mandatory messages by message id
        self.returned: list[Outgoing] = []

    def _on_return(self, exc, exchange, routing_key, message) -> None:
        # (the broker sends a mandatory message's return before its ack: it is here when send() ends)
        out = self.mandatory.get(_text_id((message.properties or {}).get("message_id")))
        if out is not None:
            self.returned.append(out)

    def _settle(self, tag: int, multiple: bool) -> int:
        done = {t for t in self.pending if t <= tag} if multiple else {tag} & self.pending
        self.pending -= done
        return len(done)

    def _on_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self._settle(delivery_tag, multiple)

    def _on_nack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.nacked += self._settle(delivery_tag, multiple)

    def send(self, messages: list[Outgoing], timeout: float) -> list[Outgoing]:
        """Publish `messages`, wait for every confirm; the mandatory ones no queue took, in order."""
        self.nacked = 0
        self.mandatory, self.returned = {}, []
        # the batch's frames are collected and written with one `sendall` (py-amqp writes each
        # message's frames with a system call of their own)
        transport = self.connection.connection.transport
        if transport is None:  # (py-amqp dropped it: the connection was closed)
            raise AMQPConnectionError("publishing connection closed")
        frames: list[bytes] = []
        sendall, transport._write = transport._write, lambda data: frames.append(bytes(data))
        try:
            for out in messages:
                self.tag += 1
                self.pending.add(self.tag)
                if out.mandatory:
                    message_id = f"zhifa-lane-{id(self)}-{self.tag}"
                    self.mandatory[message_id] = out
                    self.channel.basic_publish(out.message(message_id), exchange=out.exchange.name,
                                               routing_key=out.routing_key, mandatory=True)
                else:
                    self.channel.basic_publish(out.message(), exchange=out.exchange.name, routing_key=out.routing_key)
        finally:
            transport._write = sendall
        transport.write(b"".join(frames))
        deadline = time.monotonic() + timeout
        while self.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NotConfirmed(f"消息服务 {timeout} 秒内未确认 {len(self.pending)} 条消息")
            try:
                self.connection.drain_events(timeout=min(remaining, 1.0))
            except socket.timeout:
                continue
        if self.nacked:
            raise NotConfirmed(f"消息服务拒收（nack）{self.nacked} 条消息")
        returned, self.mandatory, self.returned = self.returned, {}, []
        return returned

    def close(self) -> None:
        try:
            self.connection.release()
        except Exception:  # already broken: nothing left to release cleanly
            pass


class ConfirmedPublisher:
    """`publish_all(messages)`: every message sent, then one wait until the broker confirmed them all."""

    use_confirms = True  # what the durability tests ask of every publisher
    delivery_mode = PERSISTENT

    def __init__(self, amqp_uri: str, exchanges: tuple[Exchange, ...] = (), timeout: float = 30.0):
        self.amqp_uri = amqp_uri
        self.exchanges = tuple(exchanges)
        self.timeout = float(timeout)
        self._free: list[_Lane] = []

    def publish_all(self, messages: list[Outgoing]) -> list[Outgoing]:
        """Send `messages` and wait for the broker's confirms; the `mandatory` ones no queue took."""
        if not messages:
            return []
        lane, reused = (self._free.pop(), True) if self._free else (_Lane(self.amqp_uri, self.exchanges), False)
        try:
            returned = lane.send(messages, self.timeout)
        except CONNECTION_LOST as exc:
            lane.close()
            if not reused:
                raise
            # a kept connection the broker closed meanwhile (a restart, an idle timeout): once more, fresh
            log.warning("publishing connection lost (%s: %s); sending the batch again on a new one",
                        type(exc).__name__, exc)
            lane = _Lane(self.amqp_uri, self.exchanges)
            try:
                returned = lane.send(messages, self.timeout)
            except BaseException:
                lane.close()
                raise
        except BaseException:
            lane.close()
            raise
        self._free.append(lane)
        return returned

    def close(self) -> None:
        while self._free:
            self._free.pop().close()
