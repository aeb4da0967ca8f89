"""Gateway: the suite's front door for departmental systems (AMQP `ingress` and HTTP).

Entrypoints only translate: decode -> admit (contracts) -> dedupe -> dispatch as a nameko
event, or reject with a machine-readable reason (rejection exchange / HTTP 4xx) and keep the
rejected input in quarantine. Reads, commands, dead letters and quarantine are served to people
by the API service (services/api), which calls the small RPC methods below for the gateway's store.
"""
from __future__ import annotations

import json
import logging
import re
import sys
from dataclasses import dataclass

import eventlet
from kombu import Queue
from nameko.amqp.publish import Publisher as AmqpPublisher
from nameko.extensions import DependencyProvider
from nameko.messaging import Consumer, encode_to_headers
from nameko.rpc import ClusterRpc, rpc
from nameko.web.handlers import http

from contracts.asyncapi import document as asyncapi_document
from contracts.catalog import ENVELOPE_SCHEMA, MAX_DEPTH, Catalog, ContractError, Violation
from services.gateway.admission import Admitted, Refused, admit, event_status
from services.gateway.auth import Unauthorized, amqp_identity, http_dept, startup_warnings
from services.gateway.store import RAW_ENCODING, GatewayStore, digest, ensure_indexes, raw_bytes, storable_text
from services.kernel import bundles, config
from services.kernel.clock import Clock
from services.kernel.confirms import Outgoing, json_bytes
from services.kernel.messaging import (ATTEMPTS_HEADER, DEAD_LETTER_QUEUE, INGRESS_EXCHANGE,
                                       REJECTIONS_EXCHANGE, BatchCollector, DecompressedTooLarge, ReliableConsumer,
                                       bound_decompression, declare_topology,
                                       delivery_of, replay_headers, settle_message)
from services.kernel.metrics import (ACCESS_LOG, DEAD_LETTERS, INGRESS_ACCEPTED, INGRESS_DUPLICATES,
                                     INGRESS_REJECTED, Metrics, bounded)
from services.kernel import tracing
from services.kernel.mongo import Mongo
from services.kernel.outbox import ConfirmedEvents
from services.kernel.web import error, health_response, json_response, liveness_response, metrics_response, safe_http

log = logging.getLogger("zhifa.gateway")

EVENT_ID = re.compile(ENVELOPE_SCHEMA["event_id"]["regex"].rstrip("$") + r"\Z")
INGRESS_QUEUE = Queue("gateway.ingress", exchange=INGRESS_EXCHANGE, routing_key="#", durable=True)
MAX_INGRESS_BATCH = 50  # one unordered insert_many of dedupe claims per batch: FerretDB takes these well


def ingress_batch_max() -> int:
    """How many ingress messages (or HTTP batch items) one worker admits together (INGRESS_BATCH_MAX,
    at most MAX_INGRESS_BATCH; 1 = one at a time)."""
    return min(MAX_INGRESS_BATCH, config.checked("INGRESS_BATCH_MAX"))


@dataclass
class Inbound:
    """One message to admit: its raw body and what its channel says about who sent it."""

    raw: bytes | str | dict
    routing_key: str | None = None
    authenticated_dept: str | None = None
    refusal: Violation | None = None
    redelivered: bool = False
    traceparent: str | None = None  # the publisher's own, when well-formed (AMQP)


class Contracts(DependencyProvider):
    """The contract catalog, built once per container."""

    def setup(self):
        declare_topology()
        bound_decompression(config.checked("INGRESS_MAX_BYTES"))  # kombu unpacks before we see a message
        for warning in startup_warnings():  # secure by default outside the demo: say so loudly
            log.warning("INSECURE: %s", warning)
        self.catalog = Catalog(max_bytes=config.checked("INGRESS_MAX_BYTES"),
                               years=(config.checked("INGRESS_YEAR_MIN"), config.checked("INGRESS_YEAR_MAX")))

    def get_dependency(self, worker_ctx):
        return self.catalog


class Relay(ConfirmedEvents):
    """What a worker sends: admitted events on `gateway.events` and rejection notices on
    `ingress.rejections` (routing key = dept), collected and then published together with one wait
    for the broker's confirms (services/kernel/confirms.py). The admitted events a declared handler
    consumes go to it in bundles of at most GATEWAY_BUNDLE_MAX (services/kernel/bundles.py); the others
    one by one (routing key = event type, each with its own trace)."""

    extra_exchanges = (REJECTIONS_EXCHANGE,)

    def setup(self):
        super().setup()
        self.bundle_max = bundles.bundle_max()  # 1: every admitted event alone

    def get_dependency(self, worker_ctx):
        return OutgoingBatch(self, worker_ctx)


class OutgoingBatch:
    """One worker's outgoing messages (see Relay)."""

    def __init__(self, relay: Relay, worker_ctx):
        self.relay, self.ctx, self.messages = relay, worker_ctx, []
        self.bundles: dict[str, list] = {}  # bundle key -> [(traceparent, envelope)], in admission order

    def event(self, envelope: dict, incoming_trace: str | None) -> tuple[str, str]:
        """Queue an admitted event; its trace is the publisher's (well-formed) or the event id's.
        Returns (trace id, traceparent)."""
        trace_id = tracing.parse(incoming_trace) or tracing.trace_id_for_event(envelope["event_id"])
        parent = tracing.traceparent(trace_id)
        keys = bundles.routed(self.relay.container.service_name, envelope) if self.relay.bundle_max > 1 else ()
        for key in keys:
            self.bundles.setdefault(key, []).append((parent, envelope))
        if not keys:
            self.messages.append(self._alone(envelope, parent))
        return trace_id, parent

    def _alone(self, envelope: dict, parent: str) -> Outgoing:
        headers = encode_to_headers({**self.ctx.context_data, tracing.TRACEPARENT: parent})
        return Outgoing(self.relay.exchange, envelope["type"], envelope, headers)

    def rejection(self, dept: str, notice: dict) -> None:
        self.messages.append(Outgoing(REJECTIONS_EXCHANGE, dept, notice))

    def send(self) -> None:
        messages, self.messages = self.messages, []
        parts, self.bundles = self.bundles, {}
        if parts:
            headers = encode_to_headers(self.ctx.context_data)
            size = self.relay.bundle_max
            messages += [Outgoing(self.relay.exchange, key, bundles.body(events[i:i + size]), headers, mandatory=True)
                         for key, events in parts.items() for i in range(0, len(events), size)]
        returned = self.relay.publisher.publish_all(messages)
        if returned:  # a bundle no queue took (its handler's queue is not there, or has no such binding):
            # its events one by one, as before bundles (an event in two bundles once: the exchange copies it
            # to every queue its type is bound to, so a handler that took its own bundle may get the event
            # again; consumers de-duplicate by event id)
            again: dict[str, Outgoing] = {}
            for out in returned:
                for parent, envelope in out.body["events"]:
                    again.setdefault(envelope["event_id"], self._alone(envelope, parent))
            log.info("%d bundle(s) not routed (%s): %d events dispatched one by one",
                     len(returned), ", ".join(out.routing_key for out in returned), len(again))
            self.relay.publisher.publish_all(list(again.values()))


class IngressConsumer(BatchCollector, ReliableConsumer):
    """Hands the worker a *list* of ingress messages (raw bytes, routing key, `user_id`, whatever the
    content type says) and gets one outcome per message back, as the kernel's BatchEventHandler does
    for facts: messages are collected while BATCH_WORKERS workers are busy (a backlog makes batches of
    INGRESS_BATCH_MAX) and for at most BATCH_WAIT_MS when one is free. A message is acked only after
    its worker returned, i.e. after the dedupe claims and the broker's confirms of what it published;
    a failed one goes through the retry / dead-letter path (RetryOrDeadLetter)."""

    def setup(self):
        self.consumer_options["on_decode_error"] = lambda message, exc: self.handle_message(None, message)
        self.consumer_options["accept"] = ["json", "application/json", "text/plain", "application/octet-stream"]
        # kombu would decode every body by its content type (JSON) before handing it over; the worker
        # reads the raw bytes (catalog.decode: size and nesting checked before parsing), so kombu's
        # decoded copy was thrown away: with `on_message` kombu hands over the message undecoded
        # (an unpack error still goes to `on_decode_error`), and nameko's own callback takes it from there
        self.consumer_options["on_message"] = lambda message: self.consumer.on_message(None, message)
        self.setup_batches(ingress_batch_max())
        super().setup()

    def handle_message(self, body, message):
        try:
            origin = delivery_of(message, self.queue.name)  # only the suite's signed retries carry x-zhifa-*
            incoming = (message.headers or {}).get(tracing.TRACEPARENT) if isinstance(message.headers, dict) else None
            raw = {"raw": message.body if isinstance(message.body, (bytes, str)) else b"",
                   "routing_key": origin.routing_key, "user_id": origin.user_id,
                   "unpack_error": unpack_error(message),
                   # a department's other headers never become context data (nameko would copy them
                   # into every event dispatched): only a well-formed W3C traceparent is taken
                   "traceparent": incoming if tracing.parse(incoming) else None,
                   # a broker redelivery or one of our retries may follow a crash before the dispatch
                   "redelivered": bool(message.delivery_info.get("redelivered")) or origin.retried}
        except Exception:  # no property or header may kill the consumer: the message is refused instead
            log.exception("unreadable ingress message properties")
            raw = {"raw": b"", "routing_key": "", "user_id": "", "redelivered": False, "traceparent": None,
                   "unpack_error": ("bad_properties", "消息属性或头无法读取")}
        self.collect(raw, message)


def unpack_error(message) -> tuple[str, str] | None:
    """Why kombu could not unpack a `compression`-headed body (rule, Chinese message), if it failed."""
    errors = getattr(message, "errors", None) or []
    if not errors:
        return None
    exc = errors[0][1] if isinstance(errors[0], tuple) and len(errors[0]) > 1 else None
    if isinstance(exc, DecompressedTooLarge):
        return ("max_unpacked_bytes", f"压缩消息解压后超过 {config.get('INGRESS_MAX_BYTES')} 字节，或使用了不接受的压缩方式")
    return ("bad_compression", "压缩消息无法解压")


FULLWIDTH_DOT = "\uff0e"  # header names such as `nameko.traceparent` cannot be MongoDB keys as they are


def storable_headers(headers: dict) -> dict:
    """Plain-valued headers with their names made storable (`.` -> `．`, no leading `$`, no NUL); a
    text value holding a NUL (which FerretDB on PostgreSQL cannot store as text) is kept as bytes."""
    return {storable_text(str(k).replace(".", FULLWIDTH_DOT).lstrip("$")):
            (v.encode("utf-8", errors="surrogatepass") if isinstance(v, str) and "\x00" in v else v)
            for k, v in headers.items() if isinstance(v, (str, int, float, bool))}


def stored_headers(headers) -> dict:
    """The headers as they were sent, from their stored form."""
    if not isinstance(headers, dict):
        return {}
    return {k.replace(FULLWIDTH_DOT, "."): (v.decode("utf-8", errors="surrogatepass") if isinstance(v, bytes) else v)
            for k, v in headers.items()}


class DeadLetterConsumer(Consumer):
    """Passes body and headers; on a storage failure waits before requeueing (no hot loop)."""

    def setup(self):
        self.consumer_options["on_decode_error"] = lambda message, exc: self.handle_message(None, message)
        super().setup()

    def handle_message(self, body, message):
        data = raw_bytes(message.body)  # kept byte-exact (a hostile body may be binary or UTF-16)
        headers = dict(message.headers or {})
        msg_id = headers.get("x-zhifa-dead-id") or message.properties.get("message_id") or digest(
            {"b": data.hex(), "h": {k: str(v) for k, v in headers.items()}})
        super().handle_message({"id": storable_text(str(msg_id)), "body": data, "headers": headers,
                                "content_type": storable_text(message.content_type)}, message)

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is not None:
            eventlet.sleep(1)
        # nameko's ack/requeue, safe when the broker connection went away meanwhile (a restart)
        settle = self.consumer.requeue_message if exc_info is not None and self.requeue_on_error else self.consumer.ack_message
        settle_message(settle, message)


class GatewayService:
    """Ingress (AMQP + HTTP), quarantine and dead letters (listed and replayed through the API service)."""

    name = "gateway"

    db = Mongo("gateway", indexes=ensure_indexes)
    catalog = Contracts()
    relay = Relay()
    clock = Clock()
    metrics = Metrics()
    services = ClusterRpc()  # asks an event's owning service whether it applied it (status route)

    # ---- ingress ---------------------------------------------------------------------------
    @IngressConsumer.decorator(queue=INGRESS_QUEUE)
    def handle_ingress(self, messages):
        """Events from departmental systems via exchange `ingress`, a batch at a time (IngressConsumer):
        one outcome per message, None (accepted, duplicate or rejected: settled) or its failure."""
        inbound = []
        for message in messages:
            identity = amqp_identity(message.get("user_id"))
            refusal = identity.refusal
            if message.get("unpack_error"):
                refusal = Violation("$message", *message["unpack_error"])
            inbound.append(Inbound(message["raw"], routing_key=message["routing_key"],
                                   authenticated_dept=identity.dept, refusal=refusal,
                                   redelivered=message.get("redelivered", False),
                                   traceparent=message.get("traceparent")))
        return [None if isinstance(r, dict) else r for r in self._process(inbound, channel="amqp")]

    def _process(self, items: list[Inbound], *, channel: str) -> list:
        """Admit a batch (at most MAX_INGRESS_BATCH): one result per item, in order — the answer
        (accepted / duplicate / rejected notice) or, where admitting that item itself failed, its
        `sys.exc_info()`. One dedupe write for the batch, one write of its rejected input, one publish
        of its events and notices with one wait for the broker's confirms.

        AMQP claims the event ids first: a crash before the publish means the broker redelivers the
        message (or our retry republishes it), and a redelivery with the same content publishes
        again. HTTP has no redelivery: it publishes first and remembers after (a retried POST
        publishes again; consumers de-duplicate)."""
        store = GatewayStore(self.db)
        now = self.clock()
        verdicts: list = []
        for item in items:
            try:
                verdicts.append(admit(self.catalog, item.raw, routing_key=item.routing_key,
                                      authenticated_dept=item.authenticated_dept, refusal=item.refusal))
            except Exception:  # a fault of ours with one message must not hold back the others
                log.exception("admission failed")
                verdicts.append(sys.exc_info())
        admitted = [i for i, v in enumerate(verdicts) if isinstance(v, Admitted)]
        hashes = {i: digest(verdicts[i].envelope) for i in admitted}
        if channel == "amqp":
            priors = dict(zip(admitted, store.claim([verdicts[i].envelope for i in admitted], channel, now,
                                                    [hashes[i] for i in admitted])))
        else:
            seen = store.seen([verdicts[i].envelope["event_id"] for i in admitted])
            priors = {}
            for i in admitted:  # within one request, a second item with an earlier item's id is its duplicate
                event_id = verdicts[i].envelope["event_id"]
                priors[i] = seen.get(event_id)
                seen.setdefault(event_id, {"hash": hashes[i]})
        results: list = [v if isinstance(v, tuple) else None for v in verdicts]
        out = self.relay
        accepted, duplicates, first_trace, traces = [], [], None, {}
        for i in admitted:
            env, prior = verdicts[i].envelope, priors[i]
            if prior is None or (items[i].redelivered and prior.get("hash") == hashes[i]):
                trace = out.event(env, items[i].traceparent or self._http_trace(channel))
                first_trace = first_trace or (trace[0], env["event_id"])
                traces[i] = trace[0]
                accepted.append(i)
                results[i] = {"event_id": env["event_id"], "status": "accepted"}
            elif prior.get("hash") == hashes[i]:
                duplicates.append(i)
                results[i] = {"event_id": env["event_id"], "status": "duplicate"}
            else:
                verdicts[i] = Refused([{"field": "event_id", "rule": "event_id_conflict",
                                        "message": "相同 event_id 已用于内容不同的事件"}],
                                      dept=env["dept"], event_id=env["event_id"], reason="event_id_conflict")
        refused = [i for i, v in enumerate(verdicts) if isinstance(v, Refused)]
        qids = store.quarantine([{"raw": self._raw_of(items[i].raw), "violations": verdicts[i].violations,
                                  "dept": verdicts[i].dept, "routing_key": items[i].routing_key,
                                  "event_id": verdicts[i].event_id} for i in refused],
                                channel=channel, received_at=now)
        for i, qid in zip(refused, qids):
            result, routing_key = verdicts[i], items[i].routing_key
            notice = {"event_id": result.event_id, "status": "rejected", "reason": result.reason,
                      "violations": result.violations, "quarantine_id": qid, "channel": channel,
                      "routing_key": routing_key, "rejected_at": now.isoformat()}
            if channel == "amqp":
                out.rejection(result.dept, notice)
            results[i] = notice
            rk_type = (routing_key or "").partition(".")[2]
            INGRESS_REJECTED.labels(channel, bounded("dept", items[i].authenticated_dept or result.dept),
                                    bounded("event_type", rk_type, self.catalog.types()),
                                    bounded("reason", result.reason)).inc()
        out.send()
        for i in accepted:  # one access line per admitted event, in its own trace (the batch's line is one)
            env = verdicts[i].envelope
            tracing.bind(traces[i], env["event_id"])
            ACCESS_LOG.info("admitted %s", env["event_id"], extra={
                "service": self.name, "entrypoint": f"ingress_{channel}", "event_type": env["type"],
                "outcome": "accepted"})
        if first_trace is not None:  # the worker's own log lines carry the trace of its first admitted event
            tracing.bind(*first_trace)
        if channel != "amqp":
            store.remember([verdicts[i].envelope for i in accepted], channel, now, [hashes[i] for i in accepted])
        for i in accepted:
            env = verdicts[i].envelope
            INGRESS_ACCEPTED.labels(channel, bounded("dept", env["dept"]), env["type"]).inc()
        for i in duplicates:
            INGRESS_DUPLICATES.labels(channel, bounded("dept", verdicts[i].envelope["dept"])).inc()
        return results

    def _http_trace(self, channel: str) -> str | None:
        """An HTTP request's own trace (nameko's context data), if any."""
        return self.relay.ctx.context_data.get(tracing.TRACEPARENT) if channel != "amqp" else None

    @staticmethod
    def _raw_of(raw) -> bytes | str:
        return json.dumps(raw, ensure_ascii=False) if isinstance(raw, dict) else raw

    def _process_http(self, items: list[Inbound]) -> list[dict]:
        """HTTP items in batches of INGRESS_BATCH_MAX; a failure of ours is the request's (a 500)."""
        size = ingress_batch_max()
        results = []
        for start in range(0, len(items), size):
            for result in self._process(items[start:start + size], channel="http"):
                if isinstance(result, tuple):
                    raise result[1].with_traceback(result[2])
                results.append(result)
        return results

    @safe_http("POST", "/api/v1/events")
    def post_events(self, request):
        """One event (JSON object) or a batch (JSON array) over HTTP."""
        body = request.get_data()
        max_bytes = config.checked("INGRESS_MAX_BYTES")
        max_batch = config.checked("INGRESS_MAX_BATCH")
        try:
            dept = http_dept(request, self.db)
        except Unauthorized as exc:
            return exc.response()
        stripped = body.lstrip()
        if stripped[:1] == b"[":
            if len(body) > max_bytes * max_batch:
                return error(413, "max_bytes", f"批量请求超过 {max_bytes * max_batch} 字节")
            try:  # one level more than an event: the array around the envelopes
                items = self.catalog.parse(body, max_bytes=max_bytes * max_batch, depth=MAX_DEPTH + 2)
            except ContractError:
                res = self._process_http([Inbound(body, authenticated_dept=dept)])[0]
                return json_response({"results": [res]}, 400)
            if len(items) > max_batch:
                return error(413, "max_batch", f"一次最多提交 {max_batch} 个事件")
            results = self._process_http([Inbound(self._reencode(item), authenticated_dept=dept) for item in items])
            status = 422 if any(r["status"] == "rejected" for r in results) else 202
            return json_response({"results": results}, status)
        res = self._process_http([Inbound(body, authenticated_dept=dept)])[0]
        if res["status"] == "rejected":
            code = {"max_bytes": 413, "malformed_json": 400, "not_an_object": 400}.get(res["reason"], 422)
            return json_response(res, code)
        return json_response(res, 202 if res["status"] == "accepted" else 200)

    @safe_http("GET", "/api/v1/events/<string:event_id>")
    def get_event_status(self, request, event_id):
        """What became of one event: received / applied / rejected / refused / dead_lettered (with the
        violations). Who may ask: the sending department only, authenticated as for POST (bearer token;
        X-Zhifa-Dept where HTTP_REQUIRE_TOKEN is off); another department's event is a 404."""
        try:
            dept = http_dept(request, self.db)
        except Unauthorized as exc:
            return exc.response()
        if not dept:
            return Unauthorized("missing_token", "缺少访问令牌：请在 Authorization 头中提供 Bearer <部门令牌>").response()
        if not EVENT_ID.fullmatch(event_id):
            return error(400, "invalid_event_id", "event_id 应为 UUID")
        trail = GatewayStore(self.db).event_trail(event_id, dept)
        applied = self._applied(trail["accepted"], event_id) if trail["accepted"] is not None else None
        status = event_status(event_id, trail, applied)
        if status is None:
            return error(404, "not_found", "本部门没有发送过该事件，或平台尚未收到")
        return json_response(status)

    def _applied(self, accepted: dict, event_id: str) -> dict | None:
        """The owning service's `fact_status` answer (None when it does not answer in time)."""
        owners = {c.owner for (t, _), c in self.catalog.contracts.items() if t == accepted.get("type")}
        for owner in sorted(owners):
            answer = None
            with eventlet.Timeout(config.checked("STATUS_RPC_TIMEOUT"), False):
                try:
                    answer = self.services[owner].fact_status(event_id)
                except Exception:  # unknown or failing service: the status stays "received"
                    log.warning("fact_status from %s failed", owner, exc_info=True)
            if answer is None:
                return None
            if answer.get("applied"):
                return {**answer, "service": owner}
        return {"applied": False}

    @staticmethod
    def _reencode(item):
        """Batch items are re-encoded so each is size-checked like a single message (a lone surrogate,
        which UTF-8 cannot carry, keeps its JSON escape)."""
        if isinstance(item, (bytes, str)):
            return item
        return json_bytes(item)

    # ---- dead letters ----------------------------------------------------------------------
    @DeadLetterConsumer.decorator(queue=DEAD_LETTER_QUEUE, requeue_on_error=True)
    def keep_dead_letter(self, message):
        """Store every dead-lettered message so it can be listed and replayed."""
        headers = message["headers"]
        GatewayStore(self.db).add_dead_letter({
            "_id": message["id"],
            "queue": headers.get("x-zhifa-queue", ""),
            "service": headers.get("x-zhifa-service", ""),
            "entrypoint": headers.get("x-zhifa-entrypoint", ""),
            "error": headers.get("x-zhifa-error", ""),
            "traceback": headers.get("x-zhifa-traceback", ""),
            "attempts": headers.get(ATTEMPTS_HEADER, 0),
            "dead_at": self.clock(),
            "headers": storable_headers(headers),
            "body": message["body"],
            "body_encoding": RAW_ENCODING,
            "content_type": message["content_type"],
            "status": "dead",
        })
        DEAD_LETTERS.labels(headers.get("x-zhifa-service", "")).inc()

    # ---- read and replay by the API service (operator role, audited there) ---------------------
    @rpc
    def list_dead_letters(self, status=None, limit=50, offset=0):
        """A page of dead letters (newest first, true total), without error texts or tracebacks."""
        return GatewayStore(self.db).page_dead_letters(status, int(limit), int(offset))

    @rpc
    def list_quarantine(self, dept=None, limit=50, offset=0):
        """A page of quarantined (rejected) input, without the raw bytes."""
        return GatewayStore(self.db).page_quarantine(dept, int(limit), int(offset))

    @rpc
    def replay_dead_letter(self, dl_id, actor):
        """Republish one dead letter to its queue, at most once, after checking it against the contracts
        as if it were new. {"ok": True, ...} or {"ok": False, "error": {code, message, ...}}."""
        store = GatewayStore(self.db)
        now = self.clock()
        doc = store.claim_dead_letter(dl_id, actor, now)
        if doc is None:
            existing = store.get_dead_letter(dl_id)
            if existing is None:
                return {"ok": False, "error": {"code": "not_found", "field": "dl_id", "message": "死信不存在"}}
            return {"ok": False, "error": {"code": "already_replayed", "field": "dl_id",
                                           "message": f"该死信当前状态为 {existing.get('status')}，只能重放一次"}}
        body = raw_bytes(doc.get("body"))
        try:
            envelope = self.catalog.decode(body)
            self.catalog.validate(envelope, direction=None)
        except ContractError as exc:
            store.finish_replay(dl_id, "refused", now, refused_violations=exc.to_list())
            return {"ok": False, "error": {"code": "contract_violation", "field": exc.violations[0].field,
                                           "message": "死信不符合事件契约，拒绝重放", "violations": exc.to_list()}}
        # the original routing key and user ride along, signed (an ingress replay keeps its department)
        headers = replay_headers(doc["queue"], stored_headers(doc.get("headers")), body)
        try:
            pub = AmqpPublisher(config.get("AMQP_URI"), use_confirms=True)
            pub.publish(body, exchange="", routing_key=doc["queue"], headers=headers,
                        serializer=None, content_type=doc.get("content_type") or "application/json",
                        content_encoding="utf-8", mandatory=True)
        except Exception:
            log.exception("replay of dead letter %s failed; it stays replayable", dl_id)
            store.finish_replay(dl_id, "dead", now)
            return {"ok": False, "error": {"code": "unavailable", "field": None, "message": "重放失败（消息服务不可用），可稍后重试"}}
        store.finish_replay(dl_id, "replayed", now, replayed_by=actor)
        return {"ok": True, "id": dl_id, "status": "replayed", "queue": doc["queue"], "event_id": envelope.get("event_id")}

    @http("GET", "/api/v1/asyncapi.json")
    def get_asyncapi(self, request):
        """The AsyncAPI document of every contract, for departments to build against."""
        return json_response(asyncapi_document())

    @http("GET", "/metrics")
    def get_metrics(self, request):
        return metrics_response(request)

    @http("GET", "/health")
    def get_health(self, request):
        """Readiness (same as /health/ready): containers running, database and broker answering."""
        return health_response()

    @http("GET", "/health/ready")
    def get_readiness(self, request):
        return health_response()

    @http("GET", "/health/live")
    def get_liveness(self, request):
        return liveness_response()
