"""The inspection part of the county simulator: plans, pools, draws and inspection records for a
simulated year, with one injected breach of every inspection rule and the ground truth beside it.

`simulate_inspections(sim)` is pure and deterministic in the simulation's config (seed included):
it reads the county, departments and officers the main generator planned (who may act on which
day: `OfficerPlan.usable_on`) and returns extra envelopes (inspection items in the registry, then
`inspection_*` facts) and `Expectation`s. `offline_findings(events, as_of)` runs the pure domains
(personnel for officers, registry for items, inspection for everything else, with the derived facts
the service would derive) and `check(sim)` compares them with the truth per rule.

Breaches are placed on subjects of their own (own enterprises, plans, draws), so one breach never
causes another rule to fire; everything else is generated clean with margins. The truth is judged
a few days into the next year (`AS_OF_DAYS` after the simulated year's end), so that plans for next
January are still ahead (joint-inspection suggestions) and a department that registered nothing all
year has been idle for a full year. `INS-UNIT-NO-RECORDS-2Y` cannot happen inside one simulated year
and is covered by the domain's unit tests only.

`python -m services.simulator check` prints this part's table after the main one (check_report);
`run` publishes the part after the main stream and compares the inspection service's stored
findings with `expected_at` the suite's "now" (run_live).
"""
from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Iterable

from services.common.facts import Fact
from services.inspection import domain as d
from services.inspection import draw as dr
from services.simulator.generator import CST, Expectation, Simulation, make_uscc

AS_OF_DAYS = 10
GRADES = "ABCD"
NAMESPACE = uuid.UUID("0b7a4c7e-3d55-4f6a-9d0e-1c2b3a4d5e6f")


@dataclass
class InspectionSimulation:
    events: list[dict]
    expectations: list[Expectation]
    as_of: datetime


class _Gen:
    def __init__(self, sim: Simulation):
        self.sim = sim
        self.rng = random.Random(f"inspection:{sim.config.seed}:{sim.config.tag}")
        self.year = sim.config.year
        self.region = sim.config.region
        self.events: list[dict] = []
        self.expectations: list[Expectation] = []
        self.n = 0

    # -- small helpers ------------------------------------------------------------------------
    def at(self, month: int, day: int, hour: int = 9, minute: int = 0, year: int | None = None) -> datetime:
        return datetime(year or self.year, month, day, hour, minute, tzinfo=CST)

    def emit(self, type_: str, at: datetime, dept: str, payload: dict) -> None:
        self.n += 1
        self.events.append({"event_id": str(uuid.uuid5(NAMESPACE, f"{self.sim.config.seed}:{self.sim.config.tag}:{self.n}")),
                            "type": type_, "schema_version": 1, "occurred_at": at.isoformat(), "dept": dept,
                            "source": f"{dept}-system", "payload": payload})

    def expect(self, rule: str, subject_type: str, subject_id: str, dept: str, since: datetime, note: str,
               until: datetime | None = None) -> None:
        self.expectations.append(Expectation(rule, subject_type, subject_id, dept, since, until, note))

    def team(self, dept: str, area: str, day: date, k: int = 2, exclude: Iterable[str] = ()) -> list[str]:
        ok = [o.officer_id for o in self.sim.officers
              if o.dept == dept and o.area == area and o.officer_id not in exclude and o.usable_on(day)
              and o.usable_on(day - timedelta(days=1)) and o.usable_on(day + timedelta(days=1))]
        if len(ok) < k:
            raise ValueError(f"{dept}: fewer than {k} officers usable on {day}")
        return self.rng.sample(sorted(ok), k)

    def workday(self, month: int, day: int) -> date:
        from services.common.workdays import DEFAULT_CALENDAR

        current = date(self.year, month, day)
        while not DEFAULT_CALENDAR.is_workday(current):
            current += timedelta(days=1)
        return current

    # -- the year -----------------------------------------------------------------------------------
    def build(self) -> InspectionSimulation:
        depts = [dept for dept in self.sim.depts
                 if sum(1 for o in self.sim.officers if o.dept == dept and o.kind == "officer") >= 4][:4]
        if len(depts) < 4:
            raise ValueError("the inspection part needs four departments with four or more officers each")
        a, b, c, u = depts
        self.area = {}
        self.item = {}
        for n, dept in enumerate(depts):
            areas = [o.area for o in self.sim.officers if o.dept == dept and o.kind == "officer"]
            self.area[dept] = max(sorted(set(areas)), key=areas.count)
            self.item[dept] = f"J{self.region}{n + 1:02d}01"
            self.emit("item.published", self.at(1, 2, 8, 30), dept, {
                "item_code": self.item[dept], "name": "对本领域经营主体的日常监督检查", "category": "inspection",
                "legal_basis": [{"law": "《中华人民共和国食品安全法》", "article": "第一百一十条"}],
                "effective_from": f"{self.year}-01-01", "owning_dept": dept, "area": self.area[dept]})
        size = {dept: 3 * sum(1 for o in self.sim.officers if o.dept == dept and o.kind == "officer") for dept in (a, b, c)}
        ents = [make_uscc(self.rng, self.region) for _ in range(sum(size.values()) + 30)]
        self.names = {e: f"{self.sim.county.name}{self.rng.choice('鑫盛兴隆福顺源华泰恒')}{n}号商行" for n, e in enumerate(ents)}
        pools = {a: ents[:size[a]], b: ents[size[a]:size[a] + size[b]],
                 c: ents[size[a] + size[b]:size[a] + size[b] + size[c]]}
        special = iter(ents[size[a] + size[b] + size[c]:])
        self.count: dict[tuple[str, str], int] = defaultdict(int)
        for dept, members in pools.items():
            self.emit("inspection_pool.members_listed", self.at(1, 3), dept, {
                "pool_id": f"{dept}-MLK", "name": "检查对象名录库",
                "members": [{"id": e, "name": self.names[e], "grade": GRADES[i % 4], "region": self.region}
                            for i, e in enumerate(members)]})

        # annual plans: a, b (published late: breach), u (registered 01-02, never inspects: idle); c has none
        for dept in (a, b, u):
            late = dept == b
            plan_id = f"{dept}-JH-{self.year}-ND"
            self.plan(dept, plan_id, "annual", (1, 2), (date(self.year, 1, 20), date(self.year, 12, 31)),
                      filed=date(self.year, 1, 5), published=date(self.year, 4, 10) if late else date(self.year, 2, 20))
            if late:
                self.expect(d.ANNUAL_NOT_PUBLISHED, "plan", plan_id, b, self.at(4, 1, 0),
                            "年度检查计划 3 月底后才公布")
        self.expect(d.ANNUAL_PLAN_MISSING, "unit_year", f"{c}:{self.year}", c, self.at(4, 1, 0), "未制定年度检查计划")
        self.expect(d.UNIT_NO_RECORDS_1Y, "unit", u, u, self.at(1, 2, 0, year=self.year + 1),
                    "制定年度计划后全年无检查登记", until=self.at(1, 2, 0, year=self.year + 2))
        # quarterly plans: a files in time, b files the day before the start (breach)
        self.plan(a, f"{a}-JH-{self.year}-Q2", "quarterly", (3, 2), (date(self.year, 4, 1), date(self.year, 6, 30)),
                  filed=date(self.year, 3, 5))
        self.plan(b, f"{b}-JH-{self.year}-Q2", "quarterly", (3, 2), (date(self.year, 4, 1), date(self.year, 6, 30)),
                  filed=date(self.year, 3, 31))
        due = d.sub_workdays(date(self.year, 4, 1), d.InspectionSettings().plan_filing_lead_wd)
        self.expect(d.PLAN_NOT_FILED, "plan", f"{b}-JH-{self.year}-Q2", b,
                    datetime.combine(due + timedelta(days=1), time.min, CST), "季度计划开始前一天才备案")
        # special plans: a approved (clean), b not approved (breach), c three approved (over the cap of 2)
        self.plan(a, f"{a}-ZX-{self.year}-1", "special", (5, 6), (date(self.year, 6, 1), date(self.year, 6, 30)),
                  approved=date(self.year, 5, 20))
        self.plan(b, f"{b}-ZX-{self.year}-1", "special", (6, 2), (date(self.year, 7, 1), date(self.year, 7, 31)))
        self.expect(d.SPECIAL_NOT_APPROVED, "plan", f"{b}-ZX-{self.year}-1", b, self.at(7, 1, 0), "专项检查未经批准即实施")
        for n in range(1, 4):
            self.plan(c, f"{c}-ZX-{self.year}-{n}", "special", (2 + n, 3), (date(self.year, 3 + n, 1), date(self.year, 3 + n, 20)),
                      approved=date(self.year, 2 + n, 10))
        self.expect(d.SPECIAL_CAP, "unit_year", f"{c}:{self.year}", c, self.at(5, 3, 0), "专项检查超过年度上限")
        # next January: a and b plan to visit the same enterprise, not jointly (suggested before it happens)
        joint = next(special)
        for dept in (a, b):
            self.plan(dept, f"{dept}-JH-{self.year + 1}-01", "monthly", (12, 1),
                      (date(self.year + 1, 1, 12), date(self.year + 1, 1, 31)), filed=date(self.year, 12, 8),
                      targets=[joint])
        later = max(f"{dept}-JH-{self.year + 1}-01" for dept in (a, b))
        self.expect(d.JOINT_SUGGESTED, "enterprise_plan", f"{joint}:{later}", later.rsplit("-JH-", 1)[0],
                    self.at(12, 1), "两个部门计划一月检查同一企业，建议联合检查",
                    until=datetime(self.year + 1, 2, 1, tzinfo=CST))  # both plans over: the suggestion ends

        # draws: a clean (then inspected), b never published, a repeated, b tampered
        # clean quarterly draws of a and c, each drawn target inspected the month after by its drawn team;
        # a draw's candidates leave out enterprises the department already inspected up to its yearly cap
        cap = dict(d.InspectionSettings().yearly_caps)["routine"]
        for dept, months, tag in ((a, (3, 6, 9), "01"), (c, (2, 5, 8, 11), "11")):
            for q, month in enumerate(months):
                draw_id = f"{dept}-SJ-{self.year}-{int(tag) + q:02d}"
                candidates = [e for e in pools[dept] if self.count[(dept, e)] < cap]
                assigned = self.draw(dept, draw_id, candidates, (month, 2), published=date(self.year, month, 12),
                                     inspect_month=month + 1)
                for i, (target, officers) in enumerate(assigned):
                    self.inspection(dept, target, officers, self.workday(month + 1, 6 + i % 10), draw_id=draw_id)
        self.draw(b, f"{b}-SJ-{self.year}-01", pools[b], (5, 6), published=None, inspect_month=6)
        deadline = d.draw_publication_deadline(
            d.Attempt(1, self.at(5, 6), {}, "", performed_at=self.at(5, 6, 10)), d.InspectionSettings())
        self.expect(d.DRAW_NOT_PUBLISHED, "draw", f"{b}-SJ-{self.year}-01", b,
                    datetime.combine(deadline + timedelta(days=1), time.min, CST), "抽取结果 20 个工作日内未公开")
        self.draw(a, f"{a}-SJ-{self.year}-09", pools[a], (8, 3), published=date(self.year, 8, 20), inspect_month=9,
                  attempts=2)
        self.expect(d.DRAW_REPEATED, "draw", f"{a}-SJ-{self.year}-09", a, self.at(8, 4), "同一抽取进行两次")
        self.draw(b, f"{b}-SJ-{self.year}-02", pools[b], (9, 1), published=date(self.year, 9, 10), inspect_month=10,
                  tamper=True)
        self.expect(d.DRAW_UNVERIFIABLE, "draw", f"{b}-SJ-{self.year}-02", b, self.at(9, 1, 10), "抽取结果被改动")

        # inspection records with breaches, each on an enterprise of its own
        e = next(special)
        day = self.workday(5, 11)
        aux = sorted(o.officer_id for o in self.sim.officers if o.dept == a and o.kind == "auxiliary")
        if aux:
            iid = self.inspection(a, e, [self.team(a, self.area[a], day, 1)[0], aux[0]], day)
            for rule in (d.INSPECTOR_UNQUALIFIED, d.OFFICERS_MIN):
                self.expect(rule, "inspection", iid, a, self.at(5, day.day), "辅助人员充当检查人员")
        day = self.workday(5, 18)
        iid = self.inspection(b, next(special), self.team(b, self.area[b], day), day, item=f"J{self.region}9999")
        self.expect(d.ITEM_NOT_HELD, "inspection", iid, b, self.at(5, day.day), "检查事项未公布")
        day = self.workday(6, 8)
        iid = self.inspection(c, next(special), self.team(c, self.area[c], day), day, approval=False)
        self.expect(d.NOT_APPROVED, "inspection", iid, c, self.at(6, day.day), "未经负责人批准")
        day = self.workday(6, 15)
        iid = self.inspection(a, next(special), self.team(a, self.area[a], day), day, emergency=True, approval_after=3)
        self.expect(d.NOT_APPROVED, "inspection", iid, a, self.at(6, day.day), "紧急检查 3 日后才补办批准")
        day = self.workday(6, 22)
        self.inspection(b, next(special), self.team(b, self.area[b], day), day, emergency=True, approval_after=0.5)
        day = self.workday(7, 6)
        iid = self.inspection(c, next(special), self.team(c, self.area[c], day), day, registered_after=10)
        self.expect(d.REGISTRATION_LATE, "inspection", iid, c, self.at(7, day.day), "事后 10 天补登且未说明理由")
        day = self.workday(7, 13)
        self.inspection(a, next(special), self.team(a, self.area[a], day), day, registered_after=10,
                        late_reason="现场处置突发险情，事后补登")
        # an outcome reported for an inspection never registered (未登记视为未检查)
        self.n += 1
        ghost, concluded = f"{b}-JC-{self.year}-{self.n:04d}", self.at(7, 20, 15)
        self.emit("inspection.concluded", concluded, b, {"inspection_id": ghost, "target_id": next(special),
                                                        "outcome": "ordered_to_correct", "text": "责令限期改正"})
        self.expect(d.NOT_REGISTERED, "inspection", ghost, b,
                    concluded + timedelta(days=d.InspectionSettings().unregistered_grace_days), "报送检查结果但无检查登记")
        freq = next(special)
        ids = [self.inspection(a, freq, self.team(a, self.area[a], dd), dd)
               for dd in (self.workday(3, 16), self.workday(7, 20), self.workday(11, 16))]
        self.expect(d.FREQUENCY_CAP, "enterprise_year", f"{freq}:{a}:{self.year}:routine", a, self.at(11, 16),
                    "同一部门年度日常检查超过 2 次")
        rep = next(special)
        first = self.workday(8, 10)
        self.inspection(a, rep, self.team(a, self.area[a], first), first)
        second = self.workday(8, 24)
        iid = self.inspection(b, rep, self.team(b, self.area[b], second), second)
        self.expect(d.REPEAT_INSPECTION, "inspection", iid, b, self.at(8, second.day), "30 日内不同部门重复检查")
        self.events.sort(key=lambda env: env["occurred_at"])
        as_of = self.sim.end + timedelta(days=AS_OF_DAYS)
        return InspectionSimulation(self.events, self.expectations, as_of)

    def plan(self, dept, plan_id, kind, registered, period, *, filed=None, published=None, approved=None, targets=()):
        self.emit("inspection_plan.registered", self.at(*registered), dept, {
            "plan_id": plan_id, "kind": kind, "title": f"{d.PLAN_KINDS[kind]}", "item_codes": [self.item[dept]],
            "period_from": period[0].isoformat(), "period_to": period[1].isoformat(),
            "targets": [{"id": t, "name": self.names[t]} for t in targets] or None})
        for type_, day, extra in (("inspection_plan.filed", filed, {"filed_on": filed and filed.isoformat()}),
                                  ("inspection_plan.published", published, {"published_on": published and published.isoformat()}),
                                  ("inspection_plan.approved", approved, {"approved_on": approved and approved.isoformat(),
                                                                         "approver": "局长"})):
            if day is not None:
                self.emit(type_, datetime.combine(day, time(10), CST), dept, {"plan_id": plan_id, **extra})

    def draw(self, dept, draw_id, members, announced, *, published, inspect_month, attempts=1, tamper=False):
        team_day = self.workday(inspect_month, 6)
        inspectors = sorted(o.officer_id for o in self.sim.officers
                            if o.dept == dept and o.area == self.area[dept]
                            and all(o.usable_on(team_day + timedelta(days=k)) for k in range(-1, 16)))
        result = None
        for attempt in range(1, attempts + 1):
            seed = f"{draw_id}:{attempt}:{self.rng.random()}"
            announcement = {"draw_id": draw_id, "dept": dept, "plan_id": None, "pool_id": f"{dept}-MLK",
                            "targets": [{"id": e, "name": self.names[e], "grade": GRADES[i % 4]} for i, e in enumerate(members)],
                            "inspectors": [{"id": o, "name": None} for o in inspectors],
                            "params": {"ratios": {"*": 0.25}, "inspectors_per_target": 2}, "conflicts": [],
                            "seed": {"method": "commit_reveal", "commitment": dr.seed_commitment(seed)}}
            t0 = self.at(*announced) + timedelta(days=attempt - 1)
            self.emit("inspection_draw.announced", t0, dept, {
                "draw_id": draw_id, "announcement": announcement, "announcement_digest": dr.digest(announcement),
                "reason": "名录库有误，重新公告" if attempt > 1 else None})
            result = dr.compute_result(announcement, seed)
            recorded = result
            if tamper:
                recorded = {**result, "targets": result["targets"][1:]}
            self.emit("inspection_draw.performed", t0 + timedelta(hours=1), dept, {
                "draw_id": draw_id, "attempt": attempt, "seed": seed, "result": recorded,
                "result_digest": dr.digest(recorded)})
        if published is not None:
            self.emit("inspection_draw.published", datetime.combine(published, time(10), CST), dept,
                      {"draw_id": draw_id, "attempt": attempts, "published_on": published.isoformat()})
        return [(a["target_id"], a["officers"]) for a in result["assignments"] if a["officers"]]

    def inspection(self, dept, target, officers, day, *, draw_id=None, item=None, approval=True, emergency=False,
                   approval_after=None, registered_after=0, late_reason=None) -> str:
        self.n += 1
        iid = f"{dept}-JC-{self.year}-{self.n:04d}"
        start = datetime.combine(day, time(9, 30), CST)
        payload = {"inspection_id": iid, "target": {"id": target, "name": self.names[target]}, "kind": "routine",
                   "officers": list(officers), "item_codes": [item or self.item[dept]], "started_at": start.isoformat(),
                   "ended_at": (start + timedelta(hours=1, minutes=30)).isoformat(), "draw_id": draw_id,
                   "emergency": emergency or None, "late_reason": late_reason, "outcome": "no_problem"}
        if approval and approval_after is None:
            payload["approval"] = {"approved_by": "局长", "approved_at": (start - timedelta(hours=17)).isoformat()}
        self.count[(dept, target)] += 1
        registered = start + timedelta(days=registered_after, hours=3)
        self.emit("inspection.registered", registered, dept, {k: v for k, v in payload.items() if v is not None})
        if approval_after is not None:
            self.emit("inspection.approved", start + timedelta(days=approval_after), dept, {
                "inspection_id": iid, "target_id": target, "approved_by": "局长",
                "approved_at": (start + timedelta(days=approval_after)).isoformat()})
        return iid


def simulate_inspections(sim: Simulation) -> InspectionSimulation:
    """The inspection year of `sim` (pure, deterministic in its config)."""
    return _Gen(sim).build()


def offline_findings(events: Iterable[dict], as_of: datetime, settings: d.InspectionSettings | None = None) -> list:
    """The inspection findings the pure domains raise over `events` at `as_of`, wired like the service:
    officers from the personnel domain, items from the registry domain, derived facts as after_save."""
    from services.personnel import domain as per
    from services.registry import domain as reg

    settings = settings or d.InspectionSettings()
    officer_facts: dict[str, list] = defaultdict(list)
    state = reg.RegistryState()
    groups: dict[str, dict[str, list[Fact]]] = {k: defaultdict(list) for k in ("plan", "pool", "draw", "enterprise", "unit")}
    for seq, env in enumerate(events):
        type_ = env["type"]
        if type_ in per.FACT_TYPES:
            fact = per.Fact.from_envelope(env, seq=seq)
            kind, agg_id = per.aggregate_of(fact)
            if kind != "agency":
                officer_facts[agg_id].append(fact)
        elif type_ in reg.FACT_TYPES:
            state.apply(reg.Fact.from_envelope(env), reg.RegistrySettings())
        elif type_.startswith("inspection"):
            fact = Fact.from_envelope(env, seq=seq)
            p = env["payload"]
            if type_.startswith("inspection_plan."):
                groups["plan"][p["plan_id"]].append(fact)
            elif type_.startswith("inspection_pool."):
                groups["pool"][p["pool_id"]].append(fact)
            elif type_.startswith("inspection_draw."):
                groups["draw"][p["draw_id"]].append(fact)
            else:
                groups["enterprise"][d.target_of(p)].append(fact)
    officers = {oid: per.officer_from_facts(facts, oid) for oid, facts in officer_facts.items()}
    lookups = d.Lookups(officer=officers.get,
                        item=lambda dept, code, at: d.item_check(state.items.get(code), dept, code, at))

    def derived(type_: str, payload: dict, dept: str, at: datetime, *parts: str) -> Fact:
        return Fact(str(uuid.uuid5(NAMESPACE, "|".join((type_, *parts)))), type_, at, dept, payload)

    found: list = []
    for plan_id, facts in groups["plan"].items():
        plan = d.plan_from_facts(plan_id, facts)
        found += d.evaluate_plan(plan, settings, as_of)
        latest = max(f.occurred_at for f in facts)
        for p in d.planned_payloads(plan):
            groups["enterprise"][p["target_id"]].append(derived(d.INSPECTION_PLANNED, p, plan.dept, latest, plan_id, p["target_id"]))
        for type_, p in d.unit_payloads(plan):
            groups["unit"][plan.dept].append(derived(type_, p, plan.dept, latest, plan_id, type_))
    for draw_id, facts in groups["draw"].items():
        draw = d.draw_from_facts(draw_id, facts)
        found += d.evaluate_draw(draw, settings, as_of)
    for target, facts in groups["enterprise"].items():
        ent = d.enterprise_from_facts(target, facts)
        found += d.evaluate_enterprise(ent, lookups, settings, as_of)
        for p in d.registration_unit_payloads(ent):
            groups["unit"][p["dept"]].append(derived(d.UNIT_REGISTERED, p, p["dept"],
                                                     datetime.fromisoformat(f"{p['on']}T00:00:00+08:00"),
                                                     p["dept"], p["on"]))
    for dept, facts in groups["unit"].items():
        found += d.evaluate_unit(d.unit_from_facts(dept, facts), settings, as_of)
    return found


def check(sim: Simulation, part: InspectionSimulation | None = None):
    """Per inspection rule: expected / raised / missed / spurious (report.Comparison), offline, at the
    part's `as_of`."""
    from services.simulator.report import compare

    part = part or simulate_inspections(sim)
    raised = {(f.rule_id, f.subject_type, f.subject_id, f.dept)
              for f in offline_findings([*sim.events, *part.events], part.as_of)}
    expected = {x.key for x in part.expectations if x.since <= part.as_of and (x.until is None or part.as_of < x.until)}
    return compare(expected, raised, part.as_of)


def expected_at(part: InspectionSimulation, as_of: datetime, settings: d.InspectionSettings | None = None,
                arrived_at: datetime | None = None) -> set[tuple[str, str, str, str]]:
    """The truth at any `as_of` from the part's own judging time on (a live suite judges at its "now"):
    the injected breaches open at `as_of`, and what time alone brings after the simulated year —
    departments idle for one or two years since their last registration (or first plan), and annual
    plans missing for the years after it (nobody planned a year that was not simulated). `arrived_at`:
    when the part reached the suite — an outcome without a registration waits from its arrival
    (docs/consistency.md), so in a replay it is a finding only `unregistered_grace_days` later."""
    if as_of < part.as_of:
        raise ValueError(f"as_of {as_of.isoformat()} is before the part's judging time {part.as_of.isoformat()}")
    settings = settings or d.InspectionSettings()
    today = as_of.astimezone(CST).date()
    def since(x: Expectation) -> datetime:
        if x.rule_id == d.NOT_REGISTERED and arrived_at is not None:
            return max(x.since, arrived_at + timedelta(days=settings.unregistered_grace_days))
        return x.since

    out = {x.key for x in part.expectations if since(x) <= as_of and (x.until is None or as_of < x.until)}
    seen: dict[str, date] = {}
    registered: dict[str, date] = {}
    annual: dict[str, set[int]] = defaultdict(set)
    for env in part.events:
        day = datetime.fromisoformat(env["occurred_at"]).astimezone(CST).date()
        if env["type"] == "inspection_plan.registered":
            seen[env["dept"]] = min(seen.get(env["dept"], day), day)
            if env["payload"]["kind"] == "annual":
                annual[env["dept"]].add(int(env["payload"]["period_from"][:4]))
        elif env["type"] == "inspection.registered":
            seen[env["dept"]] = min(seen.get(env["dept"], day), day)
            registered[env["dept"]] = max(registered.get(env["dept"], day), day)
    year = min(seen.values()).year
    for dept, since in seen.items():
        idle = (today - registered.get(dept, since)).days
        if idle >= settings.unit_idle_recall_days:
            out.add((d.UNIT_NO_RECORDS_2Y, "unit", dept, dept))
        elif idle >= settings.unit_idle_warn_days:
            out.add((d.UNIT_NO_RECORDS_1Y, "unit", dept, dept))
        for later in range(year + 1, today.year + 1):
            if today > d.annual_due(later, settings) and later not in annual[dept]:
                out.add((d.ANNUAL_PLAN_MISSING, "unit_year", f"{dept}:{later}", dept))
    return out


def applies(sim: Simulation) -> bool:
    """The part needs four departments with four or more officers each (the `small` and `year` scales)."""
    return sum(1 for dept in sim.depts
               if sum(1 for o in sim.officers if o.dept == dept and o.kind == "officer") >= 4) >= 4


def check_report(sim: Simulation, out=print) -> bool:
    """Print the inspection part's offline acceptance table; True when nothing is missed or spurious."""
    if not applies(sim):
        out("行政检查部分：本规模部门不足（需 4 个部门、每部门至少 4 名执法人员），未生成")
        return True
    from services.simulator.report import format_table

    part = simulate_inspections(sim)
    comparison = check(sim, part)
    out(format_table(comparison, f"行政检查部分（{len(part.events)} 条事件）："))
    out("行政检查部分：" + ("全部规则零漏报、零误报" if comparison.ok else "存在漏报或误报"))
    return comparison.ok


INSPECTION_COLLECTIONS = ("plans", "pools", "draws", "enterprises", "units")


def stored_findings(db) -> set[tuple[str, str, str, str]]:
    """Open findings kept in the inspection service's aggregate documents (database `db`)."""
    out = set()
    for name in INSPECTION_COLLECTIONS:
        for doc in db[name].find({"findings_count": {"$ne": 0}}, {"findings_open": 1}):
            out |= {(f["rule_id"], f["subject_type"], f["subject_id"], f["dept"])
                    for f in (doc.get("findings_open") or {}).values()}
    return out


def run_live(sim: Simulation, amqp_uri: str, mongo_uri: str, db_prefix: str = "zhifa_", timeout: float = 180,
             out=print, part: InspectionSimulation | None = None):
    """Publish the part through the AMQP ingress of a running suite (whose officers are already
    there) and compare the inspection service's stored open findings with the truth at the suite's
    "now" until they agree or `timeout` passes (projections may land after the facts they judge; the
    sweep re-evaluates). Returns the report's Comparison; subjects are this part's own."""
    import time as _time

    import pymongo

    from services.simulator.publish import publish_amqp
    from services.simulator.report import compare, format_table

    part = part or simulate_inspections(sim)
    sent_at = datetime.now(CST)
    stats = publish_amqp(part.events, amqp_uri)
    out(f"行政检查部分：已发布 {stats.published} 条（确认 {stats.confirmed}）")
    db = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000)[f"{db_prefix}inspection"]
    subjects = {x.subject_id.split(":")[0] for x in part.expectations} | {
        str(v) for e in part.events for k, v in e["payload"].items() if k.endswith("_id")} | {
        e["payload"]["target"]["id"] for e in part.events if e["type"] == "inspection.registered"} | {
        t["id"] for e in part.events if e["type"] == "inspection_plan.registered"
        for t in e["payload"].get("targets") or ()} | set(sim.depts)
    deadline = _time.monotonic() + timeout
    while True:
        as_of = datetime.now(CST)
        expected = expected_at(part, as_of, arrived_at=sent_at)
        stored = {k for k in stored_findings(db) if k[2].split(":")[0] in subjects}
        comparison = compare(expected, stored, as_of)
        if comparison.ok or _time.monotonic() > deadline:
            break
        _time.sleep(2)
    out(format_table(comparison, "行政检查部分（联调，服务数据库中的未关闭监督发现）："))
    return comparison
