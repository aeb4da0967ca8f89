"""The operator's view of the whole suite (`GET /api/v1/suite-health`, the console's 运维 page) through the
real API: every declared service process is asked for its /health at once, and each row says what that
process answered — or why it went unheard. Three declared processes here are real HTTP servers answering
as a healthy, a sick and a stopped process would; the suite's own services run inside this test's process
and serve no health port, so their rows are whatever their declared ports give."""
from __future__ import annotations

import time

from services.kernel import manifest as m
from tests.api_kit import start_api
from tests.unit.test_manifest_health import closed_port, serve

DEPS_OK = {"database": {"status": "ok", "detail": "ok"}, "broker": {"status": "ok", "detail": "ok"}}
DEPS_SICK = {"database": {"status": "unreachable", "detail": "ServerSelectionTimeoutError"},
             "broker": {"status": "ok", "detail": "ok"}}


def test_the_operator_sees_every_declared_process_and_why_one_went_unheard(zhifa_config, container_factory):
    good = serve("ok", dependencies=DEPS_OK, plugins={"status": "ok", "failures": 0})
    sick = serve("degraded", "503 Service Unavailable", dependencies=DEPS_SICK)
    fakes = (m.ServiceManifest("zz-good", "健康的进程", "x:A", metrics_port=good.server_port, order=99),
             m.ServiceManifest("zz-sick", "连不上数据库的进程", "x:B", metrics_port=sick.server_port, order=99),
             m.ServiceManifest("zz-stopped", "已停止的进程", "x:C", metrics_port=closed_port(), order=99))
    kit = start_api(zhifa_config, container_factory, SUITE_HEALTH_TIMEOUT_SECONDS=1)
    try:
        for fake in fakes:
            m.register(fake)
        started = time.monotonic()
        resp = kit.get("/api/v1/suite-health", as_="ops")
        assert time.monotonic() - started < 5, "every process is asked at once, each for at most its timeout"
        assert resp.status_code == 200, resp.text  # a sick process is the answer's content, not the route's failure
        doc = resp.json()
        assert doc["status"] == "degraded" and doc["layout"] == "local"
        declared = [name for d in m.manifests() for name, _, port in m.service_processes(d) if port]
        assert [row["process"] for row in doc["processes"]] == declared  # each once, in the declarations' order
        rows = {row["process"]: row for row in doc["processes"]}
        assert rows["zz-good"] == {"process": "zz-good", "service": "zz-good", "title": "健康的进程", "status": "ok",
                                   "url": f"http://127.0.0.1:{good.server_port}/health", "services": {"x": "ok"},
                                   "dependencies": DEPS_OK, "plugins": {"status": "ok", "failures": 0}}
        assert rows["zz-sick"]["status"] == "degraded" and rows["zz-sick"]["dependencies"] == DEPS_SICK
        assert rows["zz-stopped"]["status"] == "unreachable" and rows["zz-stopped"]["error"] == "ConnectionRefusedError"
        assert rows["penalty#2"]["title"] == rows["penalty"]["title"] == m.manifest("penalty").title
        # the supervisor may look too; a department user or an auditor may not, nor anyone without a login
        assert kit.get("/api/v1/suite-health", as_="sup").status_code == 200
        for who, code in (("scjg", 403), ("aud", 403), (None, 401)):
            assert kit.get("/api/v1/suite-health", as_=who).status_code == code, who
    finally:
        for fake in fakes:
            m.unregister(fake.name)
        good.shutdown()
        sick.shutdown()
