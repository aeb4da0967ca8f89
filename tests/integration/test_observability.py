"""What the on-call operator relies on, on real servers: one trace id follows an event from the
ingress through every service that acts on it (in the log lines and in the AMQP headers), and
readiness follows the database — false while it is unreachable, true again once it is back."""
import json
import logging
import uuid

import pytest
import requests
from nameko import config as nameko_config

from services.gateway.service import GatewayService
from services.kernel.logs import JsonFormatter
from services.penalty.service import PenaltyService
from services.personnel.service import PersonnelService
from tests.helpers import (credential_issued, officer_registered, publish, start_ferretdb, stop_process, tcp_open,
                           wait_for)



class Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record):
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def captured():
    handler = Capture()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler.lines
    root.removeHandler(handler)
    root.setLevel(old)


def test_one_trace_id_follows_an_event_across_services(zhifa_config, container_factory, captured):
    for cls in (GatewayService, PersonnelService, PenaltyService):
        container_factory(cls).start()
    officer = "511322-scjg-7001"
    registered = officer_registered(officer)
    issued = credential_issued(officer, "川A5113227001")
    publish(zhifa_config["AMQP_URI"], [registered])
    # the officer applied first: the credential's facts share the officer's queue, and one batch holding both
    # would relay one officer.changed for the two, in the batch's first trace (the registration's)
    wait_for(lambda: any(line.get("logger") == "zhifa.access" and line.get("service") == "penalty"
                         for line in captured), timeout=20)
    publish(zhifa_config["AMQP_URI"], [issued])
    trace = uuid.UUID(issued["event_id"]).hex

    def handled_by():
        return {(line.get("service"), line.get("entrypoint")) for line in captured
                if (line.get("trace_id") == trace or trace in (line.get("trace_ids") or ()))
                and line.get("logger") == "zhifa.access"}
    # (the gateway's access line carries the trace it started for the admitted event; a batch worker's
    # line continues its first message's trace and names every message's in `trace_ids`)

    # personnel applies the credential; penalty receives the officer.changed it caused
    seen = wait_for(lambda: (s := handled_by()) and any(svc == "penalty" for svc, _ in s) and s, timeout=20)
    services = {svc for svc, _ in seen}
    assert {"gateway", "personnel", "penalty"} <= services, seen
    lines = [line for line in captured if line.get("trace_id") == trace]
    assert all(line.get("event_id") for line in lines if line.get("service") == "personnel")
    # the other event has its own trace: nothing of it is mixed in
    other = uuid.UUID(registered["event_id"]).hex
    assert not any(line.get("trace_id") == other and line.get("event_id") == issued["event_id"] for line in captured)
    # no empty labels in what the process exports
    metrics = requests.get(f"http://{zhifa_config['WEB_SERVER_ADDRESS']}/metrics", timeout=5).text
    assert 'event_type=""' not in metrics
    assert "zhifa_business_gauge" not in metrics


def test_readiness_is_false_while_the_database_is_away_and_true_again_after(
        zhifa_config, container_factory, tmp_path, free_port):
    port, metrics_port = free_port(), free_port()
    state = tmp_path / "ferretdb"
    db = start_ferretdb(tmp_path, port, state)
    try:
        wait_for(lambda: tcp_open(port), timeout=20)
        patch = nameko_config.patch({"MONGO_URI": f"mongodb://127.0.0.1:{port}/", "MONGO_TIMEOUT_MS": 1000,
                                     "METRICS_PORT": metrics_port}, clear=False)
        patch.start()
        try:
            import services.kernel.metrics as metrics
            import services.kernel.mongo as mongo

            mongo._probe_client = None          # this test's database, not an earlier test's
            metrics._CHECK_CACHE.clear()
            container_factory(GatewayService).start()
            container_factory(PersonnelService).start()   # a service with plugins: /health shows the preset
            base = f"http://{zhifa_config['WEB_SERVER_ADDRESS']}"
            ready = wait_for(lambda: (r := requests.get(f"{base}/health/ready", timeout=5)).status_code == 200
                             and r.json(), timeout=20)
            assert ready["dependencies"]["database"]["status"] == "ok"
            assert ready["dependencies"]["broker"]["status"] == "ok"
            assert ready["preset"]["name"] == "seed001" and ready["preset"]["problems"] == []

            db.terminate()
            db.wait(timeout=10)
            down = wait_for(lambda: (r := requests.get(f"{base}/health/ready", timeout=10)).status_code == 503
                            and r.json(), timeout=20)
            assert down["dependencies"]["database"]["status"] == "unreachable"
            assert down["dependencies"]["broker"]["status"] == "ok"
            assert requests.get(f"{base}/health/live", timeout=5).status_code == 200  # alive: do not restart

            db = start_ferretdb(tmp_path, port, state)
            wait_for(lambda: requests.get(f"{base}/health/ready", timeout=10).status_code == 200, timeout=30)
        finally:
            patch.stop()
            mongo._probe_client = None
            metrics._CHECK_CACHE.clear()
    finally:
        stop_process(db)


def test_a_publishers_headers_do_not_travel_into_the_suite_but_its_traceparent_does(zhifa_config, container_factory):
    from kombu import Connection, Exchange, Queue

    from services.kernel import bundles

    container_factory(GatewayService).start()
    env = officer_registered("511322-scjg-7002")
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    with Connection(zhifa_config["AMQP_URI"]) as conn:
        # (`#`: the event comes alone, or in personnel's bundle — services/kernel/bundles.py)
        queue = Queue(f"t-relay-{uuid.uuid4().hex[:6]}", exchange=Exchange("gateway.events", type="topic", durable=True),
                      routing_key="#", auto_delete=False)
        queue(conn.channel()).declare()
        exchange = Exchange("ingress", type="topic", durable=True)
        with Connection(zhifa_config["AMQP_URI"]) as pub:
            pub.Producer().publish(json.dumps(env).encode(), exchange=exchange, routing_key=f"{env['dept']}.officer.registered",
                                   content_type="application/json", serializer=None,
                                   headers={"x-evil": "z" * 2000, "nameko.call_id_stack": ["forged"],
                                            "traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
        simple = conn.SimpleQueue(queue)
        try:
            msg = simple.get(timeout=10)
            headers = dict(msg.headers or {})
            key, body = msg.delivery_info["routing_key"], json.loads(msg.body)
            msg.ack()
        finally:
            simple.close()
    assert not any("evil" in k for k in headers), headers
    assert headers.get("nameko.call_id_stack") != ["forged"]
    if bundles.is_bundle_key(key):  # the event's own trace travels beside it in the bundle
        [(traceparent, envelope)] = bundles.parts(body)
        assert envelope["event_id"] == env["event_id"] and "nameko.traceparent" not in headers
    else:
        traceparent = headers["nameko.traceparent"]
    assert traceparent.startswith(f"00-{trace}-")
