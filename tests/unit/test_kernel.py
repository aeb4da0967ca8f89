"""Kernel pieces that need no server: finding diffs into events, state-event suppression, config."""
from datetime import datetime, timezone

from services.common.findings import Finding
from services.kernel.aggregates import finding_events
from services.kernel.config import load_config, substitute
from services.kernel.eventsourced import _unchanged_dropped

AS_OF = datetime(2025, 5, 1, tzinfo=timezone.utc)


def event(type_, **payload):
    return {"event_id": "e", "type": type_, "payload": payload}


def test_unchanged_state_event_is_not_sent_again():
    first, emitted = _unchanged_dropped([event("officer.changed", officer_id="o1", version=1, kind="officer")], {})
    assert len(first) == 1
    assert all("." not in key for key in emitted)  # stored in MongoDB: no dots in field names
    again, emitted2 = _unchanged_dropped([event("officer.changed", officer_id="o1", version=2, kind="officer")], emitted)
    assert again == [] and emitted2 == emitted  # only the version moved
    changed, _ = _unchanged_dropped([event("officer.changed", officer_id="o1", version=3, kind="auxiliary")], emitted)
    assert len(changed) == 1


def test_findings_diff_raises_new_and_resolves_cleared_with_stable_ids():
    f = Finding("PEN-X", "warning", "511322-scjg", "case", "c1", AS_OF, {"n": 1}, "消息")
    events, open_now = finding_events("cause-1", {}, [f], source="penalty", as_of=AS_OF)
    assert [e["type"] for e in events] == ["finding.raised"] and f.key in open_now
    again, _ = finding_events("cause-1", {}, [f], source="penalty", as_of=AS_OF)
    assert again[0]["event_id"] == events[0]["event_id"]  # re-processing yields the same id
    resolved, open_after = finding_events("cause-2", open_now, [], source="penalty", as_of=AS_OF)
    assert [e["type"] for e in resolved] == ["finding.resolved"] and open_after == {}


def test_config_substitutes_environment_with_defaults(tmp_path):
    assert substitute("${A:x}-${B:y}", {"A": "1"}) == "1-y"
    path = tmp_path / "c.yaml"
    path.write_text("DB_PREFIX: ${PREFIX:zz_}\nRETRY_DELAYS_MS: [5]\n")
    conf = load_config(str(path), {"PREFIX": "t_", "OUTBOX_SWEEP_SECONDS": "7"})
    assert conf["DB_PREFIX"] == "t_" and conf["RETRY_DELAYS_MS"] == [5] and conf["OUTBOX_SWEEP_SECONDS"] == 7
    assert conf["INGRESS_MAX_BYTES"] == 65536  # a default when nothing sets it


def test_open_finding_takes_the_fresh_evidence_but_keeps_when_it_was_raised():
    later = datetime(2025, 6, 1, tzinfo=timezone.utc)
    first = Finding("PEN-DECISION-OVERDUE", "serious", "511322-scjg", "case", "c1", AS_OF,
                    {"decided_at": None}, "案件已超过办案期限仍未作出处理决定")
    _, open_now = finding_events("c-1", {}, [first], source="penalty", as_of=AS_OF)
    decided = Finding("PEN-DECISION-OVERDUE", "serious", "511322-scjg", "case", "c1", later,
                      {"decided_at": "2025-05-20"}, "案件超过办案期限才作出处理")
    events, open_after = finding_events("c-2", open_now, [decided], source="penalty", as_of=later)
    assert events == []
    stored = open_after[first.key]
    assert stored["evidence"] == {"decided_at": "2025-05-20"} and "才作出处理" in stored["message"]
    assert stored["as_of"] == AS_OF.isoformat()


def test_resolved_finding_carries_how_it_was_settled():
    f = Finding("PEN-PAYMENT-OVERDUE", "warning", "511322-scjg", "case", "c1", AS_OF, {"late_fee": 300}, "逾期")
    _, open_now = finding_events("c-1", {}, [f], source="penalty", as_of=AS_OF)
    settled = {f.key: {"evidence": {"late_fee": 900, "paid_at": "2025-05-10"}, "message": "罚款已缴清，应加处罚款 900 元"}}
    [resolved], _ = finding_events("c-2", open_now, [], source="penalty", as_of=AS_OF, resolutions=settled)
    assert resolved["payload"]["evidence"]["late_fee"] == 900 and "900" in resolved["payload"]["message"]
