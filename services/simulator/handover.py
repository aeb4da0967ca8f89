"""The handover part of the county simulator (行刑衔接): handovers of a simulated year reported by the
department, the police and the procuratorate, each under its own code, with one injected breach of
every handover rule and the ground truth beside it.

`simulate_handovers(sim)` is pure and deterministic in the simulation's config (seed included). It
reads what the main generator planned — departments, officers (who may act on which day), penalty
cases (a case it handed over, a case it fined, a case injected as 以罚代刑) — and returns extra
`handover.*` envelopes and `Expectation`s:

- one handover for every case the main generator transferred to the police (clean, every step);
- clean handovers along every path (opened; refused, reviewed, supervised and opened; forwarded;
  refusal accepted and the penalty case reopened; returned by the procuratorate and reopened);
- one handover per breach, on a subject of its own, so one breach never causes another rule;
- `HOV-PENALTY-INSTEAD` expected on each case the main generator injected as `PEN-CRIME-NO-HANDOVER`
  (same facts: a crime threshold reached, a fine, no transfer), and `HOV-PENALTY-CONTINUES` on a
  fined case handed over before its decision.

Late steps are late by a wide margin (12 days for a 3-day limit, 30 hours for a 24-hour one) and
timely ones are early (hours, one day), so the truth needs no deadline arithmetic of the rules.
`offline_findings` runs the pure domains: penalty cases folded and summarised as penalty's
`case.changed` (the item's legal basis from the registry domain), then every handover rule;
`check(sim)` compares them with the truth per rule at `as_of` (10 days after the year);
`check_report(sim)` prints that table for `python -m services.simulator check`; `run_live` publishes
the part to a running suite (after the main stream) for `python -m services.simulator run`.
"""
from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Iterable

from services.common.facts import Fact
from services.common.workdays import DEFAULT_CALENDAR
from services.handover import domain as d
from services.simulator.generator import CST, Expectation, Simulation, crime_thresholds

AS_OF_DAYS = 10
NAMESPACE = uuid.UUID("3c1d7e55-9a0b-4c8e-8f61-2b7a5d4e9c10")
DOCS = ["transfer_letter", "investigation_report", "exhibit_list"]
CRIMES = ("涉嫌销售伪劣产品罪", "涉嫌污染环境罪", "涉嫌生产、销售不符合安全标准的食品罪", "涉嫌假冒注册商标罪")
LATE_DAYS = 12


@dataclass
class HandoverSimulation:
    events: list[dict]
    expectations: list[Expectation]
    as_of: datetime


def _case_events(sim: Simulation) -> dict[str, list[dict]]:
    cases: dict[str, list[dict]] = defaultdict(list)
    for env in sim.events:
        if env["type"].startswith("case."):
            cases[env["payload"]["case_id"]].append(env)
    return cases


class _Gen:
    def __init__(self, sim: Simulation):
        self.sim = sim
        self.rng = random.Random(f"handover:{sim.config.seed}:{sim.config.tag}")
        self.year, self.region = sim.config.year, sim.config.region
        self.police, self.city_police = f"{self.region}-ga", f"{self.region[:4]}00-ga"
        self.jcy = f"{self.region}-jcy"
        self.events: list[dict] = []
        self.expectations: list[Expectation] = []
        self.n = 0

    # -- helpers -----------------------------------------------------------------------------------
    def emit(self, type_: str, at: datetime, dept: str, hid: str, **payload) -> datetime:
        self.n += 1
        body = {"handover_id": hid, **{k: v for k, v in payload.items() if v is not None}}
        self.events.append({"event_id": str(uuid.uuid5(NAMESPACE, f"{self.sim.config.seed}:{self.sim.config.tag}:{self.n}")),
                            "type": f"handover.{type_}", "schema_version": 1, "occurred_at": at.isoformat(),
                            "dept": dept, "source": f"{dept}-system", "payload": body})
        return at

    def expect(self, rule: str, subject_type: str, subject_id: str, dept: str, since: datetime, note: str) -> None:
        self.expectations.append(Expectation(rule, subject_type, subject_id, dept, since, None, note))

    def workday(self, month: int, day: int) -> date:
        current = date(self.year, month, day)
        while not DEFAULT_CALENDAR.is_workday(current):
            current += timedelta(days=1)
        return current

    def at(self, day: date, hour: int = 9, minute: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute), CST)

    def team(self, dept: str, day: date, k: int = 2) -> list[str]:
        ok = sorted(o.officer_id for o in self.sim.officers if o.dept == dept and o.usable_on(day))
        if len(ok) < k:  # the team rule counts people, not credentials: any officers of the department
            ok = sorted(o.officer_id for o in self.sim.officers if o.dept == dept and o.kind == "officer")
        if len(ok) < k:
            raise ValueError(f"{dept}: fewer than {k} officers usable on {day}")
        return self.rng.sample(ok, k)

    def hid(self, dept: str, kind: str = "YS") -> str:
        """A handover id like the main generator's case ids: the simulation's `tag` tells runs apart."""
        self.n_h = getattr(self, "n_h", 0) + 1
        tag = f"{self.sim.config.tag}-" if self.sim.config.tag else ""
        return f"{dept}-{kind}-{tag}{self.year}-{self.n_h:03d}"

    # -- building blocks (every step on time unless told) -------------------------------------------
    def raise_(self, dept: str, start: datetime, *, case_id: str | None = None, officers: int = 2,
               report: bool = True) -> str:
        hid = self.hid(dept)
        self.emit("suspicion_raised", start, dept, hid, case_id=case_id, suspected_crime=self.rng.choice(CRIMES),
                  officers=self.team(dept, start.date(), 2)[:officers],
                  report_ref=f"移报〔{self.year}〕{self.n_h}号" if report else None,
                  summary="专案组核实后认为涉案数额达到刑事立案追诉标准")
        return hid

    def transfer(self, dept: str, hid: str, start: datetime, *, head_after=timedelta(hours=20),
                 transfer_after=timedelta(hours=2), docs=DOCS, copy: bool = True) -> datetime:
        approved = self.emit("head_decided", start + head_after, dept, hid, approved=True, head="局长")
        sent = approved + transfer_after
        self.emit("transferred", sent, dept, hid, police_dept=self.police, police_unit="公安局经济犯罪侦查大队",
                  transfer_no=f"移〔{self.year}〕{self.n_h}号", documents=list(docs), copy_to=self.jcy if copy else None)
        return sent

    def police_opens(self, dept: str, hid: str, received: datetime, *, police: str | None = None,
                     decide_after=timedelta(days=1), exhibits_after=timedelta(days=1)) -> datetime:
        police = police or self.police
        self.emit("received", received, police, hid, receipt_no=f"回〔{self.year}〕{self.n_h}号")
        opened = self.emit("police_decided", received + decide_after, police, hid, opened=True,
                           notice_no=f"立字〔{self.year}〕{self.n_h}号")
        return self.emit("exhibits_handed_over", opened + exhibits_after, dept, hid, exhibit_list_ref=f"物移{self.n_h}")

    def refused(self, hid: str, received: datetime) -> datetime:
        self.emit("received", received, self.police, hid)
        return self.emit("police_decided", received + timedelta(hours=20), self.police, hid, opened=False,
                         reasons="现有证据不能证明涉案数额达到立案追诉标准")

    # -- the year ------------------------------------------------------------------------------------
    def build(self) -> HandoverSimulation:
        cases = _case_events(self.sim)
        depts = [dept for dept in self.sim.depts
                 if sum(1 for o in self.sim.officers if o.dept == dept and o.kind == "officer") >= 3]
        a, b = depts[0], depts[1 % len(depts)]
        # 1. every case the main generator transferred to the police gets its handover, clean
        for cid, evs in sorted(cases.items()):
            moved = [e for e in evs if e["type"] == "case.transferred_to_police"]
            if not moved:
                continue
            dept, sent = moved[0]["dept"], datetime.fromisoformat(moved[0]["occurred_at"])
            hid = self.raise_(dept, sent - timedelta(hours=26), case_id=cid)
            self.transfer(dept, hid, sent - timedelta(hours=26), head_after=timedelta(hours=24),
                          transfer_after=timedelta(hours=2))
            self.police_opens(dept, hid, sent + timedelta(hours=1))
        # 2. clean handovers along every path
        for month, dept in ((2, a), (5, b), (9, a)):
            start = self.at(self.workday(month, 10), 10)
            sent = self.transfer(dept, (hid := self.raise_(dept, start)), start)
            self.police_opens(dept, hid, sent + timedelta(hours=1))
        start = self.at(self.workday(3, 16), 10)                        # refused, reviewed, supervised, opened
        hid = self.raise_(a, start)
        refusal = self.refused(hid, self.transfer(a, hid, start) + timedelta(hours=1))
        asked = self.emit("review_requested", refusal + timedelta(days=1), a, hid, reasons="涉案数额经审计已达标准")
        answer = self.emit("review_answered", asked + timedelta(days=1), self.police, hid, opened=False, reasons="维持")
        suggested = self.emit("supervision_suggested", answer + timedelta(days=1), a, hid, procuratorate_dept=self.jcy)
        ordered = self.emit("supervision_outcome", suggested + timedelta(days=2), self.jcy, hid, outcome="notice_to_open")
        opened = self.emit("police_decided", ordered + timedelta(days=1), self.police, hid, opened=True)
        self.emit("exhibits_handed_over", opened + timedelta(days=1), a, hid)
        start = self.at(self.workday(4, 14), 10)                        # forwarded to the city police
        hid = self.raise_(b, start)
        got = self.transfer(b, hid, start) + timedelta(hours=1)
        self.emit("received", got, self.police, hid)
        moved = self.emit("forwarded", got + timedelta(hours=3), self.police, hid, to_police_dept=self.city_police,
                          to_police_unit="市公安局食品药品环境犯罪侦查支队", reason="跨县案件由市局管辖")
        self.police_opens(b, hid, moved + timedelta(hours=2), police=self.city_police)
        start = self.at(self.workday(6, 9), 10)                         # refusal accepted, penalty reopened
        hid = self.raise_(b, start)
        refusal = self.refused(hid, self.transfer(b, hid, start) + timedelta(hours=1))
        self.emit("penalty_case_opened", refusal + timedelta(days=2), b, hid, case_id=f"{hid}-XZ", mode="reopened")
        rid = self.hid(self.jcy, "FX")                                  # returned by the procuratorate, opened
        back = self.emit("returned", self.at(self.workday(7, 7), 15), self.jcy, rid, to_dept=a,
                         reason="不起诉，但依法应当给予行政处罚", opinion="建议依法给予行政处罚")
        self.emit("penalty_case_opened", back + timedelta(days=3), a, rid, case_id=f"{rid}-XZ")
        # 3. one breach per rule, each on its own handover
        self.breaches(a, b, cases)
        return HandoverSimulation(self.events, self.expectations,
                                  self.sim.end + timedelta(days=AS_OF_DAYS))

    def breaches(self, a: str, b: str, cases: dict[str, list[dict]]) -> None:
        late = timedelta(days=LATE_DAYS)
        refuse = {"approved": False, "head": "局长", "reasons": "经复核涉案数额未达追诉标准"}

        def start_on(month: int, day: int) -> datetime:
            return self.at(self.workday(month, day), 10)

        s = start_on(2, 3)
        hid = self.raise_(a, s, officers=1, report=False)
        self.emit("head_decided", s + timedelta(hours=20), a, hid, **refuse)
        self.expect(d.SUSPICION_TEAM, "handover", hid, a, s, "专案组仅一人且无书面报告")

        s = start_on(2, 17)
        hid = self.raise_(b, s)
        self.emit("head_decided", s + late, b, hid, **refuse)
        self.expect(d.HEAD_DECISION_LATE, "handover", hid, b, s + late, "负责人超过3日才作出决定")

        s = start_on(3, 3)
        hid = self.raise_(a, s)
        self.emit("head_decided", s + timedelta(hours=20), a, hid, approved=False, head="局长")
        self.expect(d.REFUSED_NO_REASON, "handover", hid, a, s, "负责人不批准移送且未说明理由")

        s = start_on(3, 24)
        hid = self.raise_(b, s)
        sent = self.transfer(b, hid, s, transfer_after=timedelta(hours=30))
        self.police_opens(b, hid, sent + timedelta(hours=1))
        self.expect(d.TRANSFER_LATE, "handover", hid, b, sent, "批准后超过24小时才移送")

        s = start_on(4, 7)
        hid = self.raise_(a, s)
        sent = self.transfer(a, hid, s, docs=["transfer_letter", "investigation_report"])
        self.police_opens(a, hid, sent + timedelta(hours=1))
        self.expect(d.DOCUMENTS_INCOMPLETE, "handover", hid, a, sent, "移送材料缺少涉案物品清单")

        s = start_on(4, 21)
        hid = self.raise_(b, s)
        sent = self.transfer(b, hid, s, copy=False)
        self.police_opens(b, hid, sent + timedelta(hours=1))
        self.expect(d.NO_PROCURATORATE_COPY, "handover", hid, b, sent + timedelta(hours=24), "未抄送人民检察院")

        s = start_on(5, 12)
        hid = self.raise_(a, s)
        got = self.transfer(a, hid, s) + timedelta(hours=1)
        self.emit("received", got, self.police, hid)
        moved = self.emit("forwarded", got + timedelta(hours=30), self.police, hid, to_police_dept=self.city_police)
        self.police_opens(a, hid, moved + timedelta(hours=2), police=self.city_police)
        self.expect(d.FORWARD_LATE, "handover", hid, self.police, moved, "公安机关超过24小时才转送")

        s = start_on(5, 26)
        hid = self.raise_(b, s)
        got = self.transfer(b, hid, s) + timedelta(hours=1)
        self.police_opens(b, hid, got, decide_after=late)
        self.expect(d.POLICE_DECISION_LATE, "handover", hid, self.police, got + late, "公安机关超过3日才决定立案")

        s = start_on(6, 16)
        hid = self.raise_(a, s)
        refusal = self.refused(hid, self.transfer(a, hid, s) + timedelta(hours=1))
        asked = self.emit("review_requested", refusal + late, a, hid)
        self.emit("review_answered", asked + timedelta(days=1), self.police, hid, opened=False, reasons="维持")
        self.expect(d.REVIEW_REQUEST_LATE, "handover", hid, a, asked, "超过3日才提请复议")

        s = start_on(7, 14)
        hid = self.raise_(b, s)
        refusal = self.refused(hid, self.transfer(b, hid, s) + timedelta(hours=1))
        asked = self.emit("review_requested", refusal + timedelta(days=1), b, hid)
        self.emit("review_answered", asked + late, self.police, hid, opened=False, reasons="维持")
        self.expect(d.REVIEW_ANSWER_LATE, "handover", hid, self.police, asked + late, "公安机关超过3日才作出复议决定")

        s = start_on(8, 11)
        hid = self.raise_(a, s)
        refusal = self.refused(hid, self.transfer(a, hid, s) + timedelta(hours=1))
        asked = self.emit("review_requested", refusal + timedelta(days=1), a, hid)
        answer = self.emit("review_answered", asked + timedelta(days=1), self.police, hid, opened=False, reasons="维持")
        suggested = self.emit("supervision_suggested", answer + late, a, hid, procuratorate_dept=self.jcy)
        self.emit("supervision_outcome", suggested + timedelta(days=3), self.jcy, hid, outcome="refusal_upheld")
        self.expect(d.SUGGESTION_LATE, "handover", hid, a, suggested, "超过3日才建议立案监督")

        s = start_on(9, 15)
        hid = self.raise_(b, s)
        got = self.transfer(b, hid, s) + timedelta(hours=1)
        done = self.police_opens(b, hid, got, exhibits_after=late)
        self.expect(d.EXHIBITS_LATE, "handover", hid, b, done - late, "立案后超过3日才移交涉案物品")

        back = self.emit("returned", self.at(self.workday(6, 2), 15), self.police, rid := self.hid(self.police, "FX"),
                         to_dept=b, reason="犯罪事实显著轻微，不需要追究刑事责任，但依法应当给予行政处罚")
        self.expect(d.REVERSE_NOT_OPENED, "handover", rid, b, back, "反向移送后未立案处罚")

        s = start_on(10, 13)                                            # a step waiting for its prerequisite
        hid = self.raise_(a, s)
        self.emit("head_decided", s + timedelta(hours=20), a, hid, **refuse)
        self.emit("exhibits_handed_over", s + timedelta(days=2), a, hid)
        self.expect(d.FACT_HELD, "handover", hid, a, s + timedelta(days=5), "公安机关未立案却报送移交涉案物品")

        s = start_on(10, 27)                                            # a step reported twice
        hid = self.raise_(b, s)
        self.emit("head_decided", s + timedelta(hours=20), b, hid, **refuse)
        self.emit("head_decided", s + timedelta(hours=22), b, hid, approved=True, head="副局长")
        self.expect(d.FACT_ANOMALY, "handover", hid, b, s, "负责人决定重复报送且前后矛盾")

        # 以罚代刑: the main generator's injected cases; the first also has a handover refused without reasons
        injected = [e for e in self.sim.expectations if e.rule_id == "PEN-CRIME-NO-HANDOVER"]
        for n, e in enumerate(sorted(injected, key=lambda x: x.subject_id)):
            self.expect(d.PENALTY_INSTEAD, "case", e.subject_id, e.dept, e.since, "达到追诉标准仅作行政处罚")
            if n == 0:
                filed = datetime.fromisoformat(cases[e.subject_id][0]["occurred_at"])
                hid = self.raise_(e.dept, filed + timedelta(hours=4), case_id=e.subject_id)
                self.emit("head_decided", filed + timedelta(days=1), e.dept, hid, approved=False)
                self.expect(d.REFUSED_NO_REASON, "handover", hid, e.dept, filed, "负责人不批准移送且未说明理由")
        # a fine decided after the transfer: a clean fined case of the main generator, handed over before
        target = self.fined_case(cases, {e.subject_id for e in self.sim.expectations})
        if target is not None:
            cid, dept, decided = target
            s = decided - timedelta(days=3)
            hid = self.raise_(dept, s, case_id=cid)
            sent = self.transfer(dept, hid, s)
            self.police_opens(dept, hid, sent + timedelta(hours=1))
            self.expect(d.PENALTY_CONTINUES, "handover", hid, dept, decided, "移送后仍作出罚款决定")

    def fined_case(self, cases: dict[str, list[dict]], breached: set[str]) -> tuple[str, str, datetime] | None:
        """A case the main generator fined cleanly (no breach, no transfer, no revocation, no crime
        measures) and filed at least 5 days before its decision."""
        for cid, evs in sorted(cases.items()):
            types = {e["type"] for e in evs}
            if cid in breached or "case.decided" not in types or types & {
                    "case.transferred_to_police", "case.decision_revoked", "case.decision_changed"}:
                continue
            decided = next(e for e in evs if e["type"] == "case.decided")
            if "fine" not in decided["payload"]["kinds"] or any(e["payload"].get("measures") for e in evs):
                continue
            at = datetime.fromisoformat(decided["occurred_at"])
            filed = min(datetime.fromisoformat(e["occurred_at"]) for e in evs)
            if at - filed >= timedelta(days=5) and at.year == self.year:
                return cid, decided["dept"], at
        return None


def simulate_handovers(sim: Simulation) -> HandoverSimulation:
    return _Gen(sim).build()


# ---- offline: the pure domains over the stream ------------------------------------------------------

def case_views(events: Iterable[dict], as_of: datetime) -> dict[str, d.PenaltyCaseView]:
    """Every penalty case as penalty would publish it (`case.changed`), the legal basis from the
    registry domain folded over the same stream."""
    from services.penalty import case_changed
    from services.penalty.domain import case as c
    from services.registry import domain as reg

    state, facts = reg.RegistryState(), defaultdict(list)
    for seq, env in enumerate(events):
        if env["type"] in reg.FACT_TYPES:
            state.apply(reg.Fact.from_envelope(env), reg.RegistrySettings())
        elif env["type"].startswith("case."):
            facts[env["payload"]["case_id"]].append(c.Fact.from_dict({**env, "seq": seq}))
    views = {}
    for cid, case_facts in facts.items():
        case = c.fold(case_facts, cid)
        body = case_changed.payload(case, None, len(case_facts), as_of)
        if body is None:
            continue
        code = body["item_code"]
        record = state.items.get(code) if code else None
        version = (record.latest_version_on(case.decision.at if case.decision else as_of) or
                   (record.versions[0] if record and record.versions else None)) if record else None
        body["legal_basis"] = [{"law": x.law, "article": x.article} for x in (version.legal_basis if version else ())
                               if x.law and x.article]
        views[cid] = d.PenaltyCaseView.from_payload(body)
    return views


def offline_findings(events: list[dict], as_of: datetime) -> list:
    """Every handover finding at `as_of`: each handover step admitted in arrival order (a refusal
    would be a generator bug), folded, evaluated with its penalty case; every case judged for 以罚代刑."""
    views = case_views(events, as_of)
    by_id: dict[str, list[Fact]] = defaultdict(list)
    for seq, env in enumerate(events):
        if env["type"].startswith("handover."):
            fact = Fact.from_envelope(env, seq=seq)
            hid = env["payload"]["handover_id"]
            d.admit(by_id[hid], fact, hid)
            by_id[hid].append(fact)
    handovers = {hid: d.fold(facts, hid) for hid, facts in by_id.items()}
    found = []
    for h in handovers.values():
        found += d.evaluate(h, as_of, case=views.get(h.case_id) if h.case_id else None)
    for cid, view in views.items():
        linked = [h for h in handovers.values() if h.case_id == cid]
        found += d.evaluate_case(view, linked, crime_thresholds(view.dept), as_of)
    return found


def check(sim: Simulation, part: HandoverSimulation | None = None):
    """Per handover rule (a `report.Comparison`): expected / raised / missed / spurious, offline, at the
    part's `as_of`."""
    from services.simulator.report import compare_findings

    part = part or simulate_handovers(sim)
    return compare_findings(part.expectations, offline_findings([*sim.events, *part.events], part.as_of), part.as_of)


def check_report(sim: Simulation, out=print) -> bool:
    """Print the handover part's offline acceptance table; True when nothing is missed or spurious."""
    from services.simulator.report import format_table

    part = simulate_handovers(sim)
    comparison = check(sim, part)
    out(format_table(comparison, f"行刑衔接部分（{len(part.events)} 条事件）："))
    out("行刑衔接部分：" + ("全部规则零漏报、零误报" if comparison.ok else "存在漏报或误报"))
    return comparison.ok


def run_live(sim: Simulation, amqp_uri: str, mongo_uri: str, db_prefix: str = "zhifa_", timeout: float = 180,
             out=print, part: HandoverSimulation | None = None):
    """Publish the part through the AMQP ingress of a running suite that already holds the main stream
    (its penalty cases feed `case.changed`) and compare the handover service's stored open findings —
    on this part's handovers and the main stream's cases — with the truth at the suite's "now", until
    they agree or `timeout` passes (linked re-evaluation runs on the sweep). Returns the Comparison."""
    import time as _time

    import pymongo

    from services.simulator.publish import publish_amqp
    from services.simulator.report import compare, format_table

    part = part or simulate_handovers(sim)
    stats = publish_amqp(part.events, amqp_uri)
    out(f"行刑衔接部分：已发布 {stats.published} 条（确认 {stats.confirmed}）")
    db = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000)[f"{db_prefix}handover"]
    subjects = {e["payload"]["handover_id"] for e in part.events} | set(_case_events(sim))
    deadline = _time.monotonic() + timeout
    while True:
        as_of = datetime.now(CST)
        expected = {x.key for x in part.expectations if x.since <= as_of and (x.until is None or as_of < x.until)}
        stored = {(f["rule_id"], f["subject_type"], f["subject_id"], f["dept"])
                  for name in ("handovers", "penalty_cases") for doc in db[name].find({}, {"findings_open": 1})
                  for f in (doc.get("findings_open") or {}).values() if f["subject_id"] in subjects}
        comparison = compare(expected, stored, as_of)
        if comparison.ok or _time.monotonic() > deadline:
            break
        _time.sleep(2)
    out(format_table(comparison, "行刑衔接部分（联调，服务数据库中的未关闭监督发现）："))
    return comparison
