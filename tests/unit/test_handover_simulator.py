"""The handover part of the county simulator: every envelope passes its contract and is admitted
from its own party, the year is deterministic, and the pure domains find exactly the injected
breaches (0 missed, 0 spurious per rule) — including 以罚代刑 on the main generator's cases."""
from __future__ import annotations

import functools

from contracts.catalog import Catalog
from services.handover import domain as d
from services.simulator import handover as sh
from services.simulator.generator import county_config, simulate


@functools.lru_cache(maxsize=1)
def county():
    sim = simulate(county_config("small", seed=3))
    return sim, sh.simulate_handovers(sim)


def test_every_generated_envelope_is_valid_and_from_its_own_party():
    catalog = Catalog()
    _, part = county()
    for env in part.events:
        catalog.validate(env)
        kind = d.party_kind(env["dept"])
        assert kind in d.STEPS[env["type"]].party, env
    assert {d.party_kind(e["dept"]) for e in part.events} == {d.DEPARTMENT, d.POLICE, d.PROCURATORATE}


def test_deterministic_in_the_seed():
    sim, part = county()
    assert sh.simulate_handovers(sim).events == part.events


def test_zero_missed_and_zero_spurious_for_every_rule():
    sim, part = county()
    comparison = sh.check(sim, part)
    for row in comparison.rows:
        assert row.missed == [] and row.spurious == [], row
    assert comparison.ok
    injected = {x.rule_id for x in part.expectations}
    assert injected == set(d.RULE_IDS), set(d.RULE_IDS) - injected
    assert all(comparison.row(rule).expected >= 1 for rule in injected)
    # the 以罚代刑 truth is the main generator's: every injected PEN-CRIME-NO-HANDOVER case
    crimes = {x.subject_id for x in sim.expectations if x.rule_id == "PEN-CRIME-NO-HANDOVER"}
    assert crimes and {x.subject_id for x in part.expectations if x.rule_id == d.PENALTY_INSTEAD} == crimes
    assert comparison.row(d.PENALTY_INSTEAD).raised == len(crimes)


def test_a_year_county_with_a_transferred_case_is_also_exact():
    sim = simulate(county_config("year", seed=2))
    part = sh.simulate_handovers(sim)
    transferred = {e["payload"]["case_id"] for e in sim.events if e["type"] == "case.transferred_to_police"}
    linked = {e["payload"].get("case_id") for e in part.events if e["type"] == "handover.suspicion_raised"}
    assert transferred and transferred <= linked   # every case the generator handed over has its handover
    assert sh.check(sim, part).ok


def test_the_check_command_prints_the_handover_table():
    sim, _ = county()
    lines: list[str] = []
    assert sh.check_report(sim, out=lines.append)
    assert "HOV-PENALTY-INSTEAD" in lines[0] and lines[-1].endswith("零漏报、零误报")
