"""`make bench BENCH_ARGS="--pairs K"`: the raw ceiling and the sustained phase alternate K times, the run
ends with the raw ceiling once more, each pair's raw ceiling is the median of the rounds before and after
its sustained round, and the pair with the median ratio stands for the run.

The machine's speed drifts by up to a third within an hour here (docs/benchmark.md), so a ratio whose
two sides were measured minutes apart moved between 0.37 and 0.58 on one tree. With pairs each
sustained round is divided by a raw ceiling measured just before it. A real bench: it starts every
declared service process on real RabbitMQ and FerretDB, as `make bench` does.

The same run probes the latency knee (`--knee`, services/simulator/bench_knee.py) for a bound no phase can
meet (`--knee-p99-ms 1`), so that both probes run: below the main phase's rate, each on events of its own.
"""
from __future__ import annotations

import json

from tests.helpers import bench_env, run_bench


def test_pairs_alternate_and_the_median_pair_stands_for_the_run(zhifa_config, tmp_path):
    env = bench_env(zhifa_config)
    out = tmp_path / "bench.json"
    run = run_bench(["--start-suite", "yes", "--pairs", "2", "--events", "200", "--duration", "3", "--rate", "50",
                     "--raw-events", "60", "--raw-rounds", "1", "--max-seconds", "90", "--knee", "--knee-probes", "2",
                     "--knee-seconds", "2", "--knee-p99-ms", "1", "--out", str(out)], env, timeout=400)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads(out.read_text())

    paired = results["pairs"]
    assert len(paired["pairs"]) == 2
    for pair in paired["pairs"]:  # each pair measured both sides, each round with events of its own
        assert pair["raw_events_per_s"] and pair["events_per_s"] and pair["complete"], pair
        exact = pair["events_per_s"] / pair["raw_events_per_s"]  # cut to four decimals, never rounded up
        assert exact - 0.0001 - 1e-9 < pair["ratio"] <= exact + 1e-9 and pair["ratio"] == round(pair["ratio"], 4)
    ratios = [p["ratio"] for p in paired["pairs"]]
    chosen = paired["pairs"][paired["chosen"] - 1]
    assert chosen["ratio"] == min(ratios)  # of two, the lower middle one
    # the summary's figures are the chosen pair's, both sides of it
    assert results["ratio_to_raw"] == chosen["ratio"]
    assert results["sustained"]["events_per_s"] == chosen["events_per_s"]
    assert results["sustained"]["handled"] == 200
    assert results["raw_ceiling"]["events_per_s"] == chosen["raw_events_per_s"]
    # each pair's raw ceiling: the rounds just before its sustained round and just after it (one each here),
    # the second pair's "before" being the first pair's "after"; the run ends with raw rounds
    raw = results["raw_ceiling"]
    assert raw["measured"] == f"before and after sustained round {paired['chosen']}"
    assert len(raw["rounds"]) == 2 and raw["events_per_s"] == min(raw["rounds"])  # (of two, the lower)
    assert raw["rounds"] == raw["sides"]["before"] + raw["sides"]["after"] and "round_results" not in raw
    first, second = paired["pairs"]
    assert first["raw_after"] == second["raw_before"] and len(second["raw_after"]) == 1
    assert raw["after_waits"]["quiet_wait"] is not None
    assert "前后测量" in run.stdout and "最后再测一次原始上限" in run.stdout, run.stdout[-3000:]
    # the raw ceilings after the first ran inside the CPU sampler's lifetime: left out of its totals
    assert results["cpu"]["paused_s"] > 0
    ratio_line = next(t for t in results["targets"] if t["name"] == "raw_ratio")["line"]
    assert f"2 组交替测量（各组原始上限取其持续吞吐前后测量的中位数）取比值居中的第 {paired['chosen']} 组" in ratio_line, ratio_line
    assert "交替测量    2 组" in run.stdout and "第 2 组  原始上限" in run.stdout, run.stdout[-3000:]
    # the latency phase (a short one at an even 50 events/s) has its own CPU window, publishing and draining:
    # an even rate costs more per event than a burst (docs/benchmark.md, "Bottleneck and what remains")
    lat = results["latency"]
    assert not lat["saturated"] and lat["events"] == 150, lat
    assert lat["cpu"]["ms_per_event_all"] > 0 and lat["cpu"]["window_s"] >= 3, lat["cpu"]
    assert "此速率下每条事件 CPU" in run.stdout, run.stdout[-3000:]
    # the raw path at the latency phase's rate, the p99 target's reference: every message timed from its
    # publish until its insert returned, in a CPU window of its own that the suite's totals leave out
    raw_rate = results["raw_at_rate"]
    assert raw_rate["offered_rate_per_s"] == 50 and raw_rate["events"] == raw_rate["consumed"] == 150, raw_rate
    stored = raw_rate["stored"]
    assert stored["samples"] == 150 and 0 < stored["p50_ms"] <= stored["p99_ms"] <= stored["max_ms"], stored
    assert raw_rate["cpu"]["ms_per_event_all"] > 0 and "raw consumer 1" in raw_rate["cpu"]["processes"], raw_rate
    assert 0 <= raw_rate["suite_cpu_share"] < 1, raw_rate  # what the suite's own processes took meanwhile
    assert "原始路径    同速率参照（非目标判定）：以 50 条/秒" in run.stdout, run.stdout[-3000:]
    assert "同速率原始路径 p99" in next(t for t in results["targets"] if t["name"] == "p99_ms")["line"]

    # the knee: the main phase (50/s) and two probes below it, a quarter each time (none can meet 1 ms)
    knee = results["knee"]
    assert knee["p99_target_ms"] == 1 and knee["probes"] == 2, knee
    assert [p["offered_rate_per_s"] for p in knee["points"]] == [50, 12, 3], knee
    assert knee["rate_per_s"] is None and knee["lowest_failed_per_s"] == 3 and not knee["bracketed"]
    for point in knee["points"][1:]:  # each probe published its events at its rate and saw them stored
        assert point["probe"] and not point["met"] and not point["saturated"], point
        assert point["achieved_rate_per_s"] > 0.8 * point["offered_rate_per_s"], point
        assert point["samples"] > 0 and point["p99_ms"] > 1, point
    assert "延迟拐点    p99 ≤ 1 ms：所测各速率均未满足（最低 3 条/秒）" in run.stdout, run.stdout[-3000:]
    assert "探测 12 条/秒" in run.stdout and "探测 3 条/秒" in run.stdout
