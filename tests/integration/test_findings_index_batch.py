"""The open-findings index's syncs of one unit of work, together (services/kernel/findings_index.py,
`FindingsIndex.sync_many`), on the real MongoDB-wire server: a few bulk commands per batch, exact
after a crash between any two steps (redelivery), with aggregates another process synced meanwhile,
and under competing units, redeliveries and syncs alone."""
import random
import time

import pytest

from tests.helpers import run_concurrently
from tests.integration.test_case_list_batch import _after, _fail
from tests.integration.test_case_list_batch import db, watched  # noqa: F401 (fixtures: a scratch database, recorded)
from tests.integration.test_findings_index import DEPTS, agg_doc, assert_exact, finding, random_findings

from services.kernel import findings_index as fi
from services.kernel.sidewrites import SideWrites


def unit(db, saves) -> SideWrites:
    """One unit of work that saved each (new document, document it was saved over) in `saves`: the
    index's store listener sees each save, the unit's end syncs them."""
    writes = SideWrites()
    index = fi.FindingsIndex(db.cases, writes=lambda: writes)
    for doc, old in saves:
        index.listener(old, doc)
    writes.flush()
    return writes


def expire_leases(db) -> None:
    """The holder died: its leases run out."""
    db.cases_findings_at.update_many({"lease": {"$ne": None}}, {"$set": {"lease.until": time.time() - 1}})


def histories(seed: int, n: int, versions: int) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    out = {}
    for i in range(n):
        dept = rng.choice(DEPTS)
        states = [agg_doc(f"c{i}", v, random_findings(rng, f"c{i}", dept)) for v in range(1, versions + 1)]
        states[0] = agg_doc(f"c{i}", 1, [finding(f"c{i}", "PEN-A", "critical", dept)])  # (each has one at first)
        out[f"c{i}"] = states
    return out


def test_a_unit_of_saves_costs_a_few_commands_per_batch_and_nothing_before_its_end(watched, db):
    wdb, recorder = watched
    hist = histories(1, 20, 2)
    first = [(states[0], None) for states in hist.values()]
    recorder.seen.clear()
    writes = SideWrites()
    index = fi.FindingsIndex(wdb.cases, writes=lambda: writes)
    for doc, old in first:
        index.listener(old, doc)
    assert recorder.seen == []  # nothing before the unit's end
    writes.flush()
    assert_exact(fi.FindingsIndex(db.cases), [d for d, _ in first])
    # claims (with the new locators' creation) 1, rows 1 per partition, counters 1, locators 1, token pulls 1
    parts = {fi.part_of(f) for d, _ in first for f in d["findings_open"].values()}
    assert len(recorder.seen) == 4 + len(parts), recorder.seen
    recorder.seen.clear()
    second = [(states[1], states[0]) for states in hist.values()]
    unit(wdb, second)
    assert_exact(fi.FindingsIndex(db.cases), [d for d, _ in second])
    assert not [c for c in recorder.seen if c[0] in ("find", "findAndModify")], recorder.seen  # no read, no lease
    touched = parts | {fi.part_of(f) for d, _ in second for f in d["findings_open"].values()}
    # (a partition both gains and loses rows: its replacements and its deletes are two commands)
    assert len(recorder.seen) <= 4 + len(touched) * 2 < 5 * len(second)


def test_a_unit_of_one_save_claims_it_in_one_write(watched, db):
    wdb, recorder = watched
    v1 = agg_doc("c1", 1, [finding("c1", "PEN-A", "critical", DEPTS[0])])
    unit(wdb, [(v1, None)])
    v2 = agg_doc("c1", 2, [finding("c1", "PEN-B", "serious", DEPTS[0])])
    recorder.seen.clear()
    unit(wdb, [(v2, v1)])
    assert_exact(fi.FindingsIndex(db.cases), [v2])
    # the claim (lease + move), the new row, the old row's delete, two counters, the release, the token pull
    assert [c[0] for c in recorder.seen].count("findAndModify") == 1
    assert ("find", "cases_findings_at") not in recorder.seen
    assert len(recorder.seen) == 7, recorder.seen


def test_aggregates_synced_meanwhile_or_leased_are_synced_alone(db):
    hist = histories(2, 6, 3)
    unit(db, [(states[0], None) for states in hist.values()])
    index = fi.FindingsIndex(db.cases)
    index.sync(hist["c0"][1])  # another process synced c0 at version 2 meanwhile
    index.sync(hist["c1"][2])  # and c1 at version 3 (what this unit brings is older)
    db.cases_findings_at.update_one({"_id": "c2"}, {"$unset": {"rd": ""}})  # a locator from before `rd`
    # c3's lease is held by a live sync alone: the unit's claim misses it, its sync alone waits for it
    db.cases_findings_at.update_one({"_id": "c3"}, {"$set": {"lease": {"token": "other", "until": time.time() + 1}}})
    unit(db, [(states[1], states[0]) for states in hist.values()])
    final = [hist["c1"][2]] + [states[1] for name, states in hist.items() if name != "c1"]
    assert_exact(index, final)
    assert {loc["_id"]: loc["version"] for loc in db.cases_findings_at.find({})} == \
           {"c0": 2, "c1": 3, "c2": 2, "c3": 2, "c4": 2, "c5": 2}


def _on_call(real, n, what):
    """`real`, the process killed at its `n`-th call (the bulks' order: claims, rows…, locators)."""
    calls = []

    def run(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise RuntimeError(f"process killed {what}")
        return real(*args, **kwargs)
    return run


CRASHES = {
    "before the claims": lambda m: m.setattr(fi, "bulk", _fail("before the claims")),
    "after the claims": lambda m: m.setattr(fi, "bulk", _on_call(fi.bulk, 2, "after the claims")),
    "after the rows": lambda m: m.setattr(fi.FindingsIndex, "_count_net", _fail("after the rows")),
    "after the counters": lambda m: m.setattr(fi.FindingsIndex, "_count_net",
                                              _after(fi.FindingsIndex._count_net, "the counters")),
    "after the locators": lambda m: m.setattr(fi, "deferred", _fail("after the locators")),
}


@pytest.mark.parametrize("crash", list(CRASHES))
def test_a_crash_between_any_two_steps_is_finished_once_by_the_redelivery(db, monkeypatch, crash):
    hist = histories(3, 12, 2)
    unit(db, [(states[0], None) for states in hist.values()])
    new = [agg_doc(f"n{i}", 1, [finding(f"n{i}", "PEN-C", "serious", DEPTS[i % 3])]) for i in range(3)]
    saves = [(states[1], states[0]) for states in hist.values()] + [(d, None) for d in new]
    with monkeypatch.context() as m:
        CRASHES[crash](m)
        with pytest.raises(RuntimeError):
            unit(db, saves)
    expire_leases(db)
    index = fi.FindingsIndex(db.cases)
    final = [d for d, _ in saves]
    unit(db, [(d, d) for d in final])  # the redelivered facts: nothing saved, each aggregate repaired
    if crash == "after the locators":  # (done but the tokens: they only take room; check --fix drops them)
        report = index.repair()
        assert report["wrong"] == {} and report["stale_tokens"] > 0
        index.repair(fix=True)
    assert_exact(index, final)
    unit(db, [(d, d) for d in final])  # and again: nothing changes
    assert_exact(index, final)
    assert index.repair()["wrong"] == {}


def test_competing_units_redeliveries_and_syncs_alone_count_each_change_once(db):
    hist = histories(4, 12, 6)
    rng = random.Random(4)
    work = []
    for states in hist.values():
        for v, doc in enumerate(states):
            for _ in range(2):  # each save twice (a redelivery, or another process's unit)
                work.append((doc, states[v - 1] if v else None))
    rng.shuffle(work)
    units = [work[i:i + 7] for i in range(0, len(work), 7)]

    def apply(saves):
        if rng.random() < 0.2:  # a sync alone (a command, no unit)
            for doc, _ in saves:
                fi.FindingsIndex(db.cases).sync(doc)
        else:
            unit(db, saves)

    run_concurrently(units, apply, workers=6)
    final = [states[-1] for states in hist.values()]
    unit(db, [(d, d) for d in final])  # (a save seen last by an older version is synced by the next fact)
    assert_exact(fi.FindingsIndex(db.cases), final)


def test_a_redelivery_reads_nothing_when_this_process_synced_it_and_writes_nothing_when_in_step(watched, db):
    wdb, recorder = watched
    v1 = agg_doc("c1", 1, [finding("c1", "PEN-A", "critical", DEPTS[0])])
    v2 = {**v1, "version": 2, "other": 1}  # a later save that kept the findings: the locator stays at 1
    unit(wdb, [(v1, None)])
    unit(wdb, [(v2, v1)])
    recorder.seen.clear()
    unit(wdb, [(v1, v1)])  # a redelivery of what this process synced: no read
    assert recorder.seen == []
    unit(wdb, [(v2, v2)])  # in step, though at an older version: one read, no write
    assert recorder.seen == [("find", "cases_findings_at")]
    fi._known.clear()  # another process: it reads, finds the rows in step, writes nothing
    recorder.seen.clear()
    unit(wdb, [(v2, v2)])
    assert recorder.seen == [("find", "cases_findings_at")]
    assert_exact(fi.FindingsIndex(db.cases), [v2])


def test_two_units_in_flight_on_one_aggregate_sync_it_once_without_a_read(watched, db):
    wdb, recorder = watched
    hist = histories(6, 3, 3)
    unit(wdb, [(states[0], None) for states in hist.values()])
    first, second = SideWrites(), SideWrites()
    one = fi.FindingsIndex(wdb.cases, writes=lambda: first)
    two = fi.FindingsIndex(wdb.cases, writes=lambda: second)
    for states in hist.values():  # the first batch saves v2 of each, the second batch v3 of each
        one.listener(states[0], states[1])
    for states in hist.values():
        two.listener(states[1], states[2])
    recorder.seen.clear()
    second.flush()  # the second ends first: v3 over v1, each once
    first.flush()   # nothing left for the first
    assert not [c for c in recorder.seen if c[0] in ("find", "findAndModify")], recorder.seen
    assert [c for c in recorder.seen if c[1] == "cases_findings_at"] == [("update", "cases_findings_at")] * 2
    assert_exact(fi.FindingsIndex(db.cases), [states[2] for states in hist.values()])


def test_new_aggregates_without_findings_write_nothing_and_their_first_finding_is_indexed(watched, db):
    """A new aggregate whose `findings_open` is empty (old None, new {}) is nothing to index: no locator,
    no command — in a unit of work and alone. Until 2026-12-04 each claimed, created and released an
    empty locator (three operations per new case in the bench). Its first finding creates the locator."""
    wdb, recorder = watched
    fresh = [agg_doc(f"n{i}", 1, []) for i in range(5)]
    recorder.seen.clear()
    unit(wdb, [(doc, None) for doc in fresh])
    fi.FindingsIndex(wdb.cases).listener(None, agg_doc("alone", 1, []))
    assert recorder.seen == []
    assert db.cases_findings_at.count_documents({}) == 0
    later = [agg_doc(f"n{i}", 2, [finding(f"n{i}", "PEN-B", "serious", DEPTS[1])] if i % 2 else [])
             for i in range(5)]
    unit(wdb, list(zip(later, fresh)))
    assert_exact(fi.FindingsIndex(db.cases), later)
    assert sorted(loc["_id"] for loc in db.cases_findings_at.find({})) == ["n1", "n3"]
    fi.FindingsIndex(wdb.cases).listener(fresh[0], agg_doc("n0", 2, [finding("n0", "PEN-A", "critical", DEPTS[0])]))
    assert_exact(fi.FindingsIndex(db.cases), [agg_doc("n0", 2, [finding("n0", "PEN-A", "critical", DEPTS[0])]),
                                              *later[1:]])
