"""Prometheus metrics as middleware, plus the per-process /metrics and /health server.

`Metrics` is a DependencyProvider that times every entrypoint through nameko's worker_setup /
worker_result hooks; domain code and handlers never import prometheus_client. Processes
without an HTTP-facing service serve /metrics and /health on METRICS_PORT.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

from nameko.extensions import DependencyProvider
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from services.kernel import config

log = logging.getLogger("zhifa.metrics")

CALLS = Counter("zhifa_entrypoint_calls_total", "Entrypoint calls", ["service", "entrypoint", "event_type"])
ERRORS = Counter("zhifa_entrypoint_errors_total", "Entrypoint calls that raised",
                 ["service", "entrypoint", "event_type", "error"])
LATENCY = Histogram("zhifa_entrypoint_latency_seconds", "Entrypoint latency", ["service", "entrypoint", "event_type"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
INGRESS_ACCEPTED = Counter("zhifa_ingress_accepted_total", "Events accepted at the ingress", ["channel", "type"])
INGRESS_REJECTED = Counter("zhifa_ingress_rejected_total", "Events rejected at the ingress", ["channel", "reason"])
INGRESS_DUPLICATES = Counter("zhifa_ingress_duplicates_total", "Duplicate events at the ingress", ["channel"])
EVENTS_OUT = Counter("zhifa_events_dispatched_total", "Events dispatched", ["service", "type"])
FINDINGS = Counter("zhifa_findings_total", "Findings raised/resolved", ["service", "rule_id", "change"])
DEAD_LETTERS = Counter("zhifa_dead_letters_total", "Messages dead-lettered", ["service"])
FINDINGS_OPEN = Gauge("zhifa_findings_open", "Open findings by rule and severity (recounted from storage)",
                      ["service", "rule_id", "severity"])

_HEALTH: dict[str, object] = {}
_server_lock = threading.Lock()
_server_started = False


def _event_type(worker_ctx) -> str:
    ep = worker_ctx.entrypoint
    return getattr(ep, "event_type", None) or ""


class Metrics(DependencyProvider):
    """Times every entrypoint of the service it is declared on."""

    def setup(self):
        self._started: dict[int, float] = {}
        _HEALTH[self.container.service_name] = "starting"
        start_metrics_server(int(config.get("METRICS_PORT") or 0), str(config.get("METRICS_HOST")))

    def start(self):
        _HEALTH[self.container.service_name] = "ok"

    def stop(self):
        _HEALTH[self.container.service_name] = "stopping"

    def worker_setup(self, worker_ctx):
        self._started[id(worker_ctx)] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self._started.pop(id(worker_ctx), None)
        labels = (self.container.service_name, worker_ctx.entrypoint.method_name, _event_type(worker_ctx))
        CALLS.labels(*labels).inc()
        if started is not None:
            LATENCY.labels(*labels).observe(time.perf_counter() - started)
        if exc_info is not None:
            ERRORS.labels(*labels, type(exc_info[1]).__name__).inc()

    def get_dependency(self, worker_ctx):
        return self


def health() -> tuple[int, dict]:
    ok = bool(_HEALTH) and all(v == "ok" for v in _HEALTH.values())
    return (200 if ok else 503), {"status": "ok" if ok else "degraded", "services": dict(_HEALTH)}


def metrics_payload() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST


def _app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/metrics":
        body, ctype = metrics_payload()
        start_response("200 OK", [("Content-Type", ctype)])
        return [body]
    if path == "/health":
        code, doc = health()
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
