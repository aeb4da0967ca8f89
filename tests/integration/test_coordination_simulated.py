"""A simulated year of the justice bureau's work through the real ingress into the coordination
service (real RabbitMQ and FerretDB): every fact is admitted whatever order it is consumed in, and
the stored open findings are exactly the injected breaches (0 missed, 0 spurious per rule)."""
from __future__ import annotations

import pymongo

from services.coordination.service import CoordinationService
from services.gateway.service import GatewayService
from services.simulator import coordination as sc
from services.simulator.generator import county_config, simulate


def test_a_simulated_year_through_the_ingress_raises_exactly_the_injected_findings(zhifa_config, container_factory):
    for cls in (GatewayService, CoordinationService):
        container_factory(cls).start()
    sim = simulate(county_config("small", seed=5))
    part = sc.simulate_coordination(sim)
    lines: list[str] = []
    comparison = sc.run_live(sim, zhifa_config["AMQP_URI"], zhifa_config["MONGO_URI"], zhifa_config["DB_PREFIX"],
                             timeout=120, out=lines.append, part=part)
    assert comparison.ok, "\n".join(lines)
    assert {r.rule_id for r in comparison.rows} == {x.rule_id for x in part.expectations}
    db = pymongo.MongoClient(zhifa_config["MONGO_URI"])[f"{zhifa_config['DB_PREFIX']}coordination"]
    # nothing was refused or lost: every fact is in its aggregate
    stored = sum(len(doc["fact_ids"]) for name in (*sc.COLLECTIONS, "evaluations") for doc in db[name].find({}, {"fact_ids": 1}))
    assert stored == len(part.events)
    # the special campaign closed with every department's track settled
    campaign = db.supervision_cases.find_one({"_id": f"JD-{sim.config.year}-special"})
    assert campaign["snapshot"]["status"] == "closed" and {t["status"] for t in campaign["snapshot"]["tracks"]} == {"settled"}
