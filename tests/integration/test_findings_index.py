"""The open-findings index on the real MongoDB-wire server (services/kernel/findings_index.py):
exact under concurrent and redelivered syncs, a crash half-way through a move, saves through
`AggregateStore`; pages and totals equal a sort of every open finding; build and repair."""
import random

import pytest

from tests.helpers import run_concurrently, scratch_database

from services.kernel import findings_index as fi
from services.kernel.aggregates import AggregateStore, Change

DEPTS = ("511322-scjg", "511322-sthj", "511322-wjj")
RULES = (("PEN-A", "critical"), ("PEN-B", "serious"), ("PEN-C", "serious"), ("PEN-D", "warning"))


@pytest.fixture
def db(servers):
    with scratch_database(servers, "penalty") as database:
        yield database


def finding(agg: str, rule: str, severity: str, dept: str, note: str = "") -> dict:
    key = f"{rule}:case:{agg}"
    return {"finding_key": key, "rule_id": rule, "severity": severity, "dept": dept, "subject_type": "case",
            "subject_id": agg, "as_of": "2026-11-30T00:00:00+00:00", "evidence": {"note": note}, "message": rule}


def agg_doc(agg: str, version: int, findings: list[dict]) -> dict:
    return {"_id": agg, "version": version, "findings_open": {f["finding_key"]: f for f in findings},
            "findings_count": len(findings)}


def random_findings(rng, agg: str, dept: str) -> list[dict]:
    return [finding(agg, rule, sev, dept, note=str(rng.randint(0, 2))) for rule, sev in RULES if rng.random() < 0.4]


def every_open(docs: list[dict]) -> list[dict]:
    return [f for d in docs for f in d["findings_open"].values()]


def assert_exact(index: fi.FindingsIndex, final: list[dict]) -> None:
    """Rows == the final documents' findings; counters == recount; nothing pending, no token left."""
    want: dict[str, int] = {}
    for f in every_open(final):
        want[fi.part_of(f)] = want.get(fi.part_of(f), 0) + 1
    assert {c["part"]: c["n"] for c in index.counters()} == want
    assert index.recount() == want
    assert index.at.count_documents({"pending": {"$ne": None}}) == 0
    assert all(not c.get("tokens") for c in index.counts.find({}))
    rows = {r["_id"]: r for part in want for r in index.rows(part).find({})}
    assert rows == {fi.row_id(d["_id"], k): {"_id": fi.row_id(d["_id"], k), **f}
                    for d in final for k, f in d["findings_open"].items()}


def test_concurrent_and_redelivered_syncs_keep_rows_and_counters_exact(db):
    index = fi.FindingsIndex(db.cases)
    rng = random.Random(14)
    histories = {}
    for i in range(10):
        dept = rng.choice(DEPTS)
        histories[f"c{i}"] = [agg_doc(f"c{i}", v, random_findings(rng, f"c{i}", dept)) for v in range(1, 7)]
    work = [doc for states in histories.values() for doc in states for _ in range(3)]  # each state 3 times
    rng.shuffle(work)
    run_concurrently(work, index.sync)
    assert_exact(index, [states[-1] for states in histories.values()])


def test_a_crash_half_way_through_a_move_is_completed_once_by_the_redelivery(db, monkeypatch):
    index = fi.FindingsIndex(db.cases)
    first = agg_doc("c1", 1, [finding("c1", "PEN-A", "critical", DEPTS[0])])
    index.sync(first)
    second = agg_doc("c1", 2, [finding("c1", "PEN-B", "serious", DEPTS[0]), finding("c1", "PEN-D", "warning", DEPTS[0])])
    real_count, calls = fi.FindingsIndex._count, []

    def crash_after_one(self, part, delta, token):
        if calls:
            raise RuntimeError("process killed")
        calls.append(part)
        real_count(self, part, delta, token)

    monkeypatch.setattr(fi.FindingsIndex, "_count", crash_after_one)
    with pytest.raises(RuntimeError):
        index.sync(second)
    monkeypatch.setattr(fi.FindingsIndex, "_count", real_count)
    assert index.at.find_one({"_id": "c1"})["pending"]  # the move is recorded, half done
    index.listener(second, second)  # the redelivered fact saves nothing: the listener repairs
    assert_exact(index, [second])
    index.listener(second, second)  # and again: nothing changes
    assert_exact(index, [second])


def test_saves_through_the_store_keep_the_index_and_equal_findings_write_nothing(db):
    index = fi.FindingsIndex(db.cases)
    store = AggregateStore(db.cases, listeners=[index.listener])
    store.update("c1", lambda doc: Change({"findings_open": {f["finding_key"]: f for f in [
        finding("c1", "PEN-A", "critical", DEPTS[0]), finding("c1", "PEN-D", "warning", DEPTS[0])]}}))
    loc = index.at.find_one({"_id": "c1"})
    store.update("c1", lambda doc: Change({"other": 1}))  # findings unchanged: the index is not touched
    assert index.at.find_one({"_id": "c1"}) == loc
    doc, _ = store.update("c1", lambda doc: Change({"findings_open": {}}))  # resolved
    assert_exact(index, [doc])
    assert index.at.find_one({"_id": "c1"})["rows"] == []


def test_pages_and_totals_equal_a_sort_of_every_open_finding(db):
    index, other = fi.FindingsIndex(db.cases), fi.FindingsIndex(db.handovers)
    rng = random.Random(3)
    docs = {"cases": [], "handovers": []}
    for i in range(60):
        for name, idx in (("cases", index), ("handovers", other)):
            doc = agg_doc(f"{name[0]}{i:03d}", 1, random_findings(rng, f"{name[0]}{i:03d}", rng.choice(DEPTS)))
            idx.sync(doc)
            docs[name].append(doc)
    everything = sorted(every_open(docs["cases"]) + every_open(docs["handovers"]), key=fi.order_key)
    for filters in ({}, {"dept": DEPTS[1]}, {"severity": "serious"}, {"rule_id": "PEN-D", "dept": DEPTS[0]}):
        chosen = [f for f in everything if all(f[k] == v for k, v in filters.items())]
        seen = []
        for offset in range(0, len(chosen) + 7, 7):
            items, total = fi.page([index, other], dept=filters.get("dept"), rule_id=filters.get("rule_id"),
                                   severity=filters.get("severity"), limit=7, offset=offset)
            assert total == len(chosen)
            assert [fi.order_key(f) for f in items] == [fi.order_key(f) for f in chosen[offset:offset + 7]]
            seen.extend(f["finding_key"] + f["subject_id"] for f in items)
        assert sorted(seen) == sorted(f["finding_key"] + f["subject_id"] for f in chosen)  # each once
    assert fi.counts_by_rule([index, other]) == {
        (r, s): sum(1 for f in everything if f["rule_id"] == r) for r, s in RULES
        if any(f["rule_id"] == r for f in everything)}


def test_build_indexes_stored_aggregates_and_repair_fixes_a_wrong_counter(db):
    rng = random.Random(5)
    docs = [agg_doc(f"c{i}", 3, random_findings(rng, f"c{i}", rng.choice(DEPTS))) for i in range(25)]
    db.cases.insert_many(docs)
    index = fi.FindingsIndex(db.cases)
    assert not index.built()
    index.build()
    assert index.built()
    assert_exact(index, docs)
    part = index.counters()[0]["part"]
    index.counts.update_one({"_id": part}, {"$inc": {"n": 5}})
    report = index.repair()
    assert list(report["wrong"]) == [part] and not report["fixed"]
    assert index.repair(fix=True)["wrong"] and index.repair()["wrong"] == {}
    assert_exact(index, docs)
    index.rebuild()
    assert_exact(index, docs)


def test_the_bigcases_fill_writes_what_the_listener_would(db):
    """services/simulator/bigcases.py fills the index of its copies directly: the same rows, counters
    and locators as syncing each copy, so a later save of a copy changes only what it changes."""
    from services.simulator import bigcases

    t1 = {**agg_doc("t1", 4, [finding("t1", "PEN-A", "critical", DEPTS[0]), finding("t1", "PEN-D", "warning", DEPTS[0])]),
          "dept": DEPTS[0]}
    t2 = {**agg_doc("t2", 2, []), "dept": DEPTS[1]}
    copies = [bigcases.copy_case((t1, t2)[n % 2], n, "tag", list(DEPTS[:2])) for n in range(7)]
    report = bigcases.fill_findings(db.client, db.name, [t1, t2], 7, "tag")
    index = fi.FindingsIndex(db.cases)
    assert index.built() and report["findings"] == 8 and report["rebuilt"]
    assert_exact(index, copies)
    # each locator holds its rows' digest, which a batch's claim compares (findings_index.sync_many)
    assert {loc["_id"]: loc.get("rd") for loc in index.at.find({})} == \
           {c["_id"]: fi.rows_digest(fi.locator_rows(fi.wanted(c))) for c in copies if c["findings_open"]}
    assert index.sync({**copies[0], "version": 5}) is False  # nothing to change for an unchanged copy
    resolved = {**copies[2], "version": 5, "findings_open": {}}
    assert index.sync(resolved) is True
    assert_exact(index, [resolved if c["_id"] == resolved["_id"] else c for c in copies])
    assert bigcases.fill_findings(db.client, db.name, [t1, t2], 7, "tag")["rebuilt"]  # its total differs now
