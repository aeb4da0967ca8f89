"""Failure handling on a real broker: retry with backoff, dead letters, replay; no silent drops."""
import json
import time

import pytest

from services.gateway.service import GatewayService
from services.kernel.messaging import PoisonMessage, reliable_event_handler
from kombu import Connection

from tests.api_kit import start_api
from tests.helpers import drain, officer_registered, publish, rejection_queue, wait_for

CALLS: dict[str, list[float]] = {}
FAIL_TIMES: dict[str, int] = {}


class FlakyService:
    """Fails the first FAIL_TIMES[officer_id] deliveries of an event, then succeeds."""

    name = "flaky"

    @reliable_event_handler("gateway", "officer.registered")
    def handle(self, envelope):
        officer_id = envelope["payload"]["officer_id"]
        CALLS.setdefault(officer_id, []).append(time.monotonic())
        if officer_id.endswith("poison"):
            raise PoisonMessage("无法处理的事实")
        if len(CALLS[officer_id]) <= FAIL_TIMES.get(officer_id, 0):
            raise ConnectionError("database unavailable")


@pytest.fixture
def suite(zhifa_config, container_factory):
    CALLS.clear()
    FAIL_TIMES.clear()
    for cls in (GatewayService, FlakyService):
        container_factory(cls).start()
    return {"base": f"http://{zhifa_config['WEB_SERVER_ADDRESS']}", "amqp": zhifa_config["AMQP_URI"],
            "api": start_api(zhifa_config, container_factory)}


def dead_letters(suite):
    """Dead letters as the operator lists them through the HTTP API."""
    return suite["api"].get("/api/v1/dead-letters", as_="ops").json()["items"]


def test_transient_failure_is_retried_with_backoff_not_dropped(suite):
    FAIL_TIMES["511322-scjg-0101"] = 2  # retry delays are 200 ms and 400 ms in tests
    publish(suite["amqp"], [officer_registered("511322-scjg-0101")])
    calls = wait_for(lambda: len(CALLS.get("511322-scjg-0101", [])) >= 3 and CALLS["511322-scjg-0101"], timeout=10)
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert gaps[0] >= 0.18 and gaps[1] >= 0.38  # backoff, not a hot loop
    time.sleep(0.5)
    assert len(CALLS["511322-scjg-0101"]) == 3 and dead_letters(suite) == []


def test_persistent_failure_is_dead_lettered_then_replayed(suite):
    FAIL_TIMES["511322-scjg-0102"] = 3  # one more failure than there are retries
    env = officer_registered("511322-scjg-0102")
    publish(suite["amqp"], [env])
    [dl] = wait_for(lambda: dead_letters(suite), timeout=10)
    assert dl["service"] == "flaky" and dl["entrypoint"] == "handle"
    assert "traceback" not in dl and "headers" not in dl and "ConnectionError" not in dl.get("error", "")
    assert dl["event"] == {k: env[k] for k in ("event_id", "type", "schema_version", "dept", "source", "occurred_at")}
    assert "body" not in dl and "payload" not in str(dl)  # operators see no case or officer data
    assert len(CALLS["511322-scjg-0102"]) == 3

    assert suite["api"].post(f"/api/v1/dead-letters/{dl['_id']}/replay", as_="sup").status_code == 403
    resp = suite["api"].post(f"/api/v1/dead-letters/{dl['_id']}/replay", as_="ops")
    assert resp.status_code == 200, resp.text
    wait_for(lambda: len(CALLS["511322-scjg-0102"]) == 4, timeout=5)  # the replay succeeds
    assert dead_letters(suite)[0]["status"] == "replayed"
    again = suite["api"].post(f"/api/v1/dead-letters/{dl['_id']}/replay", as_="ops")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_replayed"


def test_poison_message_is_dead_lettered_at_once_and_its_publisher_told(suite):
    env = officer_registered("511322-scjg-poison")
    with Connection(suite["amqp"]) as conn:
        queue = rejection_queue(conn, "511322-scjg")
        publish(suite["amqp"], [env])
        [notice] = drain(conn, queue, 1)
    assert (notice["event_id"], notice["status"], notice["reason"]) == (env["event_id"], "refused", "domain_refused")
    assert notice["violations"][0]["message"] == "无法处理的事实"
    [dl] = wait_for(lambda: dead_letters(suite), timeout=10)
    # the domain's reason, structured; no exception name (logs only)
    assert dl["error"] == "domain_refused: 无法处理的事实" and notice["dead_letter_id"] == dl["_id"]
    assert len(CALLS["511322-scjg-poison"]) == 1
    # counted for the operator: which service refused what from which department, and why
    from prometheus_client import REGISTRY
    refused = REGISTRY.get_sample_value("zhifa_ingress_refused_total", {
        "service": "flaky", "dept": "511322-scjg", "event_type": "officer.registered", "reason": "domain_refused"})
    assert refused and refused >= 1
