"""Personnel judges the facts that arrived together together (docs/consistency.md, rule 2), on real
RabbitMQ and FerretDB: an officer's facts delivered out of order raise no finding that the rest of
the batch resolves milliseconds later, while a finding that holds on the whole batch is raised
once the arrivals settled (`arrival_settle_seconds`; 20 s here, set by a department plugin, so a
loaded machine's delivery gaps stay inside one batch) at the next deadline sweep."""
from __future__ import annotations

from datetime import datetime, timedelta

import json
import time
from contextlib import contextmanager
from typing import Iterator

import pymongo
import pytest
from kombu import Connection, Exchange, Queue
from nameko import config as nameko_config

from plugins.hookspecs import hookimpl
from services.kernel.plugins import Plugins

from services.common.chinatime import CST
from services.gateway.service import GatewayService
from services.kernel.packing import unpack
from services.personnel.service import PersonnelService
from tests.helpers import SCJG, credential_issued, envelope, officer_registered, publish, wait_for

LEAVER, AUX = "511322-scjg-0801", "511322-scjg-0802"
FLICKER = "PER-CRED-HOLDER-INACTIVE:credential:川A5113220801"
HOLDS = "PER-AUX-CREDENTIAL:credential:川A5113220802"
SETTLE_S = 20


class Settle:
    """市场监管局 judges facts arriving within SETTLE_S seconds of each other together."""

    @hookimpl
    def zhifa_dept_settings(self, dept):
        return {"personnel": {"arrival_settle_seconds": SETTLE_S}} if dept == SCJG else None


def collect(conn: Connection, queue: Queue, until, timeout: float, then: float) -> list[dict]:
    """Every message on `queue` until `until(messages)` holds (or `timeout`), and `then` seconds more."""
    out: list[dict] = []
    deadline, more = time.monotonic() + timeout, None
    simple = conn.SimpleQueue(queue)
    try:
        while time.monotonic() < (more or deadline):
            try:
                msg = simple.get(timeout=0.5)
            except simple.Empty:
                continue
            out.append(json.loads(msg.body))
            msg.ack()
            if more is None and until(out):
                more = time.monotonic() + then
    finally:
        simple.close()
    return out


@contextmanager
def personnel_with(zhifa_config, container_factory, settings: dict, plugin, queue: str) -> Iterator[dict]:
    """The gateway and personnel with `settings` and a department `plugin`, and a queue `queue` bound to
    personnel's finding events before anything happens: {amqp, conn, findings (the queue), officers}."""
    with nameko_config.patch(settings, clear=False), Connection(zhifa_config["AMQP_URI"]) as conn:
        findings = Queue(queue, exchange=Exchange("personnel.events", type="topic", durable=True),
                         routing_key="finding.*", auto_delete=False)
        findings(conn.channel()).declare()
        container_factory(GatewayService).start()
        personnel = container_factory(PersonnelService)
        personnel.start()
        next(dep for dep in personnel.dependencies if isinstance(dep, Plugins)).host.register(plugin, queue)
        client = pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=3000, tz_aware=True)
        try:
            yield {"amqp": zhifa_config["AMQP_URI"], "conn": conn, "findings": findings,
                   "officers": client[f"{zhifa_config['DB_PREFIX']}personnel"].officers}
        finally:
            client.close()


@pytest.fixture
def suite(zhifa_config, container_factory):
    with personnel_with(zhifa_config, container_factory, {"DEADLINE_SWEEP_SECONDS": 1}, Settle(),
                        "test-personnel-findings") as found:
        yield found


def test_out_of_order_facts_raise_no_finding_resolved_milliseconds_later(suite):
    today = datetime.now(CST).date().isoformat()
    # an officer left today; the revocation of the credential (effective today, so before the leaving
    # took effect) is delivered after the leaving: on its own, the leaving would say "left, credential
    # still usable" until the revocation arrives a moment later
    publish(suite["amqp"], [officer_registered(LEAVER), credential_issued(LEAVER, "川A5113220801"),
                            officer_registered(AUX, kind="auxiliary"), credential_issued(AUX, "川A5113220802")])
    wait_for(lambda: all(suite["officers"].count_documents({"_id": oid, "fact_ids.1": {"$exists": True}})
                         for oid in (LEAVER, AUX)), timeout=15)
    publish(suite["amqp"], [envelope("officer.updated", {"officer_id": LEAVER, "status": "left", "reason": "调离"})])
    wait_for(lambda: suite["officers"].find_one({"_id": LEAVER, "snapshot.status": "left"}), timeout=15)
    publish(suite["amqp"], [envelope("credential.revoked", {"officer_id": LEAVER, "credential_no": "川A5113220801",
                                                            "revoked_on": today, "reason": "人员调离，收回证件"})])
    wait_for(lambda: suite["officers"].count_documents({"_id": LEAVER, "fact_ids.3": {"$exists": True}}), timeout=15)

    # the auxiliary's credential is a breach on the whole batch: raised once its arrivals settled
    events = collect(suite["conn"], suite["findings"], lambda got: any(e["payload"]["finding_key"] == HOLDS for e in got),
                     timeout=SETTLE_S + 30, then=SETTLE_S / 2)
    seen = [(e["type"], e["payload"]["finding_key"]) for e in events]
    assert seen == [("finding.raised", HOLDS)], seen
    aux = unpack(suite["officers"].find_one({"_id": AUX}))
    arrived = max(datetime.fromisoformat(f["received_at"]) for f in aux["facts"])
    assert datetime.fromisoformat(events[0]["payload"]["as_of"]) >= arrived + timedelta(seconds=SETTLE_S)
    # the leaver's finding never reached a consumer, and nothing about it stays open
    leaver = suite["officers"].find_one({"_id": LEAVER})
    assert FLICKER not in leaver["findings_open"] and leaver["snapshot"]["status"] == "left"
