"""SideWrites (services/kernel/sidewrites.py): deferred side writes, one ordered bulk per collection."""
import pytest
from pymongo import DeleteMany, DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne

from services.kernel.base import EventSourcedService
from services.kernel.sidewrites import MAX_OPS, SideWrites, by_kind, commands, deferred


class FakeCollection:
    def __init__(self, name, log, fail=False):
        self.name = self.full_name = name
        self.log = log
        self.fail = fail

    def bulk_write(self, ops, ordered=True):
        assert ordered is True
        if self.fail:
            raise RuntimeError(f"{self.name} is down")
        self.log.append((self.name, list(ops)))


def test_one_ordered_bulk_per_collection_in_first_use_order_then_the_callbacks():
    log = []
    due, markers = FakeCollection("db.x_due", log), FakeCollection("db.x_outbox", log)
    writes = SideWrites()
    ops = [ReplaceOne({"_id": "a"}, {"due_at": 1}, upsert=True), DeleteOne({"_id": "a"}),
           ReplaceOne({"_id": "b"}, {"due_at": 2}, upsert=True)]
    writes.add(markers, DeleteOne({"_id": "m"}))
    for op in ops:
        writes.add(due, op)
    writes.after(lambda: log.append(("after", 1)))
    writes.after(lambda: log.append(("after", 2)))
    assert log == [] and len(writes) == 6  # nothing is sent before the flush
    writes.flush()
    # one command per kind: b's entry goes with a's, a's delete after both (pymongo sent three commands)
    assert log == [("db.x_outbox", [DeleteOne({"_id": "m"})]), ("db.x_due", [ops[0], ops[2]]), ("db.x_due", [ops[1]]),
                   ("after", 1), ("after", 2)]
    assert (writes.commands, writes.ops) == (3, 4)


def test_ops_are_grouped_by_kind_each_document_s_in_the_order_given():
    a_set, a_clear, a_again = (ReplaceOne({"_id": "a"}, {"due_at": 1}, upsert=True), DeleteOne({"_id": "a"}),
                               UpdateOne({"_id": "a"}, {"$min": {"due_at": 0}}, upsert=True))
    b_clear, c_set, c_inc = (DeleteOne({"_id": "b"}), ReplaceOne({"_id": "c"}, {"due_at": 3}, upsert=True),
                             UpdateOne({"_id": "c"}, {"$inc": {"n": 1}}))
    new = InsertOne({"_id": "d"})
    ops = [a_set, b_clear, a_clear, c_set, new, a_again, c_inc]
    # wave 0: a set, b cleared, c set and bumped, d inserted; wave 1: a cleared; wave 2: a set again
    assert by_kind(ops) == [new, a_set, c_set, c_inc, b_clear, a_clear, a_again]
    assert [len(c) for c in commands(ops)] == [1, 3, 2, 1]


def test_an_op_on_several_documents_or_an_unknown_one_is_a_fence_nothing_crosses():
    before, after = ReplaceOne({"_id": 1}, {"x": 1}, upsert=True), DeleteOne({"_id": 2})
    for fence in (UpdateMany({"open": True}, {"$set": {"open": False}}), DeleteMany({}),
                  UpdateOne({"_id": {"$in": [1, 2]}}, {"$set": {"x": 0}}), DeleteOne({"party": "p"}),
                  UpdateOne({"_id": [1]}, {"$set": {"x": 0}})):
        ops = [DeleteOne({"_id": 3}), before, fence, after, ReplaceOne({"_id": 4}, {"x": 4}, upsert=True)]
        assert by_kind(ops) == [before, ops[0], fence, ops[4], after]
    anonymous = [InsertOne({"n": 1}), DeleteOne({"_id": 5}), InsertOne({"n": 2})]  # (pymongo gives each an _id)
    assert by_kind(anonymous) == [anonymous[0], anonymous[2], anonymous[1]]


def test_a_run_of_one_kind_is_cut_at_max_ops():
    ops = [DeleteOne({"_id": i}) if i % 2 else ReplaceOne({"_id": i}, {}, upsert=True) for i in range(2 * MAX_OPS + 2)]
    cut = list(commands(ops))
    assert [len(c) for c in cut] == [MAX_OPS, 1, MAX_OPS, 1]
    assert {type(op) for op in cut[0] + cut[1]} == {ReplaceOne} and {type(op) for op in cut[2] + cut[3]} == {DeleteOne}
    assert [op._filter["_id"] for op in cut[0] + cut[1]] == list(range(0, 2 * MAX_OPS + 2, 2))


def test_bulks_are_chunked_at_max_ops():
    log = []
    col = FakeCollection("db.rows", log)
    writes = SideWrites()
    for i in range(2 * MAX_OPS + 3):
        writes.add(col, InsertOne({"_id": i}))
    writes.flush()
    assert [len(ops) for _, ops in log] == [MAX_OPS, MAX_OPS, 3]
    assert [op._doc["_id"] for _, ops in log for op in ops] == list(range(2 * MAX_OPS + 3))  # order kept


def test_flush_is_idempotent_and_empty_after():
    log = []
    col = FakeCollection("db.c", log)
    writes = SideWrites()
    writes.add(col, DeleteOne({"_id": 1}), key=1)
    assert writes.holds(col, 1) and not writes.holds(col, 2)
    writes.flush()
    writes.flush()
    assert len(log) == 1 and len(writes) == 0 and not writes.holds(col, 1)


def test_a_failed_write_raises_skips_the_callbacks_and_leaves_nothing_behind():
    log = []
    good, bad = FakeCollection("db.good", log), FakeCollection("db.bad", log, fail=True)
    writes = SideWrites()
    writes.add(good, DeleteOne({"_id": 1}))
    writes.add(bad, DeleteOne({"_id": 2}))
    writes.after(lambda: log.append("after"))
    with pytest.raises(RuntimeError, match="db.bad is down"):
        writes.flush()
    assert log == [("db.good", [DeleteOne({"_id": 1})])]
    assert len(writes) == 0
    writes.flush()  # the redelivery makes the writes again, not a second flush
    assert log == [("db.good", [DeleteOne({"_id": 1})])]


def test_a_callback_may_defer_more_writes_and_they_are_sent_too():
    log = []
    col = FakeCollection("db.markers", log)
    writes = SideWrites()
    writes.after(lambda: writes.add(col, DeleteOne({"_id": "m"})))
    writes.flush()
    assert log == [("db.markers", [DeleteOne({"_id": "m"})])]


def test_deferred_writes_at_once_without_a_unit_of_work():
    log = []
    col = FakeCollection("db.c", log)
    op = UpdateOne({"_id": 1}, {"$set": {"n": 1}}, upsert=True)
    deferred(None, col, op)
    assert log == [("db.c", [op])]
    writes = SideWrites()
    deferred(writes, col, op, key=1)
    assert log == [("db.c", [op])] and writes.holds(col, 1)
    writes.flush()
    assert log == [("db.c", [op]), ("db.c", [op])]


class Unit(EventSourcedService):
    """The kernel's unit of work alone (no manifest: `_apply_batch` replaced)."""

    name = "unit"

    def __init__(self, col, inner=None):
        self.col = col
        self.inner = inner

    def _apply_batch(self, envelopes):
        for env in envelopes:
            self.writes.add(self.col, DeleteOne({"_id": env}))
        if self.inner:
            self.inner(self)
        return [None] * len(envelopes)


def test_the_outer_unit_of_work_holds_and_flushes_when_it_ends():
    log = []
    unit = Unit(FakeCollection("db.c", log))
    with unit.memoized():
        outer = unit.writes
        with unit.memoized():
            assert unit.writes is outer
            unit.writes.add(unit.col, DeleteOne({"_id": 1}))
        assert log == []  # the inner unit does not flush
    assert log == [("db.c", [DeleteOne({"_id": 1})])] and unit.writes is None and unit.memo is None


def test_a_batch_whose_side_writes_fail_fails_every_message():
    log = []
    unit = Unit(FakeCollection("db.c", log, fail=True))
    outcomes = unit.apply_batch(["a", "b", "c"])
    assert len(outcomes) == 3 and all(o is not None and o[0] is RuntimeError for o in outcomes)
    unit = Unit(FakeCollection("db.c", log))
    assert unit.apply_batch(["a", "b"]) == [None, None]
    assert log == [("db.c", [DeleteOne({"_id": "a"}), DeleteOne({"_id": "b"})])]


def test_a_unit_that_raises_still_sends_its_writes_and_raises_its_own_error():
    log = []
    unit = Unit(FakeCollection("db.c", log))
    with pytest.raises(KeyError):
        with unit.memoized():
            unit.writes.add(unit.col, DeleteOne({"_id": 1}))
            raise KeyError("boom")
    assert log == [("db.c", [DeleteOne({"_id": 1})])] and unit.writes is None


# ---- the kernel's own deferred writes (AggregateStore over the in-memory database fake) ----------

def _store(writes=None):
    from services.kernel.aggregates import AggregateStore
    from tests.fakes import FakeDb

    store = AggregateStore(FakeDb()["cases"], cache=None)
    store.writes = lambda: writes
    return store


def _at(day):
    from datetime import datetime, timezone

    return datetime(2026, 5, day, tzinfo=timezone.utc)


def test_a_due_date_moved_later_or_cleared_waits_for_the_end_of_the_unit_an_earlier_one_does_not():
    from services.kernel.aggregates import Change

    writes = SideWrites()
    store = _store(writes)
    store.update("c1", lambda doc: Change({"due_at": _at(10)}))
    assert store.deadlines.docs["c1"]["due_at"] == _at(10)  # new (earlier than none): before the save
    store.update("c1", lambda doc: Change({"due_at": _at(20)}))
    assert store.deadlines.docs["c1"]["due_at"] == _at(10)  # later: deferred
    writes.flush()
    assert store.deadlines.docs["c1"]["due_at"] == _at(20)
    store.update("c1", lambda doc: Change({"due_at": None}))
    assert "c1" in store.deadlines.docs
    writes.flush()
    assert "c1" not in store.deadlines.docs


def test_an_earlier_due_date_written_at_once_is_not_undone_by_a_later_one_the_unit_still_holds():
    from services.kernel.aggregates import Change

    writes = SideWrites()
    store = _store(writes)
    store.update("c1", lambda doc: Change({"due_at": _at(10)}))
    store.update("c1", lambda doc: Change({"due_at": _at(20)}))  # deferred: 20
    store.update("c1", lambda doc: Change({"due_at": _at(5)}))   # earlier: at once, and after the 20
    assert store.deadlines.docs["c1"]["due_at"] == _at(5)
    writes.flush()
    assert store.deadlines.docs["c1"]["due_at"] == _at(5)


def test_mark_due_outside_a_unit_is_not_undone_by_another_unit_s_deferred_entry():
    from services.kernel.aggregates import AggregateStore, Change

    writes = SideWrites()
    store = _store(writes)
    store.update("c1", lambda doc: Change({"due_at": _at(10)}))
    store.update("c1", lambda doc: Change({"due_at": _at(20)}))  # deferred: 20
    other = AggregateStore(store.col, cache=None)  # e.g. a projection change handled by another worker
    other.mark_due("c1", _at(3))
    writes.flush()
    assert store.deadlines.docs["c1"]["due_at"] == _at(3) and store.col.docs["c1"]["due_at"] == _at(3)


def test_marker_deletes_of_relays_wait_for_the_end_of_the_unit():
    from services.kernel.aggregates import Change

    writes = SideWrites()
    store = _store(writes)
    saved, pending = store.update("c1", lambda doc: Change({"n": 1}, events=[{"event_id": "e1", "type": "x.y"}]))
    assert pending and not store.is_relayed("c1")
    store.relayed("c1", saved["version"])
    assert not store.is_relayed("c1")
    writes.flush()
    assert store.is_relayed("c1")


def test_a_unit_s_own_part_is_made_once_and_gone_after_the_flush():
    writes = SideWrites()
    made = []
    first = writes.part("relay", lambda: made.append(1) or [])
    assert writes.part("relay", lambda: made.append(2) or []) is first and made == [1]
    writes.flush()
    assert writes.part("relay", lambda: made.append(3) or []) is not first and made == [1, 3]


def test_the_findings_index_drops_its_counter_tokens_at_the_end_of_the_unit():
    from services.kernel.findings_index import FindingsIndex
    from tests.fakes import FakeDb

    writes = SideWrites()
    index = FindingsIndex(FakeDb()["cases"], writes=lambda: writes)
    finding = {"rule_id": "R1", "severity": "high", "dept": "scjg", "finding_key": "R1:c1", "message": "m"}
    assert index.sync({"_id": "c1", "version": 1, "findings_open": {"R1:c1": finding}})
    [counter] = index.counts.docs.values()
    assert counter["n"] == 1 and counter["tokens"] == ["c1@1"]  # counted once; the token waits
    assert index.at.docs["c1"]["pending"] is None and index.at.docs["c1"]["version"] == 1  # the move is done
    assert not index.sync({"_id": "c1", "version": 1, "findings_open": {"R1:c1": finding}})  # nothing twice
    writes.flush()
    assert index.counts.docs["high.scjg.R1"]["tokens"] == [] and index.counts.docs["high.scjg.R1"]["n"] == 1


class SlowCollection:
    """bulk_write takes a moment (a round trip), so concurrent writers queue behind it."""

    name = full_name = "db.together"

    def __init__(self):
        self.calls = []

    def bulk_write(self, ops, ordered=True):
        import eventlet

        eventlet.sleep(0.005)
        self.calls.append(list(ops))
        if "bad" in ops:
            raise ValueError("bad op")


def test_writes_of_concurrent_green_threads_go_together_and_each_returns_once_stored():
    import eventlet

    from services.kernel import sidewrites

    col = SlowCollection()
    sidewrites._grouped.pop((col.full_name, "together"), None)
    stored_before_return = []

    def write(i):
        sidewrites.together(col, f"op{i}")
        stored_before_return.append(any(f"op{i}" in ops for ops in col.calls))

    pool = eventlet.GreenPool(80)
    for i in range(70):
        pool.spawn(write, i)
    pool.waitall()
    assert sorted(op for ops in col.calls for op in ops) == sorted(f"op{i}" for i in range(70))
    assert all(stored_before_return) and len(stored_before_return) == 70
    assert len(col.calls) < 10 and max(len(ops) for ops in col.calls) <= MAX_OPS  # bulks, not 70 writes

    col.calls.clear()
    outcome = {}

    def write_or_fail(i):
        try:
            sidewrites.together(col, "bad" if i == 2 else f"op{i}")
            outcome[i] = "stored"
        except ValueError:
            outcome[i] = "failed"

    for i in range(4):
        pool.spawn(write_or_fail, i)
    pool.waitall()
    assert len(col.calls) == 1 and outcome == {i: "failed" for i in range(4)}  # the bulk failed: each writer


def test_two_relays_carrying_the_same_events_publish_each_once_and_a_failed_one_leaves_them_to_the_next():
    import eventlet

    from services.kernel.outbox import _Sent

    sent = _Sent()
    published: list[list[str]] = []

    def publish(todo):
        eventlet.sleep(0.01)  # the broker's confirms take a moment: the other relay comes meanwhile
        published.append([ev["event_id"] for ev in todo])

    a = [{"event_id": "e1"}, {"event_id": "e2"}]
    b = [{"event_id": "e2"}, {"event_id": "e3"}]  # another unit saved the aggregate from the cache
    pool = eventlet.GreenPool(2)
    pool.spawn(sent.publish, a, publish)
    pool.spawn(sent.publish, b, publish)
    pool.waitall()
    assert sorted(i for ids in published for i in ids) == ["e1", "e2", "e3"]

    def fail(todo):
        raise ConnectionError("broker gone")

    try:
        sent.publish([{"event_id": "e4"}], fail)
    except ConnectionError:
        pass
    assert sent.publish([{"event_id": "e4"}, {"event_id": "e1"}], publish) == [{"event_id": "e4"}]
    assert sent.sending == {}


def test_an_upsert_filtered_by_more_than_id_is_refused_when_deferred_and_by_id_alone_is_taken():
    writes = SideWrites()
    col = FakeCollection("c", [])
    with pytest.raises(ValueError, match="_id alone"):
        writes.add(col, UpdateOne({"_id": "a", "version": {"$lte": 3}}, {"$set": {"v": 3}}, upsert=True))
    with pytest.raises(ValueError, match="_id alone"):
        deferred(writes, col, ReplaceOne({"_id": "a", "v": 1}, {"v": 2}, upsert=True))
    writes.add(col, UpdateOne({"_id": "a"}, {"$inc": {"n": 1}}, upsert=True))
    writes.add(col, UpdateOne({"_id": "a", "v": 1}, {"$set": {"v": 2}}))  # no upsert: a miss is harmless
    assert len(writes) == 2


def test_grouped_ops_of_concurrent_green_threads_go_in_one_send_and_each_gets_its_own_result():
    import eventlet

    from services.kernel import sidewrites

    col = SlowCollection()
    col.full_name = "db.grouped"
    sends = []

    def send(collection, ops):
        eventlet.sleep(0.005)
        sends.append(list(ops))
        return [op * 10 for op in ops]

    pool = eventlet.GreenPool(80)
    results = {}

    def write(i):
        results[i] = sidewrites.grouped(col, i, send, "test")

    for i in range(70):
        pool.spawn(write, i)
    pool.waitall()
    assert results == {i: i * 10 for i in range(70)}
    assert len(sends) < 10 and max(len(ops) for ops in sends) <= MAX_OPS
    assert sidewrites._grouped[("db.grouped", "test")].ops == 70


def test_an_interrupted_sender_fails_its_group_and_hands_the_turn_on():
    import eventlet

    from services.kernel import sidewrites

    col = SlowCollection()
    col.full_name = "db.interrupted"

    def send(collection, ops):
        eventlet.sleep(0.2 if 0 in ops else 0)
        return list(ops)

    outcome = {}

    def write(i):
        try:
            outcome[i] = sidewrites.grouped(col, i, send, "test")
        except RuntimeError as exc:
            outcome[i] = str(exc)

    threads = [eventlet.spawn(write, i) for i in range(3)]
    eventlet.sleep(0.05)
    threads[0].kill()
    with eventlet.Timeout(2):
        [t.wait() for t in threads[1:]]
        assert outcome == {1: "group write interrupted", 2: "group write interrupted"}
        assert sidewrites.grouped(col, 7, send, "test") == 7  # not stuck


class SavesCollection:
    """Answers bulk_write as told: `answers` pops one per call (a count, or an exception to raise)."""

    name = full_name = "db.saves"

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def bulk_write(self, ops, ordered=True):
        from types import SimpleNamespace

        self.calls.append((type(ops[0]).__name__, len(ops), ordered))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return SimpleNamespace(matched_count=answer, inserted_count=answer)


def _saves(*expected):
    from services.kernel.aggregates import _Save

    return [_Save(f"a{i}", e, (e or 0) + 1, {"_id": f"a{i}"}, i) for i, e in enumerate(expected)]


def test_a_bulk_of_saves_answers_for_each_only_when_its_count_is_the_whole_bulk_s():
    from pymongo.errors import AutoReconnect, BulkWriteError, WriteError

    from services.kernel.aggregates import _send_saves

    col = SavesCollection(2, 1)  # the replaces all matched, one of the two inserts is missing
    assert _send_saves(col, _saves(3, None, 5, None)) == [True, None, True, None]
    assert col.calls == [("ReplaceOne", 2, False), ("InsertOne", 2, False)]
    col = SavesCollection(1, 2)  # a replace missed, and no read back answers: unknown for each (never taken as won)
    assert _send_saves(col, _saves(3, 4, None, None)) == [None, None, True, True]
    # FerretDB v1's reply without counts (KeyError), a bulk error that does not account for each insert
    col = SavesCollection(KeyError("nModified"), BulkWriteError({"writeErrors": [], "nInserted": 0}))
    assert _send_saves(col, _saves(3, None)) == [None, None]
    # an insert collided: the answer accounts for each (the others were inserted), another failed
    collided = {"writeErrors": [{"index": 1, "code": 11000, "errmsg": "E11000"},
                                {"index": 2, "code": 2, "errmsg": "bad value"}], "nInserted": 1}
    col = SavesCollection(1, BulkWriteError(collided))
    outcome = _send_saves(col, _saves(None, 3, None, None))
    assert outcome[:3] == [True, True, False] and isinstance(outcome[3], WriteError) and outcome[3].code == 2
    lost = AutoReconnect("connection closed")  # the command failed: each of its saves raises it
    col = SavesCollection(lost, 1)
    assert _send_saves(col, _saves(3, 4, None)) == [lost, lost, True]


def test_a_bulk_whose_count_is_short_is_read_back_once_and_each_save_told_by_its_own_token():
    from services.kernel.aggregates import WRITE_TOKENS, _send_saves

    stored = {"a0": {"_id": "a0", "version": 4, "_w": [0, 77]},                   # a0 won (its token 0)
              "a1": {"_id": "a1", "version": 5, "_w": [55, 66]},                  # a1 lost: another saved 5
              "a2": {"_id": "a2", "version": 6 + WRITE_TOKENS, "_w": [5, 6, 7, 8]}}  # too many saves since: unknown
    finds = []

    class ReadBack(SavesCollection):
        def find(self, flt, projection=None):
            finds.append((flt, projection))
            return [stored[i] for i in flt["_id"]["$in"] if i in stored]
    col = ReadBack(1)
    assert _send_saves(col, _saves(3, 4, 5)) == [True, False, None]
    assert finds == [({"_id": {"$in": ["a0", "a1", "a2"]}}, {"version": 1, "_w": 1})]  # one read for the bulk
    col = ReadBack(KeyError("nModified"))  # FerretDB v1's reply without counts: read back as well
    assert _send_saves(col, _saves(3, 4)) == [True, False]
    col = ReadBack(1)
    del stored["a1"]  # gone: lost (the writer reads it as absent)
    assert _send_saves(col, _saves(3, 4)) == [True, False]


def test_a_save_whose_token_is_gone_is_lost_while_a_token_of_its_version_or_older_is_kept():
    """Tokens name the version they saved: version bumps (no token) moved the document on by more than
    WRITE_TOKENS, yet a token of a save at or before this one's version is still kept, so this one lost;
    WRITE_TOKENS tokens all newer than it: not known (it may have won and been pushed out)."""
    from services.kernel.aggregates import WRITE_TOKENS, _Save, _told, write_token

    mine = _Save("a0", 3, 4, {"_id": "a0"}, write_token(4))
    assert mine.token.startswith("4-")
    later = 4 + WRITE_TOKENS + 3
    assert _told(mine, {"version": later, "_w": [write_token(3), write_token(2)]}) is False  # lost to bumps
    assert _told(mine, {"version": later, "_w": [write_token(4), write_token(3)]}) is False  # another saved 4
    assert _told(mine, {"version": later, "_w": [write_token(v) for v in range(later, later - WRITE_TOKENS, -1)]}) is None
    assert _told(mine, {"version": later, "_w": [mine.token, write_token(3)]}) is True
    assert _told(mine, {"version": later, "_w": [11, 12, 13, 14]}) is None  # tokens without a version: as before
    assert _told(mine, {"version": 4 + WRITE_TOKENS - 1, "_w": [11]}) is False  # fewer writes than WRITE_TOKENS since


def test_a_second_save_of_one_aggregate_in_a_group_is_lost_without_being_sent():
    from services.kernel.aggregates import _Save, _send_saves

    col = SavesCollection(2)
    saves = _saves(3, 4) + [_Save("a0", 3, 4, {"_id": "a0"}, 9), _Save("a1", 4, 5, {"_id": "a1"}, 8)]
    assert _send_saves(col, saves) == [True, True, False, False]
    assert col.calls == [("ReplaceOne", 2, False)]  # the bulk's count answers for the two it carried


def test_of_saves_of_one_aggregate_the_one_expecting_the_newest_version_is_sent():
    # a stale save first in the group must not stand for a current one behind it: sent first, it would
    # lose, and the current one, counted lost unsent, would make a round with no winner
    from services.kernel.aggregates import _Save, _send_saves

    col = SavesCollection(2)
    saves = [_Save("a", 3, 4, {"_id": "a", "by": "stale"}, 1), _Save("b", 7, 8, {"_id": "b"}, 2),
             _Save("a", 5, 6, {"_id": "a", "by": "current"}, 3), _Save("a", None, 1, {"_id": "a"}, 4)]
    sent = []
    col.bulk_write = (lambda write: lambda ops, ordered=True: (sent.extend(ops), write(ops, ordered))[1])(col.bulk_write)
    assert _send_saves(col, saves) == [False, True, True, False]
    assert [(op._filter, op._doc.get("by")) for op in sent] == [({"_id": "b", "version": 7}, None),
                                                                ({"_id": "a", "version": 5}, "current")]


def test_without_monkey_patching_an_op_is_sent_alone(monkeypatch):
    from services.kernel import sidewrites

    monkeypatch.setattr(sidewrites, "patched", lambda: False)  # (a replay on OS threads)
    sends = []

    def send(collection, ops):
        sends.append(list(ops))
        return ["stored"]

    col = SlowCollection()
    col.full_name = "db.unpatched"
    assert sidewrites.grouped(col, "op", send, "test") == "stored" and sends == [["op"]]
    assert ("db.unpatched", "test") not in sidewrites._grouped
    sidewrites.together(col, "marker")
    assert col.calls == [["marker"]]


def test_last_callbacks_run_after_the_rounds_after_callbacks_and_their_writes_go_in_the_next_round():
    log = []
    col = FakeCollection("db.x_outbox", log)
    writes = SideWrites()
    writes.last(lambda: (log.append(("last", 1)), writes.add(col, DeleteOne({"_id": "unit:1"}))))
    writes.after(lambda: log.append(("after", 1)))  # (added later, run first: a relay before the marker's drop)
    writes.add(col, DeleteOne({"_id": "a"}))
    writes.flush()
    assert log == [("db.x_outbox", [DeleteOne({"_id": "a"})]), ("after", 1), ("last", 1),
                   ("db.x_outbox", [DeleteOne({"_id": "unit:1"})])]


def test_a_failed_after_callback_drops_the_last_ones_of_its_round():
    log = []
    writes = SideWrites()
    writes.last(lambda: log.append("last"))
    writes.after(lambda: (_ for _ in ()).throw(RuntimeError("publish failed")))
    with pytest.raises(RuntimeError):
        writes.flush()
    assert log == []  # (a unit marker is not dropped when the relay before it failed)


def test_kept_objects_last_the_whole_unit_and_parts_only_until_the_flush_begins():
    writes = SideWrites()
    writes.part("p", dict)["x"] = 1
    writes.kept("k", dict)["x"] = 2
    assert writes.kept("absent") is None
    seen = []
    writes.after(lambda: seen.append((writes.part("p", dict), writes.kept("k"))))
    writes.flush()
    assert seen == [({}, {"x": 2})]


def test_a_unit_marker_that_cannot_be_written_leaves_each_save_its_own():
    from services.kernel.aggregates import Change

    writes = SideWrites()
    store = _store(writes)

    def refused(doc):
        raise RuntimeError("database down")

    store.outboxes.insert_one = refused
    assert store.cover(["c1", "c2"]) == 0  # (logged; the batch goes on)
    store.update("c1", lambda doc: Change({"n": 1}, events=[{"event_id": "e1", "type": "x.y"}]))
    assert store.outboxes.find_one({"_id": "c1"})["version"] == 1  # its own marker, before the save
