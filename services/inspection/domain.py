"""Inspection planning (检查计划、检查对象名录库、双随机抽取、检查登记): pure aggregates and rules.

Five aggregates, each a fold over its own facts (duplicates dropped, the rest in time order):

- `Plan` (plan_id): annual / quarterly / monthly / special (专项) / ad hoc (临时) plans with basis
  (items), agency, officers, period, scope, targets or a target pool, joint departments; filing
  with the justice bureau, publication, approval.
- `Pool` (pool_id): a department's target pool (检查对象名录库): enterprises with unified social
  credit code, industry, region and risk/credit grade.
- `Draw` (draw_id): the attempts of one random draw (双随机): announcement (committed before),
  performance (seed revealed, result), publication. Algorithm and verification: draw.py.
- `Enterprise` (the target's id, e.g. 统一社会信用代码): every inspection record of that enterprise
  (检查登记) by every department, plus what plans and draws intend for it. Rules across
  departments (frequency caps, repeat inspections, plans that should be joint) live here, so
  they are single-aggregate rules.
- `Unit` (dept): what the suite derives about one department's inspection work (days with
  records, annual plans, special plans), for the yearly rules and seed 003's credential rule.

`Enterprise` and `Unit` also receive facts the service derives from plans, draws and
registrations (DERIVED_TYPES: `inspection.planned`, `inspection.drawn`, `inspection_unit.*`);
they are not in the contract catalog, so no department can send them.

Every rule is a plain function of (aggregate, lookups, settings, as_of) returning Findings; every
number is in `InspectionSettings`. Dates are China calendar days; a deadline day is allowed in
full (the finding appears at 00:00 of the next day).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Callable, ClassVar, Iterable, Mapping

from services.common import arrivals
from services.common.chinatime import aware, day_start, iso_local, local_date, month_day_in, parse_month_day, parse_time
from services.common.errors import InvalidFactError, NotOwnerError
from services.common.facts import Fact
from services.common.findings import Finding
from services.common.ownership import is_justice_bureau
from services.common.qualification import HolderLike, can_act
from services.common.settings import SettingsBase
from services.common.workdays import DEFAULT_CALENDAR, WorkdayCalendar

PLAN_KINDS = {"annual": "年度计划", "quarterly": "季度计划", "monthly": "月度计划", "special": "专项检查计划",
              "ad_hoc": "临时检查计划"}
INSPECTION_KINDS = {"routine": "日常检查", "special": "专项检查", "case": "案件检查（投诉举报核查等）",
                    "ad_hoc": "临时检查"}
OUTCOMES = {"no_problem": "未发现问题", "ordered_to_correct": "责令改正", "case_filed": "立案查处"}
RISK_GRADES = ("A", "B", "C", "D")  # 风险/信用等级 A 低 … D 高 (free text is accepted too)

# fact types
PLAN_REGISTERED, PLAN_FILED, PLAN_PUBLISHED = "inspection_plan.registered", "inspection_plan.filed", "inspection_plan.published"
PLAN_APPROVED, PLAN_CANCELLED = "inspection_plan.approved", "inspection_plan.cancelled"
POOL_LISTED, POOL_REMOVED = "inspection_pool.members_listed", "inspection_pool.members_removed"
DRAW_ANNOUNCED, DRAW_PERFORMED, DRAW_PUBLISHED = ("inspection_draw.announced", "inspection_draw.performed",
                                                  "inspection_draw.published")
INSPECTION_REGISTERED, INSPECTION_CONCLUDED, INSPECTION_APPROVED = (
    "inspection.registered", "inspection.concluded", "inspection.approved")
# derived by the service (not in the catalog: departments cannot send them)
INSPECTION_PLANNED, INSPECTION_DRAWN = "inspection.planned", "inspection.drawn"
UNIT_TRACKED, UNIT_REGISTERED = "inspection_unit.tracked", "inspection_unit.registered"
UNIT_ANNUAL, UNIT_SPECIAL = "inspection_unit.annual_planned", "inspection_unit.special_planned"
DERIVED_TYPES = frozenset({INSPECTION_PLANNED, INSPECTION_DRAWN, UNIT_TRACKED, UNIT_REGISTERED, UNIT_ANNUAL,
                           UNIT_SPECIAL})
# the justice bureau receives filings: it may report them about any department's plan
SUPERVISORY_FACTS = frozenset({PLAN_FILED})

# rule ids
INSPECTOR_UNQUALIFIED = "INS-INSPECTOR-UNQUALIFIED"
OFFICERS_MIN = "INS-OFFICERS-MIN"
ITEM_NOT_HELD = "INS-ITEM-NOT-HELD"
NOT_APPROVED = "INS-NOT-APPROVED"
REGISTRATION_LATE = "INS-REGISTRATION-LATE"
FREQUENCY_CAP = "INS-FREQUENCY-CAP"
REPEAT_INSPECTION = "INS-REPEAT-INSPECTION"
JOINT_SUGGESTED = "INS-JOINT-SUGGESTED"
PLAN_NOT_FILED = "INS-PLAN-NOT-FILED"
ANNUAL_NOT_PUBLISHED = "INS-ANNUAL-NOT-PUBLISHED"
ANNUAL_PLAN_MISSING = "INS-ANNUAL-PLAN-MISSING"
SPECIAL_NOT_APPROVED = "INS-SPECIAL-NOT-APPROVED"
SPECIAL_CAP = "INS-SPECIAL-CAP"
DRAW_NOT_PUBLISHED = "INS-DRAW-NOT-PUBLISHED"
DRAW_UNVERIFIABLE = "INS-DRAW-UNVERIFIABLE"
DRAW_REPEATED = "INS-DRAW-REPEATED"
UNIT_NO_RECORDS_1Y = "INS-UNIT-NO-RECORDS-1Y"
UNIT_NO_RECORDS_2Y = "INS-UNIT-NO-RECORDS-2Y"
NOT_REGISTERED = "INS-NOT-REGISTERED"
RULES = (INSPECTOR_UNQUALIFIED, OFFICERS_MIN, ITEM_NOT_HELD, NOT_APPROVED, REGISTRATION_LATE, FREQUENCY_CAP,
         REPEAT_INSPECTION, JOINT_SUGGESTED, PLAN_NOT_FILED, ANNUAL_NOT_PUBLISHED, ANNUAL_PLAN_MISSING,
         SPECIAL_NOT_APPROVED, SPECIAL_CAP, DRAW_NOT_PUBLISHED, DRAW_UNVERIFIABLE, DRAW_REPEATED,
         UNIT_NO_RECORDS_1Y, UNIT_NO_RECORDS_2Y, NOT_REGISTERED)


@dataclass(frozen=True)
class InspectionSettings(SettingsBase):
    """Every number an inspection rule uses. Presets and department plugins override by field name."""

    SECTION: ClassVar[str] = "inspection"
    TUPLE_FIELDS: ClassVar[frozenset[str]] = frozenset({"item_categories", "routine_plan_kinds",
                                                        "repeat_counted_kinds"})
    MONTH_DAY_FIELDS: ClassVar[frozenset[str]] = frozenset({"annual_publication_due"})

    min_officers: int = 2                          # 行政处罚法 Art. 42; 54号
    item_categories: tuple[str, ...] = ("inspection",)  # registry categories an inspection may rest on; () = any
    # yearly cap per (department, inspection kind, enterprise); a kind not listed is not capped (54号, local numbers)
    yearly_caps: Mapping[str, int] = field(default_factory=lambda: {"routine": 2, "special": 2})
    repeat_window_days: int = 30                   # different departments within 30 days: alert (54号 local rules)
    repeat_counted_kinds: tuple[str, ...] = ("routine", "special", "ad_hoc")  # case checks follow a complaint
    routine_plan_kinds: tuple[str, ...] = ("annual", "quarterly", "monthly")
    plan_filing_lead_wd: int = 7                   # routine plan filed >= 7 working days before it starts
    annual_publication_due: tuple[int, int] = (3, 31)  # annual plan published by end of March
    draw_publication_wd: int = 20                  # draw results published within 20 working days
    registration_grace_days: int = 3               # registered later than this after the inspection: needs a reason
    unregistered_grace_days: int = 3               # an outcome/approval reported without a registration this long
    emergency_approval_hours: int = 24             # emergency: approval completed within 24 h after
    special_yearly_cap: int = 2                    # special plans per department per year (ordered from above excepted)
    unit_idle_warn_days: int = 365                 # seed 003: no records for 1 year -> no new credentials
    unit_idle_recall_days: int = 730               # seed 003: 2 years -> credentials recalled
    joint_rate_target: float = 0.8                 # figure: joint-inspection rate target (by 2027)
    arrival_settle_seconds: int = 10               # facts arriving this close together are judged together

    def __post_init__(self):
        if not isinstance(self.annual_publication_due, tuple):
            object.__setattr__(self, "annual_publication_due",
                               parse_month_day(self.annual_publication_due, "annual_publication_due"))
        self.check()

    def check(self) -> None:
        ints = ("min_officers", "repeat_window_days", "plan_filing_lead_wd", "draw_publication_wd",
                "registration_grace_days", "unregistered_grace_days", "emergency_approval_hours", "special_yearly_cap",
                "unit_idle_warn_days", "unit_idle_recall_days", "arrival_settle_seconds")
        for name in ints:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"inspection setting {name} must be a non-negative integer")
        if self.min_officers < 1:
            raise ValueError("inspection setting min_officers must be at least 1")
        if self.unit_idle_recall_days < self.unit_idle_warn_days:
            raise ValueError("unit_idle_recall_days must not be shorter than unit_idle_warn_days")
        for kind, cap in dict(self.yearly_caps).items():
            if kind not in INSPECTION_KINDS or not isinstance(cap, int) or cap < 0:
                raise ValueError(f"yearly_caps: {kind!r} -> {cap!r} (kinds: {', '.join(INSPECTION_KINDS)})")
        if not 0 <= self.joint_rate_target <= 1:
            raise ValueError("joint_rate_target must be between 0 and 1")


DEFAULT_SETTINGS = InspectionSettings()
SettingsFor = Callable[[str], InspectionSettings]


def _settings_for(settings: InspectionSettings | SettingsFor) -> SettingsFor:
    return settings if callable(settings) else (lambda dept: settings)


# ---- small helpers -------------------------------------------------------------------------------

def _date(payload: Mapping[str, Any], name: str, *, required: bool = True) -> date | None:
    value = payload.get(name)
    if value is None:
        if required:
            raise InvalidFactError(f"缺少日期字段 {name}", field=f"payload.{name}")
        return None
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidFactError(f"日期 {value!r} 无效", field=f"payload.{name}") from None


def _time(payload: Mapping[str, Any], name: str, *, required: bool = True) -> datetime | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    parsed = parse_time(value)
    if parsed is None:
        raise InvalidFactError(f"时间 {value!r} 无效（须为带时区的 ISO 8601 时间）", field=f"payload.{name}")
    return parsed


def sub_workdays(day: date, n: int, calendar: WorkdayCalendar = DEFAULT_CALENDAR) -> date:
    """The working day n working days before `day` (`day` itself not counted)."""
    while n > 0:
        day -= timedelta(days=1)
        if calendar.is_workday(day):
            n -= 1
    return day


def _late(deadline: date, done: date | None, as_of: datetime) -> bool:
    """Missed: not done and the deadline day has passed, or done after the deadline day."""
    return (done is None and local_date(as_of) > deadline) or (done is not None and done > deadline)


def _next_day(deadline: date) -> datetime:
    return day_start(deadline + timedelta(days=1))


def _earliest_after(dates: Iterable[datetime], as_of: datetime) -> datetime | None:
    """The next moment a rule's verdict can change with no new fact (the aggregate's due date)."""
    return min((d for d in dates if d > as_of), default=None)


last_received = arrivals.last_arrival   # when the latest of these facts arrived (None: not recorded)


def settling_until(last_received_at: datetime | None, settings: InspectionSettings, as_of: datetime) -> datetime | None:
    """While an aggregate's facts are still arriving, the instant they settle; else None.

    docs/consistency.md: a rule about something *not yet done* (not filed, not published, not
    approved, no record, no annual plan) does not fire while the missing fact may be in the same
    batch; the aggregate's due date includes the settle instant, so the sweep judges it then. A
    breach certain from the facts themselves (done late, unqualified inspectors…) is found at once."""
    return arrivals.settling_until(last_received_at, settings.arrival_settle_seconds, as_of)


def _settle(last_received_at: datetime | None, settings: InspectionSettings) -> list[datetime]:
    """The settle instant as a due date (judge the absences again once the arrivals are over)."""
    until = arrivals.settles_at(last_received_at, settings.arrival_settle_seconds)
    return [] if until is None else [until]


def _sorted(facts: Iterable[Fact]) -> list[Fact]:
    seen, out = set(), []
    for f in facts:
        if f.event_id not in seen:
            seen.add(f.event_id)
            out.append(f)
    return sorted(out, key=lambda f: (f.occurred_at, f.seq))


def _owned(owner: str | None, fact: Fact) -> None:
    if owner and fact.dept != owner and not (fact.type in SUPERVISORY_FACTS and is_justice_bureau(fact.dept)):
        raise NotOwnerError(f"该记录由 {owner} 登记，{fact.dept} 无权报送 {fact.type}", owner=owner)


# ---- plans -----------------------------------------------------------------------------------------

@dataclass
class Plan:
    plan_id: str
    dept: str | None = None
    kind: str | None = None
    year: int | None = None
    title: str = ""
    agency_id: str | None = None
    item_codes: tuple[str, ...] = ()
    officers: tuple[str, ...] = ()
    period_from: date | None = None
    period_to: date | None = None
    scope: str = ""
    content: str = ""
    targets: tuple[dict, ...] = ()   # {"id", "name"}
    pool_id: str | None = None
    joint_depts: tuple[str, ...] = ()
    ordered_from_above: bool = False
    registered_at: datetime | None = None
    filed_on: date | None = None
    published_on: date | None = None
    approved_on: date | None = None
    approver: str | None = None
    cancelled_on: date | None = None
    revision: int = 0
    last_received_at: datetime | None = None

    @property
    def exists(self) -> bool:
        return self.kind is not None

    @property
    def routine(self) -> bool:
        return self.kind in ("annual", "quarterly", "monthly")

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id, "dept": self.dept, "kind": self.kind, "kind_label": PLAN_KINDS.get(self.kind or ""),
            "year": self.year, "title": self.title, "agency_id": self.agency_id, "item_codes": list(self.item_codes),
            "officers": list(self.officers), "period_from": _iso_day(self.period_from),
            "period_to": _iso_day(self.period_to), "scope": self.scope, "content": self.content,
            "targets": [dict(t) for t in self.targets], "pool_id": self.pool_id, "joint_depts": list(self.joint_depts),
            "ordered_from_above": self.ordered_from_above, "registered_at": iso_local(self.registered_at),
            "filed_on": _iso_day(self.filed_on), "published_on": _iso_day(self.published_on),
            "approved_on": _iso_day(self.approved_on), "approver": self.approver,
            "cancelled_on": _iso_day(self.cancelled_on), "revision": self.revision,
        }


def _iso_day(d: date | None) -> str | None:
    return d.isoformat() if d else None


def plan_from_facts(plan_id: str, facts: Iterable[Fact]) -> Plan:
    plan = Plan(plan_id)
    ordered = _sorted(facts)
    plan.last_received_at = last_received(ordered)
    for f in ordered:
        p = f.payload
        if f.type == PLAN_REGISTERED:
            _owned(plan.dept, f)
            start, end = _date(p, "period_from"), _date(p, "period_to")
            if end < start:
                raise InvalidFactError("计划结束日期早于开始日期", field="payload.period_to")
            plan.dept, plan.kind, plan.title = f.dept, p["kind"], p.get("title") or ""
            plan.year = int(p.get("year") or start.year)
            plan.agency_id = p.get("agency_id")
            plan.item_codes = tuple(p.get("item_codes") or ())
            plan.officers = tuple(p.get("officers") or ())
            plan.period_from, plan.period_to = start, end
            plan.scope, plan.content = p.get("scope") or "", p.get("content") or ""
            plan.targets = tuple({"id": t["id"], "name": t.get("name") or ""} for t in p.get("targets") or ())
            plan.pool_id = p.get("pool_id")
            plan.joint_depts = tuple(d for d in p.get("joint_depts") or () if d != f.dept)
            plan.ordered_from_above = bool(p.get("ordered_from_above"))
            plan.registered_at = plan.registered_at or f.occurred_at
            plan.revision += 1
        elif plan.exists:
            _owned(plan.dept, f)
            if f.type == PLAN_FILED:
                plan.filed_on = plan.filed_on or _date(p, "filed_on")
            elif f.type == PLAN_PUBLISHED:
                plan.published_on = plan.published_on or _date(p, "published_on")
            elif f.type == PLAN_APPROVED:
                plan.approved_on, plan.approver = _date(p, "approved_on"), p.get("approver")
            elif f.type == PLAN_CANCELLED:
                plan.cancelled_on = _date(p, "cancelled_on")
            plan.revision += 1
    return plan


def plan_filing_deadline(plan: Plan, settings: InspectionSettings,
                         calendar: WorkdayCalendar = DEFAULT_CALENDAR) -> date | None:
    if not plan.exists or plan.kind not in settings.routine_plan_kinds or plan.period_from is None:
        return None
    return sub_workdays(plan.period_from, settings.plan_filing_lead_wd, calendar)


def annual_due(year: int, settings: InspectionSettings) -> date:
    return month_day_in(year, settings.annual_publication_due)


def _cancelled_before(plan: Plan, deadline: date) -> bool:
    return plan.cancelled_on is not None and plan.cancelled_on <= deadline


def evaluate_plan(plan: Plan, settings: InspectionSettings, as_of: datetime,
                  calendar: WorkdayCalendar = DEFAULT_CALENDAR) -> list[Finding]:
    as_of = aware(as_of)
    out: list[Finding] = []
    if not plan.exists:
        return out
    label = f"{PLAN_KINDS.get(plan.kind, plan.kind)}“{plan.title or plan.plan_id}”"

    def finding(rule, severity, evidence, message):
        out.append(Finding(rule, severity, plan.dept, "plan", plan.plan_id, as_of, evidence, message))

    settling = settling_until(plan.last_received_at, settings, as_of) is not None
    deadline = plan_filing_deadline(plan, settings, calendar)
    if (deadline and not _cancelled_before(plan, deadline) and _late(deadline, plan.filed_on, as_of)
            and not (settling and plan.filed_on is None)):
        finding(PLAN_NOT_FILED, "warning",
                {"period_from": _iso_day(plan.period_from), "deadline": deadline.isoformat(),
                 "filed_on": _iso_day(plan.filed_on), "lead_wd": settings.plan_filing_lead_wd},
                f"{label}应在实施前 {settings.plan_filing_lead_wd} 个工作日（{deadline} 前）向司法局备案，"
                + (f"实际 {plan.filed_on} 才备案" if plan.filed_on else "至今未备案"))
    if plan.kind == "annual" and plan.year:
        due = annual_due(plan.year, settings)
        if (not _cancelled_before(plan, due) and _late(due, plan.published_on, as_of)
                and not (settling and plan.published_on is None)):
            finding(ANNUAL_NOT_PUBLISHED, "warning",
                    {"year": plan.year, "due": due.isoformat(), "published_on": _iso_day(plan.published_on)},
                    f"{plan.year} 年度检查计划应于 {due} 前向社会公布，"
                    + (f"实际 {plan.published_on} 才公布" if plan.published_on else "至今未公布"))
    if plan.kind == "special" and plan.period_from and not _cancelled_before(plan, plan.period_from):
        started = local_date(as_of) >= plan.period_from
        late = plan.approved_on is not None and plan.approved_on > plan.period_from
        if (plan.approved_on is None and started and not settling) or late:
            finding(SPECIAL_NOT_APPROVED, "serious",
                    {"period_from": _iso_day(plan.period_from), "approved_on": _iso_day(plan.approved_on)},
                    f"{label}须在实施前经批准，" + (f"实际 {plan.approved_on} 才批准" if late else "实施时尚未批准"))
    return out


def plan_due_at(plan: Plan, settings: InspectionSettings, as_of: datetime,
                calendar: WorkdayCalendar = DEFAULT_CALENDAR) -> datetime | None:
    dates = []
    deadline = plan_filing_deadline(plan, settings, calendar)
    if deadline and plan.filed_on is None:
        dates.append(_next_day(deadline))
    if plan.kind == "annual" and plan.year and plan.published_on is None:
        dates.append(_next_day(annual_due(plan.year, settings)))
    if plan.kind == "special" and plan.period_from and plan.approved_on is None:
        dates.append(day_start(plan.period_from))
    return _earliest_after(dates + _settle(plan.last_received_at, settings), as_of)


# ---- target pools ------------------------------------------------------------------------------------

@dataclass
class Pool:
    pool_id: str
    dept: str | None = None
    name: str = ""
    members: dict[str, dict] = field(default_factory=dict)  # id -> {id, name, grade, industry, region}

    def to_dict(self) -> dict[str, Any]:
        return {"pool_id": self.pool_id, "dept": self.dept, "name": self.name, "size": len(self.members),
                "members": [self.members[k] for k in sorted(self.members)],
                "grades": _count(m.get("grade") or "" for m in self.members.values())}


def _count(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def pool_from_facts(pool_id: str, facts: Iterable[Fact]) -> Pool:
    pool = Pool(pool_id)
    for f in _sorted(facts):
        _owned(pool.dept, f)
        pool.dept = pool.dept or f.dept
        if f.payload.get("name"):
            pool.name = f.payload["name"]
        if f.type == POOL_LISTED:
            for m in f.payload.get("members") or ():
                pool.members[m["id"]] = {"id": m["id"], "name": m.get("name") or "", "grade": m.get("grade") or "",
                                         "industry": m.get("industry") or "", "region": m.get("region") or ""}
        elif f.type == POOL_REMOVED:
            for member_id in f.payload.get("member_ids") or ():
                pool.members.pop(member_id, None)
    return pool


# ---- draws -------------------------------------------------------------------------------------------

@dataclass
class Attempt:
    number: int
    announced_at: datetime
    announcement: dict
    announcement_digest: str
    reason: str = ""
    performed_at: datetime | None = None
    seed: str | None = None
    result: dict | None = None
    result_digest: str | None = None
    published_on: date | None = None
    url: str | None = None

    def summary(self) -> dict[str, Any]:
        return {"attempt": self.number, "announced_at": iso_local(self.announced_at),
                "announcement_digest": self.announcement_digest, "performed_at": iso_local(self.performed_at),
                "result_digest": self.result_digest, "reason": self.reason}


@dataclass
class Draw:
    draw_id: str
    dept: str | None = None
    plan_id: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    last_received_at: datetime | None = None

    @property
    def current(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def record(self, attempt: Attempt) -> dict[str, Any] | None:
        """The publishable record of a performed attempt (draw.py format)."""
        if attempt.performed_at is None:
            return None
        from services.inspection.draw import ALGORITHM, RECORD_FORMAT

        return {"format": RECORD_FORMAT, "algorithm": ALGORITHM, "attempt": attempt.number,
                "announcement": attempt.announcement, "announcement_digest": attempt.announcement_digest,
                "announced_at": iso_local(attempt.announced_at), "performed_at": iso_local(attempt.performed_at),
                "seed": attempt.seed, "result": attempt.result, "result_digest": attempt.result_digest,
                "previous_attempts": [a.summary() for a in self.attempts if a.number < attempt.number]}

    def to_dict(self) -> dict[str, Any]:
        cur = self.current
        return {"draw_id": self.draw_id, "dept": self.dept, "plan_id": self.plan_id,
                "attempts": [a.summary() | {"published_on": _iso_day(a.published_on), "url": a.url}
                             for a in self.attempts],
                "status": ("none" if cur is None else "published" if cur.published_on else
                           "performed" if cur.performed_at else "announced"),
                "announcement": cur.announcement if cur else None,
                "result": cur.result if cur else None,
                "record": self.record(cur) if cur else None}


def draw_from_facts(draw_id: str, facts: Iterable[Fact]) -> Draw:
    d = Draw(draw_id)
    ordered = _sorted(facts)
    d.last_received_at = last_received(ordered)
    for f in ordered:
        _owned(d.dept, f)
        d.dept = d.dept or f.dept
        p = f.payload
        if f.type == DRAW_ANNOUNCED:
            d.plan_id = d.plan_id or p.get("plan_id")
            d.attempts.append(Attempt(len(d.attempts) + 1, f.occurred_at, dict(p["announcement"]),
                                      p["announcement_digest"], p.get("reason") or ""))
        elif f.type == DRAW_PERFORMED and d.current is not None and d.current.performed_at is None:
            d.current.performed_at, d.current.seed = f.occurred_at, p["seed"]
            d.current.result, d.current.result_digest = dict(p["result"]), p.get("result_digest")
        elif f.type == DRAW_PUBLISHED and d.current is not None and d.current.performed_at is not None:
            d.current.published_on = d.current.published_on or _date(p, "published_on")
            d.current.url = p.get("url")
    return d


def draw_publication_deadline(a: Attempt, settings: InspectionSettings,
                              calendar: WorkdayCalendar = DEFAULT_CALENDAR) -> date | None:
    if a.performed_at is None:
        return None
    return calendar.add_workdays(local_date(a.performed_at), settings.draw_publication_wd)


def evaluate_draw(d: Draw, settings: InspectionSettings, as_of: datetime,
                  calendar: WorkdayCalendar = DEFAULT_CALENDAR) -> list[Finding]:
    from services.inspection.draw import verify

    as_of = aware(as_of)
    out: list[Finding] = []
    cur = d.current
    if cur is None:
        return out
    deadline = draw_publication_deadline(cur, settings, calendar)
    settling = settling_until(d.last_received_at, settings, as_of) is not None
    if deadline and _late(deadline, cur.published_on, as_of) and not (settling and cur.published_on is None):
        out.append(Finding(DRAW_NOT_PUBLISHED, "warning", d.dept, "draw", d.draw_id, as_of,
                           {"performed_on": local_date(cur.performed_at).isoformat(), "deadline": deadline.isoformat(),
                            "published_on": _iso_day(cur.published_on), "attempt": cur.number},
                           f"随机抽取结果应在抽取后 {settings.draw_publication_wd} 个工作日内（{deadline} 前）公开，"
                           + (f"实际 {cur.published_on} 才公开" if cur.published_on else "至今未公开")))
    bad = []
    for a in d.attempts:
        record = d.record(a)
        if record is not None:
            check = verify(record)
            if not check.ok:
                bad.append({"attempt": a.number, "problems": [p["code"] for p in check.problems],
                            "messages": [p["message"] for p in check.problems]})
    if bad:
        out.append(Finding(DRAW_UNVERIFIABLE, "critical", d.dept, "draw", d.draw_id, as_of,
                           {"attempts": bad},
                           "随机抽取记录无法复核：" + "；".join(f"第 {b['attempt']} 次：{'，'.join(b['messages'])}"
                                                       for b in bad)))
    if len(d.attempts) > 1:
        out.append(Finding(DRAW_REPEATED, "serious", d.dept, "draw", d.draw_id, as_of,
                           {"attempts": [a.summary() for a in d.attempts]},
                           f"同一抽取（{d.draw_id}）进行了 {len(d.attempts)} 次，每次均已记录："
                           + "；".join(f"第 {a.number} 次（{local_date(a.announced_at)}，理由：{a.reason or '未说明'}）"
                                      for a in d.attempts)))
    return out


def draw_due_at(d: Draw, settings: InspectionSettings, as_of: datetime,
                calendar: WorkdayCalendar = DEFAULT_CALENDAR) -> datetime | None:
    cur = d.current
    deadline = draw_publication_deadline(cur, settings, calendar) if cur else None
    dates = [_next_day(deadline)] if deadline and cur.published_on is None else []
    return _earliest_after(dates + _settle(d.last_received_at, settings), as_of)


# ---- inspection records (per enterprise) -------------------------------------------------------------

@dataclass
class Inspection:
    inspection_id: str
    dept: str
    kind: str
    agency_id: str | None
    officers: tuple[str, ...]
    auxiliaries: tuple[str, ...]
    third_parties: tuple[str, ...]
    item_codes: tuple[str, ...]
    started_at: datetime
    ended_at: datetime
    registered_at: datetime
    plan_id: str | None = None
    draw_id: str | None = None
    joint_depts: tuple[str, ...] = ()
    location: str = ""
    method: str = "on_site"
    emergency: bool = False
    ordered_from_above: bool = False
    late_reason: str = ""
    approved_by: str | None = None
    approved_at: datetime | None = None
    outcome: str | None = None
    case_id: str | None = None
    text: str = ""
    av_ref: str | None = None

    @property
    def depts(self) -> tuple[str, ...]:
        return (self.dept, *self.joint_depts)

    @property
    def day(self) -> date:
        return local_date(self.started_at)

    def to_dict(self) -> dict[str, Any]:
        return {"inspection_id": self.inspection_id, "dept": self.dept, "kind": self.kind,
                "kind_label": INSPECTION_KINDS.get(self.kind), "agency_id": self.agency_id,
                "officers": list(self.officers), "auxiliaries": list(self.auxiliaries),
                "third_parties": list(self.third_parties), "item_codes": list(self.item_codes),
                "started_at": iso_local(self.started_at), "ended_at": iso_local(self.ended_at),
                "registered_at": iso_local(self.registered_at), "plan_id": self.plan_id, "draw_id": self.draw_id,
                "joint_depts": list(self.joint_depts), "location": self.location, "method": self.method,
                "emergency": self.emergency, "ordered_from_above": self.ordered_from_above,
                "late_reason": self.late_reason, "approved_by": self.approved_by,
                "approved_at": iso_local(self.approved_at), "outcome": self.outcome,
                "outcome_label": OUTCOMES.get(self.outcome or ""), "case_id": self.case_id, "text": self.text,
                "av_ref": self.av_ref}


@dataclass
class PlannedVisit:
    plan_id: str
    dept: str
    kind: str
    period_from: date
    period_to: date
    joint_depts: tuple[str, ...]
    cancelled: bool


@dataclass
class Enterprise:
    target_id: str
    name: str = ""
    inspections: dict[str, Inspection] = field(default_factory=dict)
    planned: dict[str, PlannedVisit] = field(default_factory=dict)
    drawn: dict[str, dict] = field(default_factory=dict)       # draw_id -> {dept, plan_id, attempt, officers}
    held: list[dict] = field(default_factory=list)              # facts about an inspection not registered (yet)
    last_received_at: datetime | None = None

    @property
    def depts(self) -> list[str]:
        return sorted({d for i in self.inspections.values() for d in i.depts} | {h["dept"] for h in self.held}
                      | {p.dept for p in self.planned.values()} | {v["dept"] for v in self.drawn.values()})

    def ordered(self) -> list[Inspection]:
        return sorted(self.inspections.values(), key=lambda i: (i.started_at, i.inspection_id))

    def to_dict(self) -> dict[str, Any]:
        return {"target_id": self.target_id, "name": self.name, "depts": self.depts,
                "inspections": [i.to_dict() for i in self.ordered()],
                "planned": [{"plan_id": p.plan_id, "dept": p.dept, "kind": p.kind,
                             "period_from": p.period_from.isoformat(), "period_to": p.period_to.isoformat(),
                             "joint_depts": list(p.joint_depts), "cancelled": p.cancelled}
                            for p in sorted(self.planned.values(), key=lambda p: (p.period_from, p.plan_id))],
                "drawn": [dict(v, draw_id=k) for k, v in sorted(self.drawn.items())],
                "held": list(self.held)}


def target_of(payload: Mapping[str, Any]) -> str:
    """The enterprise aggregate a fact belongs to."""
    target = payload.get("target")
    return str(target["id"] if isinstance(target, Mapping) else payload["target_id"])


def _inspection(f: Fact) -> Inspection:
    p = f.payload
    started, ended = _time(p, "started_at"), _time(p, "ended_at", required=False)
    ended = ended or started
    if ended < started:
        raise InvalidFactError("检查结束时间早于开始时间", field="payload.ended_at")
    approval = p.get("approval") or {}
    return Inspection(
        inspection_id=p["inspection_id"], dept=f.dept, kind=p["kind"], agency_id=p.get("agency_id"),
        officers=tuple(p.get("officers") or ()), auxiliaries=tuple(p.get("auxiliaries") or ()),
        third_parties=tuple(p.get("third_parties") or ()), item_codes=tuple(p.get("item_codes") or ()),
        started_at=started, ended_at=ended, registered_at=f.occurred_at, plan_id=p.get("plan_id"),
        draw_id=p.get("draw_id"), joint_depts=tuple(d for d in p.get("joint_depts") or () if d != f.dept),
        location=p.get("location") or "", method=p.get("method") or "on_site", emergency=bool(p.get("emergency")),
        ordered_from_above=bool(p.get("ordered_from_above")), late_reason=p.get("late_reason") or "",
        approved_by=approval.get("approved_by"), approved_at=_time(approval, "approved_at", required=False),
        outcome=p.get("outcome"), case_id=p.get("case_id"), text=p.get("text") or "", av_ref=p.get("av_ref"))


def enterprise_from_facts(target_id: str, facts: Iterable[Fact]) -> Enterprise:
    ent = Enterprise(target_id)
    ordered = _sorted(facts)
    ent.last_received_at = last_received(ordered)
    for f in ordered:  # registrations first: a conclusion may be dated before a late registration
        if f.type == INSPECTION_REGISTERED:
            p = f.payload
            known = ent.inspections.get(p["inspection_id"])
            if known is not None:
                _owned(known.dept, f)
            ent.inspections[p["inspection_id"]] = _inspection(f)
            ent.name = (p.get("target") or {}).get("name") or ent.name
    for f in ordered:
        p = f.payload
        if f.type in (INSPECTION_CONCLUDED, INSPECTION_APPROVED):
            insp = ent.inspections.get(p["inspection_id"])
            if insp is None:
                ent.held.append({"event_id": f.event_id, "type": f.type, "inspection_id": p["inspection_id"],
                                 "dept": f.dept, "occurred_at": iso_local(f.occurred_at),
                                 "waiting_since": iso_local(f.waiting_since)})
                continue
            _owned(insp.dept, f)
            if f.type == INSPECTION_CONCLUDED:
                insp.outcome, insp.case_id = p["outcome"], p.get("case_id") or insp.case_id
            else:
                insp.approved_by, insp.approved_at = p.get("approved_by"), _time(p, "approved_at")
        elif f.type == INSPECTION_PLANNED:
            ent.name = ent.name or p.get("target_name") or ""
            ent.planned[p["plan_id"]] = PlannedVisit(
                p["plan_id"], f.dept, p["kind"], _date(p, "period_from"), _date(p, "period_to"),
                tuple(p.get("joint_depts") or ()), bool(p.get("cancelled")))
        elif f.type == INSPECTION_DRAWN:
            ent.drawn[p["draw_id"]] = {"dept": f.dept, "plan_id": p.get("plan_id"), "attempt": p.get("attempt"),
                                       "officers": list(p.get("officers") or ())}
    return ent


@dataclass(frozen=True)
class ItemCheck:
    """What the registry projection says about one item for one department at one time."""

    held: bool
    reason: str            # why not (Chinese), or "" when held
    category: str | None = None
    area: str = ""         # enforcement area (执法领域) a credential must cover; "" = any


@dataclass
class Lookups:
    """The projections a rule reads (no RPC): officers by id, items by (dept, code, at)."""

    officer: Callable[[str], HolderLike | None] = lambda officer_id: None
    item: Callable[[str, str, datetime], ItemCheck | None] = lambda dept, code, at: None


def _finding(rule: str, severity: str, dept: str, insp: Inspection, as_of: datetime, evidence: dict,
             message: str) -> Finding:
    return Finding(rule, severity, dept, "inspection", insp.inspection_id, as_of,
                   {"target_id": evidence.pop("target_id", None), **evidence}, message)


def item_checks(insp: Inspection, lookups: Lookups) -> dict[str, ItemCheck | None]:
    """Per item code: what the registry says for the department of the inspection that holds it — the
    lead department or, in a joint inspection (联合检查), a partner; else the lead department's answer."""
    out: dict[str, ItemCheck | None] = {}
    for code in insp.item_codes:
        answers = [lookups.item(dept, code, insp.started_at) for dept in insp.depts]
        out[code] = next((a for a in answers if a is not None and a.held), answers[0])
    return out


def inspection_areas(checks: Mapping[str, ItemCheck | None]) -> list[str]:
    """The enforcement areas of the inspection's items ("" = any, when no item names one)."""
    return sorted({c.area for c in checks.values() if c is not None and c.area}) or [""]


def officer_verdict(holder: HolderLike | None, areas: Iterable[str], at: datetime) -> tuple[bool, str | None, list[str]]:
    """(qualified, the credential acted under, reasons): an officer inspects within an area of the
    inspection's items (in a joint inspection each officer within their own), with a credential
    valid at that time; auxiliaries, supervisors and unknown people never qualify."""
    verdicts = [can_act(holder, area, at) for area in areas]
    allowed = next((v for v in verdicts if v.allowed), None)
    if allowed is not None:
        return True, allowed.credential_no, []
    reasons: list[str] = []
    for v in verdicts:
        reasons.extend(r.message for r in v.reasons if r.message not in reasons)
    return False, None, reasons


def check_inspectors(ent: Enterprise, insp: Inspection, lookups: Lookups, settings: InspectionSettings,
                     as_of: datetime) -> list[Finding]:
    """54号: only officers with credentials valid for the items at that time inspect; at least two;
    never auxiliaries or third parties."""
    areas = inspection_areas(item_checks(insp, lookups))
    problems: dict[str, list[str]] = {}
    qualified = []
    for officer_id in insp.officers:
        ok, _, reasons = officer_verdict(lookups.officer(officer_id), areas, insp.started_at)
        if ok:
            qualified.append(officer_id)
        else:
            problems[officer_id] = reasons
    out = []
    if problems or insp.third_parties:
        parts = [f"{oid}：{'；'.join(r)}" for oid, r in problems.items()]
        parts += [f"第三方 {name} 不得实施行政检查" for name in insp.third_parties]
        out.append(_finding(INSPECTOR_UNQUALIFIED, "serious", insp.dept, insp, as_of,
                            {"target_id": ent.target_id, "officers": problems, "third_parties": list(insp.third_parties),
                             "areas": [a for a in areas if a]},
                            "检查人员不具备检查资格：" + "；".join(parts)))
    if len(qualified) < settings.min_officers:
        aux = f"，辅助人员 {len(insp.auxiliaries)} 人不计入" if insp.auxiliaries else ""
        out.append(_finding(OFFICERS_MIN, "serious", insp.dept, insp, as_of,
                            {"target_id": ent.target_id, "qualified": qualified, "required": settings.min_officers,
                             "auxiliaries": list(insp.auxiliaries)},
                            f"具备资格的执法人员只有 {len(qualified)} 人，少于 {settings.min_officers} 人{aux}"))
    return out


def item_problem(check: ItemCheck | None, settings: InspectionSettings) -> str | None:
    """Why an inspection may not rest on this item (Chinese), or None."""
    if check is None:
        return "执法事项清单中无此事项（未公布）"
    if not check.held:
        return check.reason
    if settings.item_categories and check.category not in settings.item_categories:
        return f"该事项不是行政检查事项（类别：{check.category}）"
    return None


def check_items(ent: Enterprise, insp: Inspection, lookups: Lookups, settings: InspectionSettings,
                as_of: datetime) -> list[Finding]:
    """54号: an inspection on an item that is not published in the department's list, or not held
    (in a joint inspection: by any department in it)."""
    bad = {code: problem for code, check in item_checks(insp, lookups).items()
           if (problem := item_problem(check, settings))}
    if not insp.item_codes:
        bad["-"] = "检查登记未列明检查事项"
    if not bad:
        return []
    return [_finding(ITEM_NOT_HELD, "serious", insp.dept, insp, as_of, {"target_id": ent.target_id, "items": bad},
                     "检查事项不合法：" + "；".join(f"{k}：{v}" for k, v in bad.items()))]


def approval_deadline(insp: Inspection, settings: InspectionSettings) -> datetime:
    return insp.started_at + timedelta(hours=settings.emergency_approval_hours) if insp.emergency else insp.started_at


def check_approval(ent: Enterprise, insp: Inspection, settings: InspectionSettings, as_of: datetime) -> list[Finding]:
    """54号: approved in advance by the agency head; emergencies reported and approved afterwards in time."""
    deadline = approval_deadline(insp, settings)
    approved = insp.approved_at
    if approved is not None and approved <= deadline:
        return []
    if approved is None and (as_of < deadline or settling_until(ent.last_received_at, settings, as_of)):
        return []
    how = (f"紧急检查应在 {settings.emergency_approval_hours} 小时内补办批准手续" if insp.emergency
           else "行政检查应事先经执法机关负责人批准")
    done = f"实际 {iso_local(approved)} 才批准" if approved else "至今未批准"
    return [_finding(NOT_APPROVED, "serious", insp.dept, insp, as_of,
                     {"target_id": ent.target_id, "started_at": iso_local(insp.started_at),
                      "deadline": iso_local(deadline), "approved_at": iso_local(approved),
                      "approved_by": insp.approved_by, "emergency": insp.emergency},
                     f"{how}，{done}")]


def check_unregistered(ent: Enterprise, settings_for: SettingsFor, as_of: datetime) -> list[Finding]:
    """Seed 003: unregistered means not inspected. An outcome or approval reported for an inspection
    that has no registration `unregistered_grace_days` later is a finding of the reporting department."""
    first: dict[tuple[str, str], dict] = {}
    for held in ent.held:
        key = (held["inspection_id"], held["dept"])
        if key not in first or held["waiting_since"] < first[key]["waiting_since"]:
            first[key] = held
    out = []
    for (inspection_id, dept), held in sorted(first.items()):
        since = parse_time(held["waiting_since"])  # happened and arrived: a replay's batch may still bring it
        grace = settings_for(dept).unregistered_grace_days
        if as_of >= since + timedelta(days=grace):
            out.append(Finding(NOT_REGISTERED, "warning", dept, "inspection", inspection_id, as_of,
                               {"target_id": ent.target_id, "reported": held["type"], "reported_at": held["occurred_at"],
                                "grace_days": grace},
                               f"{dept} 报送了检查 {inspection_id} 的{'结果' if held['type'] == INSPECTION_CONCLUDED else '审批'}，"
                               f"但 {grace} 天后仍无该检查的登记（未登记视为未检查）"))
    return out


def check_registration(ent: Enterprise, insp: Inspection, settings: InspectionSettings,
                       as_of: datetime) -> list[Finding]:
    """Seed 003: every inspection registered; a late (after-the-fact) registration needs a reason."""
    days = (local_date(insp.registered_at) - local_date(insp.ended_at)).days
    if days <= settings.registration_grace_days or insp.late_reason.strip():
        return []
    return [_finding(REGISTRATION_LATE, "warning", insp.dept, insp, as_of,
                     {"target_id": ent.target_id, "ended_at": iso_local(insp.ended_at),
                      "registered_at": iso_local(insp.registered_at), "days": days,
                      "grace_days": settings.registration_grace_days},
                     f"检查结束 {days} 天后才登记（超过 {settings.registration_grace_days} 天），且未说明补登理由")]


def _capped_count_key(insp: Inspection, dept: str) -> tuple[str, int, str]:
    return dept, insp.day.year, insp.kind


def check_frequency(ent: Enterprise, settings_for: SettingsFor, as_of: datetime) -> list[Finding]:
    """54号: one department inspects one enterprise at most N times a year per kind (ordered-from-above
    special inspections excepted); a joint inspection counts for every department in it."""
    groups: dict[tuple[str, int, str], list[Inspection]] = {}
    for insp in ent.ordered():
        if insp.ordered_from_above:
            continue
        for dept in insp.depts:
            groups.setdefault(_capped_count_key(insp, dept), []).append(insp)
    out = []
    for (dept, year, kind), found in sorted(groups.items()):
        cap = dict(settings_for(dept).yearly_caps).get(kind)
        if cap is None or len(found) <= cap:
            continue
        out.append(Finding(FREQUENCY_CAP, "warning", dept, "enterprise_year", f"{ent.target_id}:{dept}:{year}:{kind}",
                           as_of, {"target_id": ent.target_id, "year": year, "kind": kind, "cap": cap,
                                   "count": len(found), "inspections": [i.inspection_id for i in found]},
                           f"{year} 年 {dept} 对{ent.name or ent.target_id}实施{INSPECTION_KINDS[kind]} {len(found)} 次，"
                           f"超过年度上限 {cap} 次"))
    return out


def check_repeats(ent: Enterprise, settings_for: SettingsFor, as_of: datetime) -> list[Finding]:
    """Different departments inspecting the same enterprise within the window, separately: each later
    inspection is a finding of its department (it should have joined or used the earlier one)."""
    out = []
    ordered = ent.ordered()
    for j, later in enumerate(ordered):
        s = settings_for(later.dept)
        if later.kind not in s.repeat_counted_kinds:
            continue
        earlier = [e for e in ordered[:j] if e.kind in s.repeat_counted_kinds
                   and later.dept not in e.depts and e.dept not in later.depts
                   and 0 <= (later.day - e.day).days <= s.repeat_window_days]
        if earlier:
            e = earlier[-1]
            out.append(_finding(REPEAT_INSPECTION, "warning", later.dept, later, as_of,
                                {"target_id": ent.target_id, "earlier": [x.inspection_id for x in earlier],
                                 "earlier_depts": sorted({x.dept for x in earlier}), "window_days": s.repeat_window_days},
                                f"{ent.name or ent.target_id}在 {e.day} 已由 {e.dept} 检查，{later.day} {later.dept} "
                                f"又单独检查（{s.repeat_window_days} 日内不同部门重复检查，应联合检查或共享结果）"))
    return out


def check_joint_plans(ent: Enterprise, settings_for: SettingsFor, as_of: datetime) -> list[Finding]:
    """Plans of different departments that will visit the same enterprise within the window and are not
    joint: suggested as one joint inspection (联合检查) before they happen, until the later plan ends."""
    today = local_date(as_of)
    plans = sorted((p for p in ent.planned.values() if not p.cancelled), key=lambda p: (p.period_from, p.plan_id))
    out = []
    for j, later in enumerate(plans):
        s = settings_for(later.dept)
        if today > later.period_to:
            continue
        overlapping = [p for p in plans[:j] if p.dept != later.dept and p.dept not in later.joint_depts
                       and later.dept not in p.joint_depts
                       and (later.period_from - p.period_to).days <= s.repeat_window_days]
        if overlapping:
            out.append(Finding(JOINT_SUGGESTED, "warning", later.dept, "enterprise_plan",
                               f"{ent.target_id}:{later.plan_id}", as_of,
                               {"target_id": ent.target_id, "plan_id": later.plan_id,
                                "with_plans": [p.plan_id for p in overlapping],
                                "with_depts": sorted({p.dept for p in overlapping})},
                               f"{later.dept} 的计划 {later.plan_id}（{later.period_from}—{later.period_to}）与 "
                               + "、".join(f"{p.dept} 的计划 {p.plan_id}（{p.period_from}—{p.period_to}）" for p in overlapping)
                               + f" 都将检查{ent.name or ent.target_id}，建议合并为一次联合检查"))
    return out


def evaluate_enterprise(ent: Enterprise, lookups: Lookups, settings: InspectionSettings | SettingsFor,
                        as_of: datetime) -> list[Finding]:
    as_of = aware(as_of)
    settings_for = _settings_for(settings)
    out: list[Finding] = []
    for insp in ent.ordered():
        s = settings_for(insp.dept)
        out += check_inspectors(ent, insp, lookups, s, as_of)
        out += check_items(ent, insp, lookups, s, as_of)
        out += check_approval(ent, insp, s, as_of)
        out += check_registration(ent, insp, s, as_of)
    out += check_frequency(ent, settings_for, as_of)
    out += check_repeats(ent, settings_for, as_of)
    out += check_joint_plans(ent, settings_for, as_of)
    out += check_unregistered(ent, settings_for, as_of)
    return out


def enterprise_due_at(ent: Enterprise, settings: InspectionSettings | SettingsFor, as_of: datetime) -> datetime | None:
    settings_for = _settings_for(settings)
    dates = []
    for insp in ent.inspections.values():
        if insp.approved_at is None:
            dates.append(approval_deadline(insp, settings_for(insp.dept)))
    for p in ent.planned.values():
        dates.append(_next_day(p.period_to))
    for held in ent.held:
        dates.append(parse_time(held["waiting_since"]) + timedelta(days=settings_for(held["dept"]).unregistered_grace_days))
    settle = max((settings_for(dept).arrival_settle_seconds for dept in ent.depts), default=0)
    if ent.last_received_at is not None:
        dates.append(ent.last_received_at + timedelta(seconds=settle))
    return _earliest_after(dates, as_of)


# ---- units (departments) -----------------------------------------------------------------------------

@dataclass
class Unit:
    dept: str
    tracked_since: date | None = None
    registered_days: set[date] = field(default_factory=set)
    annual_plans: dict[int, list[str]] = field(default_factory=dict)
    specials: dict[str, dict] = field(default_factory=dict)   # plan_id -> {year, ordered_from_above, cancelled}
    last_received_at: datetime | None = None

    @property
    def last_registered(self) -> date | None:
        return max(self.registered_days) if self.registered_days else None

    def idle_since(self) -> date | None:
        return self.last_registered or self.tracked_since

    def to_dict(self, as_of: datetime, settings: InspectionSettings = DEFAULT_SETTINGS) -> dict[str, Any]:
        since = self.idle_since()
        idle = (local_date(as_of) - since).days if since else None
        consequence = ("recall_credentials" if idle is not None and idle >= settings.unit_idle_recall_days else
                       "no_new_credentials" if idle is not None and idle >= settings.unit_idle_warn_days else "none")
        return {"dept": self.dept, "tracked_since": _iso_day(self.tracked_since),
                "last_registered": _iso_day(self.last_registered), "idle_days": idle,
                "registered_days": len(self.registered_days), "credential_consequence": consequence,
                "annual_plans": {str(y): v for y, v in sorted(self.annual_plans.items())},
                "special_plans": self.specials}


def unit_from_facts(dept: str, facts: Iterable[Fact]) -> Unit:
    unit = Unit(dept)
    ordered = _sorted(facts)
    unit.last_received_at = last_received(ordered)
    for f in ordered:
        p = f.payload
        on = _date(p, "on")
        unit.tracked_since = min(unit.tracked_since or on, on)
        if f.type == UNIT_REGISTERED:
            unit.registered_days.add(on)
        elif f.type == UNIT_ANNUAL:
            plans = unit.annual_plans.setdefault(int(p["year"]), [])
            if p.get("cancelled"):
                plans[:] = [x for x in plans if x != p["plan_id"]]
            elif p["plan_id"] not in plans:
                plans.append(p["plan_id"])
        elif f.type == UNIT_SPECIAL:
            unit.specials[p["plan_id"]] = {"year": int(p["year"]), "ordered_from_above": bool(p.get("ordered_from_above")),
                                           "cancelled": bool(p.get("cancelled"))}
    return unit


def evaluate_unit(unit: Unit, settings: InspectionSettings, as_of: datetime) -> list[Finding]:
    as_of = aware(as_of)
    today = local_date(as_of)
    out: list[Finding] = []
    since = unit.idle_since()
    settling = settling_until(unit.last_received_at, settings, as_of) is not None
    if since is not None and not settling:
        idle = (today - since).days
        last = f"最近一次检查登记在 {unit.last_registered}" if unit.last_registered else f"自 {unit.tracked_since} 起无检查登记"
        evidence = {"last_registered": _iso_day(unit.last_registered), "tracked_since": _iso_day(unit.tracked_since),
                    "idle_days": idle}
        if idle >= settings.unit_idle_recall_days:
            out.append(Finding(UNIT_NO_RECORDS_2Y, "serious", unit.dept, "unit", unit.dept, as_of,
                               {**evidence, "consequence": "recall_credentials"},
                               f"{unit.dept} 已 {idle} 天未报备执法检查登记（{last}），依规收回其执法证件"))
        elif idle >= settings.unit_idle_warn_days:
            out.append(Finding(UNIT_NO_RECORDS_1Y, "warning", unit.dept, "unit", unit.dept, as_of,
                               {**evidence, "consequence": "no_new_credentials"},
                               f"{unit.dept} 已 {idle} 天未报备执法检查登记（{last}），不再为其办理新的执法证件"))
    if unit.tracked_since is not None:
        for year in range(unit.tracked_since.year, today.year + 1):
            due = annual_due(year, settings)
            if today > due and unit.tracked_since <= due and not unit.annual_plans.get(year) and not settling:
                out.append(Finding(ANNUAL_PLAN_MISSING, "warning", unit.dept, "unit_year", f"{unit.dept}:{year}", as_of,
                                   {"year": year, "due": due.isoformat()},
                                   f"{unit.dept} 未制定 {year} 年度行政检查计划（应于 {due} 前制定并公布）"))
    per_year: dict[int, list[str]] = {}
    for plan_id, s in sorted(unit.specials.items()):
        if not s["cancelled"] and not s["ordered_from_above"]:
            per_year.setdefault(s["year"], []).append(plan_id)
    for year, plans in sorted(per_year.items()):
        if len(plans) > settings.special_yearly_cap:
            out.append(Finding(SPECIAL_CAP, "warning", unit.dept, "unit_year", f"{unit.dept}:{year}", as_of,
                               {"year": year, "plans": plans, "cap": settings.special_yearly_cap},
                               f"{unit.dept} {year} 年安排专项检查 {len(plans)} 项，超过年度上限 "
                               f"{settings.special_yearly_cap} 项（上级部署的专项检查不计）"))
    return out


def unit_due_at(unit: Unit, settings: InspectionSettings, as_of: datetime) -> datetime | None:
    dates = []
    since = unit.idle_since()
    if since is not None:
        dates += [day_start(since + timedelta(days=settings.unit_idle_warn_days)),
                  day_start(since + timedelta(days=settings.unit_idle_recall_days))]
    year = local_date(as_of).year
    dates += [_next_day(annual_due(year, settings)), _next_day(annual_due(year + 1, settings))]
    return _earliest_after(dates + _settle(unit.last_received_at, settings), as_of)


# ---- derived facts (what plans, draws and registrations tell other aggregates) -----------------------

def planned_payloads(plan: Plan) -> list[dict[str, Any]]:
    """`inspection.planned` payloads, one per explicit target of a plan."""
    if not plan.exists:
        return []
    kind = {"special": "special", "ad_hoc": "ad_hoc"}.get(plan.kind, "routine")
    return [{"target_id": t["id"], "target_name": t.get("name") or "", "plan_id": plan.plan_id, "kind": kind,
             "period_from": _iso_day(plan.period_from), "period_to": _iso_day(plan.period_to),
             "joint_depts": list(plan.joint_depts), "cancelled": plan.cancelled_on is not None}
            for t in plan.targets]


def unit_payloads(plan: Plan) -> list[tuple[str, dict[str, Any]]]:
    """(type, payload) of the unit facts a plan implies."""
    if not plan.exists:
        return []
    on = local_date(plan.registered_at).isoformat() if plan.registered_at else _iso_day(plan.period_from)
    out = [(UNIT_TRACKED, {"dept": plan.dept, "on": on})]
    cancelled = plan.cancelled_on is not None
    if plan.kind == "annual":
        out.append((UNIT_ANNUAL, {"dept": plan.dept, "on": on, "year": plan.year, "plan_id": plan.plan_id,
                                  "cancelled": cancelled}))
    if plan.kind == "special":
        out.append((UNIT_SPECIAL, {"dept": plan.dept, "on": on, "year": plan.year, "plan_id": plan.plan_id,
                                   "ordered_from_above": plan.ordered_from_above, "cancelled": cancelled}))
    return out


def registration_unit_payloads(ent: Enterprise) -> list[dict[str, Any]]:
    """`inspection_unit.registered` payloads: each department of each inspection, on its registration day."""
    days = {(dept, local_date(i.registered_at).isoformat()) for i in ent.inspections.values() for dept in i.depts}
    return [{"dept": dept, "on": on} for dept, on in sorted(days)]


def item_check(record: Any, dept: str, code: str, at: datetime) -> ItemCheck | None:
    """What a registry ItemRecord (the registry's own, or one projected from `item.changed`) says
    about item `code` for `dept` at `at`; None when the item was never published."""
    from services.registry import domain as reg

    if record is None or not record.versions:
        return None
    holding = reg.holds_item([record], dept, code, at)
    version = record.latest_version_on(at) or record.versions[0]
    return ItemCheck(holding.held, "" if holding.held else holding.message, version.category, version.area or "")


def drawn_payloads(d: Draw, plan: Plan | None = None) -> list[dict[str, Any]]:
    """`inspection.drawn` payloads for the targets of the current performed attempt."""
    cur = d.current
    if cur is None or cur.result is None:
        return []
    officers = {a["target_id"]: a["officers"] for a in cur.result.get("assignments") or ()}
    names = {t["id"]: t.get("name") or "" for t in cur.announcement.get("targets") or ()}
    return [{"target_id": t["id"], "target_name": names.get(t["id"], ""), "draw_id": d.draw_id,
             "plan_id": d.plan_id, "attempt": cur.number, "officers": officers.get(t["id"], [])}
            for t in cur.result.get("targets") or ()]


# ---- the rules as (rule_id, fn) pairs: what the plugin host serves as the built-ins ----------------
# Signature: fn(aggregate, as_of, settings_for, lookups) -> list[Finding], `settings_for(dept)` giving a
# department's InspectionSettings. A rule answers [] for aggregates it does not judge. A department
# plugin adds, replaces or switches off a rule with `zhifa_rules("inspection", dept)`.

def _per_inspection(check: Callable[..., list[Finding]], rule_id: str) -> Callable[..., list[Finding]]:
    def rule(agg, as_of, settings_for, lookups):
        if not isinstance(agg, Enterprise):
            return []
        return [f for insp in agg.ordered() for f in check(agg, insp, lookups, settings_for(insp.dept), as_of)
                if f.rule_id == rule_id]
    rule.__name__ = f"rule_{rule_id.lower().replace('-', '_')}"
    return rule


def _per_enterprise(check: Callable[..., list[Finding]]) -> Callable[..., list[Finding]]:
    def rule(agg, as_of, settings_for, lookups):
        return check(agg, settings_for, as_of) if isinstance(agg, Enterprise) else []
    rule.__name__ = f"rule_{check.__name__}"
    return rule


def _of(kind: type, evaluate_all: Callable[..., list[Finding]], rule_id: str) -> Callable[..., list[Finding]]:
    def rule(agg, as_of, settings_for, lookups):
        if not isinstance(agg, kind):
            return []
        return [f for f in evaluate_all(agg, settings_for(agg.dept), as_of) if f.rule_id == rule_id]
    rule.__name__ = f"rule_{rule_id.lower().replace('-', '_')}"
    return rule


def _approval(ent, insp, lookups, settings, as_of):
    return check_approval(ent, insp, settings, as_of)


def _registration(ent, insp, lookups, settings, as_of):
    return check_registration(ent, insp, settings, as_of)


RULE_FUNCTIONS: tuple[tuple[str, Callable[..., list[Finding]]], ...] = (
    (INSPECTOR_UNQUALIFIED, _per_inspection(check_inspectors, INSPECTOR_UNQUALIFIED)),
    (OFFICERS_MIN, _per_inspection(check_inspectors, OFFICERS_MIN)),
    (ITEM_NOT_HELD, _per_inspection(check_items, ITEM_NOT_HELD)),
    (NOT_APPROVED, _per_inspection(_approval, NOT_APPROVED)),
    (REGISTRATION_LATE, _per_inspection(_registration, REGISTRATION_LATE)),
    (FREQUENCY_CAP, _per_enterprise(check_frequency)),
    (REPEAT_INSPECTION, _per_enterprise(check_repeats)),
    (NOT_REGISTERED, _per_enterprise(check_unregistered)),
    (JOINT_SUGGESTED, _per_enterprise(check_joint_plans)),
    *((rule, _of(Plan, evaluate_plan, rule)) for rule in (PLAN_NOT_FILED, ANNUAL_NOT_PUBLISHED, SPECIAL_NOT_APPROVED)),
    *((rule, _of(Draw, evaluate_draw, rule)) for rule in (DRAW_NOT_PUBLISHED, DRAW_UNVERIFIABLE, DRAW_REPEATED)),
    *((rule, _of(Unit, evaluate_unit, rule)) for rule in (UNIT_NO_RECORDS_1Y, UNIT_NO_RECORDS_2Y,
                                                          ANNUAL_PLAN_MISSING, SPECIAL_CAP)),
)


def evaluate(agg: Any, as_of: datetime, settings: InspectionSettings | SettingsFor, lookups: Lookups | None = None,
             rules_for: Callable[[str], Iterable[tuple[str, Callable[..., Any]]]] | None = None) -> list[Finding]:
    """Every rule on one aggregate (plan, pool, draw, enterprise or unit), sorted by key.

    `rules_for(dept)`: the (rule_id, fn) pairs a department's plugins give (PluginHost.rules); each
    department's rules judge only that department's findings. None: the built-in RULE_FUNCTIONS."""
    as_of = aware(as_of)
    settings_for, lookups = _settings_for(settings), lookups or Lookups()
    if rules_for is None:
        found = [f for _, fn in RULE_FUNCTIONS for f in fn(agg, as_of, settings_for, lookups)]
    else:
        depts = agg.depts if isinstance(agg, Enterprise) else [agg.dept]
        found = [f for dept in depts for _, fn in rules_for(dept) for f in (fn(agg, as_of, settings_for, lookups) or ())
                 if f.dept == dept]
    return sorted(found, key=lambda f: f.key)
