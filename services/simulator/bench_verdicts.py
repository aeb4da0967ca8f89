"""The benchmark's verdicts: figures + targets → one line per target (pure; no I/O, no clock).

A target is "达标" (met) only when it was measured under the target's own condition: the latency
target (p99 ≤ 200 ms) only at its offered rate (1,000 events/s, and the publisher actually reached
≥ 95% of it); a run that offered less says "未在目标速率下测量" and gives the rate it used. Every
line states the rate offered while the figure was taken, and the machine's conditions (cores, load
averages before → after, the CPU share other processes took). When other processes took more than
`others_share_max` of the machine the verdict stands but the line says the figure is not the
machine's own (a shared, loaded machine measures less than it can do).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MET, MISSED, NOT_AT_RATE, NOT_MEASURED = "met", "missed", "not_at_target_rate", "not_measured"
STATUS_TEXT = {MET: "达标", MISSED: "未达标", NOT_AT_RATE: "未在目标速率下测量", NOT_MEASURED: "未测量"}


@dataclass(frozen=True)
class Targets:
    """The issue's targets (issue 14); configuration, passed in, never literals in the checks."""

    throughput_per_s: float = 1500.0
    p99_ms: float = 200.0
    p99_rate_per_s: float = 1000.0      # the offered rate the p99 target is defined at
    rate_tolerance: float = 0.95        # achieved / offered rate that still counts as "at the rate"
    raw_ratio: float = 0.6
    rss_mb: float = 200.0
    others_share_max: float = 0.05      # CPU share of the machine other processes may take for a clean run

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass
class Verdict:
    name: str
    label: str
    target: float
    value: Any
    status: str
    offered_rate_per_s: float | None
    line: str
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"name": self.name, "label": self.label, "target": self.target, "value": self.value,
                "status": self.status, "status_text": STATUS_TEXT[self.status],
                "offered_rate_per_s": self.offered_rate_per_s, "line": self.line, **self.details}


def _busy_text(cpu: dict | None) -> str:
    """The sustained phase's own CPU (bench.window_cpu): how busy the machine was and what one event cost."""
    if not cpu or cpu.get("machine_busy_share") is None:
        return ""
    return f"；该阶段整机忙 {cpu['machine_busy_share']:.0%}，每条事件 CPU {_fmt(cpu.get('ms_per_event_all'))} 毫秒"


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def conditions_text(conditions: dict) -> tuple[str, bool]:
    """"2 核，负载 1.6/2.8/4.5 → 3.1/2.9/4.2，其他进程占整机 35%" and whether the run was clean."""
    cores = conditions.get("cores")
    before, after = conditions.get("load_before"), conditions.get("load_after")
    others = conditions.get("others_cpu_share")
    parts = [f"{_fmt(cores)} 核"]
    if before and after:
        parts.append("负载 " + "/".join(f"{v:.1f}" for v in before) + " → " + "/".join(f"{v:.1f}" for v in after))
    if others is not None:
        parts.append(f"其他进程占整机 {others:.0%}")
    return "，".join(parts), conditions.get("clean", False)


def is_clean(others_cpu_share: float | None, targets: Targets) -> bool:
    """A run is clean when we know what else ran and it took at most `others_share_max` of the machine."""
    return others_cpu_share is not None and others_cpu_share <= targets.others_share_max


def _rounds(raw: dict) -> str:
    """How the raw ceiling was taken when it was measured several times: the median of N rounds, their range."""
    rounds, span = raw.get("rounds") or [], raw.get("range")
    if len(rounds) < 2 or not span:
        return ""
    return f"，{len(rounds)} 轮取中位数（范围 {_fmt(span[0])}–{_fmt(span[1])} 条/秒）"


def bracketed_pairs(paired: dict | None) -> bool:
    """Whether each pair's raw ceiling was measured on both sides of its sustained round (bench `bracketed`)."""
    return any(p.get("raw_after") for p in (paired or {}).get("pairs") or ())


def _pairs(paired: dict | None) -> str:
    """`--pairs`: which pair stands for the run, and the ratios of all."""
    if not paired or not paired.get("pairs"):
        return ""
    ratios = [p.get("ratio") for p in paired["pairs"]]
    bracket = "（各组原始上限取其持续吞吐前后测量的中位数）" if bracketed_pairs(paired) else ""
    return (f"；{len(ratios)} 组交替测量{bracket}取比值居中的第 {paired.get('chosen')} 组，各组比值 "
            + " / ".join(_fmt(r) for r in ratios))


def _raw_reference(raw: dict | None, offered: float | None, p99_ms: float | None = None) -> str:
    """The raw path measured at the same rate (the bench's `raw_at_rate`), as the p99 line's reference; when
    its own p99 is above the target's `p99_ms`, the line says so, with the share of the machine the suite's own
    processes took beside it (docs/benchmark.md, "Fiftieth session": that share, not the machine, can be why)."""
    if not raw or offered is None or raw.get("offered_rate_per_s") != offered:
        return ""
    cpu = (raw.get("cpu") or {}).get("ms_per_event_all")
    p99 = (raw.get("stored") or {}).get("p99_ms")
    beyond = p99_ms is not None and isinstance(p99, (int, float)) and p99 > p99_ms
    share = raw.get("suite_cpu_share")
    beside = f"，其间套件自身进程占整机 {share * 100:.0f}%" if isinstance(share, (int, float)) else ""
    return (f"；同速率原始路径 p99 {_fmt(p99)} 毫秒"
            + (f"、每条事件 CPU {_fmt(cpu)} ms" if cpu is not None else "")
            + (f"（参照；原始路径本身也超过 {p99_ms:g} 毫秒{beside}）" if beyond else "（参照）"))


def reached_rate(lat: dict, rate: float, tolerance: float) -> bool:
    """Whether a latency phase offered `rate` (or more) and its publisher reached `tolerance` of it."""
    offered, achieved = lat.get("offered_rate_per_s"), lat.get("achieved_rate_per_s")
    return offered is not None and achieved is not None and offered >= rate and achieved >= tolerance * rate


def p99_within(lat: dict, p99_ms: float) -> bool:
    """Whether a latency phase's p99 (publish to fact visible) is within `p99_ms`, every sample seen and the
    phase not saturated."""
    fv = lat.get("fact_visible") or {}
    p99, pending = fv.get("p99_ms"), (fv.get("not_visible_within_s") or {}).get("count", 0)
    return p99 is not None and p99 <= p99_ms and not pending and not lat.get("saturated")


def judge(results: dict, targets: Targets = Targets()) -> list[Verdict]:
    """One verdict per target, plus one per service process for peak RSS."""
    s = results.get("sustained") or {}
    lat = results.get("latency") or {}
    raw = results.get("raw_ceiling") or {}
    conditions = results.get("conditions") or {}
    cond, clean = conditions_text(conditions)
    tail = "" if clean else "；测量时机器不空闲（或未知其他进程占用），此数字不代表本机能力"
    out: list[Verdict] = []

    # sustained throughput: offered "as fast as the publisher can" — the publisher's own rate is the offer
    value, offered = s.get("events_per_s"), s.get("publish_rate_per_s")
    if value is None:
        status = NOT_MEASURED
    else:
        status = MET if value >= targets.throughput_per_s and s.get("complete") else MISSED
    label = f"持续吞吐 ≥ {targets.throughput_per_s:g} 条/秒"
    out.append(Verdict("throughput_per_s", label, targets.throughput_per_s, value, status, offered,
                       f"{label}：{STATUS_TEXT[status]}（测得 {_fmt(value)} 条/秒"
                       f"{'' if s.get('complete', True) else '，未处理完'}；以发布端全速 {_fmt(offered)} 条/秒发布"
                       f" {_fmt(s.get('events'))} 条；{cond}{_busy_text(s.get('cpu'))}{tail}）"))

    # p99 at the target's rate
    fv = lat.get("fact_visible") or {}
    p99, offered, achieved = fv.get("p99_ms"), lat.get("offered_rate_per_s"), lat.get("achieved_rate_per_s")
    pending = (fv.get("not_visible_within_s") or {}).get("count", 0)
    if p99 is None and not pending:
        status = NOT_MEASURED
    elif not reached_rate(lat, targets.p99_rate_per_s, targets.rate_tolerance):
        status = NOT_AT_RATE
    else:
        status = MET if p99_within(lat, targets.p99_ms) else MISSED
    label = f"p99 ≤ {targets.p99_ms:g} 毫秒（在 {targets.p99_rate_per_s:g} 条/秒下）"
    what = (f"以 {_fmt(offered)} 条/秒发布（实际 {_fmt(achieved)} 条/秒）测得 p99 {_fmt(p99)} 毫秒"
            f"{f'，{pending} 个样本未入库' if pending else ''}{'，已饱和' if lat.get('saturated') else ''}")
    if status == NOT_AT_RATE:
        what = f"目标速率 {targets.p99_rate_per_s:g} 条/秒，本次" + what
    if lat.get("skipped"):
        what = f"延迟阶段已跳过（{lat['skipped']}）"
    what += _raw_reference(results.get("raw_at_rate"), offered, targets.p99_ms)
    out.append(Verdict("p99_ms", label, targets.p99_ms, p99, status, offered,
                       f"{label}：{STATUS_TEXT[status]}（{what}；{cond}{tail}）",
                       {"achieved_rate_per_s": achieved, "target_rate_per_s": targets.p99_rate_per_s}))

    # ratio to the raw ceiling, both measured in this run
    ratio, raw_rate = results.get("ratio_to_raw"), raw.get("events_per_s")
    status = NOT_MEASURED if ratio is None else (MET if ratio >= targets.raw_ratio else MISSED)
    label = f"≥ 原始上限的 {targets.raw_ratio:g}"
    out.append(Verdict("raw_ratio", label, targets.raw_ratio, ratio, status, raw.get("publish_rate_per_s"),
                       f"{label}：{STATUS_TEXT[status]}（比值 {_fmt(ratio)} = {_fmt(s.get('events_per_s'))} / "
                       f"{_fmt(raw_rate)} 条/秒；原始上限以发布端全速 {_fmt(raw.get('publish_rate_per_s'))} 条/秒"
                       f"发布，{_fmt(raw.get('consumers'))} 个消费进程{_rounds(raw)}{_pairs(results.get('pairs'))}；"
                       f"{cond}{tail}）"))

    # peak RSS, per service process
    memory = results.get("memory") or {}
    rounds = len((results.get("pairs") or {}).get("pairs") or ()) or 1  # (the peak is the whole run's)
    events = (f"{rounds} 轮共 {_fmt(rounds * s['events'])} 条" if rounds > 1 and isinstance(s.get("events"), int)
              else f"{_fmt(s.get('events'))} 条")
    loads = (f"持续阶段 {events}、全速 {_fmt(s.get('publish_rate_per_s'))} 条/秒，"
             f"延迟阶段 {_fmt(lat.get('offered_rate_per_s'))} 条/秒")
    for name, mem in sorted(memory.items()):
        value = mem.get("peak_rss_mb")
        status = NOT_MEASURED if not value else (MET if value <= targets.rss_mb else MISSED)
        label = f"{name} 进程峰值 RSS ≤ {targets.rss_mb:g} MB"
        out.append(Verdict(f"rss_mb:{name}", label, targets.rss_mb, value, status, s.get("publish_rate_per_s"),
                           f"{label}：{STATUS_TEXT[status]}（{_fmt(value)} MB，VmHWM {_fmt(mem.get('vm_hwm_mb'))} MB；"
                           f"负载 {loads}）"))
    if not memory:
        out.append(Verdict("rss_mb", f"每进程峰值 RSS ≤ {targets.rss_mb:g} MB", targets.rss_mb, None, NOT_MEASURED,
                           None, f"每进程峰值 RSS ≤ {targets.rss_mb:g} MB：未测量（没有找到服务进程）"))
    return out


def all_met(verdicts: list[Verdict]) -> bool:
    return all(v.status == MET for v in verdicts)
