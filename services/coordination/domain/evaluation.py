"""Annual evaluation (评议考核): an indicator system as configuration, scores with their evidence, ranking.

Indicators (settings `evaluation_indicators`): id, label, weight (weights add up to 100), source
`computed` (from the suite's own data, by `metric`) or `entered` (scored 0–100 by a reviewer,
recorded as `evaluation.entered` with its evidence). Each department's total is
Σ weight × score / 100; an indicator without a score (an entered one nobody entered, a case-file
review with no scored file) scores 0 and marks the department's result incomplete.

Computed metrics (per department, over the evaluation year):
- `supervision_on_time`: share of supervision replies and rectifications met on time (100 when none was due);
- `findings_open`: 100 − `per_item` points for each serious or critical finding still open at the end (≥ 0);
- `complaints_on_time`: share of complaint acknowledgements and answers met on time (100 when none);
- `normative_on_time`: share of normative documents filed within the limit (100 when none);
- `case_review`: the average case-file review score of the department's sampled files.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Iterable, Mapping

from services.common.errors import DomainError, IllegalTransitionError
from services.common.facts import Fact
from services.coordination.domain.common import bureau_only, command_fact, in_time_order, required_text

ENTERED = "evaluation.entered"
FACT_TYPES = (ENTERED,)
METRICS = ("supervision_on_time", "findings_open", "complaints_on_time", "normative_on_time", "case_review")

DEFAULT_INDICATORS = (
    {"indicator": "supervision", "label": "监督事项按时答复整改", "weight": 25, "source": "computed",
     "metric": "supervision_on_time"},
    {"indicator": "findings", "label": "严重监督发现未整改", "weight": 20, "source": "computed",
     "metric": "findings_open", "per_item": 10},
    {"indicator": "complaints", "label": "投诉举报按时受理答复", "weight": 15, "source": "computed",
     "metric": "complaints_on_time"},
    {"indicator": "normative", "label": "规范性文件按时备案", "weight": 10, "source": "computed",
     "metric": "normative_on_time"},
    {"indicator": "case_review", "label": "案卷评查得分", "weight": 20, "source": "computed", "metric": "case_review"},
    {"indicator": "training", "label": "执法培训与制度建设（评议人员评分）", "weight": 10, "source": "entered"},
)


def check_indicators(items: tuple) -> None:
    ids = [i.get("indicator") for i in items if isinstance(i, dict)]
    if len(ids) != len(items) or len(set(ids)) != len(ids) or not all(isinstance(x, str) and x for x in ids):
        raise ValueError("evaluation_indicators: every indicator needs a unique 'indicator' id")
    for i in items:
        if i.get("source") not in ("computed", "entered"):
            raise ValueError(f"evaluation indicator {i['indicator']}: source must be computed or entered")
        if i["source"] == "computed" and i.get("metric") not in METRICS:
            raise ValueError(f"evaluation indicator {i['indicator']}: metric must be one of {METRICS}")
        if not isinstance(i.get("weight"), (int, float)) or isinstance(i.get("weight"), bool) or i["weight"] < 0:
            raise ValueError(f"evaluation indicator {i['indicator']}: weight must be a non-negative number")
    if abs(sum(i["weight"] for i in items) - 100) > 1e-9:
        raise ValueError("evaluation_indicators: weights must add up to 100")


def _share(on_time: int, total: int, what: str) -> tuple[float, dict]:
    if total == 0:
        return 100.0, {"note": f"本年度无应办{what}", "total": 0}
    return round(100 * on_time / total, 1), {"on_time": on_time, "total": total}


def _year_of(value: Any) -> int | None:
    return int(str(value)[:4]) if value else None


def _on_or_before(value: Any, day: date) -> bool:
    return bool(value) and str(value)[:10] <= day.isoformat()


def metrics_for(dept: str, year: int, as_of: date, *, cases: Iterable[dict], complaints: Iterable[dict],
                documents: Iterable[dict], entries: Iterable[dict], review_results: Mapping[str, dict],
                indicator: Mapping[str, Any]) -> dict[str, tuple[float | None, dict]]:
    """Score (0–100 or None) and evidence of every computed metric for one department and year, as
    of the day `as_of`: a limit counts once it has passed or was met; one met late or still open
    after its day is not on time."""
    out: dict[str, tuple[float | None, dict]] = {}
    due = late = 0
    for c in cases:
        for t in c.get("tracks", []):
            if t["dept"] != dept:
                continue
            limits = [d["reply_due"] for d in t.get("documents", [])]
            limits += [d["rectification_due"] for d in t.get("documents", []) if d.get("rectification_required")]
            limits += [v["on"] for v in t.get("verifications", []) if not v["passed"]]   # a new rectification date
            due += sum(_year_of(x) == year and _on_or_before(x, as_of) for x in limits)
            late += sum(_year_of(x["due"]) == year for x in t.get("late", []))
            for when, done in ((t.get("reply_due"), t.get("replied_on")),
                               (t.get("rectification_due"), t.get("rectified_on"))):
                if t.get("status") != "settled" and when and not done and _year_of(when) == year \
                        and when < as_of.isoformat():
                    late += 1
    out["supervision_on_time"] = _share(due - late, due, "监督事项")
    serious = [e["finding_key"] for e in entries if e.get("dept") == dept and e.get("open")
               and e.get("severity") in ("serious", "critical")]
    per_item = indicator.get("per_item", 10)
    out["findings_open"] = (max(0.0, 100.0 - per_item * len(serious)),
                            {"open_serious": len(serious), "per_item": per_item, "examples": serious[:10]})
    due = late = 0
    for c in complaints:
        if c.get("dept") != dept or _year_of(c.get("routed_on")) != year:
            continue
        for step, done in (("ack", c.get("acknowledged_on")), ("answer", c.get("answered_on"))):
            limit = (c.get("due") or {}).get(step)
            if limit and (done or _on_or_before(limit, as_of)):
                due += 1
                late += bool(done and done > limit) or (not done and limit < as_of.isoformat())
    out["complaints_on_time"] = _share(due - late, due, "投诉举报")
    mine = [d for d in documents if d.get("dept") == dept and _year_of(d.get("issued_on")) == year
            and (d.get("filed_on") or _on_or_before(d.get("filing_due"), as_of))]
    out["normative_on_time"] = _share(sum(bool(d.get("filed_on")) and not d.get("filed_late") for d in mine),
                                      len(mine), "规范性文件")
    result = review_results.get(dept)
    out["case_review"] = ((result["average"], {"sampled": result["sampled"], "scored": result["scored"],
                                              "vetoed": result["vetoed"]})
                          if result and result.get("average") is not None else (None, {"note": "未评查"}))
    return out


def score_departments(indicators: Iterable[Mapping[str, Any]], computed: Mapping[str, Mapping[str, tuple]],
                      entered: Mapping[tuple[str, str], dict]) -> list[dict]:
    """Totals with the evidence behind every point, ranked (ties share a rank)."""
    rows = []
    for dept in sorted(computed):
        items, total, complete = [], 0.0, True
        for ind in indicators:
            if ind["source"] == "computed":
                value, evidence = computed[dept][ind["metric"]]
            else:
                got = entered.get((dept, ind["indicator"]))
                value, evidence = (got["score"], {"evidence": got["evidence"], "by": got.get("actor")}) if got \
                    else (None, {"note": "未录入"})
            complete &= value is not None
            weighted = round(ind["weight"] * (value or 0) / 100, 2)
            total += weighted
            items.append({"indicator": ind["indicator"], "label": ind["label"], "weight": ind["weight"],
                          "score": value, "weighted": weighted, "evidence": evidence})
        rows.append({"dept": dept, "total": round(total, 2), "complete": complete, "items": items})
    rows.sort(key=lambda r: (-r["total"], r["dept"]))
    for i, row in enumerate(rows):
        row["rank"] = rows[i - 1]["rank"] if i and rows[i - 1]["total"] == row["total"] else i + 1
    return rows


@dataclass
class EvaluationYear:
    year: str
    entered: dict[tuple[str, str], dict] = field(default_factory=dict)


def year_from_facts(facts: Iterable[Fact]) -> EvaluationYear | None:
    ordered = in_time_order(facts)
    if not ordered:
        return None
    ev = EvaluationYear(str(ordered[0].payload.get("year")))
    for f in ordered:
        p = f.payload
        ev.entered[(p["dept"], p["indicator"])] = {"score": p["score"], "evidence": p["evidence"],
                                                   "actor": p.get("actor")}
    return ev


def snapshot(ev: EvaluationYear, as_of: datetime) -> dict:
    return {"year": ev.year, "entered": [{"dept": d, "indicator": i, **v} for (d, i), v in sorted(ev.entered.items())]}


def enter_score(ev: EvaluationYear | None, year: str, *, target: str, indicator: str, value: float, evidence: str,
                indicators: Iterable[Mapping[str, Any]], at: datetime, dept: str, event_id: str,
                actor: str | None = None) -> Fact:
    """A reviewer's score (0–100) for an `entered` indicator, with its evidence (again: corrects it)."""
    bureau_only(dept, "录入评议考核得分")
    spec = next((i for i in indicators if i["indicator"] == indicator), None)
    if spec is None:
        raise DomainError(f"考核指标 {indicator} 不存在", code="invalid_value", field="indicator")
    if spec["source"] != "entered":
        raise IllegalTransitionError(f"考核指标 {indicator} 由系统根据数据计算，不能手工录入", field="indicator")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 100:
        raise DomainError("得分须在 0 到 100 之间", code="invalid_value", field="score")
    return command_fact(ENTERED, "year", year, at, dept, event_id, actor, dept=target, indicator=indicator,
                        score=value, evidence=required_text(evidence, "evidence", "须写明评分依据"))


def admit(ev: EvaluationYear | None, fact: Fact) -> None:
    bureau_only(fact.dept, "录入评议考核得分")
