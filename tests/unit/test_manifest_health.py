"""Suite health asks every declared service process, and only those."""
import json
import socket
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from services.kernel import manifest as m
from services.kernel.health import suite_health


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def serve(status: str, code: str = "200 OK"):
    def app(environ, start_response):
        start_response(code, [("Content-Type", "application/json")])
        return [json.dumps({"status": status, "services": {"x": status}}).encode()]

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
    finally:
        good.shutdown()
        bad.shutdown()
