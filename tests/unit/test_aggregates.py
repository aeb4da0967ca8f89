"""AggregateStore on its own (an in-memory collection): listeners after each save."""
from services.kernel.aggregates import AggregateStore, Change
from tests.fakes import FakeDb


def test_listeners_get_old_and_new_document_after_each_save_and_the_document_on_a_duplicate():
    calls = []
    store = AggregateStore(FakeDb()["cases"], listeners=[lambda old, new: calls.append((old, new))])

    first, _ = store.update("c1", lambda doc: Change({"n": 1}))
    assert calls == [(None, first)] and first["version"] == 1

    second, _ = store.update("c1", lambda doc: Change({"n": doc["n"] + 1}))
    assert len(calls) == 2
    old, new = calls[1]
    assert (old["n"], old["version"]) == (1, 1) and new is second and (new["n"], new["version"]) == (2, 2)

    same, _ = store.update("c1", lambda doc: None)  # e.g. a redelivered fact: nothing written
    assert calls[2] == (same, same) and same["version"] == 2


def test_no_listener_call_when_there_is_no_document_and_nothing_to_write():
    calls = []
    store = AggregateStore(FakeDb()["cases"], listeners=[lambda old, new: calls.append((old, new))])
    assert store.update("missing", lambda doc: None) == (None, [])
    assert calls == []


def test_the_document_cache_hands_out_copies_remembers_relays_and_stays_within_its_bytes():
    from datetime import datetime, timezone

    from bson.codec_options import CodecOptions

    from services.kernel.aggregates import DocCache

    aware = CodecOptions(tz_aware=True, tzinfo=timezone.utc)
    at = datetime(2025, 5, 1, 8, tzinfo=timezone.utc)
    cache = DocCache(3000)
    cache.put(("db.c", "a"), {"_id": "a", "version": 1, "outbox": [{"event_id": "e1"}], "at": at, "x": "执法" * 100})
    first = cache.get(("db.c", "a"), aware)
    first["outbox"].append({"event_id": "bad"})  # a caller changing its copy changes nothing cached
    again = cache.get(("db.c", "a"), aware)
    assert again["outbox"] == [{"event_id": "e1"}] and again["at"] == at and cache.hits == 2

    cache.relayed(("db.c", "a"), 2)  # another version: not this one
    assert cache.get(("db.c", "a"), aware)["outbox"] == [{"event_id": "e1"}]
    cache.relayed(("db.c", "a"), 1)
    assert cache.get(("db.c", "a"), aware)["outbox"] == []

    for n in range(10):  # about 700 bytes each: the oldest go
        cache.put(("db.c", f"b{n}"), {"_id": f"b{n}", "version": 1, "x": "执" * 200})
    assert cache.bytes <= 3000 and cache.get(("db.c", "a"), aware) is None and len(cache) == 4
    cache.put(("db.c", "big"), {"_id": "big", "version": 1, "x": "x" * 2000})  # > a quarter: not kept
    assert cache.get(("db.c", "big"), aware) is None
    cache.drop(("db.c", "b9"), version=2)
    assert cache.get(("db.c", "b9"), aware) is not None
    cache.drop(("db.c", "b9"))
    assert cache.get(("db.c", "b9"), aware) is None


def _racing_store(cache):
    """A store whose first decision on c1 is overtaken by another save of c1 before it saves."""
    store = AggregateStore(FakeDb()["cases"], cache=cache)
    store.update("c1", lambda doc: Change({"n": 1}))
    return store


def test_a_save_lost_to_a_writer_of_this_process_keeps_the_aggregate_cached():
    from services.kernel.aggregates import DocCache

    cache = DocCache(1 << 20)
    store = _racing_store(cache)
    seen = []

    def decide(doc):
        seen.append(doc["version"])
        if len(seen) == 1:  # another green thread of this process saves meanwhile (the same cache)
            store.update("c1", lambda d: Change({"n": d["n"] + 10}))
        return Change({"n": doc["n"] + 1})

    saved, _ = store.update("c1", decide)
    assert seen == [1, 2] and (saved["version"], saved["n"]) == (3, 12)  # decided again on the winner's save
    key = store._key("c1")
    assert key not in cache._contended and cache.version(key) == 3
    misses = cache.misses
    store.update("c1", lambda doc: Change({"n": doc["n"] + 1}))
    assert cache.misses == misses  # the next fact reads nothing


def test_a_save_lost_to_another_process_stops_caching_the_aggregate():
    from services.kernel.aggregates import DocCache

    cache = DocCache(1 << 20)
    store = _racing_store(cache)
    other = AggregateStore(store.col, cache=DocCache(1 << 20))  # another process: a cache of its own
    seen = []

    def decide(doc):
        seen.append(doc["version"])
        if len(seen) == 1:
            other.update("c1", lambda d: Change({"n": d["n"] + 10}))
        return Change({"n": doc["n"] + 1})

    saved, _ = store.update("c1", decide)
    assert seen == [1, 2] and (saved["version"], saved["n"]) == (3, 12)
    assert store._key("c1") in cache._contended and cache.version(store._key("c1")) is None
