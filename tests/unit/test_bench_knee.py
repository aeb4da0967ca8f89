"""The latency knee's search (services/simulator/bench_knee.py): pure, probes given by the test."""
from __future__ import annotations

import math

import pytest

from services.simulator import bench_knee
from services.simulator.bench_knee import met, next_rate, search, summary_lines, two_figures

TARGET, TOLERANCE = 200.0, 0.95


def phase(rate: float, p99: float | None, *, saturated: bool = False, achieved: float | None = None,
          unseen: int = 0, cpu: float | None = 2.0) -> dict:
    """A latency phase's result as `bench.latency` returns it (the fields the knee reads)."""
    out = {"offered_rate_per_s": rate, "achieved_rate_per_s": rate if achieved is None else achieved,
           "seconds": 15.0, "saturated": saturated,
           "fact_visible": {"p50_ms": None if p99 is None else p99 / 3, "p95_ms": None if p99 is None else p99 / 1.5,
                            "p99_ms": p99, "samples": 300, "not_visible_within_s": {"seconds": 30, "count": unseen}}}
    if cpu is not None:
        out["cpu"] = {"ms_per_event_all": cpu, "machine_busy_share": 0.9}
    return out


def machine(knee: float):
    """A probe of a machine whose p99 crosses the target at `knee` events/s (and the rates it was asked)."""
    asked: list[float] = []

    def probe(rate: float) -> dict:
        asked.append(rate)
        return phase(rate, TARGET * rate / knee)
    return probe, asked


@pytest.mark.parametrize("rate,expected", [(354.2, 350.0), (1414.2, 1400.0), (250.0, 250.0), (7.26, 7.3),
                                           (99.6, 100.0), (0.0, 0.0)])
def test_rates_are_rounded_to_two_significant_figures(rate, expected):
    assert two_figures(rate) == pytest.approx(expected)


def test_a_phase_meets_the_target_only_at_its_rate_unsaturated_with_every_sample_seen():
    assert met(phase(300, 199.0), TARGET, TOLERANCE)
    assert met(phase(300, 200.0), TARGET, TOLERANCE)
    assert not met(phase(300, 201.0), TARGET, TOLERANCE)
    assert not met(phase(300, 150.0, saturated=True), TARGET, TOLERANCE)
    assert not met(phase(300, 150.0, achieved=280.0), TARGET, TOLERANCE)  # the publisher fell behind
    assert met(phase(300, 150.0, achieved=286.0), TARGET, TOLERANCE)
    assert not met(phase(300, 150.0, unseen=1), TARGET, TOLERANCE)
    assert not met(phase(300, None), TARGET, TOLERANCE)
    assert not met({}, TARGET, TOLERANCE)


def test_below_a_failing_rate_the_first_probe_is_a_quarter_then_log_bisection():
    assert next_rate(None, 1000.0, {1000.0}) == 250.0
    assert next_rate(250.0, 1000.0, {1000.0, 250.0}) == 500.0
    assert next_rate(250.0, 500.0, {1000.0, 250.0, 500.0}) == 350.0
    assert next_rate(None, 250.0, {1000.0, 250.0}) == 62.0  # none met yet: a quarter again (62.5, to even)


def test_the_search_stops_when_bracketed_met_at_the_first_point_or_below_the_floor():
    assert next_rate(300.0, 320.0, {300.0, 320.0}) is None       # within 10%
    assert next_rate(1000.0, None, {1000.0}) is None               # the main phase met the target
    assert next_rate(None, 3.0, {3.0}) is None                     # a quarter of 3 is below 1 event/s
    assert next_rate(300.0, 340.0, {300.0, 340.0, 320.0}) is None  # would repeat a probed rate


def test_a_search_brackets_the_knee_of_a_machine():
    probe, asked = machine(knee=270.0)
    found = search(phase(1000, 3400.0, saturated=False), probe, TARGET, TOLERANCE, probes=8)
    assert asked[0] == 250.0 and asked[1] == 500.0
    assert found["rate_per_s"] <= 270.0 < found["lowest_failed_per_s"]
    assert found["bracketed"] and found["lowest_failed_per_s"] <= found["rate_per_s"] * bench_knee.BRACKET
    assert found["probes"] == len(asked) and len(found["points"]) == len(asked) + 1
    assert not found["points"][0]["probe"] and all(p["probe"] for p in found["points"][1:])
    assert [p["met"] for p in found["points"]] == [p["offered_rate_per_s"] <= 270.0 for p in found["points"]]


def test_a_search_spends_no_more_probes_than_given_and_says_when_not_bracketed():
    probe, asked = machine(knee=270.0)
    found = search(phase(1000, 3400.0), probe, TARGET, TOLERANCE, probes=2)
    assert asked == [250.0, 500.0]
    assert found["rate_per_s"] == 250.0 and found["lowest_failed_per_s"] == 500.0 and not found["bracketed"]
    assert "区间未收敛到 10% 以内" in summary_lines(found)[0]


def test_no_probe_when_the_main_phase_met_the_target():
    probe, asked = machine(knee=5000.0)
    found = search(phase(1000, 150.0), probe, TARGET, TOLERANCE, probes=5)
    assert asked == [] and found["rate_per_s"] == 1000.0 and found["lowest_failed_per_s"] is None
    assert "已满足，未再向下探测" in summary_lines(found)[0]


def test_a_machine_meeting_the_target_nowhere_reports_no_rate():
    probe, asked = machine(knee=0.5)
    found = search(phase(1000, 9000.0, saturated=True), probe, TARGET, TOLERANCE, probes=5)
    assert found["rate_per_s"] is None and asked and min(asked) >= bench_knee.MIN_RATE
    assert found["lowest_failed_per_s"] == min(asked)
    assert "均未满足" in summary_lines(found)[0]


def test_the_summary_gives_the_figure_and_every_point():
    probe, _ = machine(knee=270.0)
    found = search(phase(1000, 3400.0), probe, TARGET, TOLERANCE, probes=3)
    head, *points = summary_lines(found)
    assert f"≈ {found['rate_per_s']:g} 条/秒" in head and "参考值，非目标判定" in head
    assert len(points) == len(found["points"]) and points[0].startswith("主阶段 1000 条/秒")
    assert all(line.startswith("探测 ") for line in points[1:])
    assert all(("→ 满足" in line) == p["met"] for line, p in zip(points, found["points"]))
    assert "每条事件 CPU 2.0 ms" in points[1]


def test_a_geometric_step_stays_strictly_inside_the_bracket():
    for low in (10.0, 37.0, 250.0, 640.0):
        for high in (low * 1.2, low * 2, low * 10):
            rate = next_rate(low, high, {low, high})
            if rate is not None:
                assert low < rate < high and rate == two_figures(math.sqrt(low * high))


@pytest.mark.parametrize("option,wrong", [("--knee-seconds", v) for v in ("0", "-5", "601", "nan", "inf", "x", "")]
                         + [("--knee-p99-ms", v) for v in ("0", "-1", "nan", "inf", "-inf", "x", "")]
                         + [("--knee-probes", v) for v in ("0", "-1", "1.5", "x")])
def test_the_knee_options_refuse_what_is_not_a_duration_a_bound_or_a_count(option, wrong, capsys):
    from services.simulator import bench

    with pytest.raises(SystemExit) as stopped:
        bench.main([option, wrong, "--start-suite", "no"])
    assert stopped.value.code == 2  # argparse's usage error, before anything starts
    assert option in capsys.readouterr().err


def test_the_knee_options_take_durations_bounds_and_counts():
    from services.simulator import bench

    assert bench.probe_seconds("15") == 15.0 and bench.probe_seconds("600") == 600.0
    assert bench.positive_ms("200") == 200.0 and bench.positive_ms("0.5") == 0.5


def test_a_probe_without_events_ends_the_search_and_says_so():
    asked: list[float] = []

    def probe(rate: float):
        asked.append(rate)
        return phase(rate, 100.0) if len(asked) == 1 else None  # the second finds no events left

    found = search(phase(1000, 3400.0), probe, TARGET, TOLERANCE, probes=5)
    assert asked == [250.0, 500.0] and found["ran_out"] and found["probes"] == 1
    assert found["rate_per_s"] == 250.0 and found["lowest_failed_per_s"] == 1000.0
    assert "预留的事件已用完，探测提前结束" in summary_lines(found)[0]
    assert not search(phase(1000, 3400.0), machine(270.0)[0], TARGET, TOLERANCE, probes=3)["ran_out"]


def test_a_noisy_machine_failing_below_a_rate_it_met_is_reported_as_such():
    answers = {250.0: 150.0, 500.0: 250.0, 350.0: 190.0, 420.0: 210.0}  # 420 fails, 350 meets …

    def probe(rate: float):
        return phase(rate, answers.get(rate, 500.0))

    found = search(phase(1000, 3400.0), probe, TARGET, TOLERANCE, probes=3)
    assert found["rate_per_s"] == 350.0 and found["lowest_failed_per_s"] == 500.0
    noisy = dict(found, points=found["points"] + [bench_knee._point(phase(300.0, 260.0), TARGET, TOLERANCE, probe=True)])
    noisy["lowest_failed_per_s"] = 300.0  # … and a later probe at 300 failed
    assert "结果随速率不单调：本机噪声" in summary_lines(noisy)[0]
    assert "不单调" not in summary_lines(found)[0]
