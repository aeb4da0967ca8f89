"""Registry domain: versioned items, discretion standards, leniency lists and the registry rules."""
from __future__ import annotations

import itertools
import json
from datetime import date, datetime, timedelta, timezone

import pytest

from services.common.errors import DomainError, NotOwnerError
from services.registry.domain import (
    RULE_DELEGATED_NOT_EVALUATED, RULE_NO_LEGAL_BASIS, RULE_STANDARD_MISSING,
    DiscretionStandard, Fact, InvalidFactError, InvalidStandardError, ItemRecord, NaiveDatetimeError,
    RegistrySettings, RegistryState, StandardNotFoundError, UnknownTierError, evaluate_registry,
    has_legal_basis, holds_item, item_version_at, items_of_dept, leniency_for, next_due,
    publication_view, publish_standard, standard_due, tier_range, validate_standard,
)

CST = timezone(timedelta(hours=8))
CODE = "330217001000"
SCJG, STHJ, TOWN, GAJ = "511322-scjg", "511322-sthj", "511322-jxz", "511322-gaj"
FOOD_LAW = {"law": "《中华人民共和国食品安全法》", "article": "第一百二十四条"}
_ids = itertools.count(1)


def at(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, tzinfo=CST)


def fact(type_: str, payload: dict, *, dept: str = SCJG, occurred: datetime | None = None,
         event_id: str | None = None) -> Fact:
    return Fact(event_id or f"ev-{next(_ids)}", type_, occurred or at(2024, 1, 2), dept, payload)


def published(code: str = CODE, *, start: str = "2024-01-01", category: str = "penalty", **extra) -> Fact:
    payload = {"item_code": code, "name": "对生产经营不符合食品安全标准食品的行政处罚", "category": category,
               "legal_basis": [FOOD_LAW], "effective_from": start, **extra}
    return fact("item.published", payload, dept=extra.get("owning_dept", SCJG))


def amended(start: str, code: str = CODE, **changes) -> Fact:
    return fact("item.amended", {"item_code": code, "effective_from": start, **changes})


def repealed(start: str, code: str = CODE) -> Fact:
    return fact("item.repealed", {"item_code": code, "effective_from": start})


def evaluated(on: str, code: str = CODE) -> Fact:
    return fact("item.evaluated", {"item_code": code, "evaluated_on": on, "conclusion": "keep"})


def tier(tier_id: str, name: str, lo: float, hi: float, kind: str = "amount") -> dict:
    rng = {"min": lo, "max": hi} if kind == "amount" else {"min_multiple": lo, "max_multiple": hi}
    return {"tier": tier_id, "name": name, "conditions": f"{name}情节", kind: rng}


FIVE = [("lightest", "从轻"), ("lighter", "较轻"), ("normal", "一般"), ("heavier", "较重"), ("heaviest", "严重")]


def five_tiers(lo: float = 50000, step: float = 10000) -> list[dict]:
    return [tier(t, n, lo + i * step, lo + (i + 1) * step) for i, (t, n) in enumerate(FIVE)]


def standard_fact(tiers: list[dict] | None = None, *, code: str = CODE, start: str = "2024-03-01",
                  limit: dict | None = None, occurred: datetime | None = None, **extra) -> Fact:
    payload = {"item_code": code, "effective_from": start, "tiers": five_tiers() if tiers is None else tiers,
               "legal_limit": limit or {"kind": "amount", "min": 50000, "max": 100000, "max_only": False}, **extra}
    return fact("standard.published", payload, occurred=occurred)


def standard(tiers=None, **kw) -> DiscretionStandard:
    return DiscretionStandard.from_fact(standard_fact(tiers, **kw))


def rules(state, as_of, settings=RegistrySettings(), dept=None) -> set[str]:
    return {f.rule_id for f in evaluate_registry(state, dept, as_of, settings)}


def test_settings_defaults_follow_seeds_and_accept_preset_names():
    s = RegistrySettings()
    assert (s.min_tiers, s.lightest_tier_floor_ratio) == (5, 0.2)
    assert s.delegated_evaluation_deadline == (12, 15) and s.standard_filing_deadline == (8, 15)
    # presets use "MM-DD" strings and their own key names
    p = RegistrySettings.from_mapping(min_tiers=3, lightest_tier_floor=0.0, standards_filing_due="07-30",
                                      delegated_review_due=[11, 30])
    assert (p.min_tiers, p.lightest_tier_floor_ratio) == (3, 0.0)
    assert p.standard_filing_deadline == (7, 30) and p.delegated_evaluation_deadline == (11, 30)
    assert RegistrySettings.from_mapping(standard_filing_deadline=None).standard_filing_deadline is None


@pytest.mark.parametrize("overrides", [{"max_tiers": 3}, {"standard_filing_deadline": "13-01"},
                                       {"delegated_evaluation_deadline": "soon"}, {"min_tiers": 0},
                                       {"lightest_tier_floor_ratio": 1.5}])
def test_settings_reject_unknown_names_and_bad_values(overrides):
    with pytest.raises(ValueError):
        RegistrySettings.from_mapping(**overrides)


def test_case_before_an_amendment_is_judged_by_the_old_version():
    record = ItemRecord(CODE)
    record.apply(published(start="2024-01-01"))
    record.apply(amended("2024-06-01", name="新名称", legal_basis=[FOOD_LAW, {"law": "《食品安全法实施条例》",
                                                                            "article": "第六十七条"}]))
    old, new = item_version_at(record, at(2024, 5, 31, 23)), item_version_at(record, at(2024, 6, 1, 0))
    assert (old.version, old.name, len(old.legal_basis)) == (1, "对生产经营不符合食品安全标准食品的行政处罚", 1)
    assert (new.version, new.name, len(new.legal_basis)) == (2, "新名称", 2)
    # the old window now ends the day before the amendment; the new one inherits the rest
    assert old.effective_to == date(2024, 5, 31) and new.category == "penalty"
    assert item_version_at(record, date(2023, 12, 31)) is None


def test_act_time_is_read_as_the_local_day():
    record = ItemRecord(CODE)
    record.apply(published(start="2024-06-01"))
    # 2024-05-31 16:30 UTC is already June 1st in China
    assert item_version_at(record, datetime(2024, 5, 31, 16, 30, tzinfo=timezone.utc)).version == 1
    with pytest.raises(NaiveDatetimeError):
        item_version_at(record, datetime(2024, 6, 2))


def test_repeal_ends_the_item_and_holds_reports_it():
    record = ItemRecord(CODE)
    record.apply(published())
    record.apply(repealed("2025-01-01"))
    assert item_version_at(record, date(2024, 12, 31)).version == 1
    assert item_version_at(record, date(2025, 1, 1)) is None
    assert holds_item([record], SCJG, CODE, at(2025, 2, 1)) == (False, "repealed")


def test_amendment_arriving_before_its_publication_is_held_then_applied():
    record = ItemRecord(CODE)
    assert record.apply(amended("2024-06-01", category="coercion")) == "held"
    assert record.versions == [] and len(record.held) == 1
    assert record.apply(published(start="2024-01-01")) == "applied"
    assert [v.category for v in record.versions] == ["penalty", "coercion"] and record.held == ()


def test_amendment_effective_before_any_publication_stays_held_not_lost():
    record = ItemRecord(CODE)
    record.apply(published(start="2024-06-01"))
    assert record.apply(amended("2024-01-01", name="早于发布")) == "held"
    snap = ItemRecord.from_snapshot(json.loads(json.dumps(record.to_snapshot())))
    assert snap.to_snapshot()["held"] == [record.held[0].event_id]


def test_fold_is_independent_of_arrival_order_and_ignores_duplicates():
    facts = [published(start="2024-01-01"), amended("2024-04-01", delegated_to_township=True,
                                                    delegated_depts=[TOWN]),
             amended("2024-08-01", cooperating_depts=[STHJ]), repealed("2025-01-01")]
    expected = [v.to_dict() for v in ItemRecord(CODE, facts).versions]
    for order in itertools.permutations(facts):
        record = ItemRecord(CODE)
        for f in order:
            record.apply(f)
        assert [v.to_dict() for v in record.versions] == expected
    assert record.apply(facts[0]) == "duplicate" and len(record.facts) == 4


def test_snapshot_round_trips_through_json():
    record = ItemRecord(CODE)
    for f in (published(), amended("2024-05-01", name="调整后名称"), evaluated("2024-11-01"), standard_fact()):
        record.apply(f)
    doc = json.loads(json.dumps(record.to_snapshot(), ensure_ascii=False))
    back = ItemRecord.from_snapshot(doc)
    assert back.to_snapshot() == record.to_snapshot()
    assert doc["depts"] == [SCJG] and doc["versions"][1]["name"] == "调整后名称"


def test_area_is_optional_inherited_by_amendments_and_cleared_only_explicitly():
    record = ItemRecord(CODE)
    record.apply(published(start="2024-01-01"))
    assert record.versions[0].area is None and record.versions[0].to_dict()["area"] is None  # no area: any area
    record.apply(amended("2024-03-01", area="market"))
    record.apply(amended("2024-06-01", name="调整后名称"))           # leaves the area out: it keeps "market"
    record.apply(repealed("2025-01-01"))
    record.apply(amended("2024-09-01", area=None))                  # explicit null clears it
    assert [(v.change, v.area) for v in record.versions] == [
        ("published", None), ("amended", "market"), ("amended", "market"), ("amended", None), ("repealed", None)]
    assert item_version_at(record, date(2024, 7, 1)).to_dict()["area"] == "market"
    assert publication_view(record, date(2024, 7, 1))["area"] == "market"

    other = ItemRecord("330217002000")
    other.apply(published("330217002000", area="environment"))
    doc = json.loads(json.dumps(other.to_snapshot(), ensure_ascii=False))
    assert doc["versions"][0]["area"] == "environment"
    assert ItemRecord.from_snapshot(doc).versions[0].area == "environment"


@pytest.mark.parametrize("bad, field", [
    (published(category="tax"), "category"),
    (published(area="Market"), "area"),
    (amended("2024-06-01", area="市场监管"), "area"),
    (published(effective_to="2023-01-01"), "effective_to"),
    (published(start="2024-02-30"), "effective_from"),
    (fact("item.published", {"item_code": "OTHER", "name": "x", "category": "other", "legal_basis": [],
                             "effective_from": "2024-01-01"}), "item_code"),
    (fact("item.evaluated", {"item_code": CODE, "evaluated_on": "2024-01-01", "conclusion": "maybe"}), "conclusion"),
    (fact("case.filed", {"item_code": CODE}), "type"),
])
def test_unacceptable_item_facts_raise_named_errors_and_change_nothing(bad, field):
    record = ItemRecord(CODE)
    with pytest.raises(InvalidFactError) as err:
        record.apply(bad)
    assert err.value.field == field and isinstance(err.value, DomainError)
    assert record.facts == []


def test_fact_requires_an_aware_time():
    with pytest.raises(NaiveDatetimeError):
        Fact("e", "item.published", datetime(2024, 1, 1), SCJG, {})


def test_items_of_dept_and_holding_reasons():
    state = RegistryState.fold([
        published(cooperating_depts=[GAJ], delegated_to_township=True, delegated_depts=[TOWN],
                  effective_to="2025-12-31"),
        published("330217002000", start="2024-09-01"),
    ])
    assert [v.code for v in items_of_dept(state, SCJG, at(2024, 10, 1))] == [CODE, "330217002000"]
    assert [v.code for v in items_of_dept(state, TOWN, at(2024, 10, 1))] == [CODE]
    assert [v.code for v in items_of_dept(state.items, SCJG, at(2024, 5, 1))] == [CODE]
    assert holds_item(state, SCJG, CODE, at(2024, 5, 1)) == (True, "owner")
    assert holds_item(state, TOWN, CODE, at(2024, 5, 1)) == (True, "delegated")
    assert holds_item(state, GAJ, CODE, at(2024, 5, 1)) == (False, "cooperating_only")
    assert holds_item(state, STHJ, CODE, at(2024, 5, 1)) == (False, "other_dept")
    assert holds_item(state, SCJG, "330217002000", at(2024, 5, 1)) == (False, "not_in_force")
    assert holds_item(state, SCJG, CODE, at(2026, 1, 1)) == (False, "not_in_force")
    result = holds_item(state, SCJG, "999", at(2024, 5, 1))
    assert result == (False, "unknown_item") and result.message == "执法事项清单中无此事项"


def test_has_legal_basis_needs_law_and_article():
    record = ItemRecord(CODE, [published()])
    assert has_legal_basis(record, date(2024, 2, 1))
    record.apply(amended("2024-03-01", legal_basis=[{"law": "《中华人民共和国食品安全法》", "article": " "}]))
    assert not has_legal_basis(record, date(2024, 3, 1))
    assert has_legal_basis(record, date(2024, 2, 29))
    assert not has_legal_basis(record, date(2023, 1, 1))


def test_publication_view_shows_item_standard_and_leniency_only_while_in_force():
    state = RegistryState.fold([published(), standard_fact(), fact("leniency_list.published", {
        "kind": "no_penalty", "effective_from": "2024-01-01",
        "entries": [{"item_code": CODE, "conditions": "首次违法且及时改正"}]})])
    view = publication_view(state.items[CODE], date(2024, 4, 1), state.leniency_lists)
    assert view["category_name"] == "处罚" and view["legal_basis"] == [FOOD_LAW]
    assert [t["name"] for t in view["discretion_standard"]["tiers"]] == ["从轻", "较轻", "一般", "较重", "严重"]
    assert view["leniency"][0]["kind_name"] == "不予处罚"
    assert "evaluations" not in view and "facts" not in view
    assert publication_view(state.items[CODE], date(2023, 1, 1)) is None


def test_valid_five_tier_standard_is_accepted():
    s = standard()
    assert validate_standard(s) == [] and publish_standard(s) is s


def test_three_tiers_need_a_jurisdiction_that_allows_three():
    three = [tier("light", "轻微", 50000, 65000), tier("normal", "一般", 65000, 80000),
             tier("heavy", "严重", 80000, 100000)]
    with pytest.raises(InvalidStandardError) as err:
        publish_standard(standard(three))
    assert [v.rule for v in err.value.violations] == ["min_tiers"]
    assert publish_standard(standard(three), RegistrySettings.from_mapping(min_tiers=3))


def _rules_of(s: DiscretionStandard, settings=RegistrySettings()) -> list[tuple[str, str]]:
    return [(v.field, v.rule) for v in validate_standard(s, settings)]


def test_lightest_tier_below_twenty_percent_of_a_max_only_law_is_rejected():
    limit = {"kind": "amount", "max": 50000, "max_only": True}
    tiers = [tier(t, n, lo, hi) for (t, n), (lo, hi) in
             zip(FIVE, [(5000, 15000), (15000, 25000), (25000, 35000), (35000, 45000), (45000, 50000)])]
    assert _rules_of(standard(tiers, limit=limit)) == [("tiers.0.min", "lightest_below_floor")]
    message = validate_standard(standard(tiers, limit=limit))[0].message
    assert "20%" in message and "10000元" in message
    # exactly 20% is allowed; a law giving a range has no floor
    tiers[0]["amount"]["min"] = 10000
    assert _rules_of(standard(tiers, limit=limit)) == []
    tiers[0]["amount"]["min"] = 5000
    assert _rules_of(standard(tiers, limit={"kind": "amount", "max": 50000, "max_only": False})) == []
    # the ratio is configuration
    assert _rules_of(standard(tiers, limit=limit), RegistrySettings.from_mapping(lightest_tier_floor_ratio=0.1)) == []


def test_multiple_of_illegal_gains_floor():
    limit = {"kind": "multiple", "max": 5, "max_only": True}
    tiers = [tier(t, n, lo, hi, "multiple") for (t, n), (lo, hi) in
             zip(FIVE, [(0.5, 1), (1, 2), (2, 3), (3, 4), (4, 5)])]
    assert _rules_of(standard(tiers, limit=limit)) == [("tiers.0.min", "lightest_below_floor")]
    tiers[0]["multiple"]["min_multiple"] = 1
    assert _rules_of(standard(tiers, limit=limit)) == []


def test_inverted_tier_range_is_rejected():
    tiers = five_tiers()
    tiers[2]["amount"] = {"min": 80000, "max": 70000}
    assert ("tiers.2.min", "range_inverted") in _rules_of(standard(tiers))


def test_tiers_must_not_step_down():
    tiers = five_tiers()
    tiers[3]["amount"] = {"min": 65000, "max": 75000}    # below 一般 on both ends
    assert _rules_of(standard(tiers)) == [("tiers.3.min", "tiers_not_ordered"), ("tiers.3.max", "tiers_not_ordered")]
    # touching or equal bounds are fine
    tiers[3]["amount"] = {"min": 70000, "max": 80000}
    assert _rules_of(standard(tiers)) == []


def test_tier_beyond_legal_limits_is_rejected():
    tiers = five_tiers()
    tiers[4]["amount"]["max"] = 120000
    tiers[0]["amount"]["min"] = 40000
    found = _rules_of(standard(tiers))
    assert ("tiers.4.max", "above_legal_max") in found and ("tiers.0.min", "below_legal_min") in found


@pytest.mark.parametrize("mutate, expected", [
    (lambda t, l, p: t[1].update(multiple={"min_multiple": 1, "max_multiple": 2}), ("tiers.1", "range_missing")),
    (lambda t, l, p: t[1].pop("amount"), ("tiers.1", "range_missing")),
    (lambda t, l, p: t[2].update(tier="lighter"), ("tiers.2.tier", "duplicate_tier")),
    (lambda t, l, p: (t[0].pop("amount"), t[0].update(multiple={"min_multiple": 1, "max_multiple": 2})),
     ("tiers.0", "kind_mismatch")),
    (lambda t, l, p: t[0].update(amount={"min": -1, "max": 60000}), ("tiers.0.min", "negative")),
    (lambda t, l, p: l.update(max=0), ("legal_limit.max", "legal_max_missing")),
    (lambda t, l, p: l.update(max_only=True), ("legal_limit.min", "min_with_max_only")),
    (lambda t, l, p: l.update(min=200000), ("legal_limit.min", "legal_range_inverted")),
    (lambda t, l, p: l.update(kind="days"), ("legal_limit.kind", "unknown_kind")),
    (lambda t, l, p: p.update(effective_to="2024-01-01"), ("effective_to", "window_inverted")),
])
def test_each_standard_rule_names_its_field(mutate, expected):
    tiers, limit, extra = five_tiers(), {"kind": "amount", "min": 50000, "max": 100000, "max_only": False}, {}
    mutate(tiers, limit, extra)
    assert expected in _rules_of(standard(tiers, limit=limit, **extra))


def test_invalid_standard_reports_every_reason_and_is_not_recorded():
    tiers = five_tiers()[:4]
    tiers[1]["amount"] = {"min": 70000, "max": 60000}
    tiers[3]["amount"]["max"] = 150000
    record = ItemRecord(CODE, [published()])
    with pytest.raises(InvalidStandardError) as err:
        record.apply(standard_fact(tiers))
    rules_ = {v.rule for v in err.value.violations}
    assert {"min_tiers", "range_inverted", "above_legal_max"} <= rules_
    doc = err.value.to_dict()
    assert doc["code"] == "invalid_standard" and len(doc["violations"]) == len(err.value.violations)
    assert "裁量阶次不足" in doc["message"]
    assert record.standards == () and len(record.facts) == 1


def test_tier_range_follows_the_standard_in_force_at_the_act():
    record = ItemRecord(CODE, [published()])
    record.apply(standard_fact(start="2024-03-01"))
    record.apply(standard_fact(five_tiers(60000, 8000), start="2024-09-01", occurred=at(2024, 8, 20)))
    assert tier_range(record.standards, CODE, "heavier", at(2024, 8, 31)) == (80000, 90000, "amount")
    assert tier_range(record.standards, CODE, "较重", at(2024, 9, 1)) == (84000, 92000, "amount")
    with pytest.raises(StandardNotFoundError):
        tier_range(record.standards, CODE, "heavier", at(2024, 2, 1))
    with pytest.raises(UnknownTierError):
        tier_range(record.standards, CODE, "extreme", at(2024, 9, 1))


def leniency(kind: str, start: str, codes: list[str], dept: str = SCJG, **extra) -> Fact:
    entries = [{"item_code": c, "conditions": "初次违法且危害后果轻微并及时改正"} for c in codes]
    return fact("leniency_list.published", {"kind": kind, "effective_from": start, "entries": entries, **extra},
                dept=dept)


def test_leniency_for_reads_the_lists_in_force():
    state = RegistryState()
    for f in (leniency("no_penalty", "2024-01-01", [CODE]), leniency("no_penalty", "2024-07-01", ["330217002000"]),
              leniency("enterprise_exemption", "2024-03-01", [CODE], effective_to="2024-12-31"),
              leniency("no_coercion", "2024-01-01", [CODE], dept=STHJ)):
        assert state.apply(f) == "applied"
    assert [m.kind for m in leniency_for(state.leniency_lists, SCJG, CODE, at(2024, 4, 1))] == \
        ["no_penalty", "enterprise_exemption"]
    # the July list replaces the January one of the same kind
    assert [m.kind for m in leniency_for(state.leniency_lists, SCJG, CODE, at(2024, 8, 1))] == ["enterprise_exemption"]
    assert leniency_for(state.leniency_lists, SCJG, CODE, at(2025, 1, 1)) == []
    assert leniency_for(state.leniency_lists, SCJG, CODE, at(2023, 12, 31)) == []
    assert state.apply(state_fact := leniency("no_penalty", "2024-01-01", [CODE])) == "applied"
    assert state.apply(state_fact) == "duplicate"


def test_leniency_list_with_unknown_kind_is_refused():
    with pytest.raises(InvalidFactError):
        RegistryState().apply(leniency("amnesty", "2024-01-01", [CODE]))


def delegated_state(*extra: Fact) -> RegistryState:
    return RegistryState.fold([published(delegated_to_township=True, delegated_depts=[TOWN]), standard_fact(),
                               *extra])


def test_delegated_item_not_evaluated_by_dec_15_is_a_finding():
    state = delegated_state()
    assert RULE_DELEGATED_NOT_EVALUATED not in rules(state, at(2024, 12, 15, 23))
    [finding] = [f for f in evaluate_registry(state, SCJG, at(2024, 12, 16), RegistrySettings())
                 if f.rule_id == RULE_DELEGATED_NOT_EVALUATED]
    assert finding.subject_type == "item" and finding.subject_id == CODE and finding.dept == SCJG
    assert finding.evidence["deadline"] == "2024-12-15" and "年度评估" in finding.message
    # still open in the new year until something is done
    assert RULE_DELEGATED_NOT_EVALUATED in rules(state, at(2025, 3, 1))


def test_delegated_item_evaluated_in_time_is_fine():
    assert RULE_DELEGATED_NOT_EVALUATED not in rules(delegated_state(evaluated("2024-06-30")), at(2024, 12, 16))


def test_last_years_evaluation_does_not_count_but_a_late_one_resolves():
    state = delegated_state(evaluated("2023-11-01"))
    assert RULE_DELEGATED_NOT_EVALUATED in rules(state, at(2024, 12, 16))
    state.apply(evaluated("2024-12-20"))
    assert RULE_DELEGATED_NOT_EVALUATED in rules(state, at(2024, 12, 19))
    assert RULE_DELEGATED_NOT_EVALUATED not in rules(state, at(2024, 12, 21))


def test_items_not_delegated_need_no_evaluation_and_deadline_is_configurable():
    plain = RegistryState.fold([published(), standard_fact()])
    assert RULE_DELEGATED_NOT_EVALUATED not in rules(plain, at(2024, 12, 16))
    nov = RegistrySettings.from_mapping(delegated_evaluation_deadline=(11, 30))
    assert RULE_DELEGATED_NOT_EVALUATED in rules(delegated_state(), at(2024, 12, 1), nov)
    # delegation withdrawn before the deadline: nothing to evaluate
    withdrawn = delegated_state(amended("2024-10-01", delegated_to_township=False))
    assert RULE_DELEGATED_NOT_EVALUATED not in rules(withdrawn, at(2024, 12, 16))


def test_penalty_item_without_standard_after_filing_deadline_is_a_finding():
    state = RegistryState.fold([published(start="2024-03-01")])
    assert RULE_STANDARD_MISSING not in rules(state, at(2024, 8, 15, 20))
    [finding] = evaluate_registry(state, SCJG, at(2024, 8, 16), RegistrySettings())
    assert finding.rule_id == RULE_STANDARD_MISSING and finding.evidence["due"] == "2024-08-15"
    state.apply(standard_fact(start="2024-08-20"))
    assert RULE_STANDARD_MISSING not in rules(state, at(2024, 8, 20))


def test_standard_due_date_is_the_next_filing_deadline():
    assert standard_due(date(2024, 3, 1)) == date(2024, 8, 15)
    assert standard_due(date(2024, 9, 1)) == date(2025, 8, 15)
    assert standard_due(date(2024, 9, 1), RegistrySettings.from_mapping(standard_filing_deadline=None)) == \
        date(2024, 9, 1)
    late = RegistryState.fold([published(start="2024-09-01")])
    assert RULE_STANDARD_MISSING not in rules(late, at(2025, 8, 15))
    assert RULE_STANDARD_MISSING in rules(late, at(2025, 8, 16))


def test_expired_standard_and_non_penalty_items():
    expired = RegistryState.fold([published(), standard_fact(effective_to="2024-12-31")])
    assert RULE_STANDARD_MISSING not in rules(expired, at(2024, 12, 31))
    [finding] = evaluate_registry(expired, SCJG, at(2025, 1, 1), RegistrySettings())
    assert finding.evidence["last_standard_to"] == "2024-12-31"
    licensing = RegistryState.fold([published(category="licensing")])
    assert rules(licensing, at(2025, 1, 1)) == set()
    # an item that became a penalty item later is due from the change
    changed = RegistryState.fold([published(category="inspection"), amended("2024-09-01", category="penalty")])
    assert RULE_STANDARD_MISSING not in rules(changed, at(2025, 3, 1))


def test_item_in_force_without_legal_basis_is_a_finding():
    state = RegistryState.fold([published(legal_basis=[]), standard_fact()])
    [finding] = evaluate_registry(state, SCJG, at(2024, 4, 1), RegistrySettings())
    assert finding.rule_id == RULE_NO_LEGAL_BASIS and finding.severity == "serious"
    assert "执法依据" in finding.message
    state.apply(amended("2024-05-01", legal_basis=[FOOD_LAW]))
    assert rules(state, at(2024, 5, 1)) == set()
    # a repealed item is no longer judged
    state.apply(amended("2024-06-01", legal_basis=[]))
    state.apply(repealed("2024-07-01"))
    assert rules(state, at(2024, 7, 1)) == set()


def test_evaluation_is_per_dept_stable_and_repeatable():
    state = RegistryState.fold([
        published(legal_basis=[]), published("330217009000", owning_dept=STHJ, delegated_to_township=True,
                                             delegated_depts=[TOWN]),
    ])
    as_of = at(2024, 12, 16)
    mine = evaluate_registry(state, SCJG, as_of, RegistrySettings())
    assert {f.dept for f in mine} == {SCJG}
    everyone = evaluate_registry(state, None, as_of, RegistrySettings())
    keys = [f.key for f in everyone]
    assert keys == sorted(keys) and keys == [f.key for f in evaluate_registry(state, None, as_of, RegistrySettings())]
    assert f"{RULE_DELEGATED_NOT_EVALUATED}:item:330217009000" in keys
    assert all(json.dumps(f.to_payload(), ensure_ascii=False) for f in everyone)


def test_next_due_is_the_next_day_a_verdict_can_change():
    record = ItemRecord(CODE, [published(start="2024-03-01")])
    assert next_due(record, at(2024, 4, 1)) == datetime(2024, 8, 16, tzinfo=CST)
    record.apply(standard_fact())
    record.apply(repealed("2024-10-01"))
    assert next_due(record, at(2024, 8, 20)) == datetime(2024, 10, 1, tzinfo=CST)
    assert next_due(record, at(2024, 10, 2)) == datetime(2024, 12, 16, tzinfo=CST)


# Ownership (数据归属): docs/ownership.md

def test_only_the_owning_department_reports_on_an_item():
    record = ItemRecord(CODE)
    record.apply(published(start="2024-01-01"))
    for foreign in (fact("item.amended", {"item_code": CODE, "effective_from": "2024-05-01", "name": "篡改"}, dept=STHJ),
                    fact("item.repealed", {"item_code": CODE, "effective_from": "2024-05-01"}, dept=STHJ),
                    fact("standard.published", dict(standard_fact().payload), dept=STHJ)):
        with pytest.raises(NotOwnerError) as err:
            record.apply(foreign)
        assert err.value.code == "not_owner" and SCJG in str(err.value)
    assert len(record.facts) == 1 and record.versions[-1].name == record.versions[0].name


def test_an_item_is_published_by_its_own_department_and_ownership_does_not_move_by_amendment():
    with pytest.raises(NotOwnerError) as err:
        ItemRecord(CODE).apply(fact("item.published", {**published().payload, "owning_dept": STHJ}, dept=SCJG))
    assert err.value.field == "payload.owning_dept"
    record = ItemRecord(CODE)
    record.apply(published(start="2024-01-01"))
    with pytest.raises(NotOwnerError):
        record.apply(amended("2024-08-01", owning_dept=STHJ))


def test_a_foreign_fact_that_arrived_before_the_item_changes_nothing():
    record = ItemRecord(CODE)
    early = fact("item.amended", {"item_code": CODE, "effective_from": "2024-05-01", "name": "他人变更"}, dept=STHJ)
    assert record.apply(early) == "held"
    record.apply(published(start="2024-01-01"))
    assert [f.event_id for f in record.foreign] == [early.event_id]
    assert [v.name for v in record.versions] == [published().payload["name"]]
