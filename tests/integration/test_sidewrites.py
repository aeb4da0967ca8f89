"""Side writes deferred to the end of a batch (services/kernel/sidewrites.py) on a real broker and
FerretDB, with the personnel service: they are in the database once the batch is done, and when they
fail at the end of the batch every message of the batch is redelivered (and the writes made again)."""
import json

import pymongo
import pytest
from nameko import config
from pymongo import ReplaceOne

from services.personnel.service import PersonnelService
from tests.helpers import SCJG, distinct_ids, officer_registered, relayed, wait_for
from tests.integration.test_batching import dispatch

PROBE = "sidewrite_probe"


class ProbedPersonnel(PersonnelService):
    """Personnel, deferring one probe row per saved officer to the end of the unit of work; the flush
    of a unit holding an officer named in `fail_once` fails (once per officer)."""

    fail_once: set = set()
    flushed: list = []  # the officer ids of every `after` callback run, in order

    def after_save(self, aggregate, doc):
        super().after_save(aggregate, doc)
        agg_id = doc["_id"]
        self.writes.add(self.db[PROBE], ReplaceOne({"_id": agg_id}, {"version": doc["version"]}, upsert=True))

        def after():
            ProbedPersonnel.flushed.append(agg_id)
            if agg_id in ProbedPersonnel.fail_once:
                ProbedPersonnel.fail_once.discard(agg_id)
                raise RuntimeError(f"flush of {agg_id} fails once")
        self.writes.after(after)


@pytest.fixture
def personnel(zhifa_config, container_factory):
    ProbedPersonnel.fail_once.clear()
    ProbedPersonnel.flushed.clear()
    with config.patch({"BATCH_MAX": 50, "BATCH_WAIT_MS": 400, "DEADLINE_SWEEP_SECONDS": 3600}, clear=False):
        container_factory(ProbedPersonnel).start()
        client = pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=3000, tz_aware=True)
        yield {"amqp": zhifa_config["AMQP_URI"], "db": client[f"{zhifa_config['DB_PREFIX']}personnel"]}
        client.close()


def probed(p, officer_id):
    doc = p["db"]["officers"].find_one({"_id": officer_id}, {"version": 1})
    row = p["db"][PROBE].find_one({"_id": officer_id})
    return row if doc is not None and row is not None and row["version"] == doc["version"] else None


def test_a_batch_s_deferred_writes_are_in_the_database_after_it(personnel):
    ids = distinct_ids(f"{SCJG}-4", 3)
    dispatch(personnel["amqp"], [officer_registered(i) for i in ids])
    for i in ids:
        assert wait_for(lambda i=i: probed(personnel, i))
        assert wait_for(lambda i=i: relayed(personnel["db"]["officers"], i))  # after the events (one publish)
    # the probe rows were sent before the `after` callbacks, all of one batch together (the callbacks run
    # after the unit's bulks, the markers' delete among them: the last one may still be running when the
    # marker is gone, so wait for it; it must come, once for each officer and for no other)
    assert wait_for(lambda: len(ProbedPersonnel.flushed) >= len(ids))
    assert sorted(ProbedPersonnel.flushed) == sorted(ids)


def test_a_failed_flush_makes_every_message_of_the_batch_redelivered(personnel):
    ids = distinct_ids(f"{SCJG}-3", 3)
    ProbedPersonnel.fail_once.add(ids[0])
    dispatch(personnel["amqp"], [officer_registered(i) for i in ids])
    for i in ids:
        assert wait_for(lambda i=i: probed(personnel, i))
    # the first flush (all three, one batch) failed at that officer's callback; every message of
    # the batch was redelivered and its side writes made again (the facts applied already: the
    # aggregate is not written twice, its after_save runs on the stored document)
    # (the probe rows are stored before the callbacks run, and other callbacks may come first)
    assert wait_for(lambda: ids[0] in ProbedPersonnel.flushed)
    failed_at = ProbedPersonnel.flushed.index(ids[0])
    for i in ids:
        assert wait_for(lambda i=i: i in ProbedPersonnel.flushed[failed_at + 1:])
    versions = {i: personnel["db"]["officers"].find_one({"_id": i})["version"] for i in ids}
    assert all(v == 1 for v in versions.values())  # saved once: the redelivery found the facts applied


# ---- the relay of a batch: one publish with one wait for the confirms, then the markers ----------

@pytest.fixture
def publishes(monkeypatch):
    """Every `publish_all` of the process: the officer ids its messages name; `fail_once` ids make the
    first publish naming them fail (as a nack or a lost connection would)."""
    from services.kernel.confirms import ConfirmedPublisher, NotConfirmed

    seen: list[set] = []
    fail_once: set = set()
    original = ConfirmedPublisher.publish_all

    def publish_all(self, messages):
        named = {json.loads(m.data())["payload"].get("officer_id") for m in messages
                 if m.exchange.name == "personnel.events"} - {None}
        if named & fail_once:
            fail_once.difference_update(named)
            raise NotConfirmed("消息服务拒收（nack）1 条消息")
        original(self, messages)
        seen.append(named)

    monkeypatch.setattr(ConfirmedPublisher, "publish_all", publish_all)
    return {"seen": seen, "fail_once": fail_once}


def test_a_batch_s_events_go_out_in_one_publish(personnel, publishes):
    ids = distinct_ids(f"{SCJG}-2", 4)
    dispatch(personnel["amqp"], [officer_registered(i) for i in ids])
    for i in ids:
        assert wait_for(lambda i=i: probed(personnel, i) and relayed(personnel["db"]["officers"], i))
    holding = [named & set(ids) for named in publishes["seen"] if named & set(ids)]
    assert set().union(*holding) == set(ids) and sum(map(len, holding)) == len(ids)  # each event once
    # the batch's events in one publish (two if the broker handed the facts over in two batches;
    # one publish per aggregate would be four)
    assert len(holding) <= 2, holding


def test_a_failed_publish_redelivers_the_batch_and_leaves_the_markers_for_the_sweep(personnel, publishes):
    ids = distinct_ids(f"{SCJG}-1", 2)
    publishes["fail_once"].add(ids[0])
    dispatch(personnel["amqp"], [officer_registered(i) for i in ids])
    for i in ids:
        assert wait_for(lambda i=i: probed(personnel, i))
    # the relay's callback (the first one of the unit) failed, so the unit's probe callbacks were
    # dropped: each id among them comes from the redelivery of its message
    for i in ids:
        assert wait_for(lambda i=i: i in ProbedPersonnel.flushed)
    # the redelivery found the facts applied; the events wait for the outbox sweep (markers kept)
    assert not any(named & set(ids) for named in publishes["seen"])
    for i in ids:
        assert not relayed(personnel["db"]["officers"], i)
    # the batch wrote one marker for both (kernel/aggregates.py `cover`), none of their own
    left = list(personnel["db"]["officers_outbox"].find({}))
    assert [m["_id"].split(":")[0] for m in left] == ["unit"] and set(ids) <= set(left[0]["ids"])
    for i in ids:  # the sweep sends them once the markers are older than IN_FLIGHT (10 s)
        assert wait_for(lambda i=i: relayed(personnel["db"]["officers"], i), timeout=30)
    assert set().union(*[named & set(ids) for named in publishes["seen"]]) == set(ids)
