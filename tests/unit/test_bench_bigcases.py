"""The case generator for the API latency target: copies in the penalty store's shape (no database)."""
from services.simulator.bigcases import BATCH_MAX, copy_case

TEMPLATE = {"_id": "c-1", "dept": "511322-scjg", "version": 3, "fact_ids": ["e1", "e2"],
            "facts": [{"event_id": "e1", "type": "case.filed"}, {"event_id": "e2", "type": "case.decided"}],
            "snapshot": {"case_no": "X-1", "stage": "decided", "dept": "511322-scjg"},
            "outbox": [{"type": "finding.raised"}], "outbox_pending": True}


def test_copies_are_new_cases_with_their_own_ids_and_departments():
    depts = ["511322-scjg", "511322-sthj"]
    a, b = copy_case(TEMPLATE, 0, "big", depts), copy_case(TEMPLATE, 1, "big", depts)
    assert a["_id"] != b["_id"] and a["snapshot"]["case_no"] != b["snapshot"]["case_no"]
    assert (a["dept"], b["dept"]) == tuple(depts) and b["snapshot"]["dept"] == "511322-sthj"
    assert len(set(a["fact_ids"] + b["fact_ids"])) == 4
    assert [f["event_id"] for f in a["facts"]] == a["fact_ids"]
    assert a["outbox"] == [] and a["outbox_pending"] is False
    assert a["snapshot"]["stage"] == "decided" and a["version"] == 3


def test_the_template_is_not_changed_and_batches_stay_small():
    copy_case(TEMPLATE, 5, "big", ["d"])
    assert TEMPLATE["_id"] == "c-1" and TEMPLATE["fact_ids"] == ["e1", "e2"] and TEMPLATE["outbox_pending"]
    assert BATCH_MAX <= 50


def test_a_copys_list_row_is_what_the_penalty_service_would_write_for_it():
    from services.penalty import store
    from services.simulator.bigcases import copy_row

    depts = ["511322-scjg", "511322-sthj", "511322-wjj"]
    templates = [TEMPLATE, {**TEMPLATE, "_id": "c-2", "due_at": "2026-01-01T00:00:00+08:00",
                            "snapshot": {"case_no": "X-2", "stage": "filed", "overdue": True}}]
    base = [store.list_row({**t, "due_at": None}) for t in templates]
    for n in range(7):
        copy = copy_case(templates[n % 2], n, "big", depts)
        assert copy["due_at"] is None  # closed history: no copy falls due
        assert copy_row(base, n, "big", depts) == store.list_row(copy)
    assert store.row_key(copy_row(base, 1, "big", depts)) == "511322-sthj.filed.1"


def test_list_keys_round_trip():
    from services.penalty import store

    for parts in (("511322-scjg", "decided", True), (None, None, False), ("511322-wjj", "archived", False)):
        assert store.key_parts(store.list_key(*parts)) == parts


def test_a_verdict_needs_the_target_size_in_what_the_query_reads():
    from services.simulator.bigcases import judge

    fast, slow = {"p95_ms": 40.0, "failed": 0}, {"p95_ms": 400.0, "failed": 0}
    assert judge("list", fast, 1_000_000, 0) == "达标" and judge("list", slow, 1_000_000, 0) == "未达标"
    assert judge("list", fast, 999_999, 0).startswith("未在目标规模下测量")
    assert judge("case_detail", fast, 1_000_000, 244_100).startswith("未在目标规模下测量（244100")
    assert judge("list", {"p95_ms": 40.0, "failed": 1}, 1_000_000, 0) == "未达标"


def _record(path, started_at, p95):
    import json

    path.write_text(json.dumps({
        "started_at": started_at, "machine": {"cpu_model": "Test CPU", "nproc": 2},
        "args": {"target_p95_ms": 150.0},
        "conditions": {"cores": 2, "list_cases": 1_000_000, "aggregate_documents": 1_000_000,
                       "load_before": [1, 1, 1], "load_after": [1, 1, 1], "git_commit": "abc"},
        "queries": {"list": {"p50_ms": 60.0, "p95_ms": p95, "calls": 20, "failed": 0}}}), encoding="utf-8")


def test_make_bench_prints_this_clones_measurement_first_then_the_repositorys_record(tmp_path):
    from services.simulator.bigcases import report

    own, recorded = tmp_path / "api-cases.json", tmp_path / "recorded.json"
    assert "本次未测量，也无既往结果" in report(own, recorded)[0]
    _record(recorded, "2026-12-01T21:12:28Z", 88.1)
    lines = report(own, recorded)
    assert "本机未测量，来自仓库记录" in lines[0] and "2026-12-01T21:12:28Z" in lines[0] and "Test CPU 2 核" in lines[0]
    assert lines[1].split()[0] == "list" and lines[1].endswith("达标")
    _record(own, "2026-12-02T08:00:00Z", 151.0)  # this clone's own, later and slower: it is the one shown
    lines = report(own, recorded)
    assert "来自本机" in lines[0] and "2026-12-02T08:00:00Z" in lines[0]
    assert lines[1].endswith("未达标")


def test_the_recorded_measurement_is_at_the_target_size_and_met():
    """The committed record (docs/bench/api-cases.json) is a full-size measurement: every query it holds
    is judged at 1,000,000 cases in what it reads (so the line says 达标 or 未达标, never 未在目标规模下)."""
    import json

    from services.simulator.bigcases import RECORDED, judge

    data = json.loads(RECORDED.read_text(encoding="utf-8"))
    cond = data["conditions"]
    assert cond["list_cases"] >= 1_000_000 and cond["aggregate_documents"] >= 1_000_000
    verdicts = {name: judge(name, q, cond["list_cases"], cond["aggregate_documents"]) for name, q in data["queries"].items()}
    assert set(verdicts.values()) <= {"达标", "未达标"}
