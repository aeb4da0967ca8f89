"""Messaging: exchanges declared up front, retry with backoff, dead letters, event relay.

nameko acks and drops a message whose handler raised (or requeues it in a hot loop with
`requeue_on_error`). Our entrypoints instead republish a failed message to a per-queue delay
queue (`<queue>.retry.<ms>`, TTL + dead-letter back to the queue) and, when the configured
delays are used up — or at once for a poison message the handler can never accept — publish it
with its error to the `zhifa.dead_letters` exchange, which the gateway keeps for listing and
replay. The original is acked only after the republish is confirmed.
"""
from __future__ import annotations

import bz2
import errno
import hashlib
import hmac
import json
import logging
import lzma
import socket
import struct
import sys
import time
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property, partial

from amqp import connection as amqp_connection
from amqp import transport as amqp_transport
from amqp.exceptions import ConnectionError as AMQPConnectionError
from kombu import Exchange, Queue
from kombu import compression as kombu_compression
from kombu.common import maybe_declare
from nameko.amqp.publish import Publisher as AmqpPublisher, get_connection
from nameko.events import EventHandler
from nameko.messaging import Consumer

from services.kernel import bundles, config
from services.kernel.confirms import json_bytes

log = logging.getLogger("zhifa.messaging")

INGRESS_EXCHANGE = Exchange("ingress", type="topic", durable=True)
REJECTIONS_EXCHANGE = Exchange("ingress.rejections", type="topic", durable=True)
DEAD_LETTER_EXCHANGE = Exchange("zhifa.dead_letters", type="topic", durable=True)
DEAD_LETTER_QUEUE = Queue("zhifa.dead_letters", exchange=DEAD_LETTER_EXCHANGE, routing_key="#", durable=True)
ATTEMPTS_HEADER = "x-zhifa-attempts"
# A retry keeps where the message first came from (a delay queue would otherwise give it the
# queue's name as routing key and the suite's user): these headers carry it, signed.
ROUTING_KEY_HEADER = "x-zhifa-routing-key"
USER_HEADER = "x-zhifa-user-id"
SIGNATURE_HEADER = "x-zhifa-signature"
INTERNAL_PREFIX = "x-zhifa-"


class PoisonMessage(Exception):
    """A message no retry can fix (invalid payload, refused fact): dead-letter it at once.

    `violations` (field, rule, message) are what the publisher's `refused` notice carries; without
    them they come from the DomainError the PoisonMessage was raised from (`raise … from exc`).
    """

    def __init__(self, message: str = "", violations: list[dict] | None = None):
        super().__init__(message)
        self.violations = violations


def event_exchange(service: str) -> Exchange:
    return Exchange(f"{service}.events", type="topic", durable=True, auto_delete=False)


def declare_topology(amqp_uri: str | None = None) -> None:
    """Declare every exchange the suite uses, so no publisher races a missing exchange.

    Event exchanges `<name>.events` come from the declared services (services/kernel/manifest.py).
    """
    from services.kernel.manifest import names

    with get_connection(amqp_uri or config.get("AMQP_URI")) as conn:
        channel = conn.channel()
        for ex in (INGRESS_EXCHANGE, REJECTIONS_EXCHANGE, DEAD_LETTER_EXCHANGE, *map(event_exchange, names())):
            maybe_declare(ex, channel)
        maybe_declare(DEAD_LETTER_QUEUE, channel)
        channel.close()


def _delays() -> list[int]:
    return config.checked("RETRY_DELAYS_MS")


def is_outage(exc: BaseException) -> bool:
    """A failure of the database connection itself (pymongo's ConnectionFailure: server selection
    timeout, lost connection), as opposed to anything the message or the handler did."""
    try:
        from pymongo.errors import ConnectionFailure
    except ImportError:  # pragma: no cover - pymongo is a dependency of every service
        return False
    return isinstance(exc, ConnectionFailure)


def _text(value) -> str:
    """A header or property as text, whatever type a publisher put there."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else ""


def _internal_key() -> bytes:
    """The key that signs the suite's retry headers: INTERNAL_KEY, else derived from AMQP_URI.

    The derived key is as secret as the suite's broker password (departments have their own
    users); production sets INTERNAL_KEY explicitly (docs/integration.md, production checklist).
    """
    secret = _text(config.get("INTERNAL_KEY")) or f"zhifa-internal-v1:{config.get('AMQP_URI')}"
    return hashlib.sha256(secret.encode("utf-8")).digest()


def _body_bytes(body) -> bytes:
    if isinstance(body, bytes):
        return body
    return str(body if body is not None else "").encode("utf-8", errors="surrogatepass")


def sign_retry(queue: str, attempts: int, routing_key: str, user_id: str, body) -> str:
    text = json.dumps([queue, attempts, routing_key, user_id, hashlib.sha256(_body_bytes(body)).hexdigest()])
    return hmac.new(_internal_key(), text.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Delivery:
    """Where a message came from: the broker's routing key and `user_id`, or — only for one of
    the suite's own retries, whose headers carry a valid signature — the original ones.

    Anything a publisher puts in `x-zhifa-*` headers is ignored: a forged attempt count neither
    shortens the retries nor skips the duplicate check, and a malformed one cannot crash a consumer.
    """

    routing_key: str
    user_id: str
    attempts: int = 0
    retried: bool = False


def delivery_of(message, queue: str) -> Delivery:
    headers = message.headers if isinstance(message.headers, dict) else {}
    info = message.delivery_info if isinstance(message.delivery_info, dict) else {}
    props = message.properties if isinstance(message.properties, dict) else {}
    broker = Delivery(_text(info.get("routing_key")), _text(props.get("user_id")))
    signature = _text(headers.get(SIGNATURE_HEADER))
    attempts = headers.get(ATTEMPTS_HEADER)
    if not signature or type(attempts) is not int or not 0 <= attempts < 1000:
        return broker
    routing_key, user_id = _text(headers.get(ROUTING_KEY_HEADER)), _text(headers.get(USER_HEADER))
    expected = sign_retry(queue, attempts, routing_key, user_id, message.body)
    if not hmac.compare_digest(expected, signature):
        log.warning("ignoring unsigned or forged %s headers", INTERNAL_PREFIX, extra={"queue": queue})
        return broker
    return Delivery(routing_key, user_id, attempts, True)


def origin_headers(queue: str, attempts: int, routing_key: str, user_id: str, body) -> dict:
    """The signed headers that make a message re-enter `queue` as coming from `routing_key` / `user_id`."""
    return {ATTEMPTS_HEADER: attempts, ROUTING_KEY_HEADER: routing_key, USER_HEADER: user_id,
            SIGNATURE_HEADER: sign_retry(queue, attempts, routing_key, user_id, body)}


def resent_headers(headers, queue: str, attempts: int, routing_key: str, user_id: str, body) -> dict:
    """The headers of a message sent again into `queue` (a retry, a replay, a bundle's event alone): its
    own headers worth keeping (`foreign_headers`) and the signed origin (`origin_headers`)."""
    kept = foreign_headers(headers)
    kept.update(origin_headers(queue, attempts, routing_key, user_id, body))
    return kept


def replay_headers(queue: str, stored_headers: dict | None, body) -> dict:
    """Headers for an operator's replay of a dead letter into `queue`: the publisher's own headers,
    attempts back to 0 and, signed again, the routing key and user the message first came with
    (an ingress replay must not arrive as `gateway.ingress` from the suite's user)."""
    stored = stored_headers if isinstance(stored_headers, dict) else {}
    return resent_headers(stored, queue, 0, _text(stored.get(ROUTING_KEY_HEADER)), _text(stored.get(USER_HEADER)), body)


def foreign_headers(headers) -> dict:
    """A publisher's own headers worth keeping on a retry or dead letter (plain values; no
    `x-zhifa-*`, no `compression`: the body we pass on is already unpacked)."""
    if not isinstance(headers, dict):
        return {}
    return {k: v for k, v in headers.items()
            if isinstance(k, str) and not k.startswith(INTERNAL_PREFIX) and k != "compression"
            and isinstance(v, (str, int, float, bool))}


class DecompressedTooLarge(ValueError):
    """A compressed message unpacks beyond the limit (a decompression bomb)."""


_UNBOUNDED_DECODERS: dict[str, object] = {}


def bound_decompression(max_bytes: int) -> None:
    """Make kombu unpack `compression`-headed messages only up to `max_bytes` (process-wide).

    kombu unpacks a message before any entrypoint sees it; its stock decoders have no limit, so
    a few kilobytes of zeros could unpack to gigabytes. zlib/gzip, bzip2 and lzma are bounded
    here; any other compression kombu knows (brotli, zstd) is refused.
    """
    limit = int(max_bytes)

    def bounded(make):
        def decode(body):
            engine = make()
            out = engine.decompress(_body_bytes(body), limit + 1)
            if len(out) > limit or getattr(engine, "unconsumed_tail", b""):
                raise DecompressedTooLarge(f"unpacks beyond {limit} bytes")
            return out
        return decode

    def refused(body):
        raise DecompressedTooLarge("compression not accepted")

    known = {"application/x-gzip": bounded(lambda: zlib.decompressobj(zlib.MAX_WBITS | 32)),
             "application/x-bz2": bounded(bz2.BZ2Decompressor),
             "application/x-lzma": bounded(lzma.LZMADecompressor)}
    for content_type in list(kombu_compression._decoders):
        _UNBOUNDED_DECODERS.setdefault(content_type, kombu_compression._decoders[content_type])
        kombu_compression._decoders[content_type] = known.get(content_type, refused)


CONNECTION_LOST = (OSError, AMQPConnectionError)

# py-amqp reads a frame as three exact reads (its 7-byte header, its payload, its end octet), each a
# `recv` of just those bytes: a delivered message (method, header and body frames) cost nine system
# calls. Reading what the socket has, up to READ_AHEAD bytes, serves the next frames from the buffer.
READ_AHEAD = 16384


def _read_ahead(self, n, initial=False, _errnos=(errno.EAGAIN, errno.EINTR)):
    """`amqp.transport.TCPTransport._read` (exactly `n` bytes), receiving up to READ_AHEAD at a time;
    what was received beyond `n` stays in `_read_buffer` for the next read, as py-amqp's own reads
    keep a partial frame there (its timeout paths put a partly read frame back in front of it)."""
    rbuf = self._read_buffer
    if type(rbuf) is not bytearray:  # (py-amqp sets bytes: at connect, and on a timeout's put-back)
        rbuf = self._read_buffer = bytearray(rbuf)
    if len(rbuf) < n:
        recv = self._quick_recv
        while len(rbuf) < n:
            try:
                s = recv(max(n - len(rbuf), READ_AHEAD))
            except OSError as exc:
                if exc.errno in _errnos:
                    if initial and self.raise_on_initial_eintr:
                        raise socket.timeout()
                    continue
                raise
            if not s:
                raise OSError("Server unexpectedly closed connection")
            rbuf += s
    result = bytes(rbuf[:n])
    del rbuf[:n]  # (a bytearray drops its head without moving the rest)
    return result


amqp_transport.TCPTransport._read = _read_ahead

_FRAME_HEAD = struct.Struct(">BHI")  # type, channel, payload size (the 7 octets before the payload)
_FRAME_END = 206  # the octet after the payload


def _buffered_frame(transport) -> tuple | None:
    """The next frame, (type, channel, payload) as `read_frame` gives it, when the read-ahead buffer
    holds all of it; None when it does not (or its end octet is wrong: py-amqp's own read says so)."""
    rbuf = transport._read_buffer
    if type(rbuf) is not bytearray or len(rbuf) < 8:
        return None
    frame_type, channel, size = _FRAME_HEAD.unpack_from(rbuf)
    end = 7 + size
    if len(rbuf) <= end or rbuf[end] != _FRAME_END:
        return None
    payload = bytes(rbuf[7:end])
    del rbuf[:end + 1]
    return frame_type, channel, payload


def _blocking_read(self, timeout=None):
    """`amqp.Connection.blocking_read`: a frame the read-ahead buffer holds whole (most frames of a
    backlog: READ_AHEAD) is taken from it directly. py-amqp sets the socket's timeout and sets it
    back around every frame it reads (two `settimeout` calls and a generator context per frame, even
    when no byte comes from the socket): ≈ 5% of a consuming process's CPU under `make bench`."""
    frame = _buffered_frame(self.transport)
    if frame is None:
        with self.transport.having_timeout(timeout):
            frame = self.transport.read_frame()
    return self.on_inbound_frame(frame)


amqp_connection.Connection.blocking_read = _blocking_read


def settle_message(settle, message) -> None:
    """Ack or requeue `message` (`settle` is the consumer's `ack_message` / `requeue_message`).

    When the broker connection went away while the worker ran (RabbitMQ restarted), nothing is
    lost: the broker redelivers every message it did not see acknowledged. nameko's own guard only
    catches amqp's ConnectionError, so a reset socket (ConnectionResetError, BrokenPipeError) would
    otherwise end the worker's thread and with it the whole service container.
    """
    try:
        settle(message)
    except CONNECTION_LOST as exc:
        log.warning("broker connection lost before the message was settled; the broker redelivers it: %s: %s",
                    type(exc).__name__, exc)


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
            return settle_message(self.consumer.ack_message, message)
        try:
            self._reroute_failure(message, exc_info)
        except Exception:  # broker trouble: leave it to the broker to redeliver
            log.exception("could not reroute failed message; requeueing")
            return settle_message(self.consumer.requeue_message, message)
        settle_message(self.consumer.ack_message, message)

    def _reroute_failure(self, message, exc_info) -> None:
        queue = self._queue_name()
        origin = delivery_of(message, queue)
        delays = _delays()
        exc = exc_info[1]
        poison = isinstance(exc, PoisonMessage)
        # the database is unreachable: not the message's fault, so the attempt is not counted and the
        # message waits at the longest delay until the database is back (an outage dead-letters nothing)
        outage = not poison and bool(delays) and is_outage(exc)
        attempts = min(origin.attempts, len(delays) - 1) if outage else origin.attempts + 1
        dead_id = str(uuid.uuid4())
        headers = resent_headers(message.headers, queue, attempts, origin.routing_key, origin.user_id, message.body)
        if outage or (not poison and attempts <= len(delays)):
            delay = delays[-1] if outage else delays[attempts - 1]
            retry_q = Queue(
                f"{queue}.retry.{delay}", durable=True,
                queue_arguments={"x-message-ttl": delay, "x-dead-letter-exchange": "",
                                 "x-dead-letter-routing-key": queue},
            )
            log.warning("%s, retry %s in %sms: %s: %s",
                        "database unavailable (attempt not counted)" if outage else "handler failed",
                        attempts, delay, type(exc).__name__, exc, extra={"queue": queue, "attempt": attempts})
            self._publisher().publish(_body_bytes(message.body), exchange="", routing_key=retry_q.name,
                                      declare=[retry_q], headers=headers,
                                      content_type=message.content_type,
                                      content_encoding=message.content_encoding, serializer=None)
            return
        # error text, exception names and tracebacks go to the log only; the dead letter says
        # what an operator or publisher may read: the domain's refusal, or where to look
        violations = refusal_violations(exc) if poison else []
        summary = ("; ".join(f"{v['rule']}: {v['message']}" for v in violations) if poison
                   else f"处理失败，已尝试 {attempts} 次；详见服务日志（dead_id={dead_id}）")
        headers.update({
            "x-zhifa-queue": queue,
            "x-zhifa-service": self.container.service_name,
            "x-zhifa-entrypoint": self.method_name,
            "x-zhifa-error": summary[:1000],
            "x-zhifa-kind": "refused" if poison else "failed",
            "x-zhifa-violations": json.dumps(violations, ensure_ascii=False)[:8000],
            "x-zhifa-dead-at": datetime.now(timezone.utc).isoformat(),
            "x-zhifa-dead-id": dead_id,
        })
        envelope = _envelope_of(message.body)
        if envelope is not None:
            headers.update({"x-zhifa-event-id": envelope["event_id"], "x-zhifa-dept": envelope["dept"]})
        log.error("dead-lettering message from %s after %s attempts (dead_id=%s)", queue, attempts, dead_id,
                  exc_info=exc_info, extra={"queue": queue})
        if poison and envelope is not None:
            self._notify_publisher(envelope, violations, dead_id)
        self._publisher().publish(_body_bytes(message.body), exchange=DEAD_LETTER_EXCHANGE,
                                  routing_key=f"{self.container.service_name}.{self.method_name}",
                                  declare=[DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE], headers=headers,
                                  content_type=message.content_type,
                                  content_encoding=message.content_encoding, serializer=None)

    def _notify_publisher(self, envelope: dict, violations: list[dict], dead_id: str) -> None:
        """A department's fact the domain refused: tell its publisher on `ingress.rejections`
        (schema `RefusedNotice` in contracts/asyncapi.py)."""
        notice = refused_notice(envelope, violations, dead_id, self.container.service_name)
        from services.kernel.metrics import INGRESS_REFUSED, bounded

        rule = violations[0].get("rule") if violations and isinstance(violations[0], dict) else None
        INGRESS_REFUSED.labels(self.container.service_name, bounded("dept", envelope.get("dept")),
                               bounded("event_type", envelope.get("type")), bounded("reason", rule)).inc()
        self._publisher().publish(json.dumps(notice, ensure_ascii=False).encode(), exchange=REJECTIONS_EXCHANGE,
                                  routing_key=envelope["dept"], declare=[REJECTIONS_EXCHANGE], serializer=None,
                                  content_type="application/json", content_encoding="utf-8")


def _envelope_of(body) -> dict | None:
    """The ingress envelope a message carries, if it is one (dept and event_id as short text)."""
    try:
        envelope = json.loads(body)
    except (ValueError, TypeError, RecursionError):
        return None
    if not isinstance(envelope, dict):
        return None
    dept, event_id = envelope.get("dept"), envelope.get("event_id")
    if not (isinstance(dept, str) and isinstance(event_id, str) and 0 < len(dept) <= 64 and 0 < len(event_id) <= 64):
        return None
    return envelope


def refusal_violations(exc: BaseException) -> list[dict]:
    """A PoisonMessage's reasons as violations (field, rule, message), like a contract rejection's.

    Taken from the PoisonMessage's own `violations`, else from the DomainError it was raised from
    (code -> rule), else its message under rule `domain_refused`.
    """
    found = getattr(exc, "violations", None)
    cause = exc.__cause__
    if not found and cause is not None and hasattr(cause, "code"):
        found = cause.violations() if callable(getattr(cause, "violations", None)) else [
            {"field": getattr(cause, "field", None), "rule": cause.code, "message": str(cause)}]
    if not found:
        found = [{"field": "payload", "rule": "domain_refused", "message": str(exc)}]
    return [{"field": str(v.get("field") or "payload")[:200], "rule": str(v.get("rule") or "domain_refused")[:64],
             "message": str(v.get("message") or "")[:1000]} for v in found if isinstance(v, dict)]


def refused_notice(envelope: dict, violations: list[dict], dead_id: str, service: str) -> dict:
    return {"event_id": envelope["event_id"], "status": "refused", "reason": "domain_refused",
            "violations": violations, "dead_letter_id": dead_id, "service": service,
            "dept": envelope["dept"], "type": envelope.get("type") if isinstance(envelope.get("type"), str) else None,
            "rejected_at": datetime.now(timezone.utc).isoformat()}


class BundlePart:
    """One envelope of a bundle (services/kernel/bundles.py) as the message it would have been alone:
    what the retry / dead-letter path and a batch's trace read of a message (body, headers, routing
    key, user, content type). `bundle` keeps the bundle's acknowledgement in step."""

    content_type = "application/json"
    content_encoding = "utf-8"

    def __init__(self, bundle: "_OpenBundle", traceparent: str | None, envelope: dict):
        self.bundle = bundle
        self.envelope = envelope
        self.headers = dict(bundle.headers)
        if traceparent is not None:
            self.headers[_TRACE_HEADER] = traceparent
        self.delivery_info = {"routing_key": envelope.get("type") if isinstance(envelope.get("type"), str) else "",
                              "exchange": bundle.message.delivery_info.get("exchange", "")}
        self.properties = {"user_id": bundle.user_id}
        self.channel = bundle.message.channel
        self.delivery_tag = None

    @cached_property
    def body(self) -> bytes:  # (encoded only when it is sent alone: a retry, a dead letter, a republish)
        return json_bytes(self.envelope)


_TRACE_HEADER = "nameko.traceparent"  # (tracing.TRACEPARENT as nameko's context header)


class _OpenBundle:
    """A bundle message whose parts are being worked on: it is settled once every part is."""

    def __init__(self, message, count: int):
        self.message = message
        self.headers = {k: v for k, v in (message.headers or {}).items()
                        if isinstance(k, str) and not k.startswith(INTERNAL_PREFIX)}
        self.user_id = _text((message.properties or {}).get("user_id"))
        self.open = count
        self.requeue = False  # a part's reroute failed: the whole bundle comes again (consumers de-duplicate)


def _bundle_parts(body, message, queue: str):
    """The parts of a message that arrived on a bundle key, or None when it is a plain message."""
    origin = delivery_of(message, queue)
    if not bundles.is_bundle_key(origin.routing_key):
        return None
    return bundles.parts(body)


def retire_queues(amqp_uri: str, exchange: str, queues: dict[str, tuple[str, ...]]) -> list[tuple[str, int]]:
    """[(name, messages ready)] of those of `queues` (name -> the routing keys it was bound to on `exchange`)
    that exist and hold messages or have a consumer (an earlier version's process), each unbound from those
    keys; one that is empty and unused once unbound is deleted instead. Passive declares; [] when the broker
    cannot be asked (the consumer's own connection then reports it)."""
    from amqp.exceptions import ChannelError, NotFound
    from kombu import Connection

    found: list[tuple[str, int]] = []
    if not queues:
        return found
    try:
        with Connection(amqp_uri, connect_timeout=5) as conn:
            for name, keys in queues.items():
                channel = conn.channel()
                try:
                    channel.queue_declare(name, passive=True)
                except NotFound:  # (the broker closed that channel)
                    continue
                for key in keys:
                    channel.queue_unbind(name, exchange, routing_key=key)
                _, messages, _ = channel.queue_declare(name, passive=True)  # (unbound: nothing more comes)
                if messages == 0:
                    try:
                        channel.queue_delete(name, if_unused=True, if_empty=True)
                        channel.close()
                        continue
                    except ChannelError:  # (a consumer, or a message just routed: the broker closed the channel)
                        channel = conn.channel()
                        messages = channel.queue_declare(name, passive=True)[1]
                        channel.close()
                else:
                    channel.close()
                found.append((name, messages))
    except Exception:  # noqa: BLE001
        log.warning("retired queues not looked for", exc_info=True)
    return found


class ReliableEventHandler(RetryOrDeadLetter, EventHandler):
    """`@event_handler` that retries with backoff and dead-letters instead of dropping. Its queue is
    bound to its bundle key as well (services/kernel/bundles.py); a bundle's envelopes are republished
    to the queue one by one (each with its own trace and signed origin: the event type, the bundle's
    user) and the bundle is acked after the broker confirmed them."""

    def __init__(self, source_service, event_type, *, also: tuple[str, ...] = (), **kwargs):
        super().__init__(source_service, event_type, **kwargs)
        self.also = tuple(also)  # more patterns the queue is bound to (one handler for them all)

    @property
    def patterns(self) -> tuple[str, ...]:
        """Every pattern the handler's queue is bound to: its event type first, then `also`."""
        return (self.event_type, *self.also)

    def setup(self):
        super().setup()
        from kombu import binding

        # (kombu binds a queue that has `bindings` by those alone: the event type's binding is one of them)
        queue, exchange = self.queue, self.queue.exchange
        key = bundles.bundle_key(self.source_service, self.container.service_name, self.event_type)
        self.queue = Queue(queue.name, bindings=[*(binding(exchange, routing_key=p) for p in self.patterns),
                                                 binding(exchange, routing_key=key)],
                           durable=queue.durable, auto_delete=queue.auto_delete, exclusive=queue.exclusive)
        self.consumer.queues = [self.queue if q is queue else q for q in self.consumer.queues]
        self.consumer.queues += self._partition_queues(exchange, key)
        self.consumer.queues += [Queue(name, no_declare=True) for name in self._retired_queues(exchange)]

    def _retired_queues(self, exchange) -> list[str]:
        """The queues an earlier declaration gave this handler's other patterns (`also`) a handler of their
        own for, where they exist: unbound (no new event goes to them) and consumed by this handler until
        what they held is applied (the facts are idempotent); deleted at a start that finds one empty and
        unused. An upgrade loses nothing and leaves no queue filling that no one reads. (A partitioned
        handler's earlier partition queues are not looked for: no partitioned service declares `also`.)"""
        from services.kernel.manifest import handler_name

        service = self.container.service_name
        old = {f"evt-{self.source_service}-{p}--{service}.{handler_name(p)}":
               (p, bundles.bundle_key(self.source_service, service, p)) for p in self.also}
        found = retire_queues(config.get("AMQP_URI"), exchange.name, old)
        for name, messages in found:
            log.warning("%s: consuming %s (%s messages), the queue an earlier declaration gave %s alone; "
                        "unbound, and deleted at a start that finds it empty", service, name, messages, old[name][0])
        return [name for name, _ in found]

    def _partition_queues(self, exchange, key: str) -> list[Queue]:
        """The queues of the partitions this process owns (services/kernel/partitions.py): for a handler
        of the facts a partitioned service gets relayed from the gateway, each bound to its partition's
        bundle key; [] otherwise."""
        from services.kernel import partitions
        from services.kernel.manifest import manifest

        source = manifest(self.source_service)
        if source is None or not source.relays_ingress:
            return []
        declared = manifest(self.container.service_name)
        owned = partitions.owned(self.container.service_name)
        own = [Queue(partitions.queue_name(self.queue.name, i), exchange=exchange,
                     routing_key=partitions.routing_key(key, i), durable=True) for i in owned]
        if declared is None or not declared.partition_key or (owned and 0 not in owned):
            return own
        # the first partition's process (or the only process) also takes what a higher count left behind:
        # PARTITIONS lowered while the dropped partitions' queues still held facts
        n = partitions.count_for(declared)
        left = partitions.left_behind(config.get("AMQP_URI"), self.queue.name, n if n > 1 else 0)
        for name, messages in left:
            log.warning("%s: consuming %s, a partition queue beyond PARTITIONS=%s (%s messages in it)",
                        self.container.service_name, name, n, messages)
        return own + [Queue(name, no_declare=True) for name, _ in left]

    def handle_message(self, body, message):
        try:
            found = _bundle_parts(body, message, self._queue_name())
        except bundles.MalformedBundle as exc:
            return self._refuse_bundle(message, exc)
        if found is None:
            return super().handle_message(body, message)
        self._off_the_consumer("explode", partial(self._explode, found, message))

    def _off_the_consumer(self, what: str, fn) -> None:
        """Run `fn` (it publishes and waits for confirms) in a thread of its own, not the consumer's."""
        self.container.spawn_managed_thread(fn, identifier=f"{type(self).__name__}.{what}[{self.method_name}]")

    def _refuse_bundle(self, message, exc: Exception, then=None) -> None:
        """Dead-letter a malformed bundle (a poison message: no retry can fix it), then `then()`."""
        try:
            raise PoisonMessage(str(exc)) from exc
        except PoisonMessage:
            exc_info = sys.exc_info()

        def refuse():
            self.handle_message_processed(message, None, exc_info)
            if then is not None:
                then()

        self._off_the_consumer("refuse_bundle", refuse)

    def _explode(self, found: list, message) -> None:
        queue = self._queue_name()
        bundle = _OpenBundle(message, len(found))
        try:
            for traceparent, envelope in found:
                part = BundlePart(bundle, traceparent, envelope)
                data = part.body
                headers = resent_headers(part.headers, queue, 0, part.delivery_info["routing_key"], bundle.user_id, data)
                self._publisher().publish(data, exchange="", routing_key=queue, headers=headers,
                                          content_type=part.content_type, content_encoding=part.content_encoding,
                                          serializer=None)
        except Exception:  # broker trouble: the bundle comes again (what was republished is de-duplicated)
            log.exception("could not republish a bundle's events one by one; requeueing it")
            return settle_message(self.consumer.requeue_message, message)
        settle_message(self.consumer.ack_message, message)


def batch_settings() -> tuple[int, float, int]:
    """(BATCH_MAX messages, BATCH_WAIT_MS as seconds, BATCH_WORKERS): how many messages one batch
    worker takes at most, how long the first message of a batch waits for more when no batch is
    being worked on, and how many batch workers one entrypoint runs at once. BATCH_MAX 1 = no batching."""
    return config.checked("BATCH_MAX"), config.checked("BATCH_WAIT_MS") / 1000, config.checked("BATCH_WORKERS")


class Batch(list):
    """The items a batch worker gets (a list), with the trace ids of its messages (`trace_ids`, each
    once, in order): the worker continues its first message's trace, and its access line names them all."""
    trace_ids: list = []


def batch_trace_ids(messages: list) -> list:
    """The distinct trace ids of `messages`' `traceparent` headers (sent as nameko context data), in order."""
    from services.kernel import tracing

    seen: dict = {}
    for message in messages:
        trace_id = tracing.parse((message.headers or {}).get("nameko." + tracing.TRACEPARENT))
        if trace_id is not None:
            seen[trace_id] = None
    return list(seen)


class BatchCollector:
    """What a batching entrypoint shares (BatchEventHandler here, the gateway's IngressConsumer):
    messages are collected while its BATCH_WORKERS workers are busy (so a backlog makes full
    batches) and for at most BATCH_WAIT_MS when one is free (so a lone message waits only that long);
    then one worker gets the batch's items as a list and returns one outcome per item, which settles
    its message (`handle_message_processed`: ack, or the retry / dead-letter path). Nothing is acked
    before the worker returned, i.e. after its writes.

    A worker beside a running one starts only for a backlog: BATCH_BACKLOG_SHARE of a full batch
    waiting, or the running batch having taken BATCH_BACKLOG_WAIT_MS. Until then the next batch waits
    for the running one and grows meanwhile. Without the
    rule an even rate (events arriving a few at a time) kept both workers busy with small batches,
    each paying a batch's commands (the case list's one per partition, the outbox marker, the
    projections' reads) for a few events: the same work in more, smaller pieces, so the suite ran
    the machine full at rates a burst passes easily. A burst still runs both workers (the prefetch
    holds several full batches). 0 restores the earlier rule (any free worker takes what waits)."""

    def setup_batches(self, batch_max: int, *, raise_prefetch: bool = True, per_message: int = 1) -> None:
        """`per_message`: how many items one message may carry (a bundle's events); the prefetch, in
        messages, is divided by it, so about (BATCH_WORKERS + 1) × BATCH_MAX items wait unacked."""
        _, self.batch_wait, self.batch_workers = batch_settings()
        self.batch_max = batch_max
        self.batch_backlog = config.checked("BATCH_BACKLOG_SHARE") * batch_max
        self.batch_backlog_wait = config.checked("BATCH_BACKLOG_WAIT_MS") / 1000
        self._running_since = 0.0  # when the batch being worked on (the first of those) was handed over
        if raise_prefetch:  # the broker must hand over the batches being worked on and the next one
            prefetch = config.checked("PREFETCH_COUNT")
            wanted = -(-(self.batch_workers + 1) * self.batch_max // max(1, per_message))
            self.consumer_options.setdefault("prefetch_count", max(prefetch, wanted))
        self._buffer: list = []
        # when each flush timer pending fires (time.monotonic). A message arriving while no batch runs wants one
        # within BATCH_WAIT_MS, whatever else is pending: until 2026-12-05 one flag said only whether some
        # timer was, and a message arriving after the running batch had finished waited for the timer that
        # batch had set for BATCH_BACKLOG_WAIT_MS, up to 500 ms with every worker free (at 50 events/s offered
        # p95 392 → 41 ms, at 150/s p50 226 → 38 ms; docs/benchmark.md, thirty-seventh session)
        self._flush_dues: list[float] = []
        self._inflight = 0
        self._stopping = False
        self._acks: dict = {}  # channel -> _ChannelAcks: what was collected there, what waits for an ack
        from services.kernel.metrics import BATCH_MESSAGES

        self._batch_sizes = BATCH_MESSAGES.labels(self.container.service_name, self.method_name)

    def batch_context(self, messages: list) -> dict:
        """The context data of a batch's worker (none by default)."""
        return {}

    def stop_batches(self) -> None:
        """Hand no further batch to a worker. A stopping container waits for the workers running, then
        stops the database clients; a batch handed over after that (a BATCH_WAIT_MS timer firing, a
        finished batch handing on what waits) ran on closed clients and sent each of its messages the
        retry way (145 `Cannot use MongoClient after close` at one bench's stop). What waits stays unacked:
        the broker hands it out again when the connection closes."""
        self._stopping = True

    def stop(self):
        self.stop_batches()
        super().stop()

    def _label(self, what: str) -> str:
        return f"{type(self).__name__}.{what}[{self.container.service_name}.{self.method_name}]"

    def collect(self, item, message) -> None:
        """Add one message (and what the worker gets of it) to the next batch. A bundle's part is
        registered through its bundle (`_register`, once per bundle)."""
        if not isinstance(message, BundlePart):
            self._register(message)
        self._buffer.append((item, message))
        waiting = len(self._buffer)
        if waiting >= self.batch_max or (self._inflight and self.batch_backlog and waiting >= self.batch_backlog):
            self._flush()  # a full batch, or a backlog beside a running one
        elif not self._inflight or not self._flush_dues:
            # (beside a running batch a pending timer will do: the message waits for that batch anyway, and
            # the batch hands on what waits when it finishes)
            self._flush_within(self.batch_wait)

    def _flush_within(self, wait: float) -> None:
        """Make sure `_flush` runs within `wait` seconds: a timer, unless one pending fires by then."""
        due = time.monotonic() + wait
        if any(pending <= due + 1e-6 for pending in self._flush_dues):
            return
        self._flush_dues.append(due)
        self.container.spawn_managed_thread(partial(self._flush_later, wait, due), identifier=self._label("flush"))

    def _register(self, message) -> None:
        self._acks.setdefault(message.channel, _ChannelAcks()).collected.add(message.delivery_tag)

    def _flush_later(self, wait: float, due: float):
        import eventlet

        try:
            eventlet.sleep(wait)
        finally:  # (also when the timer is killed: a due left behind would stand for a timer that never fires)
            if due in self._flush_dues:
                self._flush_dues.remove(due)
        self._flush()

    def _flush(self):
        """Hand the next batch to a worker, unless BATCH_WORKERS are busy (the last one to finish does) or
        a batch is being worked on and what waits is no backlog (below BATCH_BACKLOG_SHARE of a full
        batch: the running one hands it over when it finishes, a bigger batch by then) — for at most
        BATCH_BACKLOG_WAIT_MS of that batch's work (one held up by a lease or a slow database does not
        hold up what arrives behind it longer)."""
        if not self._buffer or self._inflight >= self.batch_workers or self._stopping:
            return
        if self._inflight and len(self._buffer) < self.batch_backlog:
            left = self._running_since + self.batch_backlog_wait - time.monotonic()
            if left > 0:
                self._flush_within(left)  # (looked at again then, if the running batch does not hand it over before)
                return
        batch, self._buffer = self._buffer[:self.batch_max], self._buffer[self.batch_max:]
        if not self._inflight:
            self._running_since = time.monotonic()
        self._inflight += 1
        from nameko.exceptions import ContainerBeingKilled

        self._batch_sizes.observe(len(batch))
        messages = [message for _, message in batch]
        items = Batch(item for item, _ in batch)
        items.trace_ids = batch_trace_ids(messages)
        context_data = self.batch_context(messages)
        handle_result = partial(self.handle_batch_result, messages)

        def spawn_worker():
            try:
                self.container.spawn_worker(self, (items,), {}, context_data=context_data,
                                            handle_result=handle_result)
            except ContainerBeingKilled:
                self._inflight -= 1
                for message in messages:
                    if isinstance(message, BundlePart):
                        message.bundle.requeue = True
                        self._part_closed(message)
                        continue
                    self._settled_alone(message)
                    settle_message(self.consumer.requeue_message, message)
                self._ack_ready()

        self.container.spawn_managed_thread(spawn_worker, identifier=self._label("wait_for_worker_pool"))

    def handle_batch_result(self, messages, worker_ctx, result=None, exc_info=None):
        try:
            outcomes = batch_outcomes(len(messages), result, exc_info)
            for message, outcome in zip(messages, outcomes):
                if isinstance(message, BundlePart):
                    self._part_settled(message, outcome)
                elif outcome is None:  # applied: acked with the channel's other applied deliveries
                    self._acks[message.channel].done[message.delivery_tag] = message
                else:  # the retry / dead-letter path settles it alone
                    self._settled_alone(message)
                    self.handle_message_processed(message, None, outcome)
            self._ack_ready()
        finally:
            self._inflight -= 1
            self._flush()  # what arrived meanwhile (a backlog: a full batch)
        return result, exc_info

    def _part_settled(self, part: "BundlePart", outcome) -> None:
        """A bundle's part applied (outcome None) or failed: a failed one goes the retry / dead-letter
        way alone, as a message of its own would; the bundle is acked when its last part is settled."""
        if outcome is not None:
            try:
                self._reroute_failure(part, outcome)
            except Exception:  # broker trouble: the whole bundle comes again (consumers de-duplicate)
                log.exception("could not reroute a failed event of a bundle; requeueing the bundle")
                part.bundle.requeue = True
        self._part_closed(part)

    def _part_closed(self, part: "BundlePart") -> None:
        bundle = part.bundle
        bundle.open -= 1
        if bundle.open:
            return
        message = bundle.message
        if bundle.requeue:
            self._settled_alone(message)
            settle_message(self.consumer.requeue_message, message)
        else:
            self._acks[message.channel].done[message.delivery_tag] = message

    def _settled_alone(self, message) -> None:
        acks = self._acks.get(message.channel)
        if acks is not None:
            acks.alone.add(message.delivery_tag)

    def _ack_ready(self) -> None:
        """Ack the applied deliveries no earlier delivery of their channel is still open before
        (another batch being worked on): with one `basic.ack` (multiple) up to the last of them, which
        the broker applies to every unacked delivery of the channel up to its tag. Sent only when
        every delivery of the channel since the previous such ack was collected here (delivery tags
        count 1, 2, 3, … per channel); after a gap (a delivery that never reached `collect`) that
        channel's deliveries are acked one by one. Applied deliveries behind an open one wait for it
        (at most the time of one batch; after a crash they are redelivered, and consumers
        de-duplicate)."""
        for channel, acks in list(self._acks.items()):
            covered = []  # the channel's settled deliveries before its first open one
            for tag in sorted(acks.collected):
                if tag not in acks.done and tag not in acks.alone:
                    break
                covered.append(tag)
            if not covered:
                continue
            through = [acks.done.pop(t) for t in covered if t in acks.done]
            acks.collected.difference_update(covered)
            acks.alone.difference_update(covered)
            if not acks.gap and covered[-1] - acks.floor == len(covered):  # (no delivery in between missing)
                acks.floor = covered[-1]
                if through:
                    settle_message(_ack_through, through[-1])
            else:
                acks.gap = True
                for message in through:
                    self.handle_message_processed(message, None, None)
            if not acks.collected and not channel.connection:  # (a closed channel: tags start again on a new one)
                del self._acks[channel]


class _ChannelAcks:
    """One channel's deliveries a batching entrypoint collected: the tags above `floor` (every
    delivery up to it is settled), the applied ones waiting for their ack (tag -> message) and those
    settled alone (retried, dead-lettered, requeued)."""

    def __init__(self) -> None:
        self.floor = 0
        self.collected: set[int] = set()
        self.done: dict = {}
        self.alone: set[int] = set()
        self.gap = False


class BatchEventHandler(BatchCollector, ReliableEventHandler):
    """An event handler that hands its method a *list* of envelopes and gets one outcome per envelope
    (BatchCollector). The method returns, for each envelope in order, None (applied: the message is
    acked) or the `sys.exc_info()` of its failure, which goes through the same retry / dead-letter
    path as a single message's (`RetryOrDeadLetter`); a worker that raises fails every message of its
    batch that way. BATCH_MAX is 600 by default; with BATCH_MAX 1 it is a `ReliableEventHandler`: one
    worker per message, called with the envelope.
    """

    def setup(self):
        batch_max = batch_settings()[0]
        self.setup_batches(batch_max, raise_prefetch=batch_max > 1,
                           per_message=bundles.events_per_message(self.source_service))
        super().setup()

    def handle_message(self, body, message):
        if self.batch_max <= 1:
            return super().handle_message(body, message)  # (a bundle: republished one by one)
        try:
            found = _bundle_parts(body, message, self._queue_name())
        except bundles.MalformedBundle as exc:
            self._register(message)  # (open until dead-lettered and acked: no multiple ack covers it before)

            def settled():
                self._settled_alone(message)
                self._ack_ready()

            return self._refuse_bundle(message, exc, then=settled)
        if found is None:
            return self.collect(body, message)
        self._register(message)  # (its parts are collected as messages of their own, acked as one)
        bundle = _OpenBundle(message, len(found))
        for traceparent, envelope in found:
            self.collect(envelope, BundlePart(bundle, traceparent, envelope))

    def batch_context(self, messages: list) -> dict:
        from nameko.messaging import decode_from_headers

        return decode_from_headers(messages[0].headers)  # the batch continues its first message's trace


def _ack_through(message) -> None:
    """Ack every unacked delivery of `message`'s channel up to it (basic.ack, multiple), unless its
    connection is gone (the broker then redelivers them all, as for nameko's own ack)."""
    if message.channel.connection:
        message.ack(multiple=True)


def batch_outcomes(count: int, result, exc_info) -> list:
    """One outcome per message of a batch: the worker's list, or its failure for every message."""
    if exc_info is None and isinstance(result, list) and len(result) == count:
        return result
    if exc_info is None:  # a method that does not answer per envelope: nothing may be acked blindly
        try:
            raise TypeError(f"batch handler returned {type(result).__name__}, not {count} outcomes")
        except TypeError:
            exc_info = sys.exc_info()
    return [exc_info] * count


class ReliableConsumer(RetryOrDeadLetter, Consumer):
    """`@consume` with the same failure handling."""


reliable_event_handler = ReliableEventHandler.decorator
reliable_consume = ReliableConsumer.decorator
batch_event_handler = BatchEventHandler.decorator
