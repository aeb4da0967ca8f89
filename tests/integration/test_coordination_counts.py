"""The findings inbox a batch at a time, on real RabbitMQ and FerretDB: `finding.*` handlers take
batches; the console counters stay exact (one count per entry, moved once per save, never by an
older or redelivered save); the inbox keeps no open-findings index (its entries raise none); and
what counting an entry sends to the database."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import eventlet
import pymongo
import pytest
from kombu import Connection, Exchange
from nameko import config as nameko_config

from services.common.chinatime import CST
from services.coordination import store
from services.coordination.domain import inbox as ib
from services.coordination.service import CoordinationService
from services.kernel.aggregates import AggregateStore
from services.kernel.messaging import BatchEventHandler
from tests.db_recorder import recorded_database
from tests.helpers import SCJG, STHJ, wait_for

KEY = {"dept": SCJG, "rule_id": "PEN-X", "severity": "warning", "state": "new", "escalated": False}


@pytest.fixture
def db(servers):
    with recorded_database(servers["MONGO_URI"], "coordination") as database:
        yield database


def totals(db) -> dict[str, int]:
    return {doc["_id"]: doc["n"] for doc in db.inbox_counters.find({}) if doc.get("n")}


def test_a_new_entry_is_counted_with_one_insert_and_one_increment(db):
    seen = db.recorder.seen
    seen.clear()
    assert store.count(db, "e1", 1, KEY) is True
    assert seen == [("insert", "inbox_counted"), ("update", "inbox_counters")]
    assert totals(db) == {store.counter_id(KEY): 1}
    seen.clear()
    closed = {**KEY, "state": "resolved"}
    assert store.count(db, "e1", 2, closed) is True      # a move: one compare-and-set, one write of both counters
    assert seen == [("findAndModify", "inbox_counted"), ("update", "inbox_counters")]
    assert totals(db) == {store.counter_id(closed): 1}


def test_redelivered_or_older_saves_change_no_counter(db):
    closed = {**KEY, "state": "resolved"}
    assert store.count(db, "e1", 1, KEY) is True
    assert store.count(db, "e1", 2, closed) is True
    store._COUNTED.clear()                                # another process: it remembers nothing
    assert store.count(db, "e1", 1, KEY) is False         # the first save again (a redelivery): its insert fails
    assert store.count(db, "e1", 2, closed) is False      # the same save again
    assert store.count(db, "e1", 1, {**KEY, "severity": "serious"}) is False   # older than the one counted
    assert totals(db) == {store.counter_id(closed): 1}
    assert db.inbox_counted.find_one({"_id": "e1"})["version"] == 2


@pytest.mark.parametrize("order", ["counted first", "new first"])
def test_new_entries_counted_together_stay_exact_when_their_bulk_fails(db, order):
    """Green threads counting at the same moment share one insert bulk; an entry counted already makes
    that bulk fail (before or after the other insert landed): each entry is then decided alone, the new
    one counted exactly once, the other not again."""
    assert store.count(db, "old", 1, KEY) is True
    store._COUNTED.clear()
    names = ["old", "new"] if order == "counted first" else ["new", "old"]
    db.recorder.seen.clear()
    threads = [eventlet.spawn(store.count, db, name, 1, KEY) for name in names]
    moved = dict(zip(names, (t.wait() for t in threads)))
    assert moved == {"old": False, "new": True}
    assert db.recorder.seen.count(("insert", "inbox_counted")) == 1    # both inserts in one bulk, which failed
    assert totals(db) == {store.counter_id(KEY): 2}
    assert {d["_id"] for d in db.inbox_counted.find({})} == {"old", "new"}


def count_at_once(db, *moves) -> list[bool]:
    """`store.count` of each (entry, version, key) from green threads of one moment (a batch's saves)."""
    threads = [eventlet.spawn(store.count, db, entry, version, key) for entry, version, key in moves]
    return [t.wait() for t in threads]


def test_entries_saved_again_at_one_moment_are_moved_with_one_read_and_two_bulks(db):
    entries = [f"e{n}" for n in range(6)]
    for entry in entries:
        assert store.count(db, entry, 1, KEY) is True
    seen = db.recorder.seen
    seen.clear()
    closed, serious = {**KEY, "state": "resolved"}, {**KEY, "severity": "serious"}
    moved = count_at_once(db, *[(e, 2, closed if n % 2 else serious) for n, e in enumerate(entries[:4])],
                          (entries[4], 3, KEY))                 # saved again in the counter it is in
    assert moved == [True, True, True, True, False]
    assert seen == [("find", "inbox_counted"), ("update", "inbox_counted"), ("update", "inbox_counters")]
    assert totals(db) == {store.counter_id(KEY): 2, store.counter_id(closed): 2, store.counter_id(serious): 2}
    assert {d["_id"]: d["version"] for d in db.inbox_counted.find({})} == \
        {"e0": 2, "e1": 2, "e2": 2, "e3": 2, "e4": 3, "e5": 1}
    seen.clear()
    assert count_at_once(db, ("e0", 2, serious), ("e1", 2, closed)) == [False, False]   # memo: nothing sent
    assert seen == []


def test_a_group_of_moves_leaves_stale_repeated_new_and_doubled_entries_to_the_compare_and_set(db):
    """In one group: an older save than the one counted, a save counted already (another process
    remembers nothing), an entry never counted, one entry twice: each ends as the compare-and-set alone
    would leave it."""
    closed = {**KEY, "state": "resolved"}
    for entry in ("old", "same", "twice"):
        assert store.count(db, entry, 1, KEY) is True
    assert store.count(db, "old", 3, closed) is True
    assert store.count(db, "same", 2, closed) is True
    store._COUNTED.clear()
    moved = count_at_once(db, ("old", 2, KEY), ("same", 2, closed), ("never", 2, closed), ("twice", 2, closed),
                          ("twice", 3, KEY))
    assert moved == [False, False, True, True, True]
    assert totals(db) == {store.counter_id(KEY): 1, store.counter_id(closed): 3}
    assert {d["_id"]: (d["version"], d["key"]) for d in db.inbox_counted.find({})} == {
        "old": (3, store.counter_id(closed)), "same": (2, store.counter_id(closed)),
        "never": (2, store.counter_id(closed)), "twice": (3, store.counter_id(KEY))}


def moved_by_another_process_after_the_read(db, monkeypatch, entry: str, version: int, key: dict) -> None:
    """The next group's read of where its counts are is followed at once by another process's move of
    `entry` (to `version`, counter `key`): that entry's guarded update in the group's bulk will miss."""
    real_stored = store._stored

    def then_moved(collection, ids):
        monkeypatch.setattr(store, "_stored", real_stored)              # (once)
        found = real_stored(collection, ids)
        assert store.count(db, entry, version, key, fresh=True) is True
        return found

    monkeypatch.setattr(store, "_stored", then_moved)


def test_a_move_another_process_makes_between_the_read_and_the_bulk_is_not_lost(db, monkeypatch):
    """Another process moves one entry of the group on after the group read where its count was: that
    entry's guarded update misses, the tokens read back say so, and the compare-and-set decides it; the
    other entries of the bulk stay moved once."""
    closed, serious = {**KEY, "state": "resolved"}, {**KEY, "severity": "serious"}
    for entry in ("a", "b", "c"):
        assert store.count(db, entry, 1, KEY) is True
    moved_by_another_process_after_the_read(db, monkeypatch, "b", 3, serious)   # (the other process, version 3)
    db.recorder.seen.clear()
    moved = count_at_once(db, ("a", 2, closed), ("b", 2, closed), ("c", 2, closed))
    assert moved == [True, False, True]                                 # b's version 2 is older than 3
    seen = db.recorder.seen
    assert seen[:5] == [("find", "inbox_counted"), ("findAndModify", "inbox_counted"), ("update", "inbox_counters"),
                        ("update", "inbox_counted"), ("find", "inbox_counted")]   # the read, the other process, the
    assert seen.count(("findAndModify", "inbox_counted")) == 2                    # bulk, whose updates landed; b alone
    assert totals(db) == {store.counter_id(closed): 2, store.counter_id(serious): 1}
    assert {d["_id"]: d["version"] for d in db.inbox_counted.find({})} == {"a": 2, "b": 3, "c": 2}


def test_a_move_that_landed_and_was_moved_on_before_the_read_back_is_still_counted(db, monkeypatch):
    """The group's bulk misses one entry (another process moved it first), so the tokens are read back —
    but before that, a third process moves on an entry whose guarded update had landed (version 3, in a
    group of its own). The landed move is still this call's: its token is kept under its version, and
    the counters end where the entries are (a single token field would have held the third process's,
    and the landed move from KEY would have been counted by nobody)."""
    closed, serious = {**KEY, "state": "resolved"}, {**KEY, "severity": "serious"}
    for entry in ("a", "b"):
        assert store.count(db, entry, 1, KEY) is True
    real_landed = store._landed

    def after_a_moved_on(collection, ids):
        # (the third process's group, as its own `_send_moves` and `_moved` do it: this process's group of
        # moves is still being sent, so its green threads could not group theirs here)
        theirs = [("a", 3, serious), ("b", 4, closed)]
        was = store._send_moves(collection, [(e, v, store.counter_id(k)) for e, v, k in theirs])
        assert was == [store.counter_id(closed), store.counter_id(serious)]   # both guarded updates landed
        for (entry, version, key), before in zip(theirs, was):
            assert store._moved(db, ("third process", entry), version, store.counter_id(key), key, before)
        return real_landed(collection, ids)

    moved_by_another_process_after_the_read(db, monkeypatch, "b", 3, serious)   # (b's guarded update will miss)
    monkeypatch.setattr(store, "_landed", after_a_moved_on)
    moved = count_at_once(db, ("a", 2, closed), ("b", 2, closed))
    assert moved == [True, False]
    assert {d["_id"]: (d["version"], d["key"]) for d in db.inbox_counted.find({})} == {
        "a": (3, store.counter_id(serious)), "b": (4, store.counter_id(closed))}
    assert totals(db) == {store.counter_id(serious): 1, store.counter_id(closed): 1}


# ---- the service, a batch at a time -------------------------------------------------------------------------

@pytest.mark.parametrize("others", [0, 2])
def test_a_new_entry_moved_by_another_process_before_its_failed_bulk_is_resolved_is_counted_once(db, monkeypatch,
                                                                                                 others):
    """Two processes: this one's insert of a new entry is stored, but its bulk fails on another write;
    before it learns by its compare-and-set that the insert was its own, another process moves the
    entry on (version 2, another counter: -1 here, +1 there). The entry counts once, where it is now,
    whether its first counter held other entries already or did not exist yet."""
    for n in range(others):
        assert store.count(db, f"other{n}", 1, KEY) is True
    real_together = store.together
    moved = {**KEY, "state": "resolved"}

    def stored_then_failed(collection, op):
        real_together(collection, op)
        if collection.name == "inbox_counted":  # (the other process, between the bulk and its answer)
            assert store.count(db, "e1", 2, moved) is True
            raise RuntimeError("the bulk failed on another entry's write")

    monkeypatch.setattr(store, "together", stored_then_failed)
    store.count(db, "e1", 1, KEY)
    assert {doc["_id"]: doc.get("n") for doc in db.inbox_counters.find({})} == \
        {store.counter_id(KEY): others, store.counter_id(moved): 1}
    assert db.inbox_counters.find_one({"_id": store.counter_id(KEY)})["state"] == "new"  # (made with its fields)


def test_a_counter_a_stop_left_off_by_one_is_set_to_the_recount_once_it_reads_the_same_twice(db):
    """A stop between an entry's move (`inbox_counted`) and its increments: nothing moves the counters back,
    and `repair_counts` (entries never counted) does not see it. `reconcile_counters` recounts where every
    entry is counted and sets a counter only when the recount and the counter read the same at two rounds
    (a move in flight shows a difference once)."""
    moved = {**KEY, "state": "resolved"}
    for n in range(3):
        assert store.count(db, f"e{n}", 1, KEY) is True
    # the process stopped after moving e0's count to `moved`, before the -1 / +1
    db.inbox_counted.update_one({"_id": "e0"}, {"$set": {"key": store.counter_id(moved), "version": 2}})
    assert totals(db) == {store.counter_id(KEY): 3}
    seen, fixed = store.reconcile_counters(db, None)  # one look: it may be a move about to land
    assert fixed == [] and totals(db) == {store.counter_id(KEY): 3}
    assert seen == {store.counter_id(KEY): (2, 3), store.counter_id(moved): (1, None)}
    seen, fixed = store.reconcile_counters(db, seen)
    assert totals(db) == {store.counter_id(KEY): 2, store.counter_id(moved): 1}
    assert sorted((f["counter"], f["was"], f["now"]) for f in fixed) == \
        [(store.counter_id(KEY), 3, 2), (store.counter_id(moved), 0, 1)]
    assert db.inbox_counters.find_one({"_id": store.counter_id(moved)})["state"] == "resolved"  # (made with its fields)
    assert store.counters(db)["by_state"] == {"new": 2, "resolved": 1}
    assert store.reconcile_counters(db, seen)[1] == []  # right now: nothing more


def test_a_difference_that_moves_between_rounds_is_left_for_the_next(db):
    for n in range(2):
        assert store.count(db, f"e{n}", 1, KEY) is True
    db.inbox_counters.update_one({"_id": store.counter_id(KEY)}, {"$inc": {"n": 1}})  # off by one
    seen, _ = store.reconcile_counters(db, None)
    assert store.count(db, "e2", 1, KEY) is True  # a move lands between the rounds: the counter reads 4 now
    seen, fixed = store.reconcile_counters(db, seen)
    assert fixed == [] and totals(db) == {store.counter_id(KEY): 4}
    seen, fixed = store.reconcile_counters(db, seen)  # the same twice: set
    assert [(f["was"], f["now"]) for f in fixed] == [(4, 3)] and totals(db) == {store.counter_id(KEY): 3}


@pytest.mark.parametrize("stored", ["三", 2.5, None, [2]])  # (FerretDB refuses NaN)
def test_a_counter_that_holds_no_count_is_left_out_of_the_figures_and_set_to_its_recount(db, stored, caplog):
    """A counter whose `n` is no whole number (written by hand, say): the console's figures leave it out, with a
    warning, instead of failing on it; the reconciliation sets it to the recount (`$inc` on it would fail)."""
    closed = {**KEY, "state": "resolved"}
    for n in range(2):
        assert store.count(db, f"e{n}", 1, KEY) is True
    assert store.count(db, "e9", 1, closed) is True
    db.inbox_counters.update_one({"_id": store.counter_id(KEY)}, {"$set": {"n": stored}})
    assert store.counters(db)["by_state"] == {"resolved": 1} and "not a count" in caplog.text
    seen, fixed = store.reconcile_counters(db, None)
    assert fixed == []
    seen, fixed = store.reconcile_counters(db, seen)
    assert [(f["counter"], f["now"]) for f in fixed] == [(store.counter_id(KEY), 2)]
    assert store.counters(db)["by_state"] == {"new": 2, "resolved": 1}
    assert store.count(db, "e2", 1, KEY) is True  # (an increment works on it again)
    assert totals(db)[store.counter_id(KEY)] == 3


def _entry(db, entry_id: str, version: int, **snapshot) -> dict:
    """An inbox entry as the service stores it (the fields the repair reads)."""
    snap = {**KEY, "known": True, **snapshot}
    db[store.INBOX].replace_one({"_id": entry_id}, {"_id": entry_id, "version": version, "snapshot": snap}, upsert=True)
    return snap


def test_the_repair_reads_whole_only_the_entries_saved_since_they_were_counted_except_in_a_first_round(
        db, monkeypatch):
    real, asked = store.by_id, []

    def by_id(col, ids, projection=None):
        if col.name == store.INBOX:
            asked.append(sorted(ids))
        return real(col, ids, projection)

    monkeypatch.setattr(store, "by_id", by_id)
    for n in range(3):
        store.count(db, f"e{n}", 1, ib.counter_key(_entry(db, f"e{n}", 1)))
    _entry(db, "e0", 2, state="resolved")  # saved again, the process stopped before counting it
    _entry(db, "e1", 1, severity="serious")  # counted under a key its snapshot no longer maps to (new code)
    _entry(db, "e3", 1)  # saved, never counted
    assert store.repair_counts(db, ib.counter_key, full=False) == 2  # e0 and e3
    assert asked == [["e0", "e3"]]  # (read whole: the others by their version alone)
    assert totals(db) == {store.counter_id(KEY): 3, store.counter_id({**KEY, "state": "resolved"}): 1}
    assert store.repair_counts(db, ib.counter_key, full=True) == 1  # a first round compares every entry: e1
    assert totals(db) == {store.counter_id(KEY): 2, store.counter_id({**KEY, "state": "resolved"}): 1,
                          store.counter_id({**KEY, "severity": "serious"}): 1}
    assert store.repair_counts(db, ib.counter_key, full=False) == store.repair_counts(db, ib.counter_key) == 0


def test_the_service_s_repair_timer_reconciles_across_its_rounds(db):
    from types import SimpleNamespace

    from services.coordination import service as coordination

    for n in range(2):
        assert store.count(db, f"e{n}", 1, KEY) is True
    db.inbox_counters.delete_one({"_id": store.counter_id(KEY)})  # both increments lost
    coordination._COUNTS_SEEN.pop(db.name, None)
    coordination._ENTRIES_READ.pop(db.name, None)
    worker = SimpleNamespace(db=db)
    CoordinationService.repair_counts(worker)  # (its first round in this process only looks)
    assert totals(db) == {}
    CoordinationService.repair_counts(worker)
    assert totals(db) == {store.counter_id(KEY): 2}
    coordination._COUNTS_SEEN.pop(db.name, None)
    coordination._ENTRIES_READ.pop(db.name, None)


def test_the_timer_reads_the_inbox_entries_in_its_first_round_and_then_every_few_rounds(db, monkeypatch):
    """The entries saved but not counted are looked for in the process's first round (all of them) and then
    every COUNTS_REPAIR_ENTRIES_SECONDS (those saved since they were counted), not at every two-minute round:
    that reads every inbox entry whole on FerretDB. The counters are reconciled at every round."""
    from types import SimpleNamespace

    from services.coordination import service as coordination

    repairs, reconciled, clock = [], [], [1000.0]
    monkeypatch.setattr(store, "repair_counts", lambda db_, key, full=True: repairs.append(full) or 0)
    monkeypatch.setattr(store, "reconcile_counters", lambda db_, before: reconciled.append(before) or ({}, []))
    monkeypatch.setattr(coordination, "_monotonic", lambda: clock[0])
    monkeypatch.setattr(coordination, "_COUNTS_SEEN", {})
    monkeypatch.setattr(coordination, "_ENTRIES_READ", {})
    worker = SimpleNamespace(db=db)
    with nameko_config.patch({"COUNTS_REPAIR_ENTRIES_SECONDS": 600}, clear=False):
        for _ in range(6):  # every two minutes for ten minutes
            CoordinationService.repair_counts(worker)
            clock[0] += 120
    assert repairs == [True, False]  # the first round whole; the next at 600 s, by version
    assert len(reconciled) == 6 and reconciled[0] is None and reconciled[1] == {}


def test_the_operators_command_reports_and_sets_a_counter_left_off(db, servers, monkeypatch, capsys):
    from services.coordination import counters

    monkeypatch.setenv("MONGO_URI", servers["MONGO_URI"])
    monkeypatch.setenv("DB_PREFIX", db.name[:-len("coordination")])
    for n in range(3):
        assert store.count(db, f"e{n}", 1, KEY) is True
    db.inbox_counters.update_one({"_id": store.counter_id(KEY)}, {"$inc": {"n": -1}})
    assert counters.main(["check"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["wrong"] == {store.counter_id(KEY): {"counter": 2, "recount": 3}} and out["set"] == []
    assert counters.main(["check", "--fix", "--settle", "0.2"]) == 0
    assert json.loads(capsys.readouterr().out)["set"] == [{"counter": store.counter_id(KEY), "was": 2, "now": 3}]
    assert totals(db) == {store.counter_id(KEY): 3} and counters.main(["check"]) == 0


def test_finding_handlers_take_batches():
    handlers = [ep for name in dir(CoordinationService) if name.endswith("_findings") and name.startswith("handle_")
                for ep in getattr(getattr(CoordinationService, name), "nameko_entrypoints", ())]
    assert handlers and all(isinstance(ep, BatchEventHandler) for ep in handlers)


def finding(key: str, type_: str, as_of: datetime, dept: str = SCJG, event_id: str | None = None) -> dict:
    rule, subject_type, subject_id = key.split(":", 2)
    payload = {"finding_key": key, "rule_id": rule, "severity": "serious", "dept": dept, "subject_type": subject_type,
               "subject_id": subject_id, "as_of": as_of.isoformat(), "evidence": {"officers": 1},
               "message": "调查时执法人员不足2人"}
    return {"event_id": event_id or str(uuid.uuid4()), "type": type_, "schema_version": 1,
            "occurred_at": payload["as_of"], "dept": dept, "source": "penalty", "payload": payload}


def relay_all(amqp_uri: str, envelopes: list[dict]) -> None:
    """Publish as the penalty service's relay does (nameko events on `penalty.events`), in this order."""
    exchange = Exchange("penalty.events", type="topic", durable=True)
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        for env in envelopes:
            producer.publish(json.dumps(env, ensure_ascii=False).encode(), exchange=exchange, routing_key=env["type"],
                             declare=[exchange], serializer=None, content_type="application/json",
                             content_encoding="utf-8")


def test_a_batch_of_findings_is_counted_exactly_and_keeps_no_findings_index(zhifa_config, container_factory):
    with nameko_config.patch({"BATCH_MAX": 50, "BATCH_WAIT_MS": 400}, clear=False):
        container_factory(CoordinationService).start()
        client = pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=3000, tz_aware=True)
        db = client[f"{zhifa_config['DB_PREFIX']}coordination"]
        try:
            now = datetime.now(CST)
            keys = [f"PEN-OFFICERS-MIN:case:511322-scjg-2024-{i:04d}" for i in range(12)]
            raised = [finding(k, "finding.raised", now, dept=SCJG if i % 3 else STHJ) for i, k in enumerate(keys)]
            # in one batch: every finding raised, one of them twice (a redelivery), four resolved
            resolved = [finding(k, "finding.resolved", now + timedelta(hours=1), dept=SCJG if i % 3 else STHJ)
                        for i, k in enumerate(keys[:4])]
            relay_all(zhifa_config["AMQP_URI"], raised + [raised[5]] + resolved)

            def settled():
                docs = list(db.inbox.find({}, {"snapshot": 1}))
                return len(docs) == len(keys) and sum(d["snapshot"]["state"] == "resolved" for d in docs) == 4 and docs

            wait_for(settled, timeout=30)
            want: dict[str, int] = {}
            for doc in db.inbox.find({}, {"snapshot": 1}):
                cid = store.counter_id(ib.counter_key(doc["snapshot"]))
                want[cid] = want.get(cid, 0) + 1
            wait_for(lambda: totals(db) == want, timeout=10)
            assert sum(want.values()) == len(keys)
            counted = {d["_id"]: d["key"] for d in db.inbox_counted.find({})}
            assert len(counted) == len(keys) and all(counted[k].endswith("resolved|0") for k in keys[:4])
            assert db.inbox_findings_at.count_documents({}) == 0     # the inbox keeps no findings index
            # the same facts once more (all redelivered at once): nothing moves
            relay_all(zhifa_config["AMQP_URI"], raised + resolved)
            eventlet.sleep(2)
            assert totals(db) == want
        finally:
            client.close()


def test_a_raised_finding_is_saved_without_a_read_and_an_existing_entry_still_gets_its_fact(zhifa_config,
                                                                                          container_factory):
    """`finding.raised` saves its entry with no read first (the adapter's `creating`); when the entry exists (raised
    again after it was resolved, not in this process's cache), the insert collides and the stored entry
    takes the fact."""
    from services.kernel import config as kernel_config
    from services.kernel.aggregates import shared_cache
    from services.kernel.metrics import DB_COMMANDS

    def sent(collection: str, command: str) -> float:
        return DB_COMMANDS.labels("coordination", collection, command)._value.get()

    container_factory(CoordinationService).start()
    client = pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=3000, tz_aware=True)
    db = client[f"{zhifa_config['DB_PREFIX']}coordination"]
    try:
        now = datetime.now(CST)
        key = "PEN-OFFICERS-MIN:case:511322-scjg-2024-0900"

        def facts() -> list[str]:
            doc = db.inbox.find_one({"_id": key}, {"facts": 1}) or {}
            return [f["type"] for f in AggregateStore(db.inbox, cache=None).get(key)["facts"]] if doc else []

        reads = sent("inbox", "find")
        relay_all(zhifa_config["AMQP_URI"], [finding(key, "finding.raised", now)])
        wait_for(lambda: facts() == ["finding.raised"], timeout=20)
        assert sent("inbox", "find") == reads                       # saved with no read first
        relay_all(zhifa_config["AMQP_URI"], [finding(key, "finding.resolved", now + timedelta(hours=1))])
        wait_for(lambda: len(facts()) == 2, timeout=20)
        cache = shared_cache(kernel_config.get("AGGREGATE_CACHE_MB"))
        assert cache is not None
        cache.drop((db.inbox.full_name, key))     # as in another process: the entry not cached
        reads = sent("inbox", "find")
        relay_all(zhifa_config["AMQP_URI"], [finding(key, "finding.raised", now + timedelta(days=2))])   # again
        wait_for(lambda: len(facts()) == 3, timeout=20)
        assert sent("inbox", "find") > reads                        # the insert collided: the entry was read
        assert facts() == ["finding.raised", "finding.resolved", "finding.raised"]
        doc = AggregateStore(db.inbox, cache=None).get(key)
        assert doc["snapshot"]["state"] != "resolved" and doc["version"] == 3
        wait_for(lambda: totals(db) == {store.counter_id(ib.counter_key(doc["snapshot"])): 1}, timeout=10)
    finally:
        client.close()
