"""The inspection part of a simulated county year through the real suite (RabbitMQ, FerretDB,
gateway, personnel, registry, inspection): every fact through the AMQP ingress, the service
judging at its own "now"; its stored open findings equal the simulation's truth at that moment."""
from __future__ import annotations

from datetime import datetime

import pymongo
from nameko import config as nameko_config

from services.gateway.service import GatewayService
from services.inspection.manifest import MANIFEST
from services.inspection.service import InspectionService
from services.personnel.service import PersonnelService
from services.registry.service import RegistryService
from services.simulator import inspection as si
from services.simulator.generator import CST, county_config, simulate
from tests.helpers import publish, wait_for

PERSONNEL = ("agency.", "officer.", "credential.")


def stored_findings(db) -> set[tuple[str, str, str, str]]:
    out = set()
    for aggregate in MANIFEST.aggregates:
        for doc in db[aggregate.collection].find({"findings_count": {"$ne": 0}}, {"findings_open": 1}):
            out |= {(f["rule_id"], f["subject_type"], f["subject_id"], f["dept"])
                    for f in (doc.get("findings_open") or {}).values()}
    return out


def test_a_simulated_year_gives_exactly_the_expected_findings(zhifa_config, container_factory):
    patch = nameko_config.patch({"DEADLINE_SWEEP_SECONDS": 1}, clear=False)
    patch.start()
    try:
        for cls in (GatewayService, PersonnelService, RegistryService, InspectionService):
            container_factory(cls).start()
        sim = simulate(county_config("small", seed=3))
        part = si.simulate_inspections(sim)
        people = [e for e in sim.events if e["type"].startswith(PERSONNEL)]
        db = pymongo.MongoClient(zhifa_config["MONGO_URI"])[f"{zhifa_config['DB_PREFIX']}inspection"]
        publish(zhifa_config["AMQP_URI"], people)
        officers = {e["payload"]["officer_id"] for e in people if e["type"] == "officer.registered"}
        wait_for(lambda: db.officers.count_documents({}) >= len(officers), timeout=60)
        publish(zhifa_config["AMQP_URI"], part.events)
        mine = [e for e in part.events if e["type"].startswith("inspection")]
        wait_for(lambda: sum(len(doc.get("fact_ids") or ()) for a in MANIFEST.aggregates[:4]
                             for doc in db[a.collection].find({}, {"fact_ids": 1}))
                 >= len(mine), timeout=120)
        expected = si.expected_at(part, datetime.now(CST))
        # projections may land after the facts they judge: the sweep re-evaluates until they agree
        found = wait_for(lambda: (got := stored_findings(db)) == expected and got, timeout=90, interval=1)
        assert {k[0] for k in found} >= {"INS-FREQUENCY-CAP", "INS-DRAW-UNVERIFIABLE", "INS-UNIT-NO-RECORDS-1Y"}
    finally:
        patch.stop()
