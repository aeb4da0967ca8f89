"""Case-file review (案卷评查): a reproducible random sample of closed case files, scored on a checklist.

The sample is drawn like a public draw: every closed case of a department gets the key
SHA-256(seed | case id) and the files with the smallest keys are taken (`per_dept` each). The draw
records its seed, the population size and a digest of the population, so anyone holding the same
population can redraw it and get the same files. The checklist is configuration (settings
`review_checklist`): items with points and veto items (一票否决: illegal agency, no credential,
fewer than two officers, missing handover, insufficient evidence, wrong law, illegal procedure …);
items the suite already knows from its own findings on a case are pre-filled as failed, with the
rule as evidence, and the reviewer confirms or overrides them.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping

from services.common.errors import DomainError, IllegalTransitionError, NotFoundError
from services.common.facts import Fact
from services.coordination.domain.common import bureau_only, command_fact, in_time_order
from services.coordination.domain.settings import DEFAULT_SETTINGS, CoordinationSettings

DRAWN, SCORED = "review.drawn", "review.scored"
FACT_TYPES = (DRAWN, SCORED)


def _key(seed: str, case_id: str) -> str:
    return hashlib.sha256(f"{seed}|{case_id}".encode()).hexdigest()


def population_digest(population: Mapping[str, Iterable[str]]) -> str:
    lines = sorted(f"{dept}:{cid}" for dept, ids in population.items() for cid in ids)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def draw(population: Mapping[str, Iterable[str]], per_dept: int, seed: str) -> dict[str, list[str]]:
    """The sample per department (sorted by draw key): reproducible from (population, per_dept, seed)."""
    if per_dept < 1:
        raise DomainError("每个部门至少抽取 1 件", code="invalid_value", field="per_dept")
    if not seed:
        raise DomainError("抽取须有种子", code="invalid_value", field="seed")
    return {dept: sorted(set(ids), key=lambda cid: _key(seed, cid))[:per_dept]
            for dept, ids in sorted(population.items()) if ids}


def prefill(checklist: Iterable[Mapping[str, Any]], finding_rules: Iterable[str]) -> dict[str, list[str]]:
    """Checklist items the suite's findings on a case already fail: item id -> the rules behind it."""
    rules = set(finding_rules)
    out = {}
    for item in checklist:
        hit = sorted(rules & set(item.get("rules", ())))
        if hit:
            out[item["item"]] = hit
    return out


def score(checklist: Iterable[Mapping[str, Any]], failed: Iterable[str],
          settings: CoordinationSettings = DEFAULT_SETTINGS) -> dict:
    """Points of the passed items; a failed veto item makes the file 不合格 whatever its points."""
    items = list(checklist)
    known = {i["item"] for i in items}
    failed = set(failed)
    unknown = failed - known
    if unknown:
        raise DomainError(f"评查项目不存在：{'、'.join(sorted(unknown))}", code="invalid_value", field="failed")
    points = sum(i["points"] for i in items if i["item"] not in failed)
    vetoes = sorted(i["item"] for i in items if i["item"] in failed and i.get("veto"))
    if vetoes:
        grade = "fail"
    elif points >= settings.review_excellent_score:
        grade = "excellent"
    elif points >= settings.review_pass_score:
        grade = "pass"
    else:
        grade = "fail"
    return {"points": points, "vetoes": vetoes, "grade": grade}


@dataclass
class ReviewPlan:
    plan_id: str
    year: int | None = None
    seed: str = ""
    per_dept: int = 0
    population_size: int = 0
    population_digest: str = ""
    files: dict[str, dict] = field(default_factory=dict)     # case_id -> {dept, prefilled, failed, result}

    @property
    def drawn(self) -> bool:
        return self.year is not None


def plan_from_facts(facts: Iterable[Fact], settings: CoordinationSettings = DEFAULT_SETTINGS) -> ReviewPlan | None:
    ordered = in_time_order(facts)
    if not ordered:
        return None
    plan = ReviewPlan(str(ordered[0].payload.get("plan_id") or ""))
    for f in ordered:
        p = f.payload
        if f.type == DRAWN:
            plan.year, plan.seed, plan.per_dept = p["year"], p["seed"], p["per_dept"]
            plan.population_size, plan.population_digest = p["population_size"], p["population_digest"]
            for row in p["sample"]:
                plan.files[row["case_id"]] = {"case_id": row["case_id"], "dept": row["dept"],
                                              "prefilled": dict(row.get("prefilled") or {}), "failed": None,
                                              "result": None, "comment": None}
        elif f.type == SCORED and p["case_id"] in plan.files:
            entry = plan.files[p["case_id"]]
            entry["failed"], entry["comment"] = list(p["failed"]), p.get("comment")
            entry["result"] = score(settings.review_checklist, p["failed"], settings)
    return plan


def results_by_dept(plan: ReviewPlan) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for entry in plan.files.values():
        row = out.setdefault(entry["dept"], {"sampled": 0, "scored": 0, "average": None, "failed": 0, "vetoed": 0,
                                             "_sum": 0})
        row["sampled"] += 1
        if entry["result"]:
            row["scored"] += 1
            row["_sum"] += 0 if entry["result"]["vetoes"] else entry["result"]["points"]
            row["failed"] += entry["result"]["grade"] == "fail"
            row["vetoed"] += bool(entry["result"]["vetoes"])
    for row in out.values():
        total = row.pop("_sum")
        row["average"] = round(total / row["scored"], 1) if row["scored"] else None
    return dict(sorted(out.items()))


def snapshot(plan: ReviewPlan, as_of: datetime, settings: CoordinationSettings = DEFAULT_SETTINGS) -> dict:
    return {"plan_id": plan.plan_id, "year": plan.year, "seed": plan.seed, "per_dept": plan.per_dept,
            "population_size": plan.population_size, "population_digest": plan.population_digest,
            "depts": sorted({f["dept"] for f in plan.files.values()}),
            "files": sorted(plan.files.values(), key=lambda f: (f["dept"], f["case_id"])),
            "results": results_by_dept(plan)}


def record_draw(plan: ReviewPlan | None, plan_id: str, *, year: int, per_dept: int, seed: str,
                population: Mapping[str, Iterable[str]], finding_rules: Mapping[str, Iterable[str]], at: datetime,
                dept: str, event_id: str, settings: CoordinationSettings = DEFAULT_SETTINGS,
                actor: str | None = None) -> Fact:
    """抽取: the bureau draws the files of a year's review (once per plan)."""
    bureau_only(dept, "抽取评查案卷")
    if plan is not None and plan.drawn:
        raise IllegalTransitionError(f"评查计划 {plan_id} 已抽取", field="plan_id")
    population = {d: sorted(set(ids)) for d, ids in population.items()}
    size = sum(len(ids) for ids in population.values())
    if size == 0:
        raise DomainError("没有可供抽取的已结案卷", code="invalid_value", field="year")
    sample = draw(population, per_dept, seed)
    rows = [{"case_id": cid, "dept": d, "prefilled": prefill(settings.review_checklist, finding_rules.get(cid, ()))}
            for d, ids in sample.items() for cid in ids]
    return command_fact(DRAWN, "plan_id", plan_id, at, dept, event_id, actor, year=int(year), per_dept=int(per_dept),
                        seed=seed, population_size=size, population_digest=population_digest(population), sample=rows)


def record_score(plan: ReviewPlan | None, plan_id: str, *, case_id: str, failed: list[str], at: datetime, dept: str,
                 event_id: str, settings: CoordinationSettings = DEFAULT_SETTINGS, comment: str | None = None,
                 actor: str | None = None) -> Fact:
    """评分: the reviewer's failed items for one sampled file (again: corrects the score)."""
    bureau_only(dept, "评查案卷")
    if plan is None or not plan.drawn:
        raise NotFoundError(f"评查计划 {plan_id} 不存在", field="plan_id")
    if case_id not in plan.files:
        raise NotFoundError(f"案卷 {case_id} 不在评查计划 {plan_id} 的样本中", field="case_id")
    score(settings.review_checklist, failed, settings)   # refuses unknown items
    return command_fact(SCORED, "plan_id", plan_id, at, dept, event_id, actor, case_id=case_id,
                        failed=sorted(set(failed)), comment=comment)


def admit(plan: ReviewPlan | None, fact: Fact) -> None:
    bureau_only(fact.dept, "案卷评查")
