"""The outbox markers and the document cache on the real MongoDB-wire server (services/kernel/aggregates.py).

- a crash between the save and the relay loses no event: the marker written before the save
  leads the sweep to it, in a store and in a running service whose relay dies after the save;
- an outbox relayed is not sent again by the next save (this process knows; another process
  learns it from the missing marker);
- a cached document made stale by another writer (another process's save, `mark_due`) is caught:
  by the versioned write, and when the decision on it writes nothing or refuses.
"""
import time
from datetime import datetime, timedelta, timezone

import pymongo
import pytest
from nameko.events import event_handler

from services.kernel.aggregates import MARKER_GRACE, AggregateStore, Change, DocCache
from services.kernel.outbox import sweep
from services.personnel.service import PersonnelService
from tests.helpers import officer_registered, publish, wait_for, scratch_database

AT = datetime(2025, 5, 1, tzinfo=timezone.utc)
NOW = timedelta(0)  # the sweep in these tests: any marker, however fresh (IN_FLIGHT is for live relays)


def ev(name: str) -> dict:
    return {"event_id": name, "type": "item.changed", "payload": {"n": name}}


@pytest.fixture
def db(servers):
    with scratch_database(servers, "outbox") as database:
        yield database


def add(item, *events):
    def decide(doc):
        return Change({"items": list((doc or {}).get("items", [])) + [item]}, list(events))
    return decide


class Recorder:
    def __init__(self):
        self.sent = []

    def __call__(self, type_, event):
        self.sent.append(event["event_id"])


def test_a_crash_between_save_and_relay_leaves_a_marker_and_the_sweep_sends_the_events(db):
    store = AggregateStore(db.aggs, cache=None)
    doc, pending = store.update("a1", add(1, ev("e1"), ev("e2")))
    assert [e["event_id"] for e in pending] == ["e1", "e2"]
    # the process dies here: no relay
    assert store.waiting() == [{"_id": "a1", "version": 1, "at": store.waiting()[0]["at"]}]
    sent = Recorder()
    assert sweep([AggregateStore(db.aggs, cache=None)], sent, "test") == 0  # so fresh: its relay may be on its way
    assert sent.sent == [] and len(store.waiting()) == 1
    assert sweep([AggregateStore(db.aggs, cache=None)], sent, "test", in_flight=NOW) == 2
    assert sent.sent == ["e1", "e2"] and store.waiting() == [] and store.is_relayed("a1")
    assert sweep([AggregateStore(db.aggs, cache=None)], sent, "test", in_flight=NOW) == 0  # nothing twice

    # the next save (another process, no cache) does not carry the relayed events again: the stored
    # outbox still holds them (not rewritten after the relay), the missing marker says they went
    assert [e["event_id"] for e in store.get("a1")["outbox"]] == ["e1", "e2"]
    _, pending = AggregateStore(db.aggs, cache=None).update("a1", add(2, ev("e3")))
    assert [e["event_id"] for e in pending] == ["e3"]


def test_a_relay_that_fails_keeps_its_events_for_the_next_save_and_the_sweep(db):
    store = AggregateStore(db.aggs, cache=DocCache(1 << 20))
    store.update("a1", add(1, ev("e1")))  # relay failed: neither the marker nor the cache says relayed
    _, pending = store.update("a1", add(2, ev("e2")))
    assert [e["event_id"] for e in pending] == ["e1", "e2"]
    assert store.waiting()[0]["version"] == 2
    store.relayed("a1", 2)
    _, pending = store.update("a1", add(3))  # nothing new to send, nothing old carried
    assert pending == [] and store.is_relayed("a1")
    assert store.get("a1")["outbox"] == []


def test_relayed_events_are_not_carried_by_the_next_save_from_the_cache_or_the_stored_document(db):
    cache = DocCache(1 << 20)
    store = AggregateStore(db.aggs, cache=cache)
    doc, pending = store.update("a1", add(1, ev("e1")))
    store.relayed("a1", doc["version"])
    assert store.get("a1")["outbox"] == [ev("e1")]  # not rewritten: no second whole-document write
    reads = cache.misses
    _, pending = store.update("a1", add(2, ev("e2")))
    assert [e["event_id"] for e in pending] == ["e2"] and cache.misses == reads  # from the cache
    store.relayed("a1", 2)
    _, pending = AggregateStore(db.aggs, cache=None).update("a1", add(3, ev("e3")))  # another process
    assert [e["event_id"] for e in pending] == ["e3"]


def test_a_cached_document_made_stale_by_another_writer_is_caught_by_the_versioned_write(db):
    ours = AggregateStore(db.aggs, cache=DocCache(1 << 20))
    theirs = AggregateStore(db.aggs, cache=DocCache(1 << 20))  # another process
    ours.update("a1", add(1))
    theirs.update("a1", add(2))
    seen = []

    def decide(doc):
        seen.append(list(doc["items"]))
        return Change({"items": doc["items"] + [3]})

    doc, _ = ours.update("a1", decide)
    assert seen == [[1], [1, 2]]  # decided on the cache, refused by the write, decided again on the stored one
    assert doc["items"] == [1, 2, 3] and doc["version"] == 3 and ours.cache.stale == 1
    assert AggregateStore(db.aggs).get("a1")["items"] == [1, 2, 3]
    # several writers save it: no longer cached (a stale entry costs a refused write)
    assert ours.cache.get(ours._key("a1")) is None

    ours.update("a2", add(1))
    AggregateStore(db.aggs, cache=None).mark_due("a2", AT)  # a writer outside update bumps the version
    doc, _ = ours.update("a2", lambda d: Change({"seen_due": d.get("due_at")}))
    assert doc["seen_due"] == AT and doc["version"] == 3 and ours.cache.stale == 2


def test_a_decision_to_do_nothing_or_refuse_on_a_cached_document_is_checked_on_the_stored_one(db):
    ours = AggregateStore(db.aggs, cache=DocCache(1 << 20))
    theirs = AggregateStore(db.aggs, cache=None)
    ours.update("a1", lambda d: Change({"open": False, "done": False}))
    theirs.update("a1", lambda d: Change({"open": True}))

    def close(doc):
        if not doc["open"]:
            raise ValueError("已关闭")
        return Change({"open": False})

    doc, _ = ours.update("a1", close)  # refused on the cache (open False), accepted on the stored document
    assert doc["open"] is False and doc["version"] == 3

    ours.update("a1", lambda d: Change({"done": True}))
    theirs.update("a1", lambda d: Change({"done": False}))  # reopened by another process
    calls = []

    def finish(doc):
        calls.append(doc["done"])
        return None if doc["done"] else Change({"done": True})

    doc, _ = ours.update("a1", finish)  # "nothing to do" on the cache is not trusted either
    assert calls == [True, False] and doc["done"] is True and doc["version"] == 6


def test_a_marker_whose_save_failed_is_sent_once_and_dropped_after_the_grace(db):
    store = AggregateStore(db.aggs, cache=None)
    store.update("a1", add(1, ev("e1")))
    store.relayed("a1", 1)
    # a writer marked version 2, then its save failed (or it died before it); the sweep cannot tell
    # whether version 1 was relayed
    store.outboxes.update_one({"_id": "a1"}, {"$max": {"version": 2}, "$set": {"at": datetime.now(timezone.utc)}},
                             upsert=True)
    sent = Recorder()
    sweep([store], sent, "test", in_flight=NOW)
    sweep([store], sent, "test", in_flight=NOW)
    assert sent.sent == ["e1"]  # the stored outbox may be unsent (version 1's writer may have died): once
    assert store.waiting()[0]["version"] == 2  # kept while its writer may still save
    marker = store.waiting()[0]
    store.settle(marker, store.col.find_one({"_id": "a1"}), now=marker["at"] + MARKER_GRACE + timedelta(seconds=1))
    assert store.waiting() == []


# -- a running service whose relay dies after the save ------------------------------------------

RELAY_FAILURES = {"left": 0}
RECEIVED: list[dict] = []


class DyingRelayPersonnel(PersonnelService):
    """Personnel whose first relays fail after the save, as if the process died right there."""

    def _relay(self, repo, doc, pending):
        if pending and RELAY_FAILURES["left"] > 0:
            RELAY_FAILURES["left"] -= 1
            raise ConnectionError("process died between the save and the relay")
        super()._relay(repo, doc, pending)


class OfficerWatcher:
    name = "officer_watcher"

    @event_handler("personnel", "officer.changed")
    def seen(self, event):
        RECEIVED.append(event)


def test_events_saved_but_not_relayed_by_a_dying_service_are_sent_by_the_sweep(zhifa_config, container_factory):
    from services.gateway.service import GatewayService

    RELAY_FAILURES["left"] = 1
    RECEIVED.clear()
    for cls in (GatewayService, OfficerWatcher, DyingRelayPersonnel):
        container_factory(cls).start()
    db = pymongo.MongoClient(zhifa_config["MONGO_URI"])[f"{zhifa_config['DB_PREFIX']}personnel"]
    publish(zhifa_config["AMQP_URI"], [officer_registered("511322-scjg-0901")])
    wait_for(lambda: RELAY_FAILURES["left"] == 0, timeout=20)  # the relay after the save died
    assert db.officers.find_one({"_id": "511322-scjg-0901"}) is not None
    # the redelivery finds the fact applied (nothing to save, nothing to relay): the sweep sends it
    # (once the marker is older than outbox.IN_FLIGHT)
    wait_for(lambda: any(e["payload"].get("officer_id") == "511322-scjg-0901" for e in RECEIVED), timeout=40)
    wait_for(lambda: AggregateStore(db.officers).is_relayed("511322-scjg-0901"), timeout=10)
    time.sleep(1.5)  # a sweep later, nothing else is sent
    assert len([e for e in RECEIVED if e["payload"].get("officer_id") == "511322-scjg-0901"]) == 1


def test_outboxes_flagged_before_the_markers_get_one_at_first_start(db):
    db.aggs.insert_many([{"_id": "old", "version": 4, "outbox": [ev("e1")], "outbox_pending": True},
                         {"_id": "done", "version": 2, "outbox": [], "outbox_pending": False}])
    AggregateStore.ensure_indexes(db.aggs)
    store = AggregateStore(db.aggs, cache=None)
    assert [(m["_id"], m["version"]) for m in store.waiting()] == [("old", 4)]
    sent = Recorder()
    sweep([store], sent, "test", in_flight=NOW)
    assert sent.sent == ["e1"] and store.waiting() == []
    AggregateStore.ensure_indexes(db.aggs)  # once: the flag is not looked at again
    assert store.waiting() == []
