"""What only a service can refuse reaches every publisher (real RabbitMQ + FerretDB).

AMQP publishers get a `refused` notice on `ingress.rejections` that validates against the AsyncAPI
document's `RefusedNotice` schema, with the domain's violations structured (field, rule, message);
HTTP publishers ask `GET /api/v1/events/<event_id>`: received / applied / rejected / refused /
dead_lettered — their own events only.
"""
from __future__ import annotations

import json
import uuid

import jsonschema_rs
import pytest
import requests
from kombu import Connection

from contracts.asyncapi import document
from services.common.errors import DomainError
from services.gateway.service import GatewayService
from services.kernel.messaging import PoisonMessage, reliable_event_handler
from services.personnel.service import PersonnelService
from tests.helpers import SCJG, STHJ, drain, envelope, officer_registered, publish, rejection_queue, wait_for


class Stubborn:
    """A real nameko service that refuses one kind of fact the way a domain does, and fails another."""

    name = "stubborn"

    @reliable_event_handler("gateway", "item.published")
    def handle(self, env):
        if env["payload"]["name"] == "refuse":
            try:
                raise DomainError("该执法事项属于其他部门，本部门不能发布", code="not_owner",
                                  field="payload.code")
            except DomainError as exc:
                raise PoisonMessage(f"{exc.code}: {exc}") from exc
        raise ConnectionError("database unavailable")  # every attempt: dead-lettered after the retries


def item(name: str, dept: str = SCJG) -> dict:
    """An item.published fact (owned by the registry, which does not run here: Stubborn takes it)."""
    from contracts.catalog import Catalog

    example = next(c.example for (t, _), c in Catalog().contracts.items() if t == "item.published")
    return envelope("item.published", {**example, "name": name}, dept)


@pytest.fixture
def suite(zhifa_config, container_factory):
    for cls in (GatewayService, PersonnelService, Stubborn):
        container_factory(cls).start()
    return {"base": f"http://{zhifa_config['WEB_SERVER_ADDRESS']}", "amqp": zhifa_config["AMQP_URI"]}


def status(suite, event_id: str, dept: str | None = SCJG):
    headers = {"X-Zhifa-Dept": dept} if dept else {}
    return requests.get(f"{suite['base']}/api/v1/events/{event_id}", headers=headers, timeout=10)


def post(suite, env, dept: str = SCJG):
    return requests.post(f"{suite['base']}/api/v1/events", json=env, headers={"X-Zhifa-Dept": dept}, timeout=10)


def refused_schema() -> jsonschema_rs.Validator:
    doc = document()
    return jsonschema_rs.validator_for({"$ref": "#/components/schemas/RefusedNotice",
                                        "components": doc["components"]})


def test_the_facts_used_here_pass_the_gateway():
    from contracts.catalog import Catalog

    Catalog().validate(item("refuse"))  # the test's facts pass the gateway: only the service refuses


def test_refused_notice_matches_the_asyncapi_schema_and_carries_structured_violations(suite):
    env = item("refuse")
    with Connection(suite["amqp"]) as conn:
        queue = rejection_queue(conn, SCJG)
        publish(suite["amqp"], [env])
        [notice] = drain(conn, queue, 1)
    errors = [e.message for e in refused_schema().iter_errors(notice)]
    assert errors == [], errors
    assert notice["status"] == "refused" and notice["event_id"] == env["event_id"]
    assert notice["violations"] == [{"field": "payload.code", "rule": "not_owner",
                                     "message": "该执法事项属于其他部门，本部门不能发布"}]
    assert (notice["service"], notice["dept"], notice["type"]) == ("stubborn", SCJG, "item.published")
    # the schema is not a rubber stamp: a flattened notice of the old kind fails it
    flattened = {**notice, "violations": [{"field": "payload", "rule": "domain", "message": "x"}], "extra": 1}
    assert list(refused_schema().iter_errors(flattened))


def test_http_publisher_learns_applied_rejected_refused_and_dead_lettered(suite):
    applied = officer_registered("511322-scjg-0950")
    assert post(suite, applied).status_code == 202
    answer = wait_for(lambda: (r := status(suite, applied["event_id"]).json()).get("status") == "applied" and r,
                      timeout=15)
    assert answer["service"] == "personnel" and answer["type"] == "officer.registered"

    bad = officer_registered("511322-scjg-0951")
    bad["payload"]["kind"] = "boss"
    assert post(suite, bad).status_code == 422
    rejected = status(suite, bad["event_id"]).json()
    assert rejected["status"] == "rejected"
    assert rejected["violations"][0]["field"] == "payload.kind" and rejected["violations"][0]["rule"] == "allowed"

    refused = item("refuse")
    assert post(suite, refused).status_code == 202  # the gateway cannot know; the service refuses it
    answer = wait_for(lambda: (r := status(suite, refused["event_id"]).json()).get("status") == "refused" and r,
                      timeout=15)
    assert answer["violations"] == [{"field": "payload.code", "rule": "not_owner",
                                     "message": "该执法事项属于其他部门，本部门不能发布"}]
    assert answer["dead_letter_id"] and answer["service"] == "stubborn"

    failing = item("fail")
    assert post(suite, failing).status_code == 202
    answer = wait_for(lambda: (r := status(suite, failing["event_id"]).json()).get("status") == "dead_lettered"
                      and r, timeout=15)
    text = json.dumps(answer, ensure_ascii=False)
    assert "ConnectionError" not in text and "database unavailable" not in text  # logs only


def test_status_is_for_the_sending_department_only(suite):
    env = officer_registered("511322-scjg-0952")
    assert post(suite, env).status_code == 202
    wait_for(lambda: status(suite, env["event_id"]).json().get("status") in ("received", "applied"))
    other = status(suite, env["event_id"], dept=STHJ)
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
    anonymous = status(suite, env["event_id"], dept=None)
    assert anonymous.status_code == 401
    assert status(suite, "not-a-uuid").status_code == 400
    assert status(suite, str(uuid.uuid4())).status_code == 404


def test_the_client_reports_refused_apart_from_rejected(suite):
    from services.client import HttpPublisher, Publisher

    refused, bad = item("refuse"), officer_registered("511322-scjg-0953")
    bad["payload"]["kind"] = "boss"
    with Publisher(suite["amqp"], SCJG, "scjg-test", settle=5.0) as pub:
        results = pub.publish([refused, bad])
    assert [r.status for r in results] == ["refused", "rejected"]
    assert results[0].violations[0]["rule"] == "not_owner" and results[0].dead_letter_id
    assert results[0].service == "stubborn" and not results[0].ok and results[0].label.startswith("已受理但")
    assert results[1].quarantine_id and results[1].dead_letter_id is None

    http = HttpPublisher(suite["base"], SCJG, "scjg-test")
    later = item("refuse")
    [posted] = http.publish([later])
    assert posted.status == "accepted"
    answer = wait_for(lambda: (r := http.status(later["event_id"])).get("status") == "refused" and r, timeout=15)
    assert answer["violations"][0]["rule"] == "not_owner"
    unknown = str(uuid.uuid4())
    assert http.status(unknown) == {"event_id": unknown, "status": "unknown"}
