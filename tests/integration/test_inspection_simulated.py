"""The inspection part of a simulated county year through the real suite (RabbitMQ, FerretDB,
gateway, personnel, registry, inspection): every fact through the AMQP ingress, the service
judging at its own "now"; its stored open findings equal the simulation's truth at that moment."""
from __future__ import annotations

import pymongo
from nameko import config as nameko_config

from services.gateway.service import GatewayService
from services.inspection.service import InspectionService
from services.personnel.service import PersonnelService
from services.registry.service import RegistryService
from services.simulator import inspection as si
from services.simulator.generator import county_config, simulate
from tests.helpers import publish, wait_for

PERSONNEL = ("agency.", "officer.", "credential.")


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
        comparison = si.run_live(sim, zhifa_config["AMQP_URI"], zhifa_config["MONGO_URI"], zhifa_config["DB_PREFIX"],
                                 timeout=150, out=lambda text: None, part=part)
        assert comparison.ok, [(r.rule_id, r.missed, r.spurious) for r in comparison.rows if r.missed or r.spurious]
        found = si.stored_findings(db)
        assert {k[0] for k in found} >= {"INS-FREQUENCY-CAP", "INS-DRAW-UNVERIFIABLE", "INS-UNIT-NO-RECORDS-1Y"}
    finally:
        patch.stop()
