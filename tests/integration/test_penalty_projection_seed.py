"""An officer or item projection penalty's handler stores goes into this process's projection cache
after its change is logged (services/penalty/store.py `projection_stored`): the next judgement in this
process reads nothing of it, every other process still drops it and reads the new one, and a newer
version another process stores afterwards still drops the seeded one here."""
from services.kernel.projection_cache import CHANGES, ProjectionCache, ProjectionReader
from services.penalty import store
from tests.integration.test_penalty_projections import watched  # noqa: F401 (the recorded scratch database)
from tests.integration.test_projection_cache import NOW, changed_officer, officer, read
from tests.integration.test_projection_cache import each_unit_reads_the_log  # noqa: F401 (autouse: REUSE_MS 0)


def handled(db, cache, monkeypatch, payload: dict) -> None:
    """What penalty's `officer.changed` handler does in the process that owns `cache`."""
    monkeypatch.setattr(store, "shared_cache", lambda: cache)
    generation = store.cache_generation()
    stored, _ = store.store_officer(db, payload, NOW)
    if stored:
        store.projection_stored(db, store.OFFICERS, payload["officer_id"], payload, generation)


def test_an_officer_this_process_stored_is_served_from_its_cache_and_other_processes_read_it(watched, monkeypatch):
    db, recorder = watched
    mine, other = ProjectionCache(100), ProjectionCache(100)
    changed_officer(db, officer("O1", 1))
    read(db, mine, ["O1"])
    read(db, other, ["O1"])  # both processes hold version 1
    handled(db, mine, monkeypatch, officer("O1", 2, valid_to="2026-06-30"))
    recorder.seen.clear()
    _, found = read(db, mine, ["O1"])
    assert recorder.seen == [("find", CHANGES)]  # the log only: its own change did not drop it
    assert found["O1"] == db.officers.find_one({"_id": "O1"})["payload"]  # as a read finds it
    assert found["O1"]["version"] == 2
    recorder.seen.clear()
    _, found = read(db, other, ["O1"])  # another process: dropped, read again
    assert recorder.seen == [("find", CHANGES), ("find", "officers")]
    assert found["O1"]["version"] == 2

    changed_officer(db, officer("O1", 3, valid_to="2026-03-31"))  # a newer one, by another process
    recorder.seen.clear()
    _, found = read(db, mine, ["O1"])
    assert recorder.seen == [("find", CHANGES), ("find", "officers")]
    assert found["O1"]["version"] == 3


def test_a_seed_is_refused_when_this_cache_saw_a_change_of_it_since_the_write_began(watched, monkeypatch):
    db, recorder = watched
    mine = ProjectionCache(100)
    changed_officer(db, officer("O1", 1))
    read(db, mine, ["O1"])
    monkeypatch.setattr(store, "shared_cache", lambda: mine)
    generation = store.cache_generation()  # (the handler's write begins here)
    store.store_officer(db, officer("O1", 2), NOW)
    changed_officer(db, officer("O1", 3, valid_to="2026-03-31"))  # another process, before this log
    read(db, mine, ["O1"])  # this process's next batch sees that change
    store.projection_stored(db, store.OFFICERS, "O1", officer("O1", 2), generation)
    recorder.seen.clear()
    _, found = read(db, mine, ["O1"])
    assert found["O1"]["version"] == 3  # not the seeded version 2


def test_an_older_officer_arriving_late_is_not_stored_nor_cached(watched, monkeypatch):
    db, recorder = watched
    mine = ProjectionCache(100)
    changed_officer(db, officer("O1", 3))
    read(db, mine, ["O1"])
    logged = db[CHANGES].find_one({"_id": "epoch"})["n"]
    handled(db, mine, monkeypatch, officer("O1", 2))
    assert db[CHANGES].find_one({"_id": "epoch"})["n"] == logged  # not stored: not logged
    _, found = read(db, mine, ["O1"])
    assert found["O1"]["version"] == 3
