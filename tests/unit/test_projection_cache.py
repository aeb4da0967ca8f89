"""The process projection cache (services/kernel/projection_cache.py) over a fake database: what it
serves from memory, what a change logged by another process drops, and which saved aggregates the
unit's end check hands back to be made due."""
import pytest

from services.kernel import projection_cache as pc


class FakeCollection:
    """Just the calls the change log makes (`_id` "epoch" only), and `_id` look-ups."""

    def __init__(self):
        self.docs: dict = {}
        self.finds = self.writes = 0

    def find_one(self, flt):
        self.finds += 1
        doc = self.docs.get(flt["_id"])
        return None if doc is None else {**doc, "ring": dict(doc.get("ring", {}))}

    def update_one(self, flt, update, upsert=False):
        self.writes += 1
        doc = self.docs.get(flt["_id"])
        if doc is None:
            assert upsert
            doc = self.docs[flt["_id"]] = {"_id": flt["_id"], **update.get("$setOnInsert", {})}
        for path, by in update.get("$inc", {}).items():
            doc[path] = doc.get(path, 0) + by
        for path, value in update.get("$set", {}).items():
            field, slot = path.split(".")
            doc.setdefault(field, {})[slot] = value
        for path in update.get("$unset", {}):
            field, slot = path.split(".")
            doc.get(field, {}).pop(slot, None)


class FakeDb:
    def __init__(self, name="t_penalty"):
        self.name = name
        self.cols: dict[str, FakeCollection] = {}

    def __getitem__(self, name):
        return self.cols.setdefault(name, FakeCollection())


@pytest.fixture(autouse=True)
def slots(monkeypatch):
    settings = {"PROJECTION_CHANGE_SLOTS": 4, "PROJECTION_CACHE_ENTRIES": 3, "PROJECTION_LOG_REUSE_MS": 0}
    monkeypatch.setattr(pc.config, "get", lambda key: settings.get(key))
    return settings


class Store:
    """The projection collection the loader reads, counting look-ups."""

    def __init__(self, **payloads):
        self.payloads = dict(payloads)
        self.reads: list = []

    def load(self, keys):
        self.reads.extend(keys)
        return {k: self.payloads[k] for k in keys if k in self.payloads}


def test_a_projection_is_read_once_across_units_and_absent_ones_are_remembered():
    db, cache, officers = FakeDb(), pc.ProjectionCache(10), Store(O1={"v": 1}, O2={"v": 1})
    counted = []
    first = pc.ProjectionReader(db, cache, lambda kind, result, n: counted.append((kind, result, n)))
    assert first.payloads("officers", ["O1", "O2", "O9"], officers.load) == {"O1": {"v": 1}, "O2": {"v": 1}}
    second = pc.ProjectionReader(db, cache)
    assert second.payloads("officers", ["O2", "O1", "O9"], officers.load) == {"O1": {"v": 1}, "O2": {"v": 1}}
    assert officers.reads == ["O1", "O2", "O9"]  # the second unit read none of them
    assert counted == [("officers", "miss", 3)]
    assert (cache.hits, cache.misses) == (3, 3)


def test_a_change_logged_by_another_process_drops_only_that_key_at_the_next_unit():
    db, cache = FakeDb(), pc.ProjectionCache(10)
    officers = Store(O1={"v": 1}, O2={"v": 1})
    pc.ProjectionReader(db, cache).payloads("officers", ["O1", "O2"], officers.load)
    officers.payloads["O1"] = {"v": 2}
    pc.record_change(db, "officers", "O1")  # another process stored O1 v2: one write
    assert (db[pc.CHANGES].writes, db[pc.CHANGES].docs["epoch"]["n"]) == (1, 1)
    officers.reads.clear()
    reader = pc.ProjectionReader(db, cache)
    assert reader.payloads("officers", ["O1", "O2"], officers.load) == {"O1": {"v": 2}, "O2": {"v": 1}}
    assert officers.reads == ["O1"]


def test_many_changes_of_other_keys_drop_only_those_keys(slots):
    db, cache = FakeDb(), pc.ProjectionCache(10)
    officers = Store(O1={"v": 1}, O2={"v": 1})
    pc.ProjectionReader(db, cache).payloads("officers", ["O1", "O2"], officers.load)
    for _ in range(2 * slots["PROJECTION_CHANGE_SLOTS"]):
        pc.record_change(db, "items", "I1")  # the ring holds them all until a reader trims it
    officers.reads.clear()
    pc.ProjectionReader(db, cache).payloads("officers", ["O1", "O2"], officers.load)
    assert officers.reads == []


def test_entries_removed_before_a_reader_saw_them_drop_the_whole_database(slots):
    db, cache, other = FakeDb(), pc.ProjectionCache(10), pc.ProjectionCache(10)
    officers = Store(O1={"v": 1}, O2={"v": 1})
    pc.ProjectionReader(db, cache).payloads("officers", ["O1", "O2"], officers.load)
    for _ in range(2 * slots["PROJECTION_CHANGE_SLOTS"] + 1):
        pc.record_change(db, "items", "I1")
    pc.ProjectionReader(db, other).payloads("items", ["I1"], Store().load)  # another process trims the ring
    assert len(db[pc.CHANGES].docs["epoch"]["ring"]) == slots["PROJECTION_CHANGE_SLOTS"]
    officers.reads.clear()
    pc.ProjectionReader(db, cache).payloads("officers", ["O1", "O2"], officers.load)
    assert officers.reads == ["O1", "O2"]  # O1 and O2 never changed, but the log can no longer say so


def test_a_numbered_slot_an_older_writer_overwrote_drops_the_whole_database():
    db, cache = FakeDb(), pc.ProjectionCache(10)
    officers = Store(O1={"v": 1})
    pc.record_change(db, "items", "I1")
    db[pc.CHANGES].docs["epoch"]["ring"]["1"] = "1\titems\tI1"  # (the format before: `n % slots`)
    pc.ProjectionReader(db, cache).payloads("officers", ["O1"], officers.load)
    db[pc.CHANGES].docs["epoch"]["n"] += 1  # an older process logs O1 into slot "1" again
    db[pc.CHANGES].docs["epoch"]["ring"]["1"] = "2\tofficers\tO1"
    officers.reads.clear()
    pc.ProjectionReader(db, cache).payloads("officers", ["O1"], officers.load)
    assert officers.reads == ["O1"]


def test_a_log_created_anew_drops_everything_cached_for_that_database():
    db, cache = FakeDb(), pc.ProjectionCache(10)
    pc.record_change(db, "officers", "O7")
    officers = Store(O1={"v": 1})
    pc.ProjectionReader(db, cache).payloads("officers", ["O1"], officers.load)
    db.cols.clear()  # the database dropped and filled again: the counter restarts
    pc.record_change(db, "officers", "O7")
    officers.reads.clear()
    pc.ProjectionReader(db, cache).payloads("officers", ["O1"], officers.load)
    assert officers.reads == ["O1"]


def test_a_read_that_started_before_a_drop_is_not_cached():
    db, cache = FakeDb(), pc.ProjectionCache(10)
    officers = Store(O1={"v": 1})
    pc.ProjectionReader(db, cache).payloads("officers", ["X"], Store().load)

    def slow_load(keys):
        found = officers.load(keys)  # read v1 ... meanwhile O1 changes and another unit of work sees it
        pc.record_change(db, "officers", "O1")
        pc.ProjectionReader(db, cache).payloads("items", ["I1"], Store().load)
        return found

    reader = pc.ProjectionReader(db, cache)
    assert reader.payloads("officers", ["O1"], slow_load) == {"O1": {"v": 1}}  # used by this unit ...
    assert cache.get(db.name, "officers", "O1") is pc.MISSING  # ... but not kept for the next ones


def test_the_end_check_hands_back_the_saved_aggregates_that_read_a_key_changed_during_the_unit():
    db, cache = FakeDb(), pc.ProjectionCache(10)
    officers, items = Store(O1={"v": 1}, O2={"v": 1}), Store(I1={"r": 1})
    reader = pc.ProjectionReader(db, cache)
    reader.payloads("officers", ["O1"], officers.load, "case-a")
    reader.payloads("officers", ["O2"], officers.load, "case-b")
    reader.payloads("items", ["I1"], items.load, "case-c")
    reader.saved.update({"case-a", "case-b", "case-c"})
    officers.payloads["O1"] = {"v": 2}  # stored by another process while this unit ran
    pc.record_change(db, "officers", "O1")
    officers.reads.clear()
    assert reader.finish() == ["case-a"]
    assert officers.reads == ["O1"] and items.reads == ["I1"]  # only the key the log named was read again
    assert cache.get(db.name, "officers", "O1") is pc.MISSING  # and the cache dropped it already


def test_a_logged_change_that_left_what_the_judgement_used_as_it_is_makes_nothing_due():
    db, cache = FakeDb(), pc.ProjectionCache(10)
    parties = Store(P1=[("case-a", {"fine": 100}), ("case-b", None)])
    reader = pc.ProjectionReader(db, cache)
    # each case's judgement uses the other cases' entries of its party's list, not its own
    reader.payloads("parties", ["P1"], parties.load, "case-a", view=lambda lst: [e for c, e in lst if c != "case-a"])
    reader.payloads("parties", ["P1"], parties.load, "case-b", view=lambda lst: [e for c, e in lst if c != "case-b"])
    reader.saved.update({"case-a", "case-b"})
    parties.payloads["P1"] = [("case-a", {"fine": 100}), ("case-b", {"fine": 50})]  # case-b's own decision
    pc.record_change(db, "parties", "P1")  # (logged by this very unit)
    assert reader.finish() == ["case-a"]  # case-a used case-b's entry, which changed; case-b did not


def test_an_aggregate_served_two_different_values_of_a_key_in_one_unit_falls_due():
    db, cache = FakeDb(), pc.ProjectionCache(10)
    officers = Store(O1={"v": 1})
    reader = pc.ProjectionReader(db, cache)
    reader.payloads("officers", ["O1"], officers.load, "case-a")
    officers.payloads["O1"] = {"v": 2}
    cache.advance(db.name, pc.Log("other", 0, {}), 0.0)  # (the cache dropped, then read O1 again)
    reader.payloads("officers", ["O1"], officers.load, "case-a")
    reader.saved.add("case-a")
    pc.record_change(db, "officers", "O1")
    assert reader.finish() == ["case-a"]  # though its last read equals what is stored now


def test_an_end_check_whose_second_read_fails_makes_every_suspect_due():
    db, cache = FakeDb(), pc.ProjectionCache(10)
    officers = Store(O1={"v": 1}, O2={"v": 1})
    reader = pc.ProjectionReader(db, cache)
    reader.payloads("officers", ["O1"], officers.load, "case-a")
    reader.payloads("officers", ["O2"], officers.load, "case-b")
    reader.saved.update({"case-a", "case-b"})
    pc.record_change(db, "officers", "O1")

    def down(keys):
        raise OSError("database unreachable")
    reader.loaders["officers"] = down
    assert reader.finish() == ["case-a"]  # case-b read no key the log named


def test_the_end_check_reads_nothing_when_the_unit_read_no_projection_or_saved_nothing():
    db, cache = FakeDb(), pc.ProjectionCache(10)
    assert pc.ProjectionReader(db, cache).finish() == []
    assert db[pc.CHANGES].finds == 0
    reader = pc.ProjectionReader(db, cache)
    reader.payloads("officers", ["O1"], Store().load, "case-a")
    pc.record_change(db, "officers", "O1")
    assert reader.finish() == []  # case-a was judged but not saved (a lost compare-and-set, a refusal)


def test_an_unknown_stretch_of_the_log_checks_every_saved_aggregate_that_read_a_projection(slots):
    db, cache = FakeDb(), pc.ProjectionCache(10)
    officers = Store(O1={"v": 1}, O2={"v": 1})
    reader = pc.ProjectionReader(db, cache)
    reader.payloads("officers", ["O1"], officers.load, "case-a")
    reader.payloads("officers", ["O2"], officers.load, "case-b")
    reader.saved.update({"case-a", "case-b", "case-z"})  # case-z read no projection
    officers.payloads["O1"] = {"v": 2}
    for _ in range(2 * slots["PROJECTION_CHANGE_SLOTS"] + 2):
        pc.record_change(db, "items", "I9")
    pc.ProjectionReader(db, pc.ProjectionCache(10)).payloads("items", ["I9"], Store().load)  # trims the ring
    counted = []
    reader.count = lambda kind, result, n: counted.append((kind, result, n))
    officers.reads.clear()
    assert reader.finish() == ["case-a"]  # the log cannot name O1: read again, it changed; O2 did not
    assert sorted(officers.reads) == ["O1", "O2"]
    assert ("any", "unknown", 2) in counted  # what the operator sees: raise PROJECTION_CHANGE_SLOTS


def test_an_end_check_that_knows_the_changes_counts_nothing_unknown():
    db, cache = FakeDb(), pc.ProjectionCache(10)
    reader = pc.ProjectionReader(db, cache)
    officers = Store(O1={"v": 1})
    reader.payloads("officers", ["O1"], officers.load, "case-a")
    reader.saved.add("case-a")
    officers.payloads["O1"] = {"v": 2}
    pc.record_change(db, "officers", "O1")
    counted = []
    reader.count = lambda kind, result, n: counted.append((kind, result, n))
    assert reader.finish() == ["case-a"]
    assert not [c for c in counted if c[1] == "unknown"]


def test_the_cache_is_bounded_least_recently_used_first(slots):
    db, cache = FakeDb(), pc.ProjectionCache(slots["PROJECTION_CACHE_ENTRIES"])
    officers = Store(A={}, B={}, C={}, D={})
    reader = pc.ProjectionReader(db, cache)
    reader.payloads("officers", ["A", "B", "C"], officers.load)
    reader.payloads("officers", ["A"], officers.load)  # A used again: B is the oldest now
    reader.payloads("officers", ["D"], officers.load)
    assert len(cache) == 3
    assert cache.get(db.name, "officers", "B") is pc.MISSING
    assert cache.get(db.name, "officers", "A") == {}


def test_size_zero_turns_the_cache_off(slots):
    slots["PROJECTION_CACHE_ENTRIES"] = 0
    assert pc.shared_cache() is None
    assert pc.projection_reader(FakeDb(), "penalty") is None


def test_several_changes_are_logged_in_one_write_and_each_drops_its_own_key():
    db, cache = FakeDb(), pc.ProjectionCache(10)
    parties = Store(P1=[1], P2=[2], P3=[3])
    pc.ProjectionReader(db, cache).payloads("parties", ["P1", "P2", "P3"], parties.load)
    pc.record_changes(db, [("parties", "P1"), ("parties", "P3"), ("parties", "P1")])
    assert (db[pc.CHANGES].writes, db[pc.CHANGES].docs["epoch"]["n"]) == (1, 2)
    parties.reads.clear()
    pc.ProjectionReader(db, cache).payloads("parties", ["P1", "P2", "P3"], parties.load)
    assert parties.reads == ["P1", "P3"]


def test_a_read_during_which_only_other_keys_changed_is_cached():
    db, cache = FakeDb(), pc.ProjectionCache(10)
    officers = Store(O1={"v": 1})
    pc.ProjectionReader(db, cache).payloads("items", ["X"], Store().load)

    def slow_load(keys):
        found = officers.load(keys)  # meanwhile a party's decisions change and another unit sees it
        pc.record_change(db, "parties", "P1")
        pc.ProjectionReader(db, cache).payloads("items", ["I1"], Store().load)
        return found

    pc.ProjectionReader(db, cache).payloads("officers", ["O1"], slow_load)
    assert cache.get(db.name, "officers", "O1") == {"v": 1}  # kept: O1 did not change


def test_a_read_during_which_the_whole_database_was_dropped_is_not_cached():
    db, cache = FakeDb(), pc.ProjectionCache(10)
    officers = Store(O1={"v": 1})
    pc.record_change(db, "items", "I0")
    pc.ProjectionReader(db, cache).payloads("items", ["X"], Store().load)

    def slow_load(keys):
        found = officers.load(keys)
        db.cols.clear()  # the log created anew: nobody can say what changed
        pc.record_change(db, "parties", "P1")
        pc.ProjectionReader(db, cache).payloads("items", ["I1"], Store().load)
        return found

    pc.ProjectionReader(db, cache).payloads("officers", ["O1"], slow_load)
    assert cache.get(db.name, "officers", "O1") is pc.MISSING


def test_a_value_read_after_this_process_logged_its_change_survives_that_entry_but_not_others():
    db, cache = FakeDb(), pc.ProjectionCache(10)
    parties = Store(P1=["old"])
    pc.ProjectionReader(db, cache).payloads("parties", ["P2"], Store().load)
    generation = cache.generation  # (a look-up of P1 begins here and reads the old list)
    logged = pc.record_changes(db, [("parties", "P1")])  # this process changed P1 and logged it
    assert cache.seed(db.name, "parties", "P1", ["new"], generation, logged)
    cache.put(db.name, "parties", "P1", ["old"], generation)  # that look-up ends: refused
    parties.reads.clear()
    reader = pc.ProjectionReader(db, cache)  # the next unit sees the log: its own entry drops nothing
    assert reader.payloads("parties", ["P1"], parties.load) == {"P1": ["new"]} and parties.reads == []
    pc.record_change(db, "parties", "P1")  # another process changes P1
    assert pc.ProjectionReader(db, cache).payloads("parties", ["P1"], parties.load) == {"P1": ["old"]}
    assert parties.reads == ["P1"]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now


@pytest.fixture
def reuse(slots, monkeypatch):
    """The log as read within PROJECTION_LOG_REUSE_MS (250 ms here) starts the next unit; a fake clock."""
    slots["PROJECTION_LOG_REUSE_MS"] = 250
    clock = Clock()
    monkeypatch.setattr(pc.time, "monotonic", clock.monotonic)
    return clock


def test_a_unit_starting_soon_after_a_read_of_the_log_starts_from_it_without_reading_it(reuse):
    db, cache, officers = FakeDb(), pc.ProjectionCache(10), Store(O1={"v": 1})
    pc.ProjectionReader(db, cache).payloads("officers", ["O1"], officers.load)
    assert db[pc.CHANGES].finds == 1
    reuse.now += 0.2
    assert pc.ProjectionReader(db, cache).payloads("officers", ["O1"], officers.load) == {"O1": {"v": 1}}
    assert db[pc.CHANGES].finds == 1  # started from the log as read 200 ms ago
    reuse.now += 0.3  # 500 ms after the last read: read again
    pc.ProjectionReader(db, cache).payloads("officers", ["O1"], officers.load)
    assert db[pc.CHANGES].finds == 2
    assert officers.reads == ["O1"]


def test_a_change_logged_after_the_reused_read_is_caught_by_the_end_check(reuse):
    db, cache = FakeDb(), pc.ProjectionCache(10)
    officers = Store(O1={"v": 1}, O2={"v": 1})
    pc.ProjectionReader(db, cache).payloads("officers", ["O1", "O2"], officers.load)
    officers.payloads["O1"] = {"v": 2}
    pc.record_change(db, "officers", "O1")  # another process, just after this process read the log
    reuse.now += 0.1
    reader = pc.ProjectionReader(db, cache)
    assert reader.payloads("officers", ["O1"], officers.load, "case-a") == {"O1": {"v": 1}}  # (served from memory)
    reader.payloads("officers", ["O2"], officers.load, "case-b")
    reader.saved.update({"case-a", "case-b"})
    assert reader.finish() == ["case-a"]  # judged on the old O1: made due, judged again later
    assert cache.get(db.name, "officers", "O1") is pc.MISSING
    reuse.now += 0.1
    assert pc.ProjectionReader(db, cache).payloads("officers", ["O1"], officers.load) == {"O1": {"v": 2}}


def test_the_end_checks_read_of_the_log_starts_the_next_unit(reuse):
    db, cache, officers = FakeDb(), pc.ProjectionCache(10), Store(O1={"v": 1})
    reader = pc.ProjectionReader(db, cache)
    reader.payloads("officers", ["O1"], officers.load, "case-a")
    reader.saved.add("case-a")
    reuse.now += 0.2
    assert reader.finish() == []
    assert db[pc.CHANGES].finds == 2
    reuse.now += 0.2  # 400 ms after the first read, 200 ms after the end check's
    pc.ProjectionReader(db, cache).payloads("officers", ["O1"], officers.load)
    assert db[pc.CHANGES].finds == 2


def test_a_read_older_than_the_log_applied_does_not_make_it_recent(reuse):
    cache = pc.ProjectionCache(10)
    newer, older = pc.Log("L", 5, {}), pc.Log("L", 4, {})
    cache.advance("db", newer, read_at=reuse.now)
    reuse.now += 1.0
    assert cache.current("db", 0.25) is None
    cache.advance("db", older, read_at=reuse.now)  # began before the newer one was applied, came back late
    assert cache.current("db", 0.25) is None
    cache.advance("db", pc.Log("L", 5, {}), read_at=reuse.now)  # found it current
    assert cache.current("db", 0.25) == newer


def test_no_reuse_when_the_setting_is_zero(slots, monkeypatch):
    slots["PROJECTION_LOG_REUSE_MS"] = 0
    db, cache, officers = FakeDb(), pc.ProjectionCache(10), Store(O1={"v": 1})
    for _ in range(3):
        pc.ProjectionReader(db, cache).payloads("officers", ["O1"], officers.load)
    assert db[pc.CHANGES].finds == 3
