"""Gateway: the suite's front door for departmental systems (AMQP `ingress` and HTTP).

Entrypoints only translate: decode -> admit (contracts) -> dedupe -> dispatch as a nameko
event, or reject with a machine-readable reason (rejection exchange / HTTP 4xx) and keep the
rejected input in quarantine. Reads, commands, dead letters and quarantine are served to people
by the API service (services/api), which calls the small RPC methods below for the gateway's store.
"""
from __future__ import annotations

import json
import logging
from functools import partial
import re

import eventlet
from kombu import Queue
from nameko.amqp.publish import Publisher as AmqpPublisher
from nameko.events import EventDispatcher
from nameko.extensions import DependencyProvider
from nameko.exceptions import ContainerBeingKilled
from nameko.messaging import Consumer
from nameko.rpc import ClusterRpc, rpc
from nameko.web.handlers import http

from contracts.asyncapi import document as asyncapi_document
from contracts.catalog import ENVELOPE_SCHEMA, MAX_DEPTH, Catalog, ContractError, Violation
from services.gateway.admission import Admitted, Refused, admit, event_status
from services.gateway.auth import Unauthorized, amqp_identity, http_dept, startup_warnings
from services.gateway.store import GatewayStore, digest, ensure_indexes
from services.kernel import config
from services.kernel.clock import Clock
from services.kernel.messaging import (ATTEMPTS_HEADER, DEAD_LETTER_QUEUE, INGRESS_EXCHANGE,
                                       REJECTIONS_EXCHANGE, DecompressedTooLarge, ReliableConsumer,
                                       bound_decompression, declare_topology, delivery_of, replay_headers,
                                       settle_message)
from services.kernel.metrics import (DEAD_LETTERS, INGRESS_ACCEPTED, INGRESS_DUPLICATES,
                                     INGRESS_REJECTED, Metrics, bounded)
from services.kernel import tracing
from services.kernel.mongo import Mongo
from services.kernel.web import error, health_response, json_response, liveness_response, metrics_response, safe_http

log = logging.getLogger("zhifa.gateway")

EVENT_ID = re.compile(ENVELOPE_SCHEMA["event_id"]["regex"].rstrip("$") + r"\Z")
INGRESS_QUEUE = Queue("gateway.ingress", exchange=INGRESS_EXCHANGE, routing_key="#", durable=True)


class Contracts(DependencyProvider):
    """The contract catalog, built once per container."""

    def setup(self):
        declare_topology()
        bound_decompression(int(config.get("INGRESS_MAX_BYTES")))  # kombu unpacks before we see a message
        for warning in startup_warnings():  # secure by default outside the demo: say so loudly
            log.warning("INSECURE: %s", warning)
        self.catalog = Catalog(max_bytes=int(config.get("INGRESS_MAX_BYTES")),
                               years=(int(config.get("INGRESS_YEAR_MIN")), int(config.get("INGRESS_YEAR_MAX"))))

    def get_dependency(self, worker_ctx):
        return self.catalog


class Rejections(DependencyProvider):
    """Publishes rejection notices to `ingress.rejections` with routing key `<dept>`."""

    def setup(self):
        self.publisher = AmqpPublisher(config.get("AMQP_URI"), use_confirms=True)

    def get_dependency(self, worker_ctx):
        def publish(dept: str, notice: dict):
            self.publisher.publish(json.dumps(notice, ensure_ascii=False).encode(), exchange=REJECTIONS_EXCHANGE,
                                   routing_key=dept, declare=[REJECTIONS_EXCHANGE], serializer=None,
                                   content_type="application/json", content_encoding="utf-8")
        return publish


class IngressConsumer(ReliableConsumer):
    """Hands the worker the raw bytes, routing key and `user_id`, whatever the content type says."""

    def setup(self):
        self.consumer_options["on_decode_error"] = lambda message, exc: self.handle_message(None, message)
        self.consumer_options["accept"] = ["json", "application/json", "text/plain", "application/octet-stream"]
        super().setup()

    def handle_message(self, body, message):
        try:
            origin = delivery_of(message, self.queue.name)  # only the suite's signed retries carry x-zhifa-*
            raw = {"raw": message.body if isinstance(message.body, (bytes, str)) else b"",
                   "routing_key": origin.routing_key, "user_id": origin.user_id,
                   "unpack_error": unpack_error(message),
                   # a broker redelivery or one of our retries may follow a crash before the dispatch
                   "redelivered": bool(message.delivery_info.get("redelivered")) or origin.retried}
        except Exception:  # no property or header may kill the consumer: the message is refused instead
            log.exception("unreadable ingress message properties")
            raw = {"raw": b"", "routing_key": "", "user_id": "", "redelivered": False,
                   "unpack_error": ("bad_properties", "消息属性或头无法读取")}
        self._spawn(raw, message)

    def _spawn(self, raw: dict, message) -> None:
        """nameko's Consumer.handle_message, except for the worker's context: a department's headers
        would otherwise become context data that nameko copies into every event the worker
        dispatches (`nameko.<header>`), so only a well-formed W3C `traceparent` is taken."""
        incoming = (message.headers or {}).get(tracing.TRACEPARENT) if isinstance(message.headers, dict) else None
        context_data = {tracing.TRACEPARENT: incoming} if tracing.parse(incoming) else {}
        handle_result = partial(self.handle_result, message)

        def spawn_worker():
            try:
                self.container.spawn_worker(self, (raw,), {}, context_data=context_data,
                                            handle_result=handle_result)
            except ContainerBeingKilled:
                self.consumer.requeue_message(message)

        self.container.spawn_managed_thread(
            spawn_worker, identifier=f"IngressConsumer.wait_for_worker_pool[{self.container.service_name}.{self.method_name}]")


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
    """Plain-valued headers with their names made storable (`.` -> `．`, no leading `$`)."""
    return {str(k).replace(".", FULLWIDTH_DOT).lstrip("$"): v for k, v in headers.items()
            if isinstance(v, (str, int, float, bool))}


def stored_headers(headers) -> dict:
    """The headers as they were sent, from their stored form."""
    return {k.replace(FULLWIDTH_DOT, "."): v for k, v in headers.items()} if isinstance(headers, dict) else {}


class DeadLetterConsumer(Consumer):
    """Passes body and headers; on a storage failure waits before requeueing (no hot loop)."""

    def setup(self):
        self.consumer_options["on_decode_error"] = lambda message, exc: self.handle_message(None, message)
        super().setup()

    def handle_message(self, body, message):
        raw = message.body
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        headers = dict(message.headers or {})
        msg_id = headers.get("x-zhifa-dead-id") or message.properties.get("message_id") or digest(
            {"b": text, "h": {k: str(v) for k, v in headers.items()}})
        super().handle_message({"id": msg_id, "body": text, "headers": headers,
                                "content_type": message.content_type}, message)

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
    dispatch = EventDispatcher()
    reject = Rejections()
    clock = Clock()
    metrics = Metrics()
    services = ClusterRpc()  # asks an event's owning service whether it applied it (status route)

    # ---- ingress ---------------------------------------------------------------------------
    @IngressConsumer.decorator(queue=INGRESS_QUEUE)
    def handle_ingress(self, message):
        """One event from a departmental system via exchange `ingress`."""
        identity = amqp_identity(message.get("user_id"))
        refusal = identity.refusal
        if message.get("unpack_error"):
            refusal = Violation("$message", *message["unpack_error"])
        self._process(message["raw"], channel="amqp", routing_key=message["routing_key"],
                      authenticated_dept=identity.dept, refusal=refusal,
                      redelivered=message.get("redelivered", False))

    def _process(self, raw, *, channel: str, routing_key: str | None = None,
                 authenticated_dept: str | None = None, refusal=None, redelivered: bool = False) -> dict:
        store = GatewayStore(self.db)
        now = self.clock()
        result = admit(self.catalog, raw, routing_key=routing_key, authenticated_dept=authenticated_dept,
                       refusal=refusal)
        if isinstance(result, Admitted):
            env = result.envelope
            if channel == "amqp":
                # claim first (one write): a crash before the dispatch means the broker redelivers
                # the message (or our retry republishes it), and a redelivery dispatches again
                prior = store.claim(env, channel, now)
            else:
                # HTTP has no redelivery: dispatch first, remember after (a retried POST re-dispatches)
                prior = store.seen(env["event_id"])
            if prior is None or (redelivered and prior.get("hash") == digest(env)):
                self.metrics.start_trace(env["event_id"])  # the dispatched event carries the trace on
                self.dispatch(env["type"], env)
                if channel != "amqp":
                    store.remember(env, channel, now)
                INGRESS_ACCEPTED.labels(channel, bounded("dept", env["dept"]), env["type"]).inc()
                return {"event_id": env["event_id"], "status": "accepted"}
            if prior.get("hash") == digest(env):
                INGRESS_DUPLICATES.labels(channel, bounded("dept", env["dept"])).inc()
                return {"event_id": env["event_id"], "status": "duplicate"}
            result = Refused([{"field": "event_id", "rule": "event_id_conflict",
                               "message": "相同 event_id 已用于内容不同的事件"}],
                             dept=env["dept"], event_id=env["event_id"], reason="event_id_conflict")
        raw_for_quarantine = json.dumps(raw, ensure_ascii=False) if isinstance(raw, dict) else raw
        qid = store.quarantine(raw_for_quarantine, result.violations, channel=channel, dept=result.dept,
                               routing_key=routing_key or "", received_at=now, event_id=result.event_id)
        rk_type = (routing_key or "").partition(".")[2]
        INGRESS_REJECTED.labels(channel, bounded("dept", authenticated_dept or result.dept),
                                bounded("event_type", rk_type, self.catalog.types()),
                                bounded("reason", result.reason)).inc()
        notice = {"event_id": result.event_id, "status": "rejected", "reason": result.reason,
                  "violations": result.violations, "quarantine_id": qid, "channel": channel,
                  "routing_key": routing_key, "rejected_at": now.isoformat()}
        if channel == "amqp":
            self.reject(result.dept, notice)
        return notice

    @safe_http("POST", "/api/v1/events")
    def post_events(self, request):
        """One event (JSON object) or a batch (JSON array) over HTTP."""
        body = request.get_data()
        max_bytes = int(config.get("INGRESS_MAX_BYTES"))
        max_batch = int(config.get("INGRESS_MAX_BATCH"))
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
                res = self._process(body, channel="http", authenticated_dept=dept)
                return json_response({"results": [res]}, 400)
            if len(items) > max_batch:
                return error(413, "max_batch", f"一次最多提交 {max_batch} 个事件")
            results = [self._process(self._reencode(item, max_bytes), channel="http", authenticated_dept=dept)
                       for item in items]
            status = 422 if any(r["status"] == "rejected" for r in results) else 202
            return json_response({"results": results}, status)
        res = self._process(body, channel="http", authenticated_dept=dept)
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
            with eventlet.Timeout(float(config.get("STATUS_RPC_TIMEOUT") or 3), False):
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
    def _reencode(item, max_bytes: int):
        """Batch items are re-encoded so each is size-checked like a single message."""
        return json.dumps(item, ensure_ascii=False).encode() if not isinstance(item, (bytes, str)) else item

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
        try:
            envelope = self.catalog.decode(doc.get("body") or "")
            self.catalog.validate(envelope, direction=None)
        except ContractError as exc:
            store.finish_replay(dl_id, "refused", now, refused_violations=exc.to_list())
            return {"ok": False, "error": {"code": "contract_violation", "field": exc.violations[0].field,
                                           "message": "死信不符合事件契约，拒绝重放", "violations": exc.to_list()}}
        # the original routing key and user ride along, signed (an ingress replay keeps its department)
        headers = replay_headers(doc["queue"], stored_headers(doc.get("headers")), doc["body"].encode("utf-8"))
        try:
            pub = AmqpPublisher(config.get("AMQP_URI"), use_confirms=True)
            pub.publish(doc["body"].encode("utf-8"), exchange="", routing_key=doc["queue"], headers=headers,
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
        return metrics_response()

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
