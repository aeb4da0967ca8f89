"""The publisher client and the `zhifa` CLI against a real gateway, broker and database."""
import io
import json
import uuid

import pymongo
import pytest
import requests

from contracts import asyncapi
from services import cli
from services.client import HttpPublisher, Publisher, Result, complete_envelope, stable_event_id
from services.gateway.service import GatewayService
from services.kernel.messaging import declare_topology
from services.provision import provision_dept
from tests.helpers import officer_registered, wait_for


@pytest.fixture
def dept(servers, vhost, zhifa_config, container_factory):
    """A running gateway and one provisioned department with its AMQP URI and HTTP token."""
    container_factory(GatewayService).start()
    name = f"511322-c{uuid.uuid4().hex[:8]}"
    made = provision_dept(name, f"pw-{uuid.uuid4().hex[:8]}", mgmt_uri=servers["RABBIT_MGMT_URI"],
                          amqp_uri=zhifa_config["AMQP_URI"], mongo_uri=zhifa_config["MONGO_URI"],
                          db_prefix=zhifa_config["DB_PREFIX"])
    scheme, rest = zhifa_config["AMQP_URI"].split("://", 1)
    yield {"name": name, "amqp": f"{scheme}://{name}:{made.password}@{rest.split('@', 1)[1]}",
           "token": made.token, "base": f"http://{zhifa_config['WEB_SERVER_ADDRESS']}", "config": zhifa_config}
    requests.delete(f"{vhost['mgmt']}/api/users/{name}", auth=vhost["auth"], timeout=10)


def accepted_ids(dept) -> set[str]:
    client = pymongo.MongoClient(dept["config"]["MONGO_URI"], serverSelectionTimeoutMS=3000)
    return {d["_id"] for d in client[f"{dept['config']['DB_PREFIX']}gateway"].accepted.find()}


def jsonl(tmp_path, lines: list, name: str = "events.jsonl") -> str:
    path = tmp_path / name
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines) + "\n",
                    encoding="utf-8")
    return str(path)


def mixed_file(tmp_path, d: str):
    """Line 1 complete and valid; 2 type+occurred_at+payload (id derived from content); 3 bad kind; 4 blank;
    5 another dept's event; 6 not JSON."""
    full = officer_registered(f"{d}-0001", dept=d)
    bare = {"type": "officer.registered", "occurred_at": "2026-03-01T09:00:00+08:00",
            "payload": {"officer_id": f"{d}-0002", "name": "王芳", "agency_id": f"A{d}", "kind": "auxiliary"}}
    bad = officer_registered(f"{d}-0003", dept=d)
    bad["payload"]["kind"] = "boss"
    other = officer_registered("511322-sthj-0004", dept="511322-sthj")
    return jsonl(tmp_path, [full, bare, bad, "", other, "{not json"]), full, bad, other


def run_cli(*argv) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = cli.main(list(argv), out=out)
    return code, out.getvalue().splitlines()


def test_cli_publishes_jsonl_over_amqp_and_reports_each_event(dept, tmp_path):
    d = dept["name"]
    path, full, bad, other = mixed_file(tmp_path, d)
    code, lines = run_cli("publish", path, "--dept", d, "--amqp-uri", dept["amqp"], "--settle", "1.5",
                          "--batch-size", "2")
    assert code == 1
    rows = {int(line.split()[1]): line for line in lines if line.startswith("line ")}
    assert sorted(rows) == [1, 2, 3, 5, 6]
    assert rows[1].split()[2:4] == [full["event_id"], "accepted"]
    assert rows[2].split()[3] == "accepted"
    assert rows[3].split()[2:4] == [bad["event_id"], "rejected"] and "payload.kind:allowed" in rows[3]
    assert "reason=allowed" in rows[3] and "quarantine_id=" in rows[3]
    assert rows[5].split()[2:4] == [other["event_id"], "rejected"] and "dept:dept_mismatch" in rows[5]
    assert rows[6].split()[3] == "invalid" and "$message:malformed_json" in rows[6]
    assert lines[-1].startswith("合计 5 条")
    filled_id = rows[2].split()[2]
    uuid.UUID(filled_id)
    assert wait_for(lambda: accepted_ids(dept) >= {full["event_id"], filled_id})
    assert bad["event_id"] not in accepted_ids(dept)
    # re-running the same file sends the same events (same ids; the gateway drops them as duplicates)
    before = accepted_ids(dept)
    _, again = run_cli("publish", path, "--dept", d, "--amqp-uri", dept["amqp"], "--settle", "1.5")
    rerun = {int(line.split()[1]): line for line in again if line.startswith("line ")}
    assert rerun[2].split()[2] == filled_id and rerun[1].split()[2] == full["event_id"]
    assert accepted_ids(dept) == before


def test_publisher_api_results_in_order_with_late_confirm_and_retries(dept, monkeypatch):
    d = dept["name"]
    events = [officer_registered(f"{d}-{i:04d}", dept=d) for i in range(5)]
    events[2]["payload"]["name"] = ""  # minlength 1
    sleeps = []
    pub = Publisher(dept["amqp"], d, f"{d}-system", settle=1.5, batch_size=2, backoff=0.01, sleep=sleeps.append)
    # the first batch's connection "breaks" after sending: the publisher reconnects and sends again
    real_send, calls = Publisher._send, []

    def flaky_send(self, chunk):
        calls.append(len(chunk))
        real_send(self, chunk)
        if len(calls) == 1:
            raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(Publisher, "_send", flaky_send)
    with pub:
        results = pub.publish(events)
    assert [r.status for r in results] == ["accepted", "accepted", "rejected", "accepted", "accepted"]
    assert [r.index for r in results] == [0, 1, 2, 3, 4]
    assert results[2].violations[0] == {"field": "payload.name", "rule": "minlength",
                                         "message": results[2].violations[0]["message"]}
    assert len(sleeps) == 1 and calls[:2] == [2, 2]
    assert wait_for(lambda: accepted_ids(dept) >= {e["event_id"] for i, e in enumerate(events) if i != 2})


def test_http_mode_returns_the_gateways_verdicts(dept, tmp_path):
    d = dept["name"]
    path, full, bad, other = mixed_file(tmp_path, d)
    code, lines = run_cli("publish", path, "--dept", d, "--http", dept["base"], "--token", dept["token"])
    assert code == 1
    statuses = [line.split()[3] for line in lines if line.startswith("line ")]
    assert statuses == ["accepted", "accepted", "rejected", "rejected", "invalid"]
    # the same file again: the complete event is a duplicate (same event_id), nothing is lost
    pub = HttpPublisher(dept["base"], d, f"{d}-system", token=dept["token"])
    [again] = pub.publish([full])
    assert again.status == "duplicate" and again.ok
    with pytest.raises(Exception) as refused:
        HttpPublisher(dept["base"], d, "x", token="zf_wrong", max_retries=0).publish([full])
    assert "认证" in str(refused.value)


def test_connection_errors_are_retried_with_backoff_then_reported(free_port):
    sleeps = []
    pub = Publisher(f"amqp://guest:guest@127.0.0.1:{free_port()}/", "511322-scjg", "x", max_retries=3,
                    backoff=0.1, max_backoff=0.25, connect_timeout=1, sleep=sleeps.append)
    results = pub.publish([officer_registered("511322-scjg-0001")])
    assert [(r.status, r.reason) for r in results] == [("failed", "connection_error")]
    assert len(sleeps) == 3
    assert 0.08 <= sleeps[0] <= 0.1 and 0.16 <= sleeps[1] <= 0.2 and 0.2 <= sleeps[2] <= 0.25
    http = HttpPublisher(f"http://127.0.0.1:{free_port()}", "511322-scjg", "x", max_retries=2, backoff=0.01,
                         sleep=sleeps.append)
    assert http.publish([officer_registered("511322-scjg-0001")])[0].reason == "connection_error"


def test_unroutable_when_no_gateway_ever_bound_the_ingress(vhost):
    declare_topology(vhost["amqp_uri"])
    with Publisher(vhost["amqp_uri"], "511322-scjg", "x", settle=0.2) as pub:
        [result] = pub.publish([officer_registered("511322-scjg-0001")])
    assert (result.status, result.reason) == ("failed", "unroutable")


def test_validate_flags_bad_lines_with_field_and_rule(tmp_path):
    good = officer_registered("511322-scjg-0001")
    bad = officer_registered("511322-scjg-0002")
    bad["payload"]["kind"] = "boss"
    del bad["payload"]["name"]
    path = jsonl(tmp_path, [good, bad, "[1]"])
    code, lines = run_cli("validate", path)
    assert code == 1
    assert lines[0].split()[:4] == ["line", "1", good["event_id"], "valid"]
    assert lines[1].split()[:4] == ["line", "2", bad["event_id"], "invalid"]
    assert "payload.kind:allowed" in lines[1] and "payload.name:required" in lines[1]
    assert "$message:not_an_object" in lines[2]

    code, lines = run_cli("validate", path, "--json")
    rows = [json.loads(line) for line in lines]
    assert [(r["line"], r["status"]) for r in rows] == [(1, "valid"), (2, "invalid"), (3, "invalid")]
    assert {"field": "payload.kind", "rule": "allowed"}.items() <= rows[1]["violations"][0].items()

    bare = jsonl(tmp_path, [{"type": "officer.registered", "occurred_at": good["occurred_at"],
                             "payload": good["payload"]}], "bare.jsonl")
    assert run_cli("validate", bare)[0] == 1
    assert run_cli("validate", bare, "--dept", "511322-scjg")[0] == 0
    code, lines = run_cli("validate", bare, "--dept", "511322-sthj")
    assert code == 0  # the filled dept is the given one; a payload names no dept
    code, lines = run_cli("validate", path, "--dept", "511322-sthj")
    assert "dept:dept_mismatch" in lines[0]


def test_envelope_helpers():
    filled = complete_envelope({"type": "officer.registered", "payload": {}}, dept="511322-scjg", source="s")
    assert list(filled) == ["event_id", "type", "schema_version", "occurred_at", "dept", "source", "payload"]
    assert filled["schema_version"] == 1 and filled["dept"] == "511322-scjg" and filled["source"] == "s"
    kept = complete_envelope({"event_id": "x", "dept": "511322-sthj"}, dept="511322-scjg", source="s")
    assert (kept["event_id"], kept["dept"]) == ("x", "511322-sthj")
    assert stable_event_id("sys", "row-1") == stable_event_id("sys", "row-1") != stable_event_id("sys", "row-2")
    assert Result(0, None, "duplicate").ok and not Result(0, None, "rejected").ok


def test_asyncapi_from_cli_and_gateway(dept):
    out = io.StringIO()
    assert cli.main(["asyncapi"], out=out) == 0 and out.getvalue() == asyncapi.render()
    served = requests.get(f"{dept['base']}/api/v1/asyncapi.json", timeout=5)
    assert served.status_code == 200 and served.json() == json.loads(asyncapi.CHECKED_IN.read_text("utf-8"))
