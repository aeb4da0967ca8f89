"""The coordination part of the county simulator: every envelope passes its contract and is admitted
as the service would, the year is deterministic, the pure domains find exactly the injected breaches
(0 missed, 0 spurious per rule) and the evaluation computes the scores the generator intended."""
from __future__ import annotations

import functools

from contracts.catalog import Catalog
from services.coordination.manifest import MANIFEST
from services.simulator import coordination as sc
from services.simulator.generator import county_config, simulate


@functools.lru_cache(maxsize=1)
def county():
    sim = simulate(county_config("small", seed=3))
    return sim, sc.simulate_coordination(sim)


def test_every_generated_envelope_is_valid():
    catalog = Catalog()
    _, part = county()
    for env in part.events:
        catalog.validate(env)
    assert {e["type"].split(".")[0] for e in part.events} == {"supervision", "complaint", "normative_document",
                                                             "device", "dispute", "monthly_report", "evaluation"}


def test_deterministic_in_the_seed():
    sim, part = county()
    assert sc.simulate_coordination(sim).events == part.events


def test_zero_missed_and_zero_spurious_for_every_rule():
    sim, part = county()
    comparison = sc.check(sim, part)
    for row in comparison.rows:
        assert row.missed == [] and row.spurious == [], row
    assert comparison.ok
    # every coordination rule is injected at least once and found
    assert {x.rule_id for x in part.expectations} == set(MANIFEST.rules)
    assert all(comparison.row(rule).matched >= 1 for rule in MANIFEST.rules)


def test_evaluation_scores_match_the_generators_intent():
    sim, part = county()
    rows = sc.evaluation_check(sim, part)
    assert rows and all(r["ok"] for r in rows), rows
    # the generator planned late and missed limits: not every department has full marks
    assert any(r["expected"]["supervision_on_time"] < 100 for r in rows)
    assert any(r["expected"]["complaints_on_time"] < 100 for r in rows)


def test_another_seed_is_also_exact():
    sim = simulate(county_config("small", seed=11))
    part = sc.simulate_coordination(sim)
    assert sc.check(sim, part).ok and all(r["ok"] for r in sc.evaluation_check(sim, part))


def test_the_check_report_prints_the_table():
    sim, _ = county()
    lines: list[str] = []
    assert sc.check_report(sim, out=lines.append)
    assert "COO-SUP-REPLY-OVERDUE" in "\n".join(lines) and lines[-1].startswith("协调监督部分：全部规则零漏报")


from collections import defaultdict  # noqa: E402

from hypothesis import given, settings as hsettings, strategies as st  # noqa: E402

from services.common.facts import Fact  # noqa: E402


@hsettings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False))
def test_every_aggregate_folds_to_the_same_state_whatever_the_arrival_order(rnd):
    _, part = county()
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for env in part.events:
        prefix = next(p for p in sc.KINDS if env["type"].startswith(p))
        groups[(prefix, str(env["payload"][sc.KINDS[prefix][0]]))].append(env)
    for (prefix, _), envs in groups.items():
        fold, snapshot = sc.KINDS[prefix][1], sc.KINDS[prefix][4]
        if snapshot is None:
            continue
        in_order = fold([Fact.from_envelope(e, seq=i) for i, e in enumerate(envs)])
        shuffled = rnd.sample(envs, len(envs))
        arrived = fold([Fact.from_envelope(e, seq=i) for i, e in enumerate(shuffled)])
        assert snapshot(in_order, part.as_of) == snapshot(arrived, part.as_of), prefix
