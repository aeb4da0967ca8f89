"""The compare-and-set saves of concurrent green threads go out as one bulk per collection
(services/kernel/aggregates.py `_send_saves` through sidewrites.grouped) on the real FerretDB: each
writer still learns whether its own save won, a loser retries, each save lands exactly once."""
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import eventlet
import eventlet.event
import pymongo
import pytest
from pymongo.errors import AutoReconnect

from services.kernel import sidewrites
from services.kernel.aggregates import AggregateStore, Change, DocCache
from tests.db_recorder import Recorder, recorded_database


class Commands(Recorder):
    """The commands sent, and (`sent`) the write commands with the number of writes each carried."""

    def __init__(self):
        super().__init__()
        self.sent = []

    def started(self, event):
        super().started(event)
        writes = event.command.get("updates") or event.command.get("documents")
        if writes is not None:  # (the ids of the inserted documents)
            self.sent.append((event.command_name, event.command.get(event.command_name),
                              [w.get("_id") for w in writes] if event.command_name == "insert" else [None] * len(writes)))

    def to(self, collection, command=None):
        return [(c, len(ids)) for c, col, ids in self.sent if col == collection and command in (None, c)]


@pytest.fixture
def db(servers):
    with recorded_database(servers["MONGO_URI"], "group", Commands(), tz_aware=True) as database:
        database.commands = database.recorder
        yield database


def add(n):
    """decide: append `n` to the aggregate's items (a fact applied once: never twice)."""
    def decide(doc):
        items = list((doc or {}).get("items", []))
        return None if n in items else Change({"items": items + [n]})
    return decide


def run_all(*calls):
    pool = eventlet.GreenPool(64)
    threads = [pool.spawn(fn, *args) for fn, *args in calls]
    return [t.wait() for t in threads]


def test_concurrent_saves_go_out_as_one_bulk_and_each_is_stored(db):
    store = AggregateStore(db.aggs, cache=DocCache(1 << 20))
    ids = [f"a{i}" for i in range(8)]
    run_all(*[(store.update, i, add(0)) for i in ids])  # created: inserts, grouped
    inserts = db.commands.to("aggs", "insert")
    assert sum(n for _, n in inserts) == 8 and len(inserts) < 8
    db.commands.sent.clear()
    db.commands.seen.clear()

    results = run_all(*[(store.update, i, add(1)) for i in ids])  # decided on the cached documents
    updates = db.commands.to("aggs", "update")
    assert sum(n for _, n in updates) == 8 and len(updates) <= 2  # one bulk (two when a thread was late)
    assert [doc["version"] for doc, _ in results] == [2] * 8
    assert ("find", "aggs") not in db.commands.seen  # every writer learned its outcome from the bulk
    for i in ids:
        stored = store.get(i)
        assert stored["items"] == [0, 1] and stored["version"] == 2
        assert stored["_w"][0] == next(doc for doc, _ in results if doc["_id"] == i)["_w"][0]


def test_a_group_where_one_save_loses_the_others_win_and_the_loser_retries(db):
    store = AggregateStore(db.aggs, cache=DocCache(1 << 20))
    ids = [f"b{i}" for i in range(6)]
    run_all(*[(store.update, i, add(0)) for i in ids])
    # another process saves b3 behind this store's cache: its cached version 1 is stale now
    db.aggs.update_one({"_id": "b3"}, {"$set": {"items": [0, "other"]}, "$inc": {"version": 1}})
    db.commands.sent.clear()
    db.commands.seen.clear()

    results = run_all(*[(store.update, i, add(1)) for i in ids])
    assert db.commands.seen.count(("find", "aggs")) == 2  # the six outcomes read in one find, the loser's document
    for i, (doc, _) in zip(ids, results):
        stored = store.get(i)
        if i == "b3":  # lost the compare-and-set, read again, decided on the stored document
            assert stored["items"] == [0, "other", 1] and stored["version"] == 3
        else:
            assert stored["items"] == [0, 1] and stored["version"] == 2
        assert stored["_w"][0] == doc["_w"][0]
    updates = db.commands.to("aggs", "update")
    assert updates[0][1] == 6  # the group's bulk (its count was short: read back, each by its own token)
    assert sum(n for _, n in updates) == 7  # and the loser's second save
    assert store.cache.stale == 1


def test_a_save_lost_to_version_bumps_is_told_lost_and_retries_not_unknown(db):
    """A case made due again and again (penalty's `mark_due`: `$inc version`, no write token) while this
    process decided on its cached version: its save in a group bulk loses, and the read back finds the
    document more than WRITE_TOKENS versions on. The bumps wrote no token, so the tokens kept are of saves
    at or before the version it read: it lost (the usual retry), where counting versions alone said
    "unknown" and the fact went the message's retry way (1 s, 5 s, 30 s: a 30 s stall in one bench run)."""
    from services.kernel.aggregates import WRITE_TOKENS

    store = AggregateStore(db.aggs, cache=DocCache(1 << 20))
    ids = [f"c{i}" for i in range(6)]
    run_all(*[(store.update, i, add(0)) for i in ids])
    for _ in range(WRITE_TOKENS + 1):  # bumped behind this store's cache (its cached version 1 is stale now)
        db.aggs.update_one({"_id": "c3"}, {"$set": {"due_at": 1}, "$inc": {"version": 1}})
    db.commands.sent.clear()
    db.commands.seen.clear()

    results = run_all(*[(store.update, i, add(1)) for i in ids])  # (raised ConcurrencyError for c3 before)
    assert db.commands.seen.count(("find", "aggs")) == 2  # the group's read back, then c3's own read
    for i, (doc, _) in zip(ids, results):
        stored = store.get(i)
        assert stored["items"] == [0, 1]
        assert stored["version"] == (WRITE_TOKENS + 3 if i == "c3" else 2)
        assert stored["_w"][0] == doc["_w"][0]


def test_a_new_aggregate_another_writer_created_first_loses_alone_and_the_other_inserts_win(db):
    store = AggregateStore(db.aggs, cache=DocCache(1 << 20))
    ids = [f"f{i}" for i in range(5)]


    decided, all_decided = [], eventlet.event.Event()

    def meanwhile(agg_id):  # another process creates f2 between this writer's read and its save (the
        def decide(doc):     # others make a write of the same kind then); all five first attempts wait
            if doc is None and db.side.find_one({"_id": agg_id}) is None:  # for each other, so they reach
                (db.aggs if agg_id == "f2" else db.side).insert_one({"_id": agg_id, "version": 1, "items": ["other"]})
                decided.append(agg_id)                                      # their saves together
                if len(decided) == len(ids):
                    all_decided.send()
                all_decided.wait()
            return add(0)(doc)
        return decide

    db.commands.seen.clear()
    run_all(*[(store.update, i, meanwhile(i)) for i in ids])
    with_f2 = [ids for c, col, ids in db.commands.sent if col == "aggs" and "f2" in ids and c == "insert"]
    assert with_f2[0] == ["f2"] and len(with_f2[1]) > 1  # the other's, then this store's in a bulk with others
    # five reads of the missing documents, one more for the loser's retry;
    # no outcome read: the collided bulk's answer accounted for each insert
    assert db.commands.seen.count(("find", "aggs")) == 6
    assert store.get("f2")["items"] == ["other", 0] and store.get("f2")["version"] == 2
    assert all(store.get(i)["items"] == [0] and store.get(i)["version"] == 1 for i in ids if i != "f2")


def test_a_save_decided_on_a_version_this_process_has_saved_past_is_lost_without_being_sent(db):
    store = AggregateStore(db.aggs, cache=DocCache(1 << 20))
    store.update("g0", add(0))

    def slow(doc):  # decided on the cached version 1, saved after the other thread saved version 2
        eventlet.sleep(0.2)
        return add("slow")(doc)

    db.commands.sent.clear()
    run_all((store.update, "g0", slow), (store.update, "g0", add(1)))
    assert sum(n for _, n in db.commands.to("aggs", "update")) == 2  # the other's save, the retry's
    stored = store.get("g0")
    assert sorted(map(str, stored["items"])) == ["0", "1", "slow"] and stored["version"] == 3


def test_two_stores_on_two_clients_racing_on_one_aggregate_store_each_save_once(servers, db):
    other_client = pymongo.MongoClient(servers["MONGO_URI"], serverSelectionTimeoutMS=3000, tz_aware=True)
    try:
        mine = AggregateStore(db.aggs, cache=DocCache(1 << 20))
        theirs = AggregateStore(other_client[db.name].aggs, cache=DocCache(1 << 20))
        calls = []
        for n in range(24):  # the same aggregates from both, creations included, interleaved
            calls.append(((mine if n % 2 else theirs).update, f"c{n % 3}", add(n)))
        run_all(*calls)
        for k in range(3):
            stored = mine.get(f"c{k}")
            assert sorted(stored["items"]) == [n for n in range(24) if n % 3 == k]  # each exactly once
            assert stored["version"] == 8  # one save per fact: no save counted twice, none lost
    finally:
        other_client.close()


RACER = textwrap.dedent("""
    import eventlet
    eventlet.monkey_patch()
    import sys
    import pymongo
    from services.kernel.aggregates import AggregateStore, Change, DocCache
    from services.kernel.mongo import ConcurrencyError

    import time
    from services.kernel import sidewrites

    uri, name, start, at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=3000, tz_aware=True)
    store = AggregateStore(client[name].aggs, cache=DocCache(1 << 20))

    def add(n):
        def decide(doc):
            items = list((doc or {}).get("items", []))
            return None if n in items else Change({"items": items + [n]})
        return decide

    store.get("p0")  # (connected)
    time.sleep(max(0.0, at - time.time()))  # both processes start together
    def apply(n):
        while True:
            try:
                return store.update(f"p{n % 3}", add(n))
            except ConcurrencyError:  # (too many lost in a row: as the redelivery of the fact would)
                continue

    pool = eventlet.GreenPool(8)
    for n in range(start, 300, 2):
        pool.spawn(apply, n)
    pool.waitall()
    group = sidewrites._grouped[(store.col.full_name, "save")]
    print(store.cache.stale, group.commands, group.ops)
""")


def test_two_processes_racing_on_the_same_aggregates_inside_groups_store_each_save_once(servers, db):
    root = Path(__file__).resolve().parents[2]
    at = str(time.time() + 6)
    racers = [subprocess.Popen([sys.executable, "-c", RACER, servers["MONGO_URI"], db.name, str(start), at],
                               cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for start in (0, 1)]
    outs = [r.communicate(timeout=120) for r in racers]
    assert [r.returncode for r in racers] == [0, 0] and not any("Error" in err for _, err in outs), \
        [err[-3000:] for _, err in outs]
    store = AggregateStore(db.aggs, cache=None)
    for k in range(3):
        stored = store.get(f"p{k}")
        assert sorted(stored["items"]) == [n for n in range(300) if n % 3 == k]  # each fact exactly once
        assert stored["version"] == 100  # one save per fact
    lost, groups, saves = zip(*(map(int, out.split()) for out, _ in outs))
    assert sum(lost) > 0  # saves lost to the other process and were retried
    assert all(g < s for g, s in zip(groups, saves))  # in groups: fewer sends than saves


class Failing:
    """The aggregates collection of a real database whose bulk writes fail like a dropped connection
    (`fail`), or take `delay` seconds before they are sent."""

    def __init__(self, col):
        self._col = col
        self.fail = False
        self.delay = 0.0
        self.bulks = 0

    def __getattr__(self, name):
        return getattr(self._col, name)

    def bulk_write(self, ops, **kw):
        self.bulks += 1
        if self.delay:
            eventlet.sleep(self.delay)
        if self.fail:
            raise AutoReconnect("connection closed")
        return self._col.bulk_write(ops, **kw)


def test_a_failed_bulk_fails_every_writer_of_its_group_and_a_retry_stores_them(db):
    col = Failing(db.aggs)
    store = AggregateStore(col, cache=DocCache(1 << 20))
    ids = [f"d{i}" for i in range(5)]
    run_all(*[(store.update, i, add(0)) for i in ids])
    col.fail, col.bulks = True, 0

    def attempt(agg_id):
        try:
            store.update(agg_id, add(1))
            return "saved"
        except AutoReconnect:
            return "failed"

    assert run_all(*[(attempt, i) for i in ids]) == ["failed"] * 5
    assert col.bulks == 1  # they were one group
    assert all(store.get(i)["items"] == [0] for i in ids)
    col.fail = False
    run_all(*[(store.update, i, add(1)) for i in ids])  # the redelivery
    assert all(store.get(i)["items"] == [0, 1] and store.get(i)["version"] == 2 for i in ids)


def test_an_interrupted_leader_does_not_hang_the_others(db):
    col = Failing(db.aggs)
    store = AggregateStore(col, cache=DocCache(1 << 20))
    ids = [f"e{i}" for i in range(4)]
    run_all(*[(store.update, i, add(0)) for i in ids])
    col.delay = 0.2
    outcome = {}

    def attempt(agg_id):
        try:
            store.update(agg_id, add(1))
            outcome[agg_id] = "saved"
        except RuntimeError:
            outcome[agg_id] = "interrupted"

    threads = [eventlet.spawn(attempt, i) for i in ids]
    eventlet.sleep(0.05)  # the first is sending the group's bulk (delayed), the others wait on it
    threads[0].kill()
    with eventlet.Timeout(5):
        for t in threads[1:]:
            t.wait()
    assert outcome == {i: "interrupted" for i in ids[1:]}
    col.delay = 0
    with eventlet.Timeout(5):  # the group is free again: the next saves go through
        run_all(*[(store.update, i, add(2)) for i in ids])
    for i in ids:
        assert store.get(i)["items"][-1] == 2
    assert not sidewrites._grouped[(db.aggs.full_name, "save")].busy
