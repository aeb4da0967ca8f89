"""An officer's facts on one queue (services/personnel/manifest.py `consumes`), and the upgrade from three.

Personnel's `handle_officer` takes `officer.*`, `credential.*` and `training.*` (one handler, one queue):
the gateway bundles an officer's facts together and one batch applies them, where three queues used to
apply facts of one officer at once and lose compare-and-set races to each other. A broker an earlier
version ran on still has `handle_credential`'s and `handle_training`'s queues, bound to their patterns,
maybe holding facts. Shown here on real RabbitMQ and FerretDB through the real ingress: the facts those
queues hold are applied, once each, and the queues are unbound, so no copy of a later fact piles up in them.
"""
from __future__ import annotations

import os
from collections import Counter
from urllib.parse import quote

import pymongo
import pytest
import requests
from amqp.exceptions import NotFound
from kombu import Connection, Queue, binding

from services.kernel import bundles
from services.kernel.messaging import event_exchange, retire_queues
from services.launcher import command, processes
from services.simulator.bench import HandledCounter, workload
from services.simulator.publish import publish_amqp
from tests.conftest import _mgmt_auth, _mgmt_base
from tests.helpers import gateway_and, launched, suite_env, wait_for

OLD = {  # the queues the earlier declaration gave each pattern (nameko's names), with the patterns bound
    "evt-gateway-officer.*--personnel.handle_officer": "officer.*",
    "evt-gateway-credential.*--personnel.handle_credential": "credential.*",
    "evt-gateway-training.*--personnel.handle_training": "training.*",
    "evt-gateway-agency.*--personnel.handle_agency": "agency.*",
}
RETIRED = ("evt-gateway-credential.*--personnel.handle_credential", "evt-gateway-training.*--personnel.handle_training")


def _bindings(zhifa_config: dict, queue: str) -> set[str]:
    vhost = zhifa_config["AMQP_URI"].rsplit("/", 1)[1]
    mgmt = os.environ.get("RABBIT_MGMT_URI", "http://guest:guest@127.0.0.1:15682")
    found = requests.get(f"{_mgmt_base(mgmt)}/api/queues/{quote(vhost, safe='')}/{quote(queue, safe='')}/bindings",
                         auth=_mgmt_auth(mgmt), timeout=5).json()
    return {b["routing_key"] for b in found if b["source"] == "gateway.events"}


def _ready(conn, name: str) -> int:
    channel = conn.channel()
    try:
        return channel.queue_declare(name, passive=True)[1]
    finally:
        channel.close()


def test_facts_left_in_the_earlier_queues_are_applied_once_and_those_queues_retired(zhifa_config, free_port,
                                                                                     tmp_path):
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
            wait_for(lambda: sum(_ready(conn, n) for n in OLD) >= len(events), timeout=60)
            assert _ready(conn, RETIRED[0]) == kinds["credential"] and _ready(conn, RETIRED[1]) == kinds["training"]

            port = free_port()
            personnel = processes()["personnel"]
            with launched([("personnel", command(personnel), {"METRICS_PORT": str(port)},
                            f"http://127.0.0.1:{port}")], suite_env(zhifa_config), tmp_path):
                counter = HandledCounter({"personnel": f"http://127.0.0.1:{port}/metrics"})
                wait_for(lambda: (counter() or 0) >= len(events), timeout=120, interval=0.5)
                assert wait_for(lambda: sum(_ready(conn, n) for n in OLD) == 0 or None, timeout=30)

                # retired: no binding left, so a later credential fact goes to handle_officer's queue alone
                for name in RETIRED:
                    assert _bindings(zhifa_config, name) == set(), name
                kept = _bindings(zhifa_config, "evt-gateway-officer.*--personnel.handle_officer")
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
    with Connection(zhifa_config["AMQP_URI"]) as conn:
        assert all(_ready(conn, name) == 0 for name in RETIRED)
    assert retire_queues(zhifa_config["AMQP_URI"], "gateway.events", {name: () for name in RETIRED}) == []
    with Connection(zhifa_config["AMQP_URI"]) as conn:
        for name in RETIRED:
            with pytest.raises(NotFound):
                _ready(conn, name)
        assert _ready(conn, "evt-gateway-officer.*--personnel.handle_officer") == 0  # (kept: not retired)


def test_a_retired_queue_that_still_holds_facts_is_kept_unbound(zhifa_config):
    """An earlier queue holding a fact is unbound but neither deleted nor reported empty."""
    exchange = event_exchange("gateway")
    name = "evt-gateway-training.*--personnel.handle_training"
    with Connection(zhifa_config["AMQP_URI"]) as conn:
        Queue(name, bindings=[binding(exchange, routing_key="training.*")], durable=True)(conn.channel()).declare()
        conn.Producer().publish({"x": 1}, exchange=exchange, routing_key="training.completed", declare=[exchange])
        wait_for(lambda: _ready(conn, name) == 1, timeout=10)
    assert retire_queues(zhifa_config["AMQP_URI"], "gateway.events", {name: ("training.*",)}) == [(name, 1)]
    assert _bindings(zhifa_config, name) == set()
    with Connection(zhifa_config["AMQP_URI"]) as conn:
        assert _ready(conn, name) == 1
