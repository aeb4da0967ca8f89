"""Publish a simulation through the real ingress: AMQP exchange `ingress` (routing key
`<dept>.<type>`) with publisher confirms, at a chosen rate or as fast as possible; or HTTP
`POST /api/v1/events` in batches.

The AMQP publisher keeps up to `window` unconfirmed messages in flight on one channel in
confirm mode (a synchronous confirm per message would cap a Python publisher at a few thousand
messages a second, far below what the suite is measured at); every message is confirmed before
`flush()` returns, and a negative confirmation is counted, never ignored.
"""
from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

INGRESS_EXCHANGE = "ingress"
DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_HTTP_URL = "http://127.0.0.1:8000"


def routing_key(envelope: dict) -> str:
    return f"{envelope['dept']}.{envelope['type']}"


def encode(envelope: dict) -> bytes:
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass
class PublishStats:
    published: int = 0
    confirmed: int = 0
    nacked: int = 0
    started: float = 0.0     # time.monotonic() of the first publish
    finished: float = 0.0    # time.monotonic() when the last confirm arrived
    http_results: dict[str, int] = field(default_factory=dict)
    rejections: list[dict] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return max(self.finished - self.started, 1e-9)

    @property
    def rate(self) -> float:
        return self.published / self.elapsed if self.published else 0.0

    def to_dict(self) -> dict:
        return {"published": self.published, "confirmed": self.confirmed, "nacked": self.nacked,
                "seconds": round(self.elapsed, 3), "rate_per_s": round(self.rate, 1),
                "http_results": self.http_results, "rejections": self.rejections[:20]}


class ConfirmingPublisher:
    """One AMQP channel in confirm mode with a window of unconfirmed messages."""

    def __init__(self, amqp_uri: str = DEFAULT_AMQP_URI, exchange: str = INGRESS_EXCHANGE, window: int = 1000,
                 declare: bool = True):
        self.amqp_uri = amqp_uri
        self.exchange = exchange
        self.window = window
        self.declare = declare
        self.stats = PublishStats()
        self._next_tag = 0
        self._acked_upto = 0
        self._outstanding: set[int] = set()
        self.conn = None
        self.channel = None

    def __enter__(self) -> "ConfirmingPublisher":
        from kombu import Connection, Exchange

        self.conn = Connection(self.amqp_uri, heartbeat=0)
        self.conn.connect()
        self.channel = self.conn.channel()
        if self.declare:
            Exchange(self.exchange, type="topic", durable=True)(self.channel).declare()
        self.channel.confirm_select()
        self.channel.events["basic_ack"].add(self._on_ack)
        self.channel.events["basic_nack"].add(self._on_nack)
        return self

    def __exit__(self, *exc) -> None:
        try:
            if exc[0] is None:
                self.flush()
        finally:
            self.conn.release()

    def _settle(self, tag: int, multiple: bool, nacked: bool) -> None:
        done = [t for t in self._outstanding if t <= tag] if multiple else ([tag] if tag in self._outstanding else [])
        for t in done:
            self._outstanding.discard(t)
        if nacked:
            self.stats.nacked += len(done)
        else:
            self.stats.confirmed += len(done)
        self.stats.finished = time.monotonic()

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple, False)

    def _on_nack(self, delivery_tag: int, multiple: bool, *_) -> None:
        self._settle(delivery_tag, multiple, True)

    def _drain(self, timeout: float) -> None:
        try:
            self.conn.drain_events(timeout=timeout)
        except (socket.timeout, TimeoutError, BlockingIOError):
            pass

    def publish(self, body: bytes, routing_key: str) -> None:
        while len(self._outstanding) >= self.window:
            self._drain(1.0)
        message = self.channel.prepare_message(body, content_type="application/json", content_encoding="utf-8",
                                               properties={"delivery_mode": 2})
        if not self.stats.started:
            self.stats.started = time.monotonic()
        self.channel.basic_publish(message, exchange=self.exchange, routing_key=routing_key)
        self._next_tag += 1
        self._outstanding.add(self._next_tag)
        self.stats.published += 1
        if self._next_tag % 200 == 0:
            self._drain(0.0001)

    def flush(self, timeout: float = 120) -> None:
        """Wait until every published message is confirmed (or nacked)."""
        deadline = time.monotonic() + timeout
        while self._outstanding and time.monotonic() < deadline:
            self._drain(0.5)
        if self._outstanding:
            raise TimeoutError(f"{len(self._outstanding)} messages not confirmed within {timeout}s")
        self.stats.finished = time.monotonic()


def publish_amqp(envelopes: Iterable[dict], amqp_uri: str = DEFAULT_AMQP_URI, rate: float | None = None,
                 on_sent: Callable[[dict, float], None] | None = None, window: int = 1000,
                 exchange: str = INGRESS_EXCHANGE, key: Callable[[dict], str] = routing_key,
                 stop: Callable[[], bool] | None = None) -> PublishStats:
    """Publish envelopes in order; `rate` = messages per second offered (None = as fast as possible).

    `on_sent(envelope, t)` is called with the monotonic time just before each publish; `stop()` is
    asked every 100 messages and ends publishing early when it returns True.
    """
    prepared = [(env, encode(env), key(env)) for env in envelopes]
    with ConfirmingPublisher(amqp_uri, exchange=exchange, window=window) as pub:
        start = time.monotonic()
        for i, (env, body, rk) in enumerate(prepared):
            if stop is not None and i % 100 == 0 and stop():
                break
            if rate:
                ahead = start + i / rate - time.monotonic()
                if ahead > 0.002:
                    time.sleep(ahead)
            sent = time.monotonic()
            if on_sent is not None:
                on_sent(env, sent)
            pub.publish(body, rk)
        pub.flush()
        return pub.stats


def publish_http(envelopes: Sequence[dict], base_url: str = DEFAULT_HTTP_URL, batch: int = 500,
                 timeout: float = 60) -> PublishStats:
    """POST envelopes to /api/v1/events in JSON arrays of at most `batch`; counts accepted/duplicate/rejected."""
    stats = PublishStats(started=time.monotonic())
    url = base_url.rstrip("/") + "/api/v1/events"
    for i in range(0, len(envelopes), batch):
        chunk = envelopes[i:i + batch]
        request = urllib.request.Request(url, data=json.dumps(chunk, ensure_ascii=False).encode("utf-8"),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                body = json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:  # 422 still carries per-event results
            body = json.loads(exc.read() or b"{}")
            if "results" not in body:
                raise RuntimeError(f"HTTP {exc.code}: {body}") from None
        for result in body.get("results", []):
            status = result.get("status", "unknown")
            stats.http_results[status] = stats.http_results.get(status, 0) + 1
            if status == "rejected":
                stats.rejections.append(result)
        stats.published += len(chunk)
    stats.confirmed = stats.http_results.get("accepted", 0) + stats.http_results.get("duplicate", 0)
    stats.finished = time.monotonic()
    return stats
