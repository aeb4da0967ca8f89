"""The penalty snapshot and CaseFacts built the fast way give exactly what the plain way gave (issue 14).

`Case.to_dict` builds plain dicts field by field instead of `dataclasses.asdict` (which deep-copies
every value) followed by `_plain`; `projections.case_facts` keeps the registry record, the officer
and their answers while the same projected payload object is served. The oracle here is the plain
way, kept in this file, run on every version of every case of the simulator's workload (each
prefix of its facts in arrival order), with the officers and items that workload projects.
"""
from __future__ import annotations

from dataclasses import asdict, fields, is_dataclass
from datetime import datetime, timedelta, timezone

import pytest

from plugins.host import build_plugin_manager
from services.common.qualification import holder_from_payload
from services.common.workdays import DEFAULT_CALENDAR
from services.kernel.settings import DeptSettings
from services.penalty import projections as p
from services.penalty.domain import case as pc
from services.penalty.domain import rules as r
from services.penalty.domain.rules import CaseFacts
from services.penalty.domain.settings import PenaltySettings
from services.personnel import domain as personnel
from services.personnel.service import PersonnelAdapter
from services.registry.domain import RegistrySettings
from services.registry.service import RegistryAdapter
from services.simulator.bench import SERVICE_OF, workload
from tests.unit.test_penalty_service import CODE, DEPT, item, officer

AS_OF = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
EVERY = 4  # every 4th case of the county (≈ 170 cases, ≈ 2,000 versions): a few seconds


# -- the plain way (the oracle) ---------------------------------------------------------------------

def plain_before(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, pc.Rejected):
        return value.to_dict()
    if is_dataclass(value):
        return {k: plain_before(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {k: plain_before(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain_before(v) for v in value]
    return value


def to_dict_before(case: pc.Case) -> dict:
    out = {f.name: plain_before(getattr(case, f.name)) for f in fields(case)}
    out["flags"] = sorted(case.flags)
    out["stage_label"] = pc.STAGE_LABELS.get(case.stage or "", "")
    return out


def case_facts_before(officers, items, thresholds, others) -> CaseFacts:
    records = {code: p.projected_item(payload) for code, payload in items.items()}
    holders = {officer_id: holder_from_payload(payload) for officer_id, payload in officers.items()}
    return CaseFacts(
        credentials=lambda officer_id, area, at: p.officer_verdict(holders.get(officer_id), area, at),
        items=lambda dept, code, at: p.item_view(records.get(code), dept, code, at),
        crime_thresholds=tuple(thresholds), other_decisions=tuple(others),
        officer_kinds=lambda officer_id: (officers.get(officer_id) or {}).get("kind"),
    )


# -- the simulator's workload -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def world():
    events, _ = workload(1500, ["personnel", "registry", "penalty"], 11, "eq")
    host = build_plugin_manager(load_entrypoints=False)
    by_officer, by_item, case_facts = {}, {}, {}
    for env in events:
        service, payload = SERVICE_OF[env["type"].split(".")[0]], env["payload"]
        if service == "personnel" and "officer_id" in payload:
            by_officer.setdefault(payload["officer_id"], []).append(env)
        elif service == "registry" and "item_code" in payload:
            by_item.setdefault(payload["item_code"], []).append(env)
        elif service == "penalty":
            case_facts.setdefault(payload["case_id"], []).append(env)
    officers_adapter = PersonnelAdapter("officer", DeptSettings(host, "personnel", personnel.PersonnelSettings, "seed001"))
    officers = {oid: personnel.officer_changed_payload(officers_adapter.fold(fs), AS_OF) for oid, fs in by_officer.items()}
    items_adapter = RegistryAdapter(DeptSettings(host, "registry", RegistrySettings, "seed001"))
    items = {}
    for code, fs in by_item.items():
        agg = items_adapter.fold(fs)
        changed = items_adapter.changed_events(agg, items_adapter.snapshot(agg, AS_OF), "eq", AS_OF)
        if changed:
            items[code] = changed[0]["payload"]
    return {"cases": case_facts, "officers": officers, "items": items,
            "settings": DeptSettings(host, "penalty", PenaltySettings, "seed001"), "host": host}


def versions(world):
    """Every version of every case: the facts known after each arrival, folded; every third of them
    also with its facts arriving last first (held facts waiting for their prerequisite)."""
    for i, (case_id, envs) in enumerate(list(world["cases"].items())[::EVERY]):
        for arrivals in (envs, envs[::-1]) if i % 3 == 0 else (envs,):
            for n in range(1, len(arrivals) + 1):
                yield pc.fold([pc.Fact.from_dict(e) for e in arrivals[:n]], case_id)


def test_the_workload_has_what_the_snapshot_and_the_rules_read(world):
    cases = list(versions(world))
    assert len(world["cases"]) > 100 and world["officers"] and world["items"]
    assert any(c.decisions and c.decisions[-1].payments for c in cases)
    assert any(c.held for c in cases)  # facts arrive out of order: some wait for their prerequisite
    assert any(c.hearings for c in cases) and any(c.suspensions or c.testings for c in cases)


def test_case_to_dict_is_exactly_the_plain_way_on_every_version_of_every_case(world):
    compared = 0
    for case in versions(world):
        fast, before = case.to_dict(), to_dict_before(case)
        assert fast == before
        assert repr(fast) == repr(before)  # same types (lists, not tuples) and the same key order
        compared += 1
    assert compared > 1000


def test_case_facts_answers_are_exactly_the_uncached_ones_on_every_version(world):
    settings_of, host = world["settings"], world["host"]
    compared = raised = 0
    for case in versions(world):
        refs = p.references(case)
        officers = {o: world["officers"][o] for o in refs["officer_ids"] if o in world["officers"]}
        items = {c: world["items"][c] for c in refs["item_codes"] if c in world["items"]}
        dept = case.dept or "511322-scjg"
        settings, thresholds = settings_of.for_dept(dept), host.crime_thresholds(dept)
        rules = host.rules("penalty", dept)
        for as_of in (AS_OF, AS_OF - timedelta(days=200)):
            fast = r.evaluate(case, p.case_facts(officers, items, thresholds, ()), settings, as_of,
                              DEFAULT_CALENDAR, rules=rules)
            before = r.evaluate(case, case_facts_before(officers, items, thresholds, ()), settings, as_of,
                                DEFAULT_CALENDAR, rules=rules)
            assert fast == before
            compared += 1
            raised += len(fast)
    assert compared > 1000 and raised > 100


def test_a_newer_payload_of_an_officer_or_item_is_read_afresh():
    when = datetime(2026, 3, 1, 10, tzinfo=timezone(timedelta(hours=8)))
    valid = officer()
    assert p.case_facts({"O1": valid}, {}, (), ()).credential("O1", "", when) == (True, [])
    suspended = officer(usable=[{"from": "2024-01-10T00:00:00+08:00", "to": "2026-02-01T00:00:00+08:00"}],
                        status="suspended", suspensions=[{"from": "2026-02-01T00:00:00+08:00", "to": None,
                                                          "reason": "涉嫌违纪接受调查"}])
    allowed, reasons = p.case_facts({"O1": suspended}, {}, (), ()).credential("O1", "", when)
    assert allowed is False and "暂扣" in reasons[0]
    assert p.case_facts({"O1": valid}, {}, (), ()).credential("O1", "", when) == (True, [])

    held = p.case_facts({}, {CODE: item()}, (), ()).item(DEPT, CODE, when)
    assert held.held and held.tiers
    repealed = item(versions=[{**item()["versions"][0], "repealed": True}])
    assert not p.case_facts({}, {CODE: repealed}, (), ()).item(DEPT, CODE, when).held
    assert p.case_facts({}, {CODE: item()}, (), ()).item(DEPT, CODE, when) == held


def test_remembered_workday_sums_are_the_counted_ones():
    from datetime import date

    from services.common.workdays import WorkdayCalendar

    calendar = WorkdayCalendar(extra_holidays=[date(2027, 3, 3)], extra_workdays=[date(2026, 10, 10)])
    for start in (date(2026, 9, 20) + timedelta(days=i) for i in range(200)):
        for n in (0, 2, 3, 5, 7, 20):
            counted, day = n, start
            while counted > 0:
                day += timedelta(days=1)
                counted -= calendar.is_workday(day)
            assert calendar.add_workdays(start, n) == day == calendar.add_workdays(start, n)
    assert calendar.add_workdays(date(2026, 9, 30), 1) == date(2026, 10, 8)  # after the National Day holidays (国庆)
