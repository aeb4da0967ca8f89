"""An officer's facts on one queue (services/personnel/manifest.py `consumes`), and the upgrade from three.

Personnel's `handle_officer` takes `officer.*`, `credential.*` and `training.*` (one handler, one queue):
the gateway bundles an officer's facts together and one batch applies them, where three queues used to
apply facts of one officer at once and lose compare-and-set races to each other. A broker an earlier
version ran on still has `handle_credential`'s and `handle_training`'s queues, bound to their patterns,
maybe holding facts. Shown here on real RabbitMQ and FerretDB through the real ingress: the facts those
queues hold are applied, once each, and the queues are unbound, so no copy of a later fact piles up in them.
"""
from __future__ import annotations

from collections import Counter

import pymongo
from kombu import Connection, Queue, binding

from services.kernel import bundles
from services.kernel.messaging import event_exchange, retire_queues
from services.launcher import command, processes
from services.simulator.bench import HandledCounter, ready_messages, workload
from services.simulator.publish import publish_amqp
from tests.helpers import gateway_and, launched, queue_bindings, suite_env, vhost_queues, wait_for

OLD = {  # the queues the earlier declaration gave each pattern (nameko's names), with the patterns bound
    "evt-gateway-officer.*--personnel.handle_officer": "officer.*",
    "evt-gateway-credential.*--personnel.handle_credential": "credential.*",
    "evt-gateway-training.*--personnel.handle_training": "training.*",
    "evt-gateway-agency.*--personnel.handle_agency": "agency.*",
}
RETIRED = ("evt-gateway-credential.*--personnel.handle_credential", "evt-gateway-training.*--personnel.handle_training")


def test_facts_left_in_the_earlier_queues_are_applied_once_and_those_queues_retired(zhifa_config, vhost, free_port,
                                                                                     tmp_path):
    amqp = zhifa_config["AMQP_URI"]
    events, _ = workload(400, ["personnel"], seed=31, run_id=zhifa_config["DB_PREFIX"][:6])
    kinds = Counter(e["type"].split(".")[0] for e in events)
    assert kinds["credential"] and kinds["training"] and kinds["officer"]  # (facts for every old queue)

    exchange = event_exchange("gateway")
    with Connection(zhifa_config["AMQP_URI"]) as conn:
        for name, pattern in OLD.items():  # as the earlier version declared them: pattern and bundle key
            Queue(name, bindings=[binding(exchange, routing_key=pattern),
                                  binding(exchange, routing_key=bundles.bundle_key("gateway", "personnel", pattern))],
                  durable=True)(conn.channel()).declare()

        with gateway_and(zhifa_config, free_port, tmp_path, [], GATEWAY_BUNDLE_MAX="1"):
            # personnel is not running; the gateway sends every fact alone, by type, as an earlier gateway
            # did (bundles would go to handle_officer's queue, the bundle key of `officer.*` being unchanged)
            stats = publish_amqp(events, zhifa_config["AMQP_URI"])
            assert stats.confirmed == len(events) and stats.nacked == 0
            wait_for(lambda: ready_messages(amqp, OLD) >= len(events), timeout=60)
            assert ready_messages(amqp, RETIRED[:1]) == kinds["credential"]
            assert ready_messages(amqp, RETIRED[1:]) == kinds["training"]

            port = free_port()
            personnel = processes()["personnel"]
            with launched([("personnel", command(personnel), {"METRICS_PORT": str(port)},
                            f"http://127.0.0.1:{port}")], suite_env(zhifa_config), tmp_path):
                counter = HandledCounter({"personnel": f"http://127.0.0.1:{port}/metrics"})
                wait_for(lambda: (counter() or 0) >= len(events), timeout=120, interval=0.5)
                assert wait_for(lambda: ready_messages(amqp, OLD) == 0 or None, timeout=30)

                # retired: no binding left, so a later credential fact goes to handle_officer's queue alone
                for name in RETIRED:
                    assert queue_bindings(vhost, name) == set(), name
                kept = queue_bindings(vhost, "evt-gateway-officer.*--personnel.handle_officer")
                assert {"officer.*", "credential.*", "training.*",
                        bundles.bundle_key("gateway", "personnel", "officer.*")} <= kept

                client = pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=5000)
                db = client[f"{zhifa_config['DB_PREFIX']}personnel"]

                def stored() -> list:
                    return [fid for col in ("officers", "agencies")
                            for doc in db[col].find({}, {"fact_ids": 1}) for fid in doc.get("fact_ids") or ()]
                try:
                    facts = wait_for(lambda: (found := stored()) and set(found) == {e["event_id"] for e in events}
                                     and found, timeout=15)
                finally:
                    client.close()
                assert [fid for fid, n in Counter(facts).items() if n > 1] == []  # each applied once
    log = (tmp_path / "personnel.log").read_text()
    assert "the queue an earlier declaration gave credential.* alone" in log

    # personnel stopped, the retired queues empty and unused: the next start deletes them
    assert ready_messages(amqp, RETIRED) == 0
    assert retire_queues(amqp, "gateway.events", {name: () for name in RETIRED}) == []
    names = {q["name"] for q in vhost_queues(vhost)}
    assert not names & set(RETIRED)
    assert "evt-gateway-officer.*--personnel.handle_officer" in names  # (kept: not retired)
    assert ready_messages(amqp, ["evt-gateway-officer.*--personnel.handle_officer"]) == 0


def test_a_retired_queue_that_still_holds_facts_is_kept_unbound(zhifa_config, vhost):
    """An earlier queue holding a fact is unbound but neither deleted nor reported empty."""
    exchange = event_exchange("gateway")
    name = "evt-gateway-training.*--personnel.handle_training"
    with Connection(zhifa_config["AMQP_URI"]) as conn:
        Queue(name, bindings=[binding(exchange, routing_key="training.*")], durable=True)(conn.channel()).declare()
        conn.Producer().publish({"x": 1}, exchange=exchange, routing_key="training.completed", declare=[exchange])
        wait_for(lambda: ready_messages(zhifa_config["AMQP_URI"], [name]) == 1, timeout=10)
    assert retire_queues(zhifa_config["AMQP_URI"], "gateway.events", {name: ("training.*",)}) == [(name, 1)]
    assert queue_bindings(vhost, name) == set()
    assert ready_messages(zhifa_config["AMQP_URI"], [name]) == 1
