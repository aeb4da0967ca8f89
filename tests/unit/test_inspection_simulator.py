"""The inspection part of the county simulator: every envelope passes its contract, the year is
deterministic, and the pure domains find exactly the injected breaches (0 missed, 0 spurious per rule)."""
from __future__ import annotations

import functools

from contracts.catalog import Catalog
from services.inspection import domain as d
from services.simulator import inspection as si
from services.simulator.generator import county_config, simulate


@functools.lru_cache(maxsize=1)
def county():
    sim = simulate(county_config("small", seed=3))
    return sim, si.simulate_inspections(sim)


def test_every_generated_envelope_is_valid():
    catalog = Catalog()
    _, part = county()
    for env in part.events:
        catalog.validate(env)
    assert {e["type"] for e in part.events} >= {"inspection_plan.registered", "inspection_draw.performed",
                                                 "inspection.registered", "inspection_pool.members_listed"}


def test_deterministic_in_the_seed():
    sim, part = county()
    again = si.simulate_inspections(sim)
    assert [e["event_id"] for e in again.events] == [e["event_id"] for e in part.events]
    assert again.events == part.events


def test_zero_missed_and_zero_spurious_for_every_rule():
    sim, part = county()
    comparison = si.check(sim, part)
    assert comparison.ok, [(r.rule_id, r.missed, r.spurious) for r in comparison.rows if r.missed or r.spurious]
    injected = {x.rule_id for x in part.expectations}
    # every rule of the service is injected at least once, except the two-year rule (one simulated year)
    assert injected == set(d.RULES) - {d.UNIT_NO_RECORDS_2Y}, set(d.RULES) - injected
    assert all(comparison.row(rule).matched >= 1 for rule in injected)


def test_the_simulator_check_command_reports_the_inspection_part(capsys):
    from services.simulator.__main__ import main

    assert main(["check", "--seed", "3", "--scale", "small"]) == 0
    out = capsys.readouterr().out
    assert "行政检查部分：全部规则零漏报、零误报" in out and "INS-FREQUENCY-CAP" in out


def test_a_county_too_small_for_the_part_is_said_so():
    lines = []
    assert si.check_report(simulate(county_config("demo", seed=20250101)), lines.append)
    assert "未生成" in lines[0]


def test_the_truth_a_year_later_adds_what_time_alone_brings():
    from datetime import datetime, timedelta

    from services.simulator.generator import CST

    sim, part = county()
    as_of = datetime(2026, 11, 30, 9, 0, tzinfo=CST)
    expected = si.expected_at(part, as_of)
    raised = {(f.rule_id, f.subject_type, f.subject_id, f.dept)
              for f in si.offline_findings([*sim.events, *part.events], as_of)}
    assert raised == expected, (sorted(raised - expected), sorted(expected - raised))
    rules = {k[0] for k in expected}
    assert d.JOINT_SUGGESTED not in rules           # both January plans are over
    assert (d.ANNUAL_PLAN_MISSING, "unit_year", f"{sim.depts[0]}:2026", sim.depts[0]) in expected
    later = as_of + timedelta(days=400)
    assert d.UNIT_NO_RECORDS_2Y in {k[0] for k in si.expected_at(part, later)}
    assert si.expected_at(part, later) == {(f.rule_id, f.subject_type, f.subject_id, f.dept) for f in
                                           si.offline_findings([*sim.events, *part.events], later)}


def test_a_replayed_outcome_without_registration_is_expected_only_after_its_grace_from_arrival():
    from datetime import datetime, timedelta

    from services.simulator.generator import CST

    _, part = county()
    now = datetime(2026, 11, 30, 9, 0, tzinfo=CST)
    ghost = {k for k in si.expected_at(part, now) if k[0] == d.NOT_REGISTERED}
    assert ghost and not {k for k in si.expected_at(part, now, arrived_at=now) if k[0] == d.NOT_REGISTERED}
    assert {k for k in si.expected_at(part, now + timedelta(days=3), arrived_at=now) if k[0] == d.NOT_REGISTERED} == ghost
