"""Prometheus metrics as middleware, plus the per-process /metrics and /health server.

`Metrics` is a DependencyProvider that times every entrypoint through nameko's worker_setup /
worker_result hooks, continues the event's trace (services/kernel/tracing.py) and writes one access
log line per handled message; domain code and handlers never import prometheus_client. Processes
without an HTTP-facing service serve /metrics and /health on METRICS_PORT.

Exposition: a process exports only the families it has samples of (a process never shows another
service's families empty), and every label has a value (`event_type` is the handled event type
pattern, or the entrypoint kind: rpc, http, consumer, timer).

Health: `/health/live` answers 200 while the process runs its containers (restart it when not);
`/health/ready` (and `/health`) answers 200 only when every container runs and every registered
dependency (the database, the broker) answers — 503 with the failing dependency named otherwise,
and 200 again once it is back. Plugin failures are reported there too, without failing readiness
(a failed plugin is isolated, not allowed to stop the suite).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable, Iterable
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

from nameko.extensions import DependencyProvider
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

from services.kernel import config, gc_tuning, tracing

log = logging.getLogger("zhifa.metrics")

CALLS = Counter("zhifa_entrypoint_calls_total", "Entrypoint calls", ["service", "entrypoint", "event_type"])
ERRORS = Counter("zhifa_entrypoint_errors_total", "Entrypoint calls that raised",
                 ["service", "entrypoint", "event_type", "error"])
LATENCY = Histogram("zhifa_entrypoint_latency_seconds", "Entrypoint latency", ["service", "entrypoint", "event_type"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
INGRESS_ACCEPTED = Counter("zhifa_ingress_accepted_total", "Events accepted at the ingress",
                           ["channel", "dept", "event_type"])
INGRESS_REJECTED = Counter("zhifa_ingress_rejected_total", "Events rejected at the ingress (contracts, identity)",
                           ["channel", "dept", "event_type", "reason"])
INGRESS_DUPLICATES = Counter("zhifa_ingress_duplicates_total", "Duplicate events at the ingress", ["channel", "dept"])
INGRESS_REFUSED = Counter("zhifa_ingress_refused_total",
                          "Accepted events a service refused later (its publisher got a refused notice)",
                          ["service", "dept", "event_type", "reason"])

# Label values that come from outside (a department code, an event type, a rule) are bounded: an
# unknown or malformed value is "unknown", and at most MAX_LABEL_VALUES distinct values per label are
# kept per process (the rest count as "other") — a hostile publisher cannot blow up the series.
MAX_LABEL_VALUES = 500
_seen_values: dict[str, set] = {}
_LABEL_TEXT = __import__("re").compile(r"^[A-Za-z0-9_.:*-]{1,64}$")


def bounded(label: str, value, known=None) -> str:
    """A label value safe to export: well-formed, known when `known` is given, and within the cap."""
    if not isinstance(value, str) or not _LABEL_TEXT.match(value) or (known is not None and value not in known):
        return "unknown"
    seen = _seen_values.setdefault(label, set())
    if value not in seen:
        if len(seen) >= MAX_LABEL_VALUES:
            return "other"
        seen.add(value)
    return value
EVENTS_OUT = Counter("zhifa_events_dispatched_total", "Events dispatched", ["service", "type"])
FINDINGS = Counter("zhifa_findings_total", "Findings raised/resolved", ["service", "rule_id", "change"])
DEAD_LETTERS = Counter("zhifa_dead_letters_total", "Messages dead-lettered", ["service"])
FINDINGS_OPEN = Gauge("zhifa_findings_open", "Open findings by rule and severity (recounted from storage)",
                      ["service", "rule_id", "severity"])

OUTBOX_BACKLOG = Gauge("zhifa_outbox_backlog", "Aggregates with events saved but not yet relayed", ["service"])
OUTBOX_AGE = Gauge("zhifa_outbox_oldest_age_seconds", "Age of the oldest unrelayed outbox", ["service"])
SWEEP_LAG = Gauge("zhifa_deadline_sweep_lag_seconds",
                  "How far past its due date the oldest due aggregate was when the sweep reached it", ["service"])
SWEEP_JUDGED = Counter("zhifa_deadline_sweep_judged_total", "Aggregates the deadline sweep judged again", ["service"])
MARKED_DUE = Counter("zhifa_marked_due_total", "Aggregates made due now by a change their judgement may read "
                     "(the deadline sweep judges them again), by what changed; counted by penalty",
                     ["service", "cause"])
PLUGIN_FAILURES = Gauge("zhifa_plugin_failures", "Isolated plugin failures (distinct), by plugin and hook",
                        ["service", "plugin", "hook"])
DB_COMMANDS = Counter("zhifa_db_commands_total", "Database commands sent, by collection (per-key collections "
                      "folded to `<prefix>.*`) and command name", ["service", "collection", "command"])
# the statements write commands carry (a bulk of 50 updates is one command, 50 operations): FerretDB's
# work follows the operations, not the commands (docs/bench/history.md, ninth session)
DB_OPS = Counter("zhifa_db_ops_total", "Operations database commands carried: the documents of an insert, the "
                 "statements of an update or delete, 1 for any other command", ["service", "collection", "command"])
DB_COMMAND_SECONDS = Counter("zhifa_db_command_seconds_total", "Time spent waiting for database commands",
                             ["service", "collection", "command"])
PROJECTION_CACHE = Counter("zhifa_projection_cache_total", "Projection look-ups served from the process cache (hit), "
                           "read from the database (miss), entries dropped after a change (dropped), and aggregates "
                           "made due by an end check that could not tell which keys changed (unknown)",
                           ["service", "kind", "result"])
# how many messages one batch worker was handed (messaging.BatchCollector: the fact services' batch
# event handlers and the gateway's ingress); bucket bounds cover BATCH_MAX (150) and INGRESS_BATCH_MAX (50)
BATCH_MESSAGES = Histogram("zhifa_batch_messages", "Messages handed to one batch worker",
                           ["service", "entrypoint"], buckets=(1, 2, 5, 10, 20, 35, 50, 75, 100, 150))
DEPENDENCY_UP = Gauge("zhifa_dependency_up", "Whether a dependency answered its last readiness check",
                      ["service", "dependency"])

_HEALTH: dict[str, object] = {}
_CHECKS: dict[str, Callable[[], None]] = {}          # dependency -> check (raises when down)
_REPORTS: dict[str, Callable[[], dict]] = {}         # extra health sections (plugins)
_CHECK_CACHE: dict[str, tuple[float, bool, str]] = {}
CHECK_TTL_SECONDS = 2.0
ACCESS_LOG = logging.getLogger("zhifa.access")
_server_lock = threading.Lock()
_server_started = False


# the `event_type` label of a call whose entrypoint declares no event type: its kind, or "other"
ENTRYPOINT_KINDS = ("rpc", "http", "timer", "consumer")
# the labels of calls that are not messages taken from a queue (a consumer's are; so are the event types)
NOT_MESSAGES = frozenset(ENTRYPOINT_KINDS + ("other",)) - {"consumer"}


def _event_type(worker_ctx) -> str:
    """The handled event type pattern, or the entrypoint's kind — never an empty label."""
    ep = worker_ctx.entrypoint
    declared = getattr(ep, "event_type", None)
    if declared:
        return declared
    kind = type(ep).__name__.lower()
    for name in ENTRYPOINT_KINDS:
        if name in kind:
            return name
    return "other"


def _ping_broker() -> None:
    """Readiness check: the broker accepts a connection within a second."""
    from kombu import Connection

    with Connection(config.get("AMQP_URI"), connect_timeout=1) as conn:
        conn.ensure_connection(max_retries=1, timeout=1)


def register_dependency(name: str, check: Callable[[], None]) -> None:
    """A readiness check (raises when the dependency does not answer); cached CHECK_TTL_SECONDS."""
    _CHECKS[name] = check


def register_report(name: str, report: Callable[[], dict]) -> None:
    """An extra section of /health (informational: does not change readiness)."""
    _REPORTS[name] = report


def _check(name: str, check: Callable[[], None]) -> tuple[bool, str]:
    now = time.monotonic()
    cached = _CHECK_CACHE.get(name)
    if cached and now - cached[0] < CHECK_TTL_SECONDS:
        return cached[1], cached[2]
    try:
        check()
        ok, detail = True, "ok"
    except Exception as exc:  # any failure means "not ready"; the type only, no message text
        ok, detail = False, f"unreachable ({type(exc).__name__})"
    _CHECK_CACHE[name] = (now, ok, detail)
    for service in _HEALTH:
        DEPENDENCY_UP.labels(service, name).set(1 if ok else 0)
    return ok, detail


class Metrics(DependencyProvider):
    """Times every entrypoint of the service it is declared on."""

    def setup(self):
        self._started: dict[int, float] = {}
        _HEALTH[self.container.service_name] = "starting"
        register_dependency("broker", _ping_broker)
        config.check_numbers()  # (every numeric setting, before anything reads one)
        start_metrics_server(config.checked("METRICS_PORT"), str(config.get("METRICS_HOST")))

    def start(self):
        gc_tuning.tune(config.get("GC_THRESHOLDS"), bool(config.get("GC_FREEZE")))  # (once started: what
        # startup made is frozen; kernel/gc_tuning.py)
        _HEALTH[self.container.service_name] = "ok"

    def stop(self):
        # a stopped container leaves the process's health (a process whose containers all stopped
        # is neither live nor ready); in tests, a stopped container does not taint the next one
        _HEALTH.pop(self.container.service_name, None)

    def kill(self):
        _HEALTH.pop(self.container.service_name, None)

    def worker_setup(self, worker_ctx):
        self._started[id(worker_ctx)] = time.perf_counter()
        try:
            tracing.continue_trace(worker_ctx.data, worker_ctx.args)
        except Exception:  # correlation must never stop a message
            tracing.clear()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self._started.pop(id(worker_ctx), None)
        labels = (self.container.service_name, worker_ctx.entrypoint.method_name, _event_type(worker_ctx))
        batch = worker_ctx.args[0] if worker_ctx.args and isinstance(worker_ctx.args[0], list) else None
        if batch is not None and hasattr(worker_ctx.entrypoint, "handle_batch_result"):
            # a batch worker (messaging.BatchEventHandler): one call per message, an error per failed one
            from services.kernel.messaging import batch_outcomes

            CALLS.labels(*labels).inc(len(batch))
            failures = [o for o in batch_outcomes(len(batch), result, exc_info) if o is not None]
            for failure in failures:
                ERRORS.labels(*labels, type(failure[1]).__name__).inc()
            exc_info = exc_info or (failures[0] if failures else None)
        else:
            CALLS.labels(*labels).inc()
            if exc_info is not None:
                ERRORS.labels(*labels, type(exc_info[1]).__name__).inc()
        elapsed = time.perf_counter() - started if started is not None else None
        if elapsed is not None:
            LATENCY.labels(*labels).observe(elapsed)
        if labels[2] != "timer" and ACCESS_LOG.isEnabledFor(logging.INFO):
            ACCESS_LOG.info("handled %s.%s", labels[0], labels[1], extra={
                "service": labels[0], "entrypoint": labels[1], "event_type": labels[2],
                "outcome": "error" if exc_info is not None else "ok",
                "error": type(exc_info[1]).__name__ if exc_info is not None else None,
                "ms": round(elapsed * 1000, 2) if elapsed is not None else None,
                **({"messages": len(batch), "trace_ids": batch.trace_ids}  # (a batch: every message's trace)
                   if batch is not None and getattr(batch, "trace_ids", None) else {})})

    def worker_teardown(self, worker_ctx):
        tracing.clear()

    def get_dependency(self, worker_ctx):
        return WorkerObservation(worker_ctx)


class WorkerObservation:
    """What a worker may do with observation: start the trace of an admitted event (the gateway)."""

    def __init__(self, worker_ctx):
        self._ctx = worker_ctx

    def start_trace(self, event_id: str, incoming=None) -> str:
        """Trace an admitted event: the publisher's well-formed `traceparent` (continued at worker
        set-up) if there was one, else the event id's."""
        if incoming is None:
            incoming = self._ctx.data.get(tracing.TRACEPARENT)
        return tracing.start_trace(self._ctx.data, event_id, incoming)


def liveness() -> tuple[int, dict]:
    """Alive while its containers run (starting counts as alive; stopping does not)."""
    alive = bool(_HEALTH) and all(v in ("ok", "starting") for v in _HEALTH.values())
    return (200 if alive else 503), {"status": "alive" if alive else "dead", "services": dict(_HEALTH)}


def health() -> tuple[int, dict]:
    """Readiness: containers running and every registered dependency answering."""
    running = bool(_HEALTH) and all(v == "ok" for v in _HEALTH.values())
    deps = {}
    for name, check in list(_CHECKS.items()):
        ok, detail = _check(name, check)
        deps[name] = {"status": "ok" if ok else "unreachable", "detail": detail}
    ready = running and all(d["status"] == "ok" for d in deps.values())
    doc = {"status": "ok" if ready else "degraded", "services": dict(_HEALTH), "dependencies": deps}
    for name, report in list(_REPORTS.items()):
        try:
            doc[name] = report()
        except Exception as exc:
            doc[name] = {"status": "unknown", "error": type(exc).__name__}
    return (200 if ready else 503), doc


_PLUGIN_HOSTS: dict[str, object] = {}


def register_plugin_host(service: str, host) -> None:
    """A service's plugin host: its isolated failures go to /health and zhifa_plugin_failures."""
    _PLUGIN_HOSTS[service] = host
    register_report("plugins", plugin_report)


def plugin_report() -> dict:
    per_service = {svc: host.failure_report() for svc, host in _PLUGIN_HOSTS.items()}
    failing = sum(r["count"] for r in per_service.values())
    return {"status": "degraded" if failing else "ok", "failures": failing, "services": per_service}


def _refresh_plugin_gauge() -> None:
    for service, host in _PLUGIN_HOSTS.items():
        for failure in host.failure_report()["failures"]:
            PLUGIN_FAILURES.labels(service, failure["name"], failure["hook"] or "load").set(failure["count"])


class _WithSamples:
    """The default registry, less the families without a sample in this process; with `names`, only
    the families with a sample of one of those names (`/metrics?name[]=…`, as prometheus_client's own
    exposition filters)."""

    def __init__(self, names: frozenset[str] = frozenset()):
        self.names = names

    def collect(self):
        if not self.names or _DEPENDENCY_FAMILY in self.names or _PLUGIN_FAMILY in self.names:
            _refresh_plugin_gauge()
            for name, check in list(_CHECKS.items()):  # each scrape refreshes zhifa_dependency_up (cached)
                _check(name, check)
        for family in REGISTRY.collect():
            if family.samples and (not self.names or any(s.name in self.names for s in family.samples)):
                yield family


_EXPOSED = _WithSamples()
_DEPENDENCY_FAMILY, _PLUGIN_FAMILY = "zhifa_dependency_up", "zhifa_plugin_failures"  # (gauges: sample = family name)


def metrics_payload(names: Iterable[str] = ()) -> tuple[bytes, str]:
    """The /metrics page; with `names` (sample names, e.g. `zhifa_entrypoint_calls_total`) only the
    families holding them — a poller that reads one counter twice a second (`make bench`) then costs
    the service a fraction of a whole page's rendering."""
    wanted = frozenset(n for n in names if n)
    return generate_latest(_WithSamples(wanted) if wanted else _EXPOSED), CONTENT_TYPE_LATEST


def _app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/metrics":
        body, ctype = metrics_payload(parse_qs(environ.get("QUERY_STRING") or "").get("name[]", ()))
        start_response("200 OK", [("Content-Type", ctype)])
        return [body]
    if path in ("/health", "/health/ready", "/health/live"):
        code, doc = liveness() if path == "/health/live" else health()
        start_response(f"{code} {'OK' if code == 200 else 'Service Unavailable'}",
                       [("Content-Type", "application/json")])
        return [json.dumps(doc).encode()]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def start_metrics_server(port: int, host: str = "127.0.0.1") -> None:
    """Serve /metrics and /health once per process (a green thread under eventlet)."""
    global _server_started
    if port <= 0:
        return
    with _server_lock:
        if _server_started:
            return
        server = make_server(host, port, _app, handler_class=_Quiet)
        threading.Thread(target=server.serve_forever, name="zhifa-metrics", daemon=True).start()
        _server_started = True
        log.info("metrics on http://%s:%s/metrics", host, port)
