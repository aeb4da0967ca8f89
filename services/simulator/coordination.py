"""The coordination part of the county simulator (司法局协调监督): a year of the justice bureau's work
with injected breaches of every coordination rule, the ground truth beside them, and the expected
annual evaluation scores.

`simulate_coordination(sim)` is pure and deterministic in the simulation's config (seed included).
It reads what the main generator planned (the county, its departments, the injected penalty and
personnel breaches — the findings a supervision case is opened from) and returns extra envelopes —
supervision cases (routine and key per department, one special campaign over all of them),
complaints from the 12345 hotline, normative documents, monitoring devices, jurisdiction disputes,
monthly report submissions and reviewers' evaluation scores — with `Expectation`s and, per
department, the evaluation metrics the generator intended.

Every limit is set explicitly in the facts (reply and rectification dates) or kept far from its
edge (steps done the same or the next day; breaches never done at all; late steps weeks late), so
the truth needs none of the rules' day arithmetic. `offline_findings` admits every fact as the
service would (a refusal is a generator bug), folds each aggregate with the pure domains and runs
every rule at `as_of` (10 days after the year); `check` compares per rule; `evaluation_check`
compares the scores the evaluation computes from the folded data with the intended ones.
"""
from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Iterable

from services.common.facts import Fact
from services.coordination.domain import complaints as cp
from services.coordination.domain import devices as dv
from services.coordination.domain import disputes as ds
from services.coordination.domain import evaluation as ev
from services.coordination.domain import normative as nd
from services.coordination.domain import reporting as rpt
from services.coordination.domain import supervision as sv
from services.coordination.domain.settings import DEFAULT_SETTINGS
from services.simulator.generator import CST, Expectation, Simulation

AS_OF_DAYS = 10
NAMESPACE = uuid.UUID("7d0f3a62-1c5e-4b8a-9e27-5f4c8d2b6a91")
# the evaluation's computed metrics this part plans (case review: no plan is drawn in the simulation)
PLANNED_METRICS = ("supervision_on_time", "findings_open", "complaints_on_time", "normative_on_time")
SERIOUS_RULES = frozenset({sv.RULE_REPLY, sv.RULE_RECTIFY, dv.RULE_UNPUBLISHED, ds.RULE_UNRESOLVED})
BREACHES = (sv.RULE_REPLY, sv.RULE_RECTIFY, cp.RULE_ROUTE, "COO-CPL-ACK+ANSWER", nd.RULE_FILING,
            dv.RULE_UNPUBLISHED, "COO-DSP-ANSWER+UNRESOLVED", rpt.RULE_MISSING)


@dataclass
class Plan:
    """What the generator intends for one department's evaluation (limits due in the year, met late or not)."""

    sup_due: int = 0
    sup_late: int = 0
    cpl_due: int = 0
    cpl_late: int = 0
    doc_due: int = 0
    doc_late: int = 0
    training: float = 0.0

    @staticmethod
    def share(due: int, late: int) -> float:
        return 100.0 if due == 0 else round(100 * (due - late) / due, 1)


@dataclass
class CoordinationSimulation:
    events: list[dict]
    expectations: list[Expectation]
    as_of: datetime
    plans: dict[str, Plan] = field(default_factory=dict)
    bureau: str = ""


def _at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), CST)


class _Gen:
    def __init__(self, sim: Simulation):
        self.sim = sim
        self.rng = random.Random(f"coordination:{sim.config.seed}:{sim.config.tag}")
        self.year, self.region = sim.config.year, sim.config.region
        self.bureau, self.hotline = f"{self.region}-sfj", f"{self.region}-rx12345"
        self.tag = f"{sim.config.tag}-" if sim.config.tag else ""
        self.depts = sorted(sim.depts)
        self.events: list[dict] = []
        self.expectations: list[Expectation] = []
        self.plans = {d: Plan() for d in self.depts}
        self.n = 0

    # -- helpers ------------------------------------------------------------------------------------
    def day(self, month: int, dom: int) -> date:
        return date(self.year, month, dom)

    def emit(self, type_: str, on: date, sender: str, hour: int = 10, **payload) -> None:
        self.n += 1
        body = {k: v for k, v in payload.items() if v is not None}
        self.events.append({
            "event_id": str(uuid.uuid5(NAMESPACE, f"{self.sim.config.seed}:{self.sim.config.tag}:{self.n}")),
            "type": type_, "schema_version": 1, "occurred_at": _at(on, hour).isoformat(), "dept": sender,
            "source": f"{sender}-system", "payload": body})

    def expect(self, rule: str, subject_type: str, subject_id: str, dept: str, since: date, note: str) -> None:
        self.expectations.append(Expectation(rule, subject_type, subject_id, dept, _at(since, 0), None, note))

    def refs(self, dept: str) -> list[str]:
        return [f"{x.rule_id}:{x.subject_type}:{x.subject_id}" for x in self.sim.expectations if x.dept == dept][:3]

    # -- supervision cases ---------------------------------------------------------------------------
    def case(self, dept: str, n: int, kind: str, *, issued: date, reply_after: int | None, doc_kind="opinion",
             rectify_after: int | None = None, reply_days: int = 20, rect_days: int = 45, note: str = "") -> str:
        """One case for `dept`: a document with explicit limits; the reply `reply_after` days after
        issue (None: never), the rectification likewise when asked; settled and closed when all was done."""
        cid = f"JD-{self.tag}{self.year}-{dept.rsplit('-', 1)[-1]}-{n:03d}"
        refs = self.refs(dept)
        origin = "finding" if refs else "initiative"
        self.emit(sv.OPENED, issued, self.bureau, case_id=cid, kind=kind, origin=origin, origin_refs=refs,
                  depts=[dept], title=f"{dept} 执法监督（{sv.KIND_LABELS[kind]}）", checklist=[], opened_on=issued.isoformat())
        reply_due, rect_due = issued + timedelta(days=reply_days), issued + timedelta(days=rect_days)
        rectify = rectify_after is not None or note == "rectify-never"
        self.emit(sv.ISSUED, issued, self.bureau, hour=11, case_id=cid, dept=dept, doc_kind=doc_kind,
                  doc_no=f"{self.region}司监〔{self.year}〕{self.n}号", issued_on=issued.isoformat(),
                  reply_due=reply_due.isoformat(), rectification_required=rectify,
                  rectification_due=rect_due.isoformat() if rectify else None, summary="请说明情况并整改")
        plan = self.plans[dept]
        plan.sup_due += 1 + rectify
        if reply_after is None:
            plan.sup_late += 1
            self.expect(sv.RULE_REPLY, "supervision_case", f"{cid}:{dept}", dept, reply_due + timedelta(days=1),
                        "监督文书逾期未答复")
            return cid
        replied = issued + timedelta(days=reply_after)
        plan.sup_late += replied > reply_due
        self.emit(sv.REPLIED, replied, dept, case_id=cid, dept=dept, replied_on=replied.isoformat(),
                  content="已核实并整改")
        if rectify:
            if rectify_after is None:
                plan.sup_late += 1
                self.expect(sv.RULE_RECTIFY, "supervision_case", f"{cid}:{dept}", dept, rect_due + timedelta(days=1),
                            "逾期未完成整改")
                return cid
            done = issued + timedelta(days=rectify_after)
            plan.sup_late += done > rect_due
            self.emit(sv.RECTIFIED, done, dept, case_id=cid, dept=dept, rectified_on=done.isoformat(),
                      content="整改完成")
        last = max(replied, issued + timedelta(days=rectify_after or 0)) + timedelta(days=1)
        self.emit(sv.VERIFIED, last, self.bureau, case_id=cid, dept=dept, passed=True, verified_on=last.isoformat())
        self.emit(sv.CLOSED, last, self.bureau, hour=15, case_id=cid, closed_on=last.isoformat(), conclusion="予以办结")
        return cid

    def special_campaign(self) -> None:
        cid = f"JD-{self.tag}{self.year}-special"
        opened = self.day(5, 6)
        self.emit(sv.OPENED, opened, self.bureau, case_id=cid, kind="special", origin="initiative", origin_refs=[],
                  depts=self.depts, title="涉企行政执法专项监督", checklist=["执法主体资格", "证件管理", "全过程记录"],
                  opened_on=opened.isoformat())
        for i, dept in enumerate(self.depts):
            issued = opened + timedelta(days=1)
            due = issued + timedelta(days=15)
            self.emit(sv.ISSUED, issued, self.bureau, case_id=cid, dept=dept, doc_kind="notice",
                      doc_no=f"{self.region}司监通〔{self.year}〕{i + 1}号", issued_on=issued.isoformat(),
                      reply_due=due.isoformat(), rectification_required=False)
            self.plans[dept].sup_due += 1
            replied = issued + timedelta(days=3 + i)
            self.emit(sv.REPLIED, replied, dept, case_id=cid, dept=dept, replied_on=replied.isoformat(), content="自查报告")
            self.emit(sv.VERIFIED, replied + timedelta(days=1), self.bureau, case_id=cid, dept=dept, passed=True,
                      verified_on=(replied + timedelta(days=1)).isoformat())
        end = opened + timedelta(days=30)
        self.emit(sv.CLOSED, end, self.bureau, case_id=cid, closed_on=end.isoformat(), conclusion="专项监督完成")

    # -- complaints ----------------------------------------------------------------------------------
    def complaint(self, dept: str, n: int, received: date, *, route: bool = True, answer_after: int | None = 6,
                  note: str = "") -> None:
        cid = f"TS-{self.tag}{self.year}-{dept.rsplit('-', 1)[-1]}-{n:03d}"
        self.emit(cp.RECEIVED, received, self.hotline, complaint_id=cid, channel="hotline_12345",
                  received_on=received.isoformat(), summary="群众反映执法不作为", party_id=f"P-{dept}-{n}",
                  complainant={"name": "市民", "phone": "13800000000"})
        if not route:
            self.expect(cp.RULE_ROUTE, "complaint", cid, self.hotline, received + timedelta(days=20), "投诉举报未转办")
            return
        self.emit(cp.ROUTED, received, self.bureau, hour=15, complaint_id=cid, dept=dept, routed_on=received.isoformat())
        plan = self.plans[dept]
        plan.cpl_due += 2
        if answer_after is None:
            plan.cpl_late += 2
            since = received + timedelta(days=40)
            self.expect(cp.RULE_ACK, "complaint", cid, dept, since, "逾期未受理")
            self.expect(cp.RULE_ANSWER, "complaint", cid, dept, since, "逾期未答复")
            return
        self.emit(cp.ACKNOWLEDGED, received + timedelta(days=1), dept, complaint_id=cid, dept=dept,
                  acknowledged_on=(received + timedelta(days=1)).isoformat())
        answered = received + timedelta(days=answer_after)
        plan.cpl_late += answer_after > 40    # late answers are weeks late; timely ones well inside 15 wd
        self.emit(cp.ANSWERED, answered, dept, complaint_id=cid, dept=dept, answered_on=answered.isoformat(),
                  answer="已处理并回复")
        self.emit(cp.FEEDBACK, answered + timedelta(days=2), self.bureau, complaint_id=cid, satisfied=True,
                  feedback_on=(answered + timedelta(days=2)).isoformat())

    # -- normative documents, devices, disputes, monthly reports ---------------------------------------
    def document(self, dept: str, n: int, issued: date, filed_after: int | None) -> None:
        doc_id = f"GF-{self.tag}{dept}-{self.year}-{n:02d}"
        self.emit(nd.ISSUED, issued, dept, doc_id=doc_id, title="行政执法规范性文件", doc_no=f"{dept}规〔{self.year}〕{n}号",
                  issued_on=issued.isoformat())
        due = issued + timedelta(days=DEFAULT_SETTINGS.normative_filing_days)
        plan = self.plans[dept]
        if filed_after is None:
            # overdue from the day after its limit — for a late-December document only after the year
            self.expect(nd.RULE_FILING, "normative_document", doc_id, dept, due + timedelta(days=1), "规范性文件未备案")
            if due < self.day(12, 31):
                plan.doc_due += 1
                plan.doc_late += 1
            return
        plan.doc_due += 1
        plan.doc_late += filed_after > DEFAULT_SETTINGS.normative_filing_days
        self.emit(nd.FILED, issued + timedelta(days=filed_after), dept, doc_id=doc_id,
                  filed_on=(issued + timedelta(days=filed_after)).isoformat())

    def device(self, dept: str, n: int, registered: date, use_after: int, register: bool = True) -> None:
        dev = f"{dept}-cam-{self.tag}{n:03d}"
        if register:
            self.emit(dv.REGISTERED, registered, dept, device_id=dev, location="县城主干道路口", purpose="非现场执法",
                      registered_on=registered.isoformat())
            self.emit(dv.REVIEWED, registered + timedelta(days=4), self.bureau, device_id=dev, passed=True,
                      reviewed_on=(registered + timedelta(days=4)).isoformat())
            self.emit(dv.PUBLISHED, registered + timedelta(days=9), dept, device_id=dev,
                      published_on=(registered + timedelta(days=9)).isoformat())
        used = registered + timedelta(days=use_after)
        self.emit(dv.USED, used, dept, device_id=dev, used_on=used.isoformat())
        if not register or use_after < 9:
            self.expect(dv.RULE_UNPUBLISHED, "device", dev, dept, used, "未公布即使用监控设备")

    def dispute(self, raiser: str, other: str, n: int, raised: date, settle: bool) -> None:
        did = f"GX-{self.tag}{self.year}-{n:03d}"
        self.emit(ds.RAISED, raised, raiser, dispute_id=did, matter="同一违法行为的管辖", parties=[other],
                  raised_on=raised.isoformat(), filed_on=(raised - timedelta(days=3)).isoformat())
        if not settle:
            self.expect(ds.RULE_ANSWER, "dispute", f"{did}:{other}", other, raised + timedelta(days=20), "管辖争议未答复")
            self.expect(ds.RULE_UNRESOLVED, "dispute", did, raiser, raised + timedelta(days=32), "管辖争议久拖未决")
            return
        self.emit(ds.ANSWERED, raised + timedelta(days=1), other, dispute_id=did, agrees=True,
                  answered_on=(raised + timedelta(days=1)).isoformat())
        self.emit(ds.AGREED, raised + timedelta(days=5), self.bureau, dispute_id=did, lead_dept=raiser,
                  settled_on=(raised + timedelta(days=5)).isoformat())

    def monthly_reports(self, missing: tuple[str, int], late: tuple[str, int]) -> None:
        for month in range(1, 12):
            key = f"{self.year}-{month:02d}"
            first = self.day(month + 1, 1)
            self.emit(rpt.OPENED, first, self.bureau, hour=8, month=key, roster=self.depts)
            for dept in self.depts:
                if (dept, month) == missing:
                    self.expect(rpt.RULE_MISSING, "monthly_report", f"{key}:{dept}", dept, first + timedelta(days=15),
                                "月报未报送")
                    continue
                on = first + timedelta(days=20 if (dept, month) == late else 4 + min(self.depts.index(dept), 4))
                self.emit(rpt.SUBMITTED, on, dept, month=key, submitted_on=on.isoformat())

    # -- the year ----------------------------------------------------------------------------------------
    def build(self) -> CoordinationSimulation:
        rng, depts = self.rng, self.depts
        breach_of = {rule: depts[(i + rng.randrange(len(depts))) % len(depts)] for i, rule in enumerate(BREACHES)}
        for i, dept in enumerate(depts):
            self.case(dept, 1, "routine", issued=self.day(3, 4 + i), reply_after=5, rectify_after=30)
            self.case(dept, 2, "key", issued=self.day(6, 3 + i), reply_after=26, doc_kind="notice")   # replied late
            self.complaint(dept, 1, self.day(4, 1 + i))
            self.complaint(dept, 2, self.day(7, 1 + i), answer_after=50)                              # answered late
            self.document(dept, 1, self.day(5, 10 + i), filed_after=10)
            self.document(dept, 2, self.day(2, 1 + i), filed_after=59)                                # filed late
            self.document(dept, 3, self.day(12, 20), filed_after=None)                                # not yet due
            self.device(dept, 1, self.day(3, 1 + i), use_after=30)
            self.dispute(dept, depts[(i + 1) % len(depts)], 10 + i, self.day(4, 6 + i), settle=True)
            self.plans[dept].training = float(70 + rng.randrange(0, 31))
            self.emit(ev.ENTERED, self.day(12, 28), self.bureau, year=str(self.year), dept=dept, indicator="training",
                      score=self.plans[dept].training, evidence="年度执法培训与制度建设台账")
        self.special_campaign()
        self.case(breach_of[sv.RULE_REPLY], 3, "routine", issued=self.day(9, 2), reply_after=None, doc_kind="notice")
        self.case(breach_of[sv.RULE_RECTIFY], 4, "key", issued=self.day(8, 5), reply_after=4, note="rectify-never")
        self.complaint(breach_of[cp.RULE_ROUTE], 3, self.day(11, 2), route=False)
        self.complaint(breach_of["COO-CPL-ACK+ANSWER"], 4, self.day(10, 8), answer_after=None)
        self.document(breach_of[nd.RULE_FILING], 4, self.day(9, 1), filed_after=None)
        self.device(breach_of[dv.RULE_UNPUBLISHED], 2, self.day(6, 1), use_after=7)                 # used before publication
        self.device(breach_of[dv.RULE_UNPUBLISHED], 3, self.day(7, 1), use_after=0, register=False)  # never registered
        raiser = breach_of["COO-DSP-ANSWER+UNRESOLVED"]
        self.dispute(raiser, depts[(depts.index(raiser) + 1) % len(depts)], 99, self.day(10, 12), settle=False)
        self.monthly_reports(missing=(breach_of[rpt.RULE_MISSING], 8), late=(depts[0], 9))
        self.events.sort(key=lambda e: e["occurred_at"])
        return CoordinationSimulation(self.events, self.expectations, self.sim.end + timedelta(days=AS_OF_DAYS),
                                      self.plans, self.bureau)


def simulate_coordination(sim: Simulation) -> CoordinationSimulation:
    if len(sim.depts) < 2:
        raise ValueError("the coordination part needs at least two departments (disputes)")
    return _Gen(sim).build()


# ---- offline: the pure domains over the stream --------------------------------------------------------------

KINDS = {  # fact-type prefix -> (id field, fold, admit, evaluate(agg, as_of), snapshot(agg, as_of))
    "supervision.": ("case_id", sv.case_from_facts, sv.admit, sv.evaluate, sv.snapshot),
    "complaint.": ("complaint_id", cp.complaint_from_facts, cp.admit, cp.evaluate, cp.snapshot),
    "normative_document.": ("doc_id", nd.document_from_facts, nd.admit, nd.evaluate, nd.snapshot),
    "device.": ("device_id", dv.device_from_facts, dv.admit, dv.evaluate, dv.snapshot),
    "dispute.": ("dispute_id", ds.dispute_from_facts, ds.admit, ds.evaluate, ds.snapshot),
    "monthly_report.": ("month", rpt.month_from_facts, rpt.admit, rpt.evaluate, rpt.snapshot),
    "evaluation.": ("year", ev.year_from_facts, ev.admit, None, None),
}


def fold_all(events: Iterable[dict]) -> dict[str, dict[str, object]]:
    """Every coordination aggregate folded from the stream, each fact admitted first as the service would."""
    facts: dict[tuple[str, str], list[Fact]] = defaultdict(list)
    for seq, env in enumerate(events):
        prefix = next((p for p in KINDS if env["type"].startswith(p)), None)
        if prefix is None:
            continue
        id_field, fold, admit, _, _ = KINDS[prefix]
        key = (prefix, str(env["payload"][id_field]))
        fact = Fact.from_envelope(env, seq=seq)
        admit(fold(facts[key]) if facts[key] else None, fact)
        facts[key].append(fact)
    out: dict[str, dict[str, object]] = defaultdict(dict)
    for (prefix, agg_id), fs in facts.items():
        out[prefix][agg_id] = KINDS[prefix][1](fs)
    return out


def offline_findings(events: Iterable[dict], as_of: datetime) -> list:
    found = []
    for prefix, aggs in fold_all(events).items():
        evaluate = KINDS[prefix][3]
        if evaluate is not None:
            for agg in aggs.values():
                found += evaluate(agg, as_of)
    return found


def check(sim: Simulation, part: CoordinationSimulation | None = None):
    """Per coordination rule (a `report.Comparison`): expected / raised / missed / spurious at `as_of`."""
    from services.simulator.report import compare_findings

    part = part or simulate_coordination(sim)
    return compare_findings(part.expectations, offline_findings(part.events, part.as_of), part.as_of)


def evaluation_check(sim: Simulation, part: CoordinationSimulation | None = None) -> list[dict]:
    """Per department: the evaluation's scores computed from the folded data against the intended ones.

    The inbox holds only this part's findings here (the suite's own would add the other services').
    """
    part = part or simulate_coordination(sim)
    folded = fold_all(part.events)
    snap = lambda prefix: [KINDS[prefix][4](a, part.as_of) for a in folded[prefix].values()]  # noqa: E731
    findings = offline_findings(part.events, part.as_of)
    entries = [{"finding_key": f.key, "dept": f.dept, "open": True, "severity": f.severity} for f in findings]
    year, day = sim.config.year, date(sim.config.year, 12, 31)
    indicators = DEFAULT_SETTINGS.evaluation_indicators
    computed = {}
    for dept in part.plans:
        computed[dept] = {}
        for ind in indicators:
            if ind["source"] == "computed":
                metrics = ev.metrics_for(dept, year, day, cases=snap("supervision."), complaints=snap("complaint."),
                                         documents=snap("normative_document."), entries=entries, review_results={},
                                         indicator=ind)
                computed[dept][ind["metric"]] = metrics[ind["metric"]]
    entered = folded["evaluation."][str(year)].entered
    rows = {r["dept"]: r for r in ev.score_departments(indicators, computed, entered)}
    out = []
    for dept, plan in part.plans.items():
        serious = sum(1 for x in part.expectations if x.dept == dept and x.rule_id in SERIOUS_RULES)
        want = {"supervision_on_time": Plan.share(plan.sup_due, plan.sup_late),
                "findings_open": max(0.0, 100.0 - 10 * serious),
                "complaints_on_time": Plan.share(plan.cpl_due, plan.cpl_late),
                "normative_on_time": Plan.share(plan.doc_due, plan.doc_late)}
        expected_total = round(sum(ind["weight"] * (want[ind["metric"]] if ind["source"] == "computed"
                                                    and ind["metric"] in want else
                                                    plan.training if ind["source"] == "entered" else 0) / 100
                                   for ind in indicators), 2)
        got = {i["indicator"]: i["score"] for i in rows[dept]["items"]}
        got_metrics = {ind["metric"]: got[ind["indicator"]] for ind in indicators if ind["source"] == "computed"}
        out.append({"dept": dept, "expected": want, "computed": {m: got_metrics[m] for m in PLANNED_METRICS},
                    "expected_total": expected_total, "total": rows[dept]["total"], "rank": rows[dept]["rank"],
                    "ok": all(abs(got_metrics[m] - want[m]) < 0.05 for m in PLANNED_METRICS)
                    and abs(rows[dept]["total"] - expected_total) < 0.05})
    return out


def check_report(sim: Simulation, out=print) -> bool:
    """Print the coordination part's offline acceptance table and evaluation check; True when exact."""
    from services.simulator.report import format_table

    part = simulate_coordination(sim)
    comparison = check(sim, part)
    out(format_table(comparison, f"协调监督部分（{len(part.events)} 条事件）："))
    scores = evaluation_check(sim, part)
    for row in scores:
        out(f"  评议考核 {row['dept']}：预期 {row['expected_total']}，计算 {row['total']}（第 {row['rank']} 名）"
            + ("" if row["ok"] else "  ← 不一致"))
    ok = comparison.ok and all(r["ok"] for r in scores)
    out("协调监督部分：" + ("全部规则零漏报、零误报，考核得分与预期一致" if ok else "存在漏报、误报或得分不一致"))
    return ok


# ---- live: through the real ingress into a running coordination service ---------------------------------------

COLLECTIONS = ("supervision_cases", "complaints", "normative_documents", "devices", "disputes", "report_months")


def stored_findings(db) -> set[tuple[str, str, str, str]]:
    """Open findings kept in the coordination service's aggregate documents (database `db`)."""
    out = set()
    for name in COLLECTIONS:
        for doc in db[name].find({"findings_count": {"$ne": 0}}, {"findings_open": 1}):
            out |= {(f["rule_id"], f["subject_type"], f["subject_id"], f["dept"])
                    for f in (doc.get("findings_open") or {}).values()}
    return out


def run_live(sim: Simulation, amqp_uri: str, mongo_uri: str, db_prefix: str = "zhifa_", timeout: float = 180,
             out=print, part: CoordinationSimulation | None = None):
    """Publish the part through the AMQP ingress of a running suite and compare the coordination
    service's stored open findings with the truth at the suite's "now" (facts arrive in any order:
    the service holds early ones and folds in time order) until they agree or `timeout` passes."""
    import time as _time

    import pymongo

    from services.simulator.publish import publish_amqp
    from services.simulator.report import compare, format_table

    part = part or simulate_coordination(sim)
    stats = publish_amqp(part.events, amqp_uri)
    out(f"协调监督部分：已发布 {stats.published} 条（确认 {stats.confirmed}）")
    db = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000)[f"{db_prefix}coordination"]
    mine = {x.subject_id for x in part.expectations}
    deadline = _time.monotonic() + timeout
    while True:
        as_of = datetime.now(CST)
        expected = {x.key for x in part.expectations if x.since <= as_of and (x.until is None or as_of < x.until)}
        stored = {k for k in stored_findings(db) if k[2] in mine or k[2].split(":")[0] in {s.split(":")[0] for s in mine}}
        comparison = compare(expected, stored, as_of)
        if comparison.ok or _time.monotonic() > deadline:
            break
        _time.sleep(2)
    out(format_table(comparison, "协调监督部分（联调，服务数据库中的未关闭监督发现）："))
    return comparison
