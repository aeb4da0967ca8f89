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
