"""The offered rate up to which the latency target holds (`make bench BENCH_ARGS="--knee"`).

The p99 target (publish to fact visible) is defined at one offered rate (`Targets.p99_rate_per_s`, 1,000
events/s) and judged only there. Where a machine does not meet it, an operator planning capacity (how many
counties one deployment serves at the target's latency) wants the rate at which it does. `--knee` looks for it
with a few short latency phases (*probes*), each at an even rate below the one the main latency phase
offered, and reports the highest probed rate that met the target, the bracket the probes leave and every probe.
`--knee-p99-ms` looks for another bound instead (the rate a deployment takes at p99 ≤ 500 ms, say).

A reference figure, never a verdict: a probe is a few hundred samples over `--knee-seconds`, a deadline sweep
may or may not fall inside it, and the machine's speed drifts by the hour (docs/benchmark.md). Every probe is
printed and kept in the JSON so that a reader sees that noise.

The search (pure; the caller runs the probes). The main latency phase is the first point. While no rate has
met the target, the next probe is a quarter of the lowest rate that failed; once one has, the geometric mean
of the highest that met it and the lowest that failed (a bisection on a log scale), rounded to two significant
figures. It stops when the bracket is within `BRACKET` (10%), when the probes are spent, or when the next rate
would repeat one already probed. A rate *meets* the target when its phase was not saturated, every sample
became visible, the publisher reached the offered rate (`Targets.rate_tolerance`) and p99 ≤ the target.
"""
from __future__ import annotations

import math
from typing import Callable

from services.simulator.bench_verdicts import p99_within, reached_rate

BRACKET = 1.1        # stop once the lowest failing rate is within 10% of the highest meeting one
FIRST_STEP = 4.0     # below a failing rate with none met yet: a quarter of it
MIN_RATE = 1.0       # events/s: nothing slower is probed


def met(lat: dict, p99_ms: float, tolerance: float) -> bool:
    """Whether a latency phase (`bench.latency`'s result) met the p99 bound at its own rate: the verdict's
    rule (bench_verdicts), with the phase's offered rate for the target's."""
    offered = lat.get("offered_rate_per_s")
    return bool(offered) and reached_rate(lat, offered, tolerance) and p99_within(lat, p99_ms)


def two_figures(rate: float) -> float:
    """`rate` rounded to two significant figures (354.2 -> 350, 1,414 -> 1,400, 7.26 -> 7.3)."""
    return float(round(rate, 1 - math.floor(math.log10(rate)))) if rate > 0 else 0.0


def next_rate(best_met: float | None, lowest_failed: float | None, tried: set[float]) -> float | None:
    """The next rate to probe, or None when the search is done (see the module's docstring)."""
    if lowest_failed is None:  # the first point met the target already: no search below it
        return None
    if best_met is None:
        rate = two_figures(lowest_failed / FIRST_STEP)
    else:
        if lowest_failed <= best_met * BRACKET:
            return None
        rate = two_figures(math.sqrt(best_met * lowest_failed))
    if rate < MIN_RATE or rate in tried or (best_met is not None and not best_met < rate < lowest_failed):
        return None
    return rate


def search(first: dict, probe: Callable[[float], dict | None], p99_ms: float, tolerance: float,
           probes: int) -> dict:
    """Probe below `first` (the main latency phase) for the highest rate meeting the target.

    `probe(rate)` runs one latency phase at `rate` and returns its result, or None when it cannot (no events
    left for it: the search ends there, `ran_out`). Returns the JSON's `knee`: the target, every point (the
    first, then each probe in order, with the figures a reader needs), the highest rate that met the target
    (`rate_per_s`, None when none did) and the lowest that failed."""
    points, ran_out = [_point(first, p99_ms, tolerance, probe=False)], False
    for _ in range(probes):
        best, lowest = _bounds(points)
        rate = next_rate(best, lowest, {p["offered_rate_per_s"] for p in points})
        if rate is None:
            break
        measured = probe(rate)
        if measured is None:
            ran_out = True
            break
        points.append(_point(measured, p99_ms, tolerance, probe=True))
    best, lowest = _bounds(points)
    return {"p99_target_ms": p99_ms, "probes": sum(p["probe"] for p in points), "points": points,
            "rate_per_s": best, "lowest_failed_per_s": lowest, "ran_out": ran_out,
            "bracketed": best is not None and lowest is not None and lowest <= best * BRACKET}


def _bounds(points: list[dict]) -> tuple[float | None, float | None]:
    good = [p["offered_rate_per_s"] for p in points if p["met"]]
    bad = [p["offered_rate_per_s"] for p in points if not p["met"]]
    return (max(good) if good else None), (min(bad) if bad else None)


def _point(lat: dict, p99_ms: float, tolerance: float, *, probe: bool) -> dict:
    fv = lat.get("fact_visible") or {}
    cpu = lat.get("cpu") or {}
    return {"offered_rate_per_s": lat.get("offered_rate_per_s"), "achieved_rate_per_s": lat.get("achieved_rate_per_s"),
            "seconds": lat.get("seconds"), "probe": probe, "met": met(lat, p99_ms, tolerance),
            "saturated": bool(lat.get("saturated")), "samples": fv.get("samples"),
            "p50_ms": fv.get("p50_ms"), "p95_ms": fv.get("p95_ms"), "p99_ms": fv.get("p99_ms"),
            "ms_per_event_all": cpu.get("ms_per_event_all"), "machine_busy_share": cpu.get("machine_busy_share")}


def summary_lines(knee: dict) -> list[str]:
    """The summary's lines (Chinese): the figure, then one line per point."""
    target, best, lowest = knee["p99_target_ms"], knee["rate_per_s"], knee["lowest_failed_per_s"]
    if best is None:
        head = (f"p99 ≤ {target:g} ms：所测各速率均未满足（最低 {lowest:g} 条/秒）"
                if lowest is not None else f"p99 ≤ {target:g} ms：没有可判断的测量")
    elif lowest is None:
        head = f"p99 ≤ {target:g} ms：在主延迟阶段的 {best:g} 条/秒已满足，未再向下探测"
    else:
        head = (f"p99 ≤ {target:g} ms 可承受的最高发布速率 ≈ {best:g} 条/秒（{best:g} 满足、{lowest:g} 未满足"
                + ("，结果随速率不单调：本机噪声" if lowest < best else "" if knee["bracketed"] else "，区间未收敛到 10% 以内")
                + "）")
    if knee.get("ran_out"):
        head += "；预留的事件已用完，探测提前结束"
    lines = [f"{head}；参考值，非目标判定（探测 {knee['probes']} 次，每次只有数百个样本，本机速度随时段漂移）"]
    for p in knee["points"]:
        cpu = "" if p["ms_per_event_all"] is None else (
            f"，每条事件 CPU {p['ms_per_event_all']} ms，整机忙 "
            + ("?" if p["machine_busy_share"] is None else f"{p['machine_busy_share']:.0%}"))
        lines.append(f"{'探测' if p['probe'] else '主阶段'} {p['offered_rate_per_s']:g} 条/秒"
                     f"（实际 {p['achieved_rate_per_s']}，{p['seconds']} 秒{'，已饱和' if p['saturated'] else ''}）："
                     f"p50 {p['p50_ms']} / p95 {p['p95_ms']} / p99 {p['p99_ms']} ms（{p['samples']} 个样本）"
                     f"{cpu} → {'满足' if p['met'] else '未满足'}")
    return lines
