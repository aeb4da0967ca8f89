"""Publisher client for departmental systems: AMQP with confirms and rejection feedback, or HTTP.

    from services.client import Publisher

    with Publisher("amqp://511322-scjg:secret@mq.example:5672/zhifa", "511322-scjg", "scjg-case-system") as pub:
        for result in pub.publish(events):
            print(result.event_id, result.status, result.reason, result.violations)

AMQP (`Publisher`): before publishing, a temporary exclusive queue is bound to
`ingress.rejections` with the department's key; every event goes to exchange `ingress` with
routing key `<dept>.<type>`, `user_id` = the broker user, persistent and mandatory, in batches
with publisher confirms. The gateway only speaks up to refuse, so an event is reported
`accepted` when the broker confirmed it and no rejection notice arrived within `settle`
seconds after the last confirm. That is a strong hint, not a receipt: if the gateway is down
or far behind, a rejection can arrive later (it is then kept in `late_rejections` while the
publisher stays open). Use `HttpPublisher` when you need the gateway's verdict synchronously.

Refused is not rejected: an event the gateway accepted can still be refused by the service that
owns it, for the state it meets (another department's officer, …). Such a `refused` notice turns
the event's Result into status `refused` (with the violations, `dead_letter_id` and `service`)
when it arrives within `settle`; later ones are kept in `refusals`. Over HTTP ask
`HttpPublisher.status(event_id)`: received / applied / rejected / refused / dead_lettered.

Connection errors are retried with exponential backoff; events without a verdict are re-sent
after reconnecting, which is safe because the gateway de-duplicates by `event_id` (give your
events stable ids, see `stable_event_id`, so that re-running a whole job is safe too).

Not thread-safe: use one publisher per thread.
"""
from __future__ import annotations

import json
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable

import amqp
from amqp import exceptions as amqp_errors
from kombu import Connection

from contracts.catalog import ENVELOPE_SCHEMA, Catalog, ContractError

INGRESS = "ingress"
REJECTIONS = "ingress.rejections"
EVENT_ID_NAMESPACE = uuid.UUID("0c9a5f52-1d8e-4b0e-8f0a-6a3b2e9d7c11")

STATUS_LABELS = {
    "accepted": "已接受",
    "duplicate": "重复（网关此前已接收）",
    "rejected": "已拒绝",
    "refused": "已受理但被业务服务拒绝（见违规项）",
    "invalid": "未发送：本地校验不通过",
    "failed": "发送失败",
    "sent": "已投递（未等待受理结果）",
}
OK_STATUSES = frozenset({"accepted", "duplicate", "sent"})


@dataclass
class Result:
    """What happened to one event, in the order the events were given."""

    index: int
    event_id: str | None
    status: str  # one of STATUS_LABELS
    reason: str | None = None
    violations: list[dict] = field(default_factory=list)
    quarantine_id: str | None = None
    message: str | None = None  # transport-level explanation for `failed`
    dead_letter_id: str | None = None  # `refused`: where the platform keeps the refused event
    service: str | None = None  # `refused`: the service that refused it

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES

    @property
    def label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    def to_dict(self) -> dict:
        return asdict(self)


class PublishError(Exception):
    """Publishing could not go on at all (login refused, rejections not readable, unauthorized).

    `results` holds what was known when it stopped (None for events never attempted).
    """

    def __init__(self, message: str, results: list[Result | None] | None = None):
        super().__init__(message)
        self.results = results or []


# ---- envelopes ------------------------------------------------------------------------------
def stable_event_id(source: str, key: str) -> str:
    """A deterministic event id from your system's own record key, so re-sending is de-duplicated."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}\x00{key}"))


def complete_envelope(event: dict, *, dept: str, source: str, schema_version: int = 1,
                      now: datetime | None = None) -> dict:
    """A copy of `event` with missing envelope fields filled in (event_id, occurred_at, schema_version,
    dept, source). Present fields are never changed, so the gateway judges what you sent."""
    filled = dict(event)
    if filled.get("event_id") in (None, ""):
        filled["event_id"] = str(uuid.uuid4())
    if filled.get("occurred_at") in (None, ""):
        filled["occurred_at"] = (now or datetime.now().astimezone()).isoformat(timespec="seconds")
    if filled.get("schema_version") is None:
        filled["schema_version"] = schema_version
    if filled.get("dept") in (None, ""):
        filled["dept"] = dept
    if filled.get("source") in (None, ""):
        filled["source"] = source
    ordered = {k: filled[k] for k in ENVELOPE_SCHEMA if k in filled}
    ordered.update((k, v) for k, v in filled.items() if k not in ordered)
    return ordered


def _event_id(envelope: Any) -> str | None:
    value = envelope.get("event_id") if isinstance(envelope, dict) else None
    return value if isinstance(value, str) else None


def _result_from_gateway(index: int, doc: dict) -> Result:
    return Result(index, doc.get("event_id"), doc.get("status", "rejected"), reason=doc.get("reason"),
                  violations=list(doc.get("violations") or []), quarantine_id=doc.get("quarantine_id"))


def backoff_delay(attempt: int, initial: float, maximum: float) -> float:
    """Exponential backoff (initial * 2^(attempt-1), capped) with up to 20% jitter off."""
    base = min(maximum, initial * (2 ** max(0, attempt - 1)))
    return base * random.uniform(0.8, 1.0)


class _Base:
    def __init__(self, dept: str, source: str, *, schema_version: int, batch_size: int, max_retries: int,
                 backoff: float, max_backoff: float, prevalidate: bool, catalog: Catalog | None,
                 sleep: Callable[[float], None]):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.dept = dept
        self.source = source
        self.schema_version = schema_version
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.prevalidate = prevalidate
        self._catalog = catalog
        self._sleep = sleep

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog()
        return self._catalog

    def prepare(self, events: Iterable[dict]) -> tuple[list[dict], list[Result | None]]:
        """Complete every envelope; with `prevalidate`, refuse locally what the gateway would refuse."""
        envelopes, results = [], []
        for i, event in enumerate(events):
            env = complete_envelope(event, dept=self.dept, source=self.source, schema_version=self.schema_version)
            envelopes.append(env)
            verdict = None
            if self.prevalidate:
                try:
                    self.catalog.validate(env, expected_dept=self.dept)
                except ContractError as err:
                    verdict = Result(i, _event_id(env), "invalid", reason=err.reason, violations=err.to_list())
            results.append(verdict)
        return envelopes, results

    def _delay(self, attempt: int) -> float:
        return backoff_delay(attempt, self.backoff, self.max_backoff)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Nothing to release by default."""


# ---- AMQP -----------------------------------------------------------------------------------
class _ConfirmTimeout(Exception):
    """The broker did not confirm in time: treated like a lost connection."""


class _Item:
    __slots__ = ("index", "envelope", "body", "event_id", "routing_key", "sent", "confirmed", "returned", "result")

    def __init__(self, index: int, envelope: dict, dept: str):
        self.index = index
        self.envelope = envelope
        self.body = json.dumps(envelope, ensure_ascii=False).encode("utf-8")
        self.event_id = _event_id(envelope)
        self.routing_key = f"{dept}.{str(envelope.get('type') or 'unknown')[:200]}"
        self.sent = self.confirmed = self.returned = False
        self.result: Result | None = None

    def verdict(self, status: str, reason: str | None = None, message: str | None = None, **extra) -> None:
        if self.result is None:
            self.result = Result(self.index, self.event_id, status, reason=reason, message=message, **extra)


_RECOVERABLE = (*amqp.Connection.recoverable_connection_errors, _ConfirmTimeout)


def _channel_reason(exc: Exception) -> str:
    return {403: "access_refused", 404: "not_found", 406: "precondition_failed"}.get(
        getattr(exc, "reply_code", 0), f"amqp_{getattr(exc, 'reply_code', 0)}")


class Publisher(_Base):
    """Publishes events to exchange `ingress` and reports each one's fate (see module doc).

    amqp_uri: the broker, with the department's user and vhost (amqp://user:pass@host:5672/vhost).
    user: the `user_id` set on every message; defaults to the URI's user (RabbitMQ requires them equal).
    settle: seconds to wait for rejection notices after the last confirm.
    rejections: False skips the rejection queue; confirmed events are then reported `sent`.
    prevalidate: check events against the local contracts first and do not send invalid ones.
    """

    def __init__(self, amqp_uri: str, dept: str, source: str, user: str | None = None, *,
                 settle: float = 2.0, batch_size: int = 100, max_retries: int = 5, backoff: float = 0.5,
                 max_backoff: float = 30.0, confirm_timeout: float = 30.0, connect_timeout: float = 10.0,
                 rejections: bool = True, prevalidate: bool = False, schema_version: int = 1,
                 catalog: Catalog | None = None, sleep: Callable[[float], None] = time.sleep):
        super().__init__(dept, source, schema_version=schema_version, batch_size=batch_size,
                         max_retries=max_retries, backoff=backoff, max_backoff=max_backoff,
                         prevalidate=prevalidate, catalog=catalog, sleep=sleep)
        self.amqp_uri = amqp_uri
        self.user = user or Connection(amqp_uri).userid or "guest"
        self.settle = settle
        self.confirm_timeout = confirm_timeout
        self.connect_timeout = connect_timeout
        self.rejections = rejections
        self.late_rejections: list[dict] = []  # gateway notices for events already reported accepted
        # `refused` notices (status "refused"): events the gateway accepted and reported accepted, that
        # their owning service then refused for the state they met (violations as a rejection's)
        self.refusals: list[dict] = []
        self.other_notices: list[dict] = []  # notices for events this publisher did not send
        self._conn: Connection | None = None
        self._channel = None
        self._tag = 0
        self._unconfirmed: dict[int, _Item] = {}
        self._waiting: dict[str, list[_Item]] = {}
        self._reported: OrderedDict[str, None] = OrderedDict()

    # -- public ---------------------------------------------------------------------------------
    def publish(self, events: Iterable[dict]) -> list[Result]:
        """Publish `events` (dicts; missing envelope fields are filled) and return one Result each."""
        envelopes, results = self.prepare(events)
        items = [_Item(i, env, self.dept) for i, env in enumerate(envelopes) if results[i] is None]
        self._waiting = {}
        for item in items:
            if item.event_id:
                self._waiting.setdefault(item.event_id, []).append(item)
        try:
            self._run(items)
        except PublishError as exc:
            for item in items:
                results[item.index] = item.result
            exc.results = results
            raise
        finally:
            self._waiting = {}
        for item in items:
            results[item.index] = item.result
            if item.result.status == "accepted" and item.event_id:
                self._remember_reported(item.event_id)
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self._drop_connection()

    # -- connection -----------------------------------------------------------------------------
    def _connect(self) -> None:
        if self._conn is not None:
            return
        conn = Connection(self.amqp_uri, connect_timeout=self.connect_timeout, heartbeat=0)
        try:
            conn.connect()
        except amqp_errors.AccessRefused as exc:
            conn.release()
            raise PublishError(f"消息服务拒绝登录（用户 {conn.userid}）：{exc}") from None
        except Exception:
            conn.release()
            raise
        self._conn = conn
        if self.rejections:
            channel = conn.channel()
            try:
                queue = channel.queue_declare(queue="", exclusive=True, auto_delete=True).queue
                channel.queue_bind(queue=queue, exchange=REJECTIONS, routing_key=self.dept)
                channel.basic_consume(queue=queue, no_ack=True, callback=self._on_notice)
            except amqp_errors.ChannelError as exc:
                self._drop_connection()
                raise PublishError(f"无法订阅本部门的拒绝通知（{REJECTIONS} / {self.dept}）：{exc}。"
                                   f"请确认连接用户属于部门 {self.dept}") from None
        self._open_channel()

    def _open_channel(self) -> None:
        channel = self._conn.channel()
        channel.confirm_select()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        channel.events["basic_return"].add(self._on_return)
        self._channel, self._tag, self._unconfirmed = channel, 0, {}

    def _reopen_channel(self) -> None:
        old, self._channel = self._channel, None
        if old is not None:
            try:
                old.close()
            except Exception:  # the server already closed it; we only want a fresh one
                pass
        self._open_channel()

    def _drop_connection(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        self._unconfirmed = {}
        if conn is not None:
            try:
                conn.release()
            except Exception:  # already broken: nothing left to release cleanly
                pass

    def _drain(self, timeout: float) -> None:
        try:
            self._conn.drain_events(timeout=max(0.01, timeout))
        except socket.timeout:
            pass

    # -- the run --------------------------------------------------------------------------------
    def _run(self, items: list[_Item]) -> None:
        attempt = 0
        while True:
            try:
                self._connect()
                pending = [i for i in items if i.result is None and not i.sent]
                for start in range(0, len(pending), self.batch_size):
                    self._publish_batch(pending[start:start + self.batch_size])
                self._settle(items)
                return
            except _RECOVERABLE as exc:
                attempt += 1
                self._drop_connection()
                if attempt > self.max_retries:
                    for item in items:
                        item.verdict("failed", "connection_error", f"重试 {self.max_retries} 次后仍无法投递：{exc}")
                    return
                self._sleep(self._delay(attempt))
                for item in items:  # no verdict yet: send again, the gateway de-duplicates
                    if item.result is None:
                        item.sent = item.confirmed = item.returned = False

    def _publish_batch(self, batch: list[_Item]) -> None:
        """Publish with confirms; a channel error is narrowed down by re-sending one at a time."""
        queue, one_by_one = list(batch), False
        while queue:
            chunk = queue[:1] if one_by_one else queue
            try:
                self._send(chunk)
            except amqp_errors.ChannelError as exc:
                self._reopen_channel()
                if len(chunk) == 1:
                    chunk[0].verdict("failed", _channel_reason(exc), f"消息服务拒绝发布：{exc}")
                else:
                    for item in chunk:
                        if not item.confirmed:
                            item.sent = item.returned = False
                    one_by_one = True
            queue = [i for i in queue if i.result is None and not i.sent]

    def _send(self, chunk: list[_Item]) -> None:
        for item in chunk:
            message = amqp.Message(item.body, content_type="application/json", content_encoding="utf-8",
                                   delivery_mode=2, message_id=(item.event_id or "")[:255], user_id=self.user,
                                   app_id=self.source[:255])
            self._tag += 1
            self._unconfirmed[self._tag] = item
            item.sent, item.confirmed, item.returned = True, False, False
            self._channel.basic_publish(message, exchange=INGRESS, routing_key=item.routing_key, mandatory=True)
        deadline = time.monotonic() + self.confirm_timeout
        while any(not item.confirmed for item in chunk):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _ConfirmTimeout(f"消息服务 {self.confirm_timeout} 秒内未确认")
            self._drain(min(remaining, 1.0))

    def _settle(self, items: list[_Item]) -> None:
        if not self.rejections:
            for item in items:
                item.verdict("sent")
            return
        deadline = time.monotonic() + self.settle
        while any(item.result is None for item in items):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._drain(min(remaining, 0.25))
        for item in items:
            item.verdict("accepted")

    # -- broker callbacks -----------------------------------------------------------------------
    def _confirmed_items(self, tag: int, multiple: bool) -> list[_Item]:
        tags = [t for t in self._unconfirmed if t <= tag] if multiple else [tag]
        return [item for t in tags if (item := self._unconfirmed.pop(t, None)) is not None]

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        for item in self._confirmed_items(delivery_tag, multiple):
            item.confirmed = True
            if item.returned:
                item.verdict("failed", "unroutable", f"交换机 {INGRESS} 上没有队列接收路由键 {item.routing_key}："
                                                     "网关可能从未启动过")

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        for item in self._confirmed_items(delivery_tag, multiple):
            item.confirmed = True
            item.verdict("failed", "nacked", "消息服务未能接收该消息（nack），可稍后重发")

    def _on_return(self, exc, exchange, routing_key, message) -> None:
        message_id = (getattr(message, "properties", None) or {}).get("message_id")
        for item in self._unconfirmed.values():
            if item.event_id == message_id and not item.confirmed:
                item.returned = True

    def _on_notice(self, message) -> None:
        try:
            notice = json.loads(message.body)
        except (ValueError, TypeError):
            return
        if not isinstance(notice, dict):
            return
        event_id = notice.get("event_id")
        targets = self._waiting.get(event_id) if isinstance(event_id, str) else None
        refused = notice.get("status") == "refused"  # the gateway accepted it; its owning service did not
        if targets:
            for item in targets:
                if refused:
                    item.verdict("refused", notice.get("reason"), violations=list(notice.get("violations") or []),
                                 dead_letter_id=notice.get("dead_letter_id"), service=notice.get("service"))
                else:
                    item.verdict("rejected", notice.get("reason"), violations=list(notice.get("violations") or []),
                                 quarantine_id=notice.get("quarantine_id"))
        elif isinstance(event_id, str) and event_id in self._reported:
            (self.refusals if refused else self.late_rejections).append(notice)
        else:
            self.other_notices.append(notice)

    def _remember_reported(self, event_id: str, keep: int = 100_000) -> None:
        self._reported[event_id] = None
        while len(self._reported) > keep:
            self._reported.popitem(last=False)

    def poll_rejections(self, seconds: float) -> list[dict]:
        """Listen `seconds` longer and return late notices about events earlier reported accepted:
        gateway rejections and services' refusals (tell them apart by `status`)."""
        if self._conn is not None:
            deadline = time.monotonic() + seconds
            while (remaining := deadline - time.monotonic()) > 0:
                self._drain(min(remaining, 0.25))
        return list(self.late_rejections) + list(self.refusals)


# ---- HTTP -----------------------------------------------------------------------------------
class HttpPublisher(_Base):
    """Posts batches to the gateway's `POST /api/v1/events` and returns its verdict per event.

    url: the gateway's base URL (http://host:8000) or the full events URL.
    token: the department's bearer token; without one, the X-Zhifa-Dept header is sent
    (accepted only where the gateway runs with HTTP_REQUIRE_TOKEN=false, i.e. the demo).
    """

    def __init__(self, url: str, dept: str, source: str, token: str | None = None, *, batch_size: int = 100,
                 timeout: float = 30.0, max_retries: int = 5, backoff: float = 0.5, max_backoff: float = 30.0,
                 prevalidate: bool = False, schema_version: int = 1, catalog: Catalog | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        super().__init__(dept, source, schema_version=schema_version, batch_size=batch_size,
                         max_retries=max_retries, backoff=backoff, max_backoff=max_backoff,
                         prevalidate=prevalidate, catalog=catalog, sleep=sleep)
        base = url.rstrip("/")
        self.url = base if base.endswith("/api/v1/events") else base + "/api/v1/events"
        self.token = token
        self.timeout = timeout

    def publish(self, events: Iterable[dict]) -> list[Result]:
        envelopes, results = self.prepare(events)
        todo = [(i, env) for i, env in enumerate(envelopes) if results[i] is None]
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            try:
                for (index, _), result in zip(batch, self._post([env for _, env in batch])):
                    result.index = index
                    results[index] = result
            except PublishError as exc:
                exc.results = results
                raise
        return results  # type: ignore[return-value]

    def status(self, event_id: str) -> dict:
        """What became of one event this department sent (`GET /api/v1/events/<event_id>`): a dict
        with `status` received / applied / rejected / refused / dead_lettered (and `violations`),
        or `{"status": "unknown"}` when the gateway has no record of it."""
        url = self.url.rstrip("/") + "/" + urllib.parse.quote(event_id, safe="")
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        else:
            headers["X-Zhifa-Dept"] = self.dept
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return {"event_id": event_id, "status": "unknown"}
            if exc.code == 401:
                raise PublishError("网关拒绝认证：无法查询事件状态") from None
            raise

    def _post(self, batch: list[dict]) -> list[Result]:
        body = json.dumps(batch, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        else:
            headers["X-Zhifa-Dept"] = self.dept
        attempt, last_error = 0, ""
        while attempt <= self.max_retries:
            if attempt:
                self._sleep(self._delay(attempt))
            attempt += 1
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    return self._results(batch, resp.status, resp.read())
            except urllib.error.HTTPError as exc:
                payload = exc.read()
                if exc.code >= 500 or exc.code == 429:
                    last_error = f"HTTP {exc.code}"
                    continue
                return self._results(batch, exc.code, payload)
            except OSError as exc:  # connection refused/reset, timeouts (URLError is an OSError)
                last_error = str(getattr(exc, "reason", exc))
        return [Result(i, _event_id(env), "failed", "connection_error", message=f"重试 {self.max_retries} 次后仍失败："
                       f"{last_error}") for i, env in enumerate(batch)]

    def _results(self, batch: list[dict], status: int, payload: bytes) -> list[Result]:
        try:
            doc = json.loads(payload or b"null")
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("results"), list) and len(doc["results"]) == len(batch):
            return [_result_from_gateway(i, r) for i, r in enumerate(doc["results"])]
        err = doc.get("error") if isinstance(doc, dict) and isinstance(doc.get("error"), dict) else {}
        message = err.get("message") or f"网关返回 HTTP {status}"
        if status == 401:
            raise PublishError(f"网关拒绝认证：{message}")
        reason = err.get("code") or f"http_{status}"
        return [Result(i, _event_id(env), "failed", reason, message=message) for i, env in enumerate(batch)]
