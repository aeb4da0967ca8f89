"""The replay figures (services/kernel/replay.py ReplayStats) and their bench summary line."""
from __future__ import annotations

from services.kernel.replay import ReplayStats
from services.simulator.bench_replay import event_sourced, load_order, summary_line


def test_stats_add_up_and_give_facts_per_second():
    total = ReplayStats()
    total.add(ReplayStats(aggregates=2, facts=30, written=1, raised=1, resolved=0, seconds=0.5))
    total.add(ReplayStats(aggregates=3, facts=70, written=0, raised=0, resolved=2, seconds=1.5))
    assert (total.aggregates, total.facts, total.written, total.raised, total.resolved) == (5, 100, 1, 1, 2)
    assert total.facts_per_s == 50.0
    assert ReplayStats().facts_per_s is None  # nothing timed: no rate, not 0
    assert total.as_dict()["facts_per_s"] == 50.0 and total.as_dict()["seconds"] == 2.0


def test_only_event_sourced_services_are_replayed():
    assert event_sourced(["gateway", "personnel", "penalty", "api", "documents"]) == ["personnel", "penalty"]


def test_summary_line_states_what_was_replayed_and_under_which_load():
    result = {"events_per_s": 812.4, "county": {"region": "511322", "year": 2025}, "aggregates": 1200,
              "facts": 7733, "seconds": 9.52, "written": 3, "raised": 2, "resolved": 1,
              "loaded": {"handled": 7733, "events": 7733, "events_per_s": 48.1},
              "cpu": {"processes": {"mongodb": {"cpu_s": 5.0, "share_of_machine": 0.26},
                                    "bench": {"cpu_s": 9.0, "share_of_machine": 0.47}},
                      "others_cpu_share": 0.12}}
    line = summary_line(result)
    assert line.startswith("812.4 条/秒（511322 县 2025 年全年历史：1200 个聚合、7733 条事实")
    assert "装载经入口 7733/7733 条，48.1 条/秒" in line
    assert "bench 47%，mongodb 26%" in line and "其他进程 12%" in line


def test_summary_line_of_a_direct_load_says_how_and_whether_the_whole_year_was_replayed():
    result = {"events_per_s": 400.0, "county": {"region": "511322", "year": 2025}, "aggregates": 1100,
              "facts": 7600, "seconds": 19.0, "written": 3, "raised": 2, "resolved": 1, "whole_year": True,
              "loaded": {"how": "direct", "handled": 7692, "applied": 7600, "refused": 92, "events": 7692,
                         "events_per_s": 60.2, "chunk": 500},
              "cpu": {}}
    line = summary_line(result)
    assert "直接经各服务的入库路径（apply_batch，每批 500 条，不计时）7692/7692 条（拒收 92），60.2 条/秒" in line
    assert "全年已全部重放" in line
    assert "未覆盖全年" in summary_line({**result, "whole_year": False})


def test_services_load_after_those_whose_events_they_consume():
    assert load_order(["penalty", "registry", "personnel"]) == ["registry", "personnel", "penalty"]
    assert load_order(["handover", "penalty"]) == ["penalty", "handover"]
