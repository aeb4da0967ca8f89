"""The penalty case list and its counters on the real MongoDB-wire server (services/penalty/store.py):
exact under concurrent saves, redelivery, compare-and-set retries and a crash half-way through a
move; list totals equal a recount of the partitions."""
import random
import threading
import time

import pymongo
import pytest

from tests.helpers import run_concurrently, scratch_database

from services.kernel.aggregates import Change
from services.penalty import store
from services.penalty.domain.case import STAGES
from tests.db_recorder import Recorder

DEPTS = ("511322-scjg", "511322-sthj", "511322-wjj")


@pytest.fixture
def db(servers):
    with scratch_database(servers, "penalty") as database:
        yield database


def case_doc(case_id: str, version: int, dept: str, stage: str, overdue: bool) -> dict:
    return {"_id": case_id, "version": version, "dept": dept,
            "snapshot": {"case_no": case_id, "stage": stage, "overdue": overdue}}


def counters(db) -> dict[str, int]:
    return {c["_id"]: c["n"] for c in store.lists(db).case_counts.find({}) if c["n"]}


def assert_exact(db, expected_keys: dict[str, str]) -> None:
    """Counters == recount == the keys the cases should be under; nothing left pending."""
    want: dict[str, int] = {}
    for key in expected_keys.values():
        want[key] = want.get(key, 0) + 1
    assert counters(db) == want
    assert store.recount(db) == want
    assert store.lists(db).case_list_at.count_documents({"pending": {"$ne": None}}) == 0
    # marks left only of moves finished here, each to be dropped by this process's next $inc of its counter
    assert all(not c.get("tokens") and set(c.get("applied") or {}) <= store.finished_marks(db, c["_id"])
               for c in store.lists(db).case_counts.find({}))
    assert {loc["_id"]: loc["key"] for loc in store.lists(db).case_list_at.find({})} == expected_keys


def test_concurrent_and_redelivered_syncs_count_each_move_once(db):
    rng = random.Random(14)
    histories = {}  # case -> its saved states in version order
    for i in range(12):
        states, dept = [], rng.choice(DEPTS)
        for version in range(1, 7):
            states.append(case_doc(f"c{i}", version, dept, rng.choice(STAGES[:8]), rng.random() < 0.3))
        histories[f"c{i}"] = states
    # every state synced three times (redelivery), in a shuffled order, by 8 concurrent workers
    work = [doc for states in histories.values() for doc in states for _ in range(3)]
    rng.shuffle(work)
    moves = run_concurrently(work, lambda doc: store.sync_case(db, doc))
    final = {cid: store.row_key(store.list_row(states[-1])) for cid, states in histories.items()}
    assert_exact(db, final)
    rows = {r["_id"]: r for k in final.values() for r in store.partition(db, k).find({})}
    assert rows == {cid: store.list_row(states[-1]) for cid, states in histories.items()}  # the newest row, once
    assert {loc["_id"]: loc["version"] for loc in store.lists(db).case_list_at.find({})} == {cid: 6 for cid in histories}
    assert any(moves) and not all(moves)


def test_a_crash_half_way_through_a_move_is_completed_once_by_the_redelivery(db):
    old = case_doc("c1", 1, DEPTS[0], "filed", False)
    store.sync_case(db, old)
    new = case_doc("c1", 2, DEPTS[0], "decided", True)
    frm, to = store.row_key(store.list_row(old)), store.row_key(store.list_row(new))
    token = "c1@2"
    # the crashed sync: move written into the locator, row put into `to`, `to` counted; then it died
    # holding the lease (expired since)
    store.lists(db).case_list_at.update_one({"_id": "c1"}, {"$set": {
        "pending": {"from": frm, "to": to, "token": token, "version": 2, "row": store.list_row(new)},
        "lease": {"token": "dead", "until": time.time() - 1}}})
    store.partition(db, to).replace_one({"_id": "c1"}, store.list_row(new), upsert=True)
    store._count(db, to, 1, token)
    assert counters(db) == {frm: 1, to: 1}  # counted in both: the half-done state
    store.sync_case(db, new)  # the redelivered fact saves nothing new; the sync carries out the rest
    assert_exact(db, {"c1": to})
    store.sync_case(db, new)  # and again: nothing changes
    store.sync_case(db, old)  # a late, older state never moves it back
    assert_exact(db, {"c1": to})


def test_a_crash_right_after_the_lease_and_move_write_is_completed_once(db):
    """The one write that takes the lease and records the move, then a crash after one counter's $inc
    (here the `from` counter, applied as counters recorded it before marks: a `tokens` array)."""
    old = case_doc("c1", 1, DEPTS[0], "filed", False)
    store.sync_case(db, old)
    new = case_doc("c1", 2, DEPTS[0], "decided", True)
    frm, to = store.row_key(store.list_row(old)), store.row_key(store.list_row(new))
    move = {"to": to, "token": "c1@2", "version": 2, "row": store.list_row(new)}
    before, lease = store._acquire_with_move(db, "c1", move)
    assert before["key"] == frm and store._acquire_with_move(db, "c1", {**move, "version": 3}) is None  # held
    store.lists(db).case_counts.update_one({"_id": frm}, {"$inc": {"n": -1}, "$push": {"tokens": "c1@2"}})
    store.lists(db).case_list_at.update_one({"_id": "c1"}, {"$set": {"lease.until": time.time() - 1}})  # the holder died
    assert counters(db) == {}  # the half-done state: left `from`, not yet counted in `to`
    assert store.sync_case(db, new) is False  # the redelivery carries out the rest (its version: counted)
    store.lists(db).case_counts.update_one({"_id": frm}, {"$set": {"tokens": []}})  # (a repair --fix would drop it)
    assert_exact(db, {"c1": to})
    assert store.partition(db, to).find_one({"_id": "c1"}) == store.list_row(new)
    assert store.partition(db, frm).find_one({"_id": "c1"}) is None


def test_a_sync_that_lost_its_lease_leaves_the_marks_of_its_move_in_the_counters(db):
    """Its lease expired and another sync took the move over: the move may still be pending, so its
    marks must stay where they guard the counters (not dropped by this process's next $inc)."""
    store.sync_case(db, case_doc("c1", 1, DEPTS[0], "filed", False))
    new = case_doc("c1", 2, DEPTS[0], "decided", False)
    to = store.row_key(store.list_row(new))
    move = {"to": to, "token": "c1@2", "version": 2, "row": store.list_row(new)}
    before, lease = store._acquire_with_move(db, "c1", move)
    store.lists(db).case_list_at.update_one({"_id": "c1"}, {"$set": {"lease.token": "the-other-sync"}})
    store._carry_out(db, "c1", before["key"], move, lease, release=True)
    assert store._mark("c1@2") not in store.finished_marks(db, to)
    assert store._mark("c1@2") in store.lists(db).case_counts.find_one({"_id": to})["applied"]
    assert store.lists(db).case_list_at.find_one({"_id": "c1"})["pending"] == move  # still the other sync's to finish


def test_a_live_lease_makes_a_second_sync_wait(db, monkeypatch):
    store.sync_case(db, case_doc("c1", 1, DEPTS[0], "filed", False))
    store.lists(db).case_list_at.update_one({"_id": "c1"}, {"$set": {"lease": {"token": "other", "until": time.time() + 60}}})
    monkeypatch.setattr(store, "LEASE_WAIT_SECONDS", 0.3)
    with pytest.raises(store.ConcurrencyError):
        store.sync_case(db, case_doc("c1", 2, DEPTS[0], "decided", False))
    assert counters(db) == {store.list_key(DEPTS[0], "filed", False): 1}


def test_case_store_keeps_the_list_in_step_under_compare_and_set_retries(db):
    cases = store.CaseStore(db.cases)
    rng = random.Random(7)

    def advance(case_id: str, steps: int):
        for _ in range(steps):
            def decide(doc):
                stage = STAGES[min(len(STAGES) - 1, STAGES.index((doc or {}).get("snapshot", {}).get("stage", "filed")) + 1)] \
                    if doc else "filed"
                overdue = rng.random() < 0.5
                return Change({"dept": DEPTS[int(case_id[1:]) % 3],
                               "snapshot": {"case_no": case_id, "stage": stage, "overdue": overdue}})
            cases.update(case_id, decide)

    # three writers per case race on the same aggregates: compare-and-set retries happen
    threads = [threading.Thread(target=advance, args=(f"c{i % 5}", 4)) for i in range(15)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    final = {d["_id"]: store.row_key(store.list_row(d)) for d in db.cases.find({})}
    assert len(final) == 5 and all(d["version"] == 12 for d in db.cases.find({}))
    assert_exact(db, final)
    left = sum(len(c.get("applied") or {}) for c in store.lists(db).case_counts.find({}))
    assert 0 < left <= sum(len(store.finished_marks(db, c["_id"])) for c in store.lists(db).case_counts.find({}))
    assert store.repair(db) == {"pending_carried_out": 0, "wrong": {}, "stale_tokens": left, "fixed": False}


def test_list_totals_equal_a_recount_and_pages_cover_every_case_once(db):
    rng = random.Random(3)
    for i in range(130):
        store.sync_case(db, case_doc(f"c{i:03d}", 1, rng.choice(DEPTS), rng.choice(STAGES), rng.random() < 0.2))
    true = store.recount(db)

    def everything(**filters):
        seen, offset = [], 0
        while True:
            items, total = store.list_cases(db, limit=17, offset=offset, stage_order=STAGES, **filters)
            seen += items
            offset += 17
            if not items:
                return seen, total

    for filters in ({}, {"dept": DEPTS[1]}, {"stage": "decided"}, {"overdue": True}, {"overdue": False},
                    {"dept": DEPTS[0], "stage": "archived", "overdue": False}):
        filters = {"dept": None, "stage": None, "overdue": None, **filters}
        rows, total = everything(**filters)
        wanted = sum(n for k, n in true.items()
                     if all(v is None or part == v for part, v in zip(store.key_parts(k), filters.values())))
        assert total == wanted == len(rows) == len({r["case_id"] for r in rows}), filters
        assert all((filters["dept"] in (None, r["dept"])) and (filters["stage"] in (None, r["stage"]))
                   and (filters["overdue"] in (None, r["overdue"])) for r in rows)
    rows, _ = everything(dept=None, stage=None, overdue=None)
    order = [(r["dept"], STAGES.index(r["stage"]), not r["overdue"]) for r in rows]
    assert order == sorted(order)  # department, stage in process order, overdue first


def test_rebuild_and_repair_restore_the_counters(db):
    for i in range(20):
        db.cases.insert_one(case_doc(f"c{i}", 3, DEPTS[i % 3], STAGES[i % 4], i % 5 == 0))
    counts = store.rebuild_list(db)
    assert sum(counts.values()) == 20 and counters(db) == store.recount(db) == counts
    key = next(iter(counts))
    store.lists(db).case_counts.update_one({"_id": key}, {"$inc": {"n": 5}, "$push": {"tokens": "stray@1"}})
    report = store.repair(db)
    assert report["wrong"] == {key: {"counter": counts[key] + 5, "recount": counts[key]}} and report["stale_tokens"] == 1
    store.repair(db, fix=True)
    assert counters(db) == counts and store.repair(db)["wrong"] == {}


def test_the_operators_command_reports_and_fixes_a_wrong_counter(db, servers, monkeypatch, capsys):
    from services.penalty import caselist

    monkeypatch.setenv("MONGO_URI", servers["MONGO_URI"])
    monkeypatch.setenv("DB_PREFIX", db.name[:-len("penalty")])
    for i in range(4):
        store.sync_case(db, case_doc(f"c{i}", 1, DEPTS[0], "filed", False))
    key = store.list_key(DEPTS[0], "filed", False)
    store.lists(db).case_counts.update_one({"_id": key}, {"$inc": {"n": -1}})
    assert caselist.main(["check"]) == 1
    assert '"counter": 3' in capsys.readouterr().out
    assert caselist.main(["check", "--fix"]) == 0 and counters(db) == {key: 4}
    assert caselist.main(["check"]) == 0


def test_first_start_on_cases_stored_before_the_list_existed_builds_it(db):
    for i in range(7):
        db.cases.insert_one(case_doc(f"c{i}", 2, DEPTS[i % 2], "decided", i == 3))
    store.ensure_indexes(db)
    assert sum(counters(db).values()) == 7 and counters(db) == store.recount(db)
    store.ensure_indexes(db)  # a second start finds the list and leaves it
    assert sum(counters(db).values()) == 7


def test_a_save_that_changes_nothing_the_list_shows_is_one_small_write(db, servers):
    recorder = Recorder()
    client = pymongo.MongoClient(servers["MONGO_URI"], serverSelectionTimeoutMS=3000, tz_aware=True,
                                 event_listeners=[recorder])
    watched = client[db.name]
    try:
        key = store.list_key(DEPTS[0], "filed", False)
        store.sync_case(watched, case_doc("c1", 1, DEPTS[0], "filed", False))
        recorder.seen.clear()
        # v2 keeps the row (only the version moves): the locator's version, nothing else
        assert store.sync_case(watched, case_doc("c1", 2, DEPTS[0], "filed", False)) is False
        assert recorder.seen == [("update", "case_list_at")]
        recorder.seen.clear()
        store.sync_case(watched, case_doc("c1", 2, DEPTS[0], "filed", False))  # the redelivery: the same
        assert recorder.seen == [("update", "case_list_at")]
        assert store.lists(db).case_list_at.find_one({"_id": "c1"})["version"] == 2
        # a row that changes under the same key is rewritten in place (under the lease)
        recorder.seen.clear()
        changed = {**case_doc("c1", 3, DEPTS[0], "filed", False), "due_at": "2026-12-01T00:00:00+08:00"}
        store.sync_case(watched, changed)
        assert ("update", f"{store.LIST_PREFIX}.{key}") in recorder.seen and len(recorder.seen) == 4
        assert store.partition(db, key).find_one({"_id": "c1"}) == store.list_row(changed)
        assert counters(db) == {key: 1} and store.lists(db).case_list_at.find_one({"_id": "c1"})["version"] == 3
    finally:
        client.close()


def test_a_slower_sync_of_an_older_version_never_overwrites_a_row_kept_unchanged(db):
    """Worker B saved v2 (decided) but syncs late; worker A saved v3 (back to v1's row) from v2 and
    found the list already showing that row: the list must end at v3's row, not v2's."""
    v1 = case_doc("c1", 1, DEPTS[0], "filed", False)
    v2 = case_doc("c1", 2, DEPTS[0], "decided", False)
    v3 = case_doc("c1", 3, DEPTS[0], "filed", False)
    store.sync_case(db, v1)
    assert store.sync_case(db, v3) is False  # A: the row v1 left is v3's row: one small write
    assert store.sync_case(db, v2) is False  # B, late: v3 is counted, v2 changes nothing
    assert_exact(db, {"c1": store.row_key(store.list_row(v3))})
    assert store.partition(db, store.row_key(store.list_row(v3))).find_one({"_id": "c1"}) == store.list_row(v3)


def test_case_store_tries_the_small_write_only_when_the_row_is_kept(db, servers):
    recorder = Recorder()
    client = pymongo.MongoClient(servers["MONGO_URI"], serverSelectionTimeoutMS=3000, tz_aware=True,
                                 event_listeners=[recorder])
    cases = store.CaseStore(client[db.name].cases)
    try:
        def to(stage, extra=None):
            return lambda doc: Change({"dept": DEPTS[0], "snapshot": {"case_no": "c1", "stage": stage, **(extra or {})}})

        cases.update("c1", to("filed"))
        recorder.seen.clear()
        cases.update("c1", to("filed", {"note": "not in the row"}))  # the row is kept
        assert [c for c in recorder.seen if c[1] != "cases"] == [("update", "case_list_at")]
        recorder.seen.clear()
        cases.update("c1", to("decided"))  # a move: straight to the lease, no try that cannot match
        list_commands = [c for c in recorder.seen if c[1] != "cases" and not c[1].startswith("cases_")]
        assert list_commands[0] == ("findAndModify", "case_list_at")
        recorder.seen.clear()
        cases.update("c1", lambda doc: None)  # a redelivery: nothing saved, the small write only
        assert [c for c in recorder.seen if c[1] != "cases" and not c[1].startswith("cases_")] == \
            [("update", "case_list_at")]
        assert_exact(db, {"c1": store.list_key(DEPTS[0], "decided", False)})
    finally:
        client.close()


def test_commands_per_save_kind(db, servers):
    """What each kind of case save sends to the database (the case list's share of a save): a new case
    4 writes, a move 6, a row changed under the same key 3, a row kept (and a redelivery) 1."""
    recorder = Recorder()
    client = pymongo.MongoClient(servers["MONGO_URI"], serverSelectionTimeoutMS=3000, tz_aware=True,
                                 event_listeners=[recorder])
    watched = client[db.name]

    def commands(doc, row_kept=True) -> list[tuple[str, str]]:
        recorder.seen.clear()
        store.sync_case(watched, doc, row_kept=row_kept)
        return [(name, col.split(".")[0]) for name, col in recorder.seen]

    try:
        lease_and_move, release = ("findAndModify", "case_list_at"), ("update", "case_list_at")
        assert commands(case_doc("c1", 1, DEPTS[0], "filed", False), row_kept=False) == \
            [lease_and_move, ("update", "case_list"), ("update", "case_counts"), release]
        assert commands(case_doc("c1", 2, DEPTS[0], "decided", False), row_kept=False) == \
            [lease_and_move, ("update", "case_list"), ("delete", "case_list"), ("update", "case_counts"),
             ("update", "case_counts"), release]
        assert commands(case_doc("c2", 1, DEPTS[0], "decided", False), row_kept=False) == \
            [lease_and_move, ("update", "case_list"), ("update", "case_counts"), release]
        changed = {**case_doc("c1", 3, DEPTS[0], "decided", False), "due_at": "2026-12-01"}
        assert commands(changed, row_kept=False) == [lease_and_move, ("update", "case_list"), release]
        assert commands({**changed, "version": 4}) == [release]
        assert commands({**changed, "version": 4}) == [release]  # the redelivery
        # the marks of finished moves went with the next $inc of each counter: only the last move's remain
        decided, filed = store.list_key(DEPTS[0], "decided", False), store.list_key(DEPTS[0], "filed", False)
        assert {c["_id"]: sorted(c.get("applied") or {}) for c in store.lists(db).case_counts.find({})} == \
            {decided: [store._mark("c2@1")], filed: [store._mark("c1@2")]}
        assert_exact(db, {"c1": decided, "c2": decided})
    finally:
        client.close()


def test_a_list_kept_beside_the_cases_moves_to_its_own_database_on_first_start(db):
    """Before the twenty-third session the list lived in the cases' database: a first start finds its
    own database empty, rebuilds the list there and drops the old collections."""
    for i in range(5):
        db.cases.insert_one(case_doc(f"c{i}", 2, DEPTS[i % 2], "filed", False))
    old_key = store.list_key(DEPTS[0], "filed", False)
    db[f"{store.LIST_PREFIX}.{old_key}"].insert_one({"_id": "c0"})
    db.case_counts.insert_one({"_id": old_key, "n": 99})
    db.case_list_at.insert_one({"_id": "c0", "key": old_key, "version": 1, "pending": None, "lease": None})
    db[store.BATCHES].insert_one({"_id": "left-over", "at": 0})
    store.ensure_indexes(db)
    assert counters(db) == store.recount(db) == {old_key: 3, store.list_key(DEPTS[1], "filed", False): 2}
    assert not [n for n in db.list_collection_names() if n.startswith("case_")]
    assert store.lists(db).name == db.name + "_caselist"
