"""Suite health asks every declared service process, and only those."""
import json
import socket
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from services.kernel import manifest as m
from services.kernel.health import suite_health, suite_report


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def serve(status: str, code: str = "200 OK", body: bytes | None = None, **extra):
    """A /health answering `status` (and `extra` keys) with HTTP `code`; `body`: these bytes instead."""
    def app(environ, start_response):
        start_response(code, [("Content-Type", "application/json")])
        return [body if body is not None else json.dumps({"status": status, "services": {"x": status}, **extra}).encode()]

    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def only(monkeypatch):
    """Replace the declared services with the given ones for one test."""
    def declare(*declared):
        monkeypatch.setattr(m, "entry_points", lambda group: [])
        for d in declared:
            m.register(d)
        return declared
    yield declare
    for name in list(m._extra):
        m.unregister(name)
    monkeypatch.undo()
    m.manifests.cache_clear()


def test_every_declared_process_is_asked(only):
    good, bad = serve("ok"), serve("degraded", "503 Service Unavailable")
    try:
        only(m.ServiceManifest("a", "甲", "x:A", metrics_port=good.server_port),
             m.ServiceManifest("b", "乙", "x:B", http_facing=True, http_port=good.server_port))
        code, doc = suite_health()
        assert code == 200 and set(doc["services"]) == {"a", "b"}
        assert doc["services"]["a"]["services"] == {"x": "ok"}
        only(m.ServiceManifest("c", "丙", "x:C", metrics_port=bad.server_port),
             m.ServiceManifest("d", "丁", "x:D", metrics_port=closed_port()))
        code, doc = suite_health(timeout=1)
        assert code == 503 and doc["status"] == "degraded"
        assert doc["services"]["c"]["status"] == "degraded" and doc["services"]["d"]["status"] == "unreachable"
        assert doc["services"]["d"]["error"] == "ConnectionRefusedError"  # (urllib's URLError unwrapped)
    finally:
        good.shutdown()
        bad.shutdown()


def test_each_layout_reaches_the_processes_where_that_deployment_puts_them(only):
    only(m.ServiceManifest("a", "甲", "x:A", metrics_port=9301),
         m.ServiceManifest("p", "乙", "x:P", metrics_port=9302, partition_key="case_id"),
         m.ServiceManifest("w", "丙", "x:W", http_facing=True, http_port=8090),
         m.ServiceManifest("q", "丁", "x:Q"))  # serves no /health: never asked
    partitions = {"p": 2}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("services.kernel.partitions.count_for", lambda manifest: partitions.get(manifest.name, 1))
        assert m.health_targets() == {"a": "http://127.0.0.1:9301/health", "p": "http://127.0.0.1:9302/health",
                                      "p#2": f"http://127.0.0.1:{9302 + m.PARTITION_PORT_STEP}/health",
                                      "w": "http://127.0.0.1:8090/health"}
        assert m.health_targets(layout="compose") == {
            "a": "http://a:9301/health", "p": "http://p:9302/health",
            "p#2": f"http://p-2:{9302 + m.PARTITION_PORT_STEP}/health", "w": "http://w:8090/health"}
        # Kubernetes: each service's Service on the service's port (a StatefulSet's pods all use it)
        assert m.health_targets(layout="kubernetes") == {"a": "http://a:9301/health", "p": "http://p:9302/health",
                                                         "w": "http://w:8090/health"}
        with pytest.raises(ValueError, match="unknown health layout 'swarm'"):
            m.health_targets(layout="swarm")


def test_a_process_answer_keeps_its_dependencies_and_plugins_and_nothing_it_cannot_read(only):
    deps = {"database": {"status": "unreachable", "detail": "ServerSelectionTimeoutError"},
            "broker": {"status": "ok", "detail": "ok"}}
    sick = serve("degraded", "503 Service Unavailable", dependencies=deps, plugins={"status": "ok", "failures": 0},
                 secret="not passed on")
    odd = serve("ok", body=b'["not", "an", "object"]')
    try:
        only(m.ServiceManifest("a", "甲", "x:A", metrics_port=sick.server_port),
             m.ServiceManifest("b", "乙", "x:B", metrics_port=odd.server_port))
        report = suite_report()
        assert report["status"] == "degraded" and report["layout"] == "local"
        a, b = report["processes"]
        assert (a["process"], a["service"], a["title"], a["status"]) == ("a", "a", "甲", "degraded")
        assert a["dependencies"] == deps and a["plugins"]["failures"] == 0 and "secret" not in a
        assert (b["process"], b["status"]) == ("b", "ok") and set(b) == {"process", "service", "title", "status", "url"}
    finally:
        sick.shutdown()
        odd.shutdown()
