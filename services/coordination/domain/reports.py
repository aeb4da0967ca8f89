"""Monthly and quarterly report data (月报/季报) per department and for the county, from the suite's data.

Pure: the service hands in the snapshots it keeps (inbox entries — every service's findings —,
supervision cases, complaints, normative documents), the penalty service's case list, the
inspection service's monthly counters (`month_figures`) and the handover service's (`month_counters`),
and gets the numbers of one period back with the trend against the period before (the previous
month, the previous quarter); rendering to DOCX/PDF belongs to the documents capability.
Counting rules:
- a finding counts as *raised* in the period of its current episode's raise, *resolved* in the
  period of its resolution, *open at the end* if raised before the period's end and neither resolved,
  dismissed nor merged by then (dismissal/merge times come from the triage log);
- limits met late (`late` of cases, complaints; `filed_late` of documents) count in the period of
  the late step;
- inspections count in the month they started, for the lead and every joint department (the
  county counts each once); the joint-inspection rate is joint / all, None without inspections;
- a handover counts under each status it reached in the period (the month of the step that moved
  it there), for the handing-over department; "transferred" is the 移送 to the police.
A source that did not answer is `{"unavailable": true}` in the report, never a zero.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Iterable

from services.common.chinatime import CST, parse_time
from services.common.errors import DomainError


MIN_YEAR, MAX_YEAR = 2000, 2100   # the years a report may cover (as the case-file review's year)


def month_bounds(month: str) -> tuple[date, date]:
    """'2024-05' -> (2024-05-01, 2024-06-01) — the end is exclusive."""
    try:
        start = date.fromisoformat(f"{month}-01")
        if not MIN_YEAR <= start.year <= MAX_YEAR:
            raise ValueError(month)
        end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    except (TypeError, ValueError):
        raise DomainError(f"月份应为 {MIN_YEAR}–{MAX_YEAR} 年间的 YYYY-MM：{month!r}", code="invalid_value",
                          field="month") from None
    return start, end


def quarter_months(quarter: str) -> list[str]:
    """'2024-Q2' -> ['2024-04', '2024-05', '2024-06']."""
    try:
        year, q = quarter.split("-Q")
        first = (int(q) - 1) * 3 + 1
        if not 1 <= int(q) <= 4:
            raise ValueError
        return [f"{int(year):04d}-{m:02d}" for m in range(first, first + 3)]
    except ValueError:
        raise DomainError(f"季度格式应为 YYYY-Qn：{quarter!r}", code="invalid_value", field="quarter") from None


def previous_month(month: str) -> str:
    start, _ = month_bounds(month)
    prev = start - timedelta(days=1)
    return f"{prev.year:04d}-{prev.month:02d}"


def _day(value) -> date | None:
    if not value:
        return None
    at = parse_time(value)
    if at is not None:
        return at.astimezone(CST).date()
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _in(value, start: date, end: date) -> bool:
    day = _day(value)
    return day is not None and start <= day < end


def _closed_by(entry: dict, end: date) -> bool:
    if entry.get("resolved_at") and _day(entry["resolved_at"]) < end:
        return True
    return any(step["action"] in ("dismissed", "merged") and _day(step["at"]) < end for step in entry.get("log", []))


def findings_part(entries: Iterable[dict], start: date, end: date) -> dict:
    raised = resolved = open_end = escalated = 0
    by_source: dict[str, int] = {}
    by_rule: dict[str, int] = {}
    for e in entries:
        if _in(e.get("raised_at"), start, end):
            raised += 1
            by_source[e.get("source") or "?"] = by_source.get(e.get("source") or "?", 0) + 1
            by_rule[e["rule_id"]] = by_rule.get(e["rule_id"], 0) + 1
        if _in(e.get("resolved_at"), start, end):
            resolved += 1
        first = _day(e.get("raised_at"))
        if first is not None and first < end and not _closed_by(e, end):
            open_end += 1
            escalated += bool(e.get("escalated"))
    return {"raised": raised, "resolved": resolved, "open_at_end": open_end, "escalated_open": escalated,
            "by_source": dict(sorted(by_source.items())),
            "top_rules": sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0]))[:10]}


def supervision_part(cases: Iterable[dict], dept: str | None, start: date, end: date) -> dict:
    out = {"opened": 0, "closed": 0, "documents": 0, "replies_late": 0, "rectifications_late": 0}
    for c in cases:
        tracks = [t for t in c.get("tracks", []) if dept is None or t["dept"] == dept]
        if not tracks:
            continue
        out["opened"] += _in(c.get("opened_on"), start, end)
        out["closed"] += _in(c.get("closed_on"), start, end)
        for t in tracks:
            out["documents"] += sum(_in(d["issued_on"], start, end) for d in t.get("documents", []))
            for late in t.get("late", []):
                if _in(late["on"], start, end):
                    out["replies_late" if late["what"] == "reply" else "rectifications_late"] += 1
    return out


def complaints_part(complaints: Iterable[dict], dept: str | None, start: date, end: date) -> dict:
    out = {"routed": 0, "answered": 0, "answered_late": 0, "satisfied": 0, "unsatisfied": 0}
    for c in complaints:
        if dept is not None and c.get("dept") != dept:
            continue
        out["routed"] += _in(c.get("routed_on"), start, end)
        out["answered"] += _in(c.get("answered_on"), start, end)
        out["answered_late"] += sum(_in(x["on"], start, end) for x in c.get("late", []) if x["what"] == "answer")
        if _in(c.get("feedback_on"), start, end) and c.get("satisfied") is not None:
            out["satisfied" if c["satisfied"] else "unsatisfied"] += 1
    return out


def normative_part(documents: Iterable[dict], dept: str | None, start: date, end: date) -> dict:
    out = {"issued": 0, "filed": 0, "filed_late": 0}
    for d in documents:
        if dept is not None and d.get("dept") != dept:
            continue
        out["issued"] += _in(d.get("issued_on"), start, end)
        if _in(d.get("filed_on"), start, end):
            out["filed"] += 1
            out["filed_late"] += bool(d.get("filed_late"))
    return out


def penalty_part(summaries: Iterable[dict] | None, dept: str | None, start: date, end: date) -> dict:
    """Penalty cases (the penalty service's case list): filed, decided (with fines), closed in the period."""
    if summaries is None:
        return {"unavailable": True}
    out = {"filed": 0, "decided": 0, "closed": 0, "fines": 0.0}
    for c in summaries:
        if dept is not None and c.get("dept") != dept:
            continue
        out["filed"] += _in(c.get("filed_at"), start, end)
        if _in(c.get("decided_at"), start, end):
            out["decided"] += 1
            out["fines"] += float(c.get("fine_amount") or 0)
        out["closed"] += _in(c.get("closed_at"), start, end)
    out["fines"] = round(out["fines"], 2)
    return out


def previous_months(months: list[str]) -> list[str]:
    """The period of the same length just before `months` (the previous month, the previous quarter)."""
    out = [months[0]]
    for _ in months:
        out.insert(0, previous_month(out[0]))
    return out[:len(months)]


def inspections_part(figures: dict | None, dept: str | None, months: list[str]) -> dict:
    """Inspections of the months from the inspection service's monthly counters (`month_figures`)."""
    if figures is None:
        return {"unavailable": True}
    mine = figures.get(dept or "*") or {}
    out = {"inspections": 0, "joint": 0, "drawn": 0, "remote": 0}
    for month in months:
        fig = mine.get(month) or {}
        for key in out:
            out[key] += int(fig.get(key) or 0)
    out["joint_rate"] = round(out["joint"] / out["inspections"], 4) if out["inspections"] else None
    return out


def handovers_part(counters: dict | None, dept: str | None, months: list[str]) -> dict:
    """Handovers by the status they reached in the months (the handover service's `month_counters`)."""
    if counters is None:
        return {"unavailable": True}
    mine = counters.get(dept or "*") or {}
    by_state: dict[str, int] = {}
    for month in months:
        for status, n in (mine.get(month) or {}).items():
            by_state[status] = by_state.get(status, 0) + int(n)
    return {"by_state": dict(sorted(by_state.items())), "raised": by_state.get("raised", 0),
            "transferred": by_state.get("transferred", 0)}


TREND = (("findings_raised", "findings", "raised"), ("findings_resolved", "findings", "resolved"),
         ("findings_open_at_end", "findings", "open_at_end"),
         ("penalty_filed", "penalty_cases", "filed"), ("penalty_decided", "penalty_cases", "decided"),
         ("fines", "penalty_cases", "fines"), ("penalty_closed", "penalty_cases", "closed"),
         ("inspections", "inspections", "inspections"), ("inspections_joint", "inspections", "joint"),
         ("joint_rate", "inspections", "joint_rate"),
         ("handovers_raised", "handovers", "raised"), ("handovers_transferred", "handovers", "transferred"),
         ("supervision_opened", "supervision", "opened"), ("replies_late", "supervision", "replies_late"),
         ("rectifications_late", "supervision", "rectifications_late"),
         ("complaints_routed", "complaints", "routed"), ("normative_filed", "normative_documents", "filed"))


def trend(now: dict, before: dict, previous: list[str]) -> dict:
    """Each headline figure now, in the previous period and the change (None when either is unknown)."""
    items = {}
    for name, part, key in TREND:
        a, b = (now.get(part) or {}).get(key), (before.get(part) or {}).get(key)
        change = None if a is None or b is None else round(a - b, 4)
        items[name] = {"now": a, "before": b, "change": change}
    return {"previous": previous[0] if len(previous) == 1 else f"{previous[0]}..{previous[-1]}",
            "previous_months": previous, "items": items}


def _parts(dept: str | None, months: list[str], data: dict) -> dict:
    start, end = month_bounds(months[0])[0], month_bounds(months[-1])[1]
    mine = [e for e in data["entries"] if dept is None or e.get("dept") == dept]
    return {"findings": findings_part(mine, start, end),
            "supervision": supervision_part(data["cases"], dept, start, end),
            "complaints": complaints_part(data["complaints"], dept, start, end),
            "normative_documents": normative_part(data["documents"], dept, start, end),
            "penalty_cases": penalty_part(data.get("penalty_cases"), dept, start, end),
            "inspections": inspections_part(data.get("inspections"), dept, months),
            "handovers": handovers_part(data.get("handovers"), dept, months)}


def _with_trend(dept: str | None, months: list[str], data: dict) -> dict:
    now = _parts(dept, months, data)
    before = previous_months(months)
    now["trend"] = trend(now, _parts(dept, before, data), before)
    return now


def _period(months: list[str]) -> dict:
    start, end = month_bounds(months[0])[0], month_bounds(months[-1])[1]
    return {"from": start.isoformat(), "to": (end - timedelta(days=1)).isoformat()}


def monthly_report(month: str, dept: str | None, *, entries: list[dict], cases: list[dict], complaints: list[dict],
                   documents: list[dict], penalty_cases: list[dict] | None = None, inspections: dict | None = None,
                   handovers: dict | None = None) -> dict:
    """The numbers of one month for one department (or the county, without its department rows,
    when `dept` is None), with the trend against the previous month."""
    data = {"entries": entries, "cases": cases, "complaints": complaints, "documents": documents,
            "penalty_cases": penalty_cases, "inspections": inspections, "handovers": handovers}
    month_bounds(month)
    return {"month": month, "dept": dept, "period": _period([month]), **_with_trend(dept, [month], data)}


def county_report(months: list[str], *, entries: list[dict], cases: list[dict], complaints: list[dict],
                  documents: list[dict], penalty_cases: list[dict] | None = None, inspections: dict | None = None,
                  handovers: dict | None = None) -> dict:
    """The county's report over one or more months (a quarter): totals and one row per department,
    each with the trend against the period of the same length before."""
    data = {"entries": entries, "cases": cases, "complaints": complaints, "documents": documents,
            "penalty_cases": penalty_cases, "inspections": inspections, "handovers": handovers}
    for m in months:
        month_bounds(m)
    depts = sorted({e["dept"] for e in entries if e.get("dept")} | {c["dept"] for c in complaints if c.get("dept")}
                   | {t["dept"] for c in cases for t in c.get("tracks", [])} | {d["dept"] for d in documents if d.get("dept")}
                   | {c["dept"] for c in penalty_cases or () if c.get("dept")}
                   | {d for d in (inspections or {}) if d != "*"} | {d for d in (handovers or {}) if d != "*"})
    return {"months": months, "period": _period(months),
            "county": {"dept": None, **_with_trend(None, months, data)},
            "departments": [{"dept": d, **_with_trend(d, months, data)} for d in depts]}
