"""One outbox marker for a unit of work's aggregates (services/kernel/aggregates.py `AggregateStore.cover`,
written by `EventSourcedService._apply_batch` before a batch's saves): the saves it covers write no
marker of their own, the unit drops it once their outboxes are relayed, a unit that dies leaves it for
the sweep (two passes), and a document read while another unit's marker names it keeps its outbox.
On the real FerretDB."""
from datetime import timedelta

from services.kernel import aggregates
from services.kernel.outbox import IN_FLIGHT, sweep
from services.kernel.sidewrites import SideWrites
from tests.integration.test_insert_first import AT, db, fact  # noqa: F401 (db: the recorded scratch database)
from tests.integration.test_prefetch import repo
from tests.integration.test_prefetch import store as one_process


def store(db, writes=None):
    """A store over `db.things` with a document cache of its own (one process), in the unit of work
    `writes` (None: outside a unit)."""
    s = one_process(db)
    s.writes = lambda: writes
    return s


def outbox_writes(db):
    return [c for c in db.recorder.seen if c[1] == "things_outbox" and c[0] in ("insert", "update", "delete")]


def markers(db):
    return list(db.things_outbox.find({}))


def test_a_unit_saving_three_aggregates_writes_one_marker_and_drops_it_after_their_relay(db):
    writes = SideWrites()
    ours = store(db, writes)
    assert ours.cover(["t1", "t2", "t3"]) == 3
    [unit] = markers(db)
    assert unit["_id"].startswith("unit:") and unit["ids"] == ["t1", "t2", "t3"]
    db.recorder.seen.clear()
    for thing_id in ("t1", "t2", "t3"):
        doc, pending = repo(ours).ingest(fact("thing.created", thing_id), AT)
        assert [e["type"] for e in pending] == ["thing.changed"]
        assert not ours.is_relayed(thing_id)  # named by the unit's marker until its relay
        ours.relayed(thing_id, doc["version"])
    assert outbox_writes(db) == []  # no marker of their own, no delete of one
    writes.flush()
    assert markers(db) == []
    assert outbox_writes(db) == [("delete", "things_outbox")]
    assert all(ours.is_relayed(t) for t in ("t1", "t2", "t3"))


def test_a_unit_whose_relay_did_not_happen_keeps_its_marker(db):
    writes = SideWrites()
    ours = store(db, writes)
    ours.cover(["t1", "t2"])
    doc, _ = repo(ours).ingest(fact("thing.created", "t1"), AT)
    ours.relayed("t1", doc["version"])
    repo(ours).ingest(fact("thing.created", "t2"), AT)  # saved, never relayed (its relay failed)
    writes.flush()
    [unit] = markers(db)
    assert unit["ids"] == ["t1", "t2"] and not ours.is_relayed("t2")


def test_fewer_aggregates_than_the_setting_or_no_unit_of_work_get_no_unit_marker(db):
    assert store(db, None).cover(["t1", "t2"]) == 0
    assert store(db, SideWrites()).cover(["t1"]) == 0  # OUTBOX_UNIT_MARKER_MIN is 2
    assert markers(db) == []
    repo(store(db, None)).ingest(fact("thing.created", "t1"), AT)
    [own] = markers(db)
    assert own["_id"] == "t1" and own["version"] == 1  # the aggregate's own marker, as before


def test_a_save_after_the_cover_window_writes_its_own_marker_and_its_relay_drops_it(db, monkeypatch):
    monkeypatch.setattr(aggregates, "UNIT_COVER_SECONDS", 0.0)
    writes = SideWrites()
    ours = store(db, writes)
    ours.cover(["t1", "t2"])
    doc, _ = repo(ours).ingest(fact("thing.created", "t1"), AT)
    assert {m["_id"] for m in markers(db)} >= {"t1"}
    ours.relayed("t1", doc["version"])
    writes.flush()
    assert markers(db) == []  # its own marker dropped by its relay; the unit's (nothing saved under it) at the end


def test_a_document_named_by_another_units_marker_keeps_its_outbox(db):
    dying = SideWrites()
    other = store(db, dying)
    other.cover(["t1", "t2"])
    repo(other).ingest(fact("thing.created", "t1"), AT)  # saved; the unit dies before its relay (never flushed)
    settled = store(db, None)
    doc, _ = repo(settled).ingest(fact("thing.created", "t2"), AT)
    settled.relayed("t2", doc["version"])  # t2's own marker is gone; the dying unit's marker names it too

    read = store(db, SideWrites()).prefetch(["t1", "t2"])
    assert [e["type"] for e in read["t1"]["outbox"]] == ["thing.changed"]  # its relay may not have happened
    assert [e["type"] for e in read["t2"]["outbox"]] == ["thing.changed"]  # (named by that marker: kept)


def test_a_units_own_marker_does_not_keep_the_outboxes_it_reads(db):
    settled = store(db, None)
    for thing_id in ("t1", "t2"):
        doc, _ = repo(settled).ingest(fact("thing.created", thing_id), AT)
        settled.relayed(thing_id, doc["version"])
    ours = store(db, SideWrites())
    ours.cover(["t1", "t2"])  # (its saves have not happened: it says nothing of the relays before it)
    read = ours.prefetch(["t1", "t2"])
    assert read["t1"]["outbox"] == [] and read["t2"]["outbox"] == []


def test_the_sweep_relays_a_dead_units_aggregates_then_at_its_next_pass_what_was_saved_since_and_drops_it(db):
    dying = SideWrites()
    other = store(db, dying)
    other.cover(["t1", "t2", "t3"])
    for thing_id in ("t1", "t2"):
        repo(other).ingest(fact("thing.created", thing_id), AT)  # t3 never saved: the unit died first
    sent = []

    def dispatch(type_, event):
        sent.append((event["type"], event["payload"]["facts"]))

    swept = store(db, None)
    assert sweep([swept], dispatch, "things") == 0  # younger than IN_FLIGHT: its unit may still run
    assert sweep([swept], dispatch, "things", in_flight=timedelta(0)) == 2
    assert sorted(sent) == [("thing.changed", 1), ("thing.changed", 1)]
    [unit] = markers(db)
    assert sorted((p["id"], p["v"]) for p in unit["swept"]) == [("t1", 1), ("t2", 1)]

    repo(other).ingest(fact("thing.urgent", "t2"), AT)  # a save still landing after the first pass
    sent.clear()
    assert sweep([swept], dispatch, "things", in_flight=timedelta(0)) == 2  # t2's outbox: both its events
    assert sorted(sent) == [("thing.changed", 1), ("thing.changed", 2)]
    assert markers(db) == []  # (t2's second save was covered too: no marker of its own)


def test_the_cover_window_ends_well_before_the_sweep_takes_a_marker_as_left_behind():
    assert aggregates.UNIT_COVER_SECONDS * 2 <= IN_FLIGHT.total_seconds()


def test_a_covered_save_writes_its_earlier_due_date_at_the_units_end(db):
    writes = SideWrites()
    ours = store(db, writes)
    ours.cover(["t1", "t2"])
    repo(ours).ingest(fact("thing.created", "t1"), AT)
    assert db.things_due.find_one({"_id": "t1"}) is None  # not at once: the unit's marker stands for it
    writes.flush()
    assert db.things_due.find_one({"_id": "t1"})["due_at"] == AT + timedelta(days=30)


def test_the_sweep_sets_the_due_dates_a_dead_unit_never_wrote(db):
    other = store(db, SideWrites())  # (never flushed: the unit dies after its saves)
    other.cover(["t1", "t2"])
    repo(other).ingest(fact("thing.created", "t1"), AT)
    repo(other).ingest(fact("thing.urgent", "t2"), AT)
    assert db.things_due.count_documents({}) == 0
    swept = store(db, SideWrites())
    sweep([swept], lambda type_, event: None, "things", in_flight=timedelta(0))
    swept.writes().flush()  # (the sweep's unit of work ends)
    assert {d["_id"]: d["due_at"] for d in db.things_due.find({})} == {
        "t1": AT + timedelta(days=30), "t2": AT + timedelta(days=10)}


def test_the_backlog_gauge_counts_a_left_unit_marker_by_its_aggregates_and_a_running_one_not_at_all(db):
    from services.kernel.metrics import OUTBOX_BACKLOG

    store(db, SideWrites()).cover(["t1", "t2", "t3"])  # a running unit (never flushed)
    swept = store(db, None)
    sweep([swept], lambda type_, event: None, "things-gauge")
    assert OUTBOX_BACKLOG.labels("things-gauge")._value.get() == 0
    sweep([swept], lambda type_, event: None, "things-gauge", in_flight=timedelta(0))
    assert OUTBOX_BACKLOG.labels("things-gauge")._value.get() == 3
