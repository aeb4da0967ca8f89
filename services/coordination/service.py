"""Coordination service (司法局协调监督): what the justice bureau does with findings.

Declared in manifest.py; the rules are the pure domain's (services/coordination/domain,
docs/rules-coordination.md). The kernel generates the handlers of the declared ingress routes
(`inbox.*`, `supervision.*`, `complaint.*`, … from the gateway), `list_findings`, `get_<aggregate>`,
the deadline sweep and the command path. What is this service's own:

- one reliable `finding.*` handler per declared service that keeps findings, generated from
  `services.kernel.manifest.manifests()` when this class is created (nameko binds an event handler
  to one source service's exchange, so a wildcard source is not possible);
- the adapter over the domain for each aggregate (`KINDS`), the inbox counters kept on write;
- the queries and commands of the findings inbox, supervision cases, complaints, normative
  documents, monitoring devices, jurisdiction disputes, monthly reports, case-file review and the
  annual evaluation.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Callable

import eventlet
from nameko.exceptions import RemoteError, UnknownService
from nameko.rpc import ServiceRpc, rpc
from nameko.timer import timer

from services.common.chinatime import local_date
from services.common.errors import DomainError, NotOwnerError
from services.common.facts import Fact
from services.common.findings import SEVERITY_RANK
from services.common.ownership import is_justice_bureau
from services.coordination import store
from services.coordination.domain import complaints as cp
from services.coordination.domain import devices as dv
from services.coordination.domain import disputes as ds
from services.coordination.domain import evaluation as ev
from services.coordination.domain import inbox as ib
from services.coordination.domain import normative as nd
from services.coordination.domain import reporting as rpt
from services.coordination.domain import reports as rp
from services.coordination.domain import review as rv
from services.coordination.domain import supervision as sv
from services.coordination.domain.settings import DEFAULT_SETTINGS, CoordinationSettings
from services.coordination.manifest import MANIFEST
from services.kernel import config
from services.kernel.base import EventSourcedService
from services.kernel.commands import CommandRefused
from services.kernel.manifest import manifests
from services.kernel.messaging import batch_event_handler
from services.kernel.mongo import Mongo
from services.kernel.plugins import Plugins

INBOX_STATES = frozenset(ib.STATES)


def _facts(stored: list[dict]) -> list[Fact]:
    return [Fact.from_envelope(f, seq=i) for i, f in enumerate(stored)]


@dataclass(frozen=True)
class Kind:
    """How one aggregate of this service runs over its pure domain module (each takes the settings)."""

    id_field: str
    fold: Callable
    admit: Callable
    snapshot: Callable
    findings: Callable
    due: Callable


def no_findings(agg, as_of, settings) -> list:
    """The `findings` of an aggregate whose rules raise none (its findings index is not kept)."""
    return []


KINDS = {
    "inbox": Kind("finding_key", lambda f, s: ib.entry_from_facts(f), ib.admit, ib.snapshot,
                  no_findings, ib.next_due),
    "case": Kind("case_id", lambda f, s: sv.case_from_facts(f), sv.admit, lambda a, t, s: sv.snapshot(a, t),
                 lambda a, t, s: sv.evaluate(a, t), lambda a, t, s: sv.next_due(a, t)),
    "complaint": Kind("complaint_id", cp.complaint_from_facts, cp.admit, cp.snapshot, cp.evaluate, cp.next_due),
    "normative_document": Kind("doc_id", lambda f, s: nd.document_from_facts(f), nd.admit, nd.snapshot, nd.evaluate,
                               nd.next_due),
    "device": Kind("device_id", lambda f, s: dv.device_from_facts(f), dv.admit, lambda a, t, s: dv.snapshot(a, t),
                   lambda a, t, s: dv.evaluate(a, t), lambda a, t, s: None),
    "dispute": Kind("dispute_id", lambda f, s: ds.dispute_from_facts(f), ds.admit, ds.snapshot, ds.evaluate,
                    ds.next_due),
    "review_plan": Kind("plan_id", rv.plan_from_facts, rv.admit, rv.snapshot, no_findings, lambda a, t, s: None),
    "evaluation": Kind("year", lambda f, s: ev.year_from_facts(f), ev.admit, lambda a, t, s: ev.snapshot(a, t),
                       no_findings, lambda a, t, s: None),
    "report_month": Kind("month", lambda f, s: rpt.month_from_facts(f), rpt.admit, rpt.snapshot, rpt.evaluate,
                         rpt.next_due),
}
NO_FINDINGS = frozenset(name for name, kind in KINDS.items() if kind.findings is no_findings)
PENALTY_PAGE = 500
OPEN_MONTHS_EVERY = 300
REPAIR_COUNTS_EVERY = 120
_COUNTS_SEEN: dict[str, dict] = {}  # database name -> the counters' last recount (`repair_counts`)
_ENTRIES_READ: dict[str, float] = {}  # database name -> when `repair_counts` last read the inbox entries (`_monotonic`)
_monotonic = time.monotonic  # (infrastructure time for the timer's cadence; a test sets its own)
CLOSED_STAGES = ("closed", "archived")
RPC_TIMEOUT = 20


class CoordinationAdapter:
    """Runs the pure coordination domain for the kernel's event-sourced repository."""

    # A `finding.raised` nearly always opens a new inbox entry: the kernel inserts it without reading
    # first (unless this process caches the entry); when it exists after all (raised again, a
    # redelivery, triage facts held before it) the insert collides and the stored entry is decided
    # again, as on any lost race (services/kernel/aggregates.py `update(probably_new=True)`).
    creating = (ib.RAISED,)

    def __init__(self, kind: str, settings: CoordinationSettings):
        self.kind = kind
        self.spec = KINDS[kind]
        self.settings = settings

    def aggregate_id(self, envelope: dict) -> str:
        return envelope["payload"][self.spec.id_field]

    def fold(self, facts: list[dict]):
        return self.spec.fold(_facts(facts), self.settings)

    def admit(self, facts: list[dict], fact: dict) -> None:
        """Who may report what, for facts that come through the ingress (commands check it themselves)."""
        self.spec.admit(self.fold(facts) if facts else None, Fact.from_envelope(fact, seq=len(facts)))

    def snapshot(self, agg, as_of: datetime) -> dict:
        return self.spec.snapshot(agg, as_of, self.settings)

    def findings(self, agg, as_of: datetime):
        return self.spec.findings(agg, as_of, self.settings) if agg is not None else []

    def due_at(self, agg, as_of: datetime):
        return self.spec.due(agg, as_of, self.settings) if agg is not None else None

    def changed_events(self, agg, snapshot: dict, cause: str, as_of: datetime) -> list[dict]:
        return []


def _refuse_not_owner(exc: NotOwnerError) -> CommandRefused:
    return CommandRefused("forbidden", exc.field or "dept", str(exc))


class CoordinationService(EventSourcedService):
    """Findings inbox (triage, escalation, counters) and supervision cases (监督案件)."""

    manifest = MANIFEST

    db = Mongo("coordination", indexes=store.ensure_indexes)
    plugins = Plugins()
    penalty = ServiceRpc("penalty")   # closed case files for the case-file review draw (a command, not per event)
    inspection = ServiceRpc("inspection")   # monthly inspection counters for the reports
    handover = ServiceRpc("handover")       # monthly handover counters for the reports

    def _settings(self) -> CoordinationSettings:
        resolver = self.settings
        return resolver.for_dept(None) if resolver is not None else DEFAULT_SETTINGS

    def adapter(self, aggregate, envelope=None) -> CoordinationAdapter:
        return CoordinationAdapter(aggregate.name, self._settings())

    def store_listeners(self, aggregate) -> list:
        """An aggregate whose rules raise no findings (the inbox: findings come *into* it) has no
        open-findings index to keep (services/kernel/findings_index.py): no listener, no writes per save."""
        return [] if aggregate.name in NO_FINDINGS else super().store_listeners(aggregate)

    # ---- counters kept on write ---------------------------------------------------------------------
    def after_save(self, aggregate, doc: dict) -> None:
        if aggregate.name == "inbox" and doc.get("snapshot", {}).get("known"):
            store.count(self.db, doc["_id"], doc["version"], ib.counter_key(doc["snapshot"]))

    def _relay(self, repo, doc, pending) -> None:
        """The kernel relays after every save, the deadline sweep's included (escalations happen
        there, with no new fact and no after_save): count those too."""
        super()._relay(repo, doc, pending)
        if doc is not None and repo.store.col.name == store.INBOX and doc.get("snapshot", {}).get("known"):
            store.count(self.db, doc["_id"], doc["version"], ib.counter_key(doc["snapshot"]))

    @timer(interval=REPAIR_COUNTS_EVERY)
    def repair_counts(self):
        """Every two minutes, the counters that differ from a recount and read the same as at the last round
        are set to it (a stop between a count's move and its increments: store.reconcile_counters; it reads
        the small `inbox_counted` and `inbox_counters` documents). Entries saved but not counted (a stop
        between the two writes) are counted first, in this process's first round (every entry compared) and
        then every COUNTS_REPAIR_ENTRIES_SECONDS (10 minutes; those saved since they were counted): that
        reads every inbox entry, which FerretDB reads whole (≈ 1.45 s at 20,000 entries), and after a stop
        the restarted process's first round finds them anyway — the later rounds are for a process that
        stopped and did not come back. Until 2026-12-06 every round read them."""
        name, now = self.db.name, _monotonic()
        last = _ENTRIES_READ.get(name)
        if last is None or now - last >= config.checked("COUNTS_REPAIR_ENTRIES_SECONDS"):
            store.repair_counts(self.db, ib.counter_key, full=last is None)
            _ENTRIES_READ[name] = now
        _COUNTS_SEEN[name], _ = store.reconcile_counters(self.db, _COUNTS_SEEN.get(name))

    # ---- helpers --------------------------------------------------------------------------------------
    def _command(self, aggregate: str, agg_id: str, decide: Callable, dept: str, summary=None) -> dict:
        def guarded(folded, event_id):
            try:
                return decide(folded, event_id)
            except NotOwnerError as exc:
                raise _refuse_not_owner(exc) from exc

        return self.execute(aggregate, agg_id, guarded, dept=dept, summary=summary)

    def _entry(self, finding_key: str):
        doc = self.aggregate_doc("inbox", finding_key)
        return (doc, ib.entry_from_facts(_facts(doc["facts"]))) if doc else (None, None)

    # ---- inbox queries --------------------------------------------------------------------------------
    @rpc
    def list_inbox(self, dept=None, state=None, rule_id=None, severity=None, escalated=None, assignee=None,
                   limit=50, offset=0):
        """Inbox entries (snapshots), most severe and oldest first, with the true total; `state` "open": every
        open state at once."""
        if state and state not in INBOX_STATES and state != ib.OPEN:
            return {"error": {"code": "invalid_value", "field": "state", "message": f"未知的处理状态 {state}"}}
        if severity and severity not in SEVERITY_RANK:
            return {"error": {"code": "invalid_value", "field": "severity", "message": f"未知的严重程度 {severity}"}}
        return store.list_inbox(self.db, dept=dept, state=state, rule_id=rule_id, severity=severity,
                                escalated=escalated, assignee=assignee, limit=int(limit), offset=int(offset))

    @rpc
    def get_inbox_entry(self, finding_key):
        """One inbox entry with its triage log, its merged duplicates and the facts behind it."""
        doc = self.aggregate_doc("inbox", finding_key)
        if doc is None or not doc.get("snapshot", {}).get("known"):
            return None
        return {**doc["snapshot"], "duplicates": store.duplicates_of(self.db, finding_key),
                "history": self.history(doc)}

    @rpc
    def inbox_counters(self, dept=None):
        """Counts per department, rule, severity and state (+ escalated open entries), kept on write."""
        return store.counters(self.db, dept)

    # ---- inbox commands (the justice bureau) ---------------------------------------------------------------
    def _triage(self, finding_key: str, dept: str, build: Callable) -> dict:
        return self._command("inbox", finding_key, build, dept,
                             summary=lambda doc: {"state": doc["snapshot"]["state"]})

    @rpc
    def acknowledge_finding(self, finding_key, dept, note=None, actor=None):
        """已阅."""
        return self._triage(finding_key, dept, lambda e, eid: ib.acknowledge(
            e, finding_key, at=self.clock(), dept=dept, event_id=eid, actor=actor, note=note))

    @rpc
    def assign_finding(self, finding_key, assignee, dept, note=None, actor=None):
        """交办 (again: re-assign)."""
        return self._triage(finding_key, dept, lambda e, eid: ib.assign(
            e, finding_key, assignee=assignee, at=self.clock(), dept=dept, event_id=eid, actor=actor, note=note))

    @rpc
    def dismiss_finding(self, finding_key, reason, dept, actor=None):
        """不予处理, with the reason."""
        return self._triage(finding_key, dept, lambda e, eid: ib.dismiss(
            e, finding_key, reason=reason, at=self.clock(), dept=dept, event_id=eid, actor=actor))

    @rpc
    def merge_finding(self, finding_key, into, dept, actor=None):
        """合并: `finding_key` duplicates `into` (the target's state is read just before deciding)."""
        _, target = self._entry(into) if into else (None, None)
        return self._triage(finding_key, dept, lambda e, eid: ib.merge(
            e, finding_key, target, into=into, at=self.clock(), dept=dept, event_id=eid, actor=actor))

    # ---- supervision cases ----------------------------------------------------------------------------------
    @rpc
    def list_supervision_cases(self, dept=None, status=None, kind=None, limit=50, offset=0):
        """Cases, newest first; with `dept` only that department's cases and its own tracks."""
        return store.list_cases(self.db, dept=dept, status=status, kind=kind, limit=int(limit), offset=int(offset))

    @rpc
    def get_supervision_case(self, case_id, dept=None):
        """One case with documents, replies, rectification, verification, open findings and facts.

        With `dept` (a department user's own, forced by the API): None unless the case concerns
        that department, and only its own track, findings and facts.
        """
        doc = self.aggregate_doc("case", case_id)
        if doc is None:
            return None
        snap = doc["snapshot"]
        if dept and dept not in snap.get("depts", []):
            return None
        out = {**snap, "findings": self.open_findings(doc), "history": self.history(doc)}
        if dept:
            out["tracks"] = [t for t in snap["tracks"] if t["dept"] == dept]
            out["findings"] = [f for f in out["findings"] if f["dept"] == dept]
            out["history"] = [f for f in out["history"]
                              if f["type"] in (sv.OPENED, sv.CLOSED) or f["payload"].get("dept") == dept]
        return out

    def _case(self, case_id: str, dept: str, build: Callable) -> dict:
        return self._command("case", case_id, build, dept,
                             summary=lambda doc: {"case_id": doc["_id"], "status": doc["snapshot"]["status"],
                                                  "tracks": {t["dept"]: t["status"] for t in doc["snapshot"]["tracks"]}})

    @rpc
    def open_supervision_case(self, kind, origin, depts, title, dept, origin_refs=None, checklist=None,
                              opened_on=None, actor=None):
        """立案; the case number is assigned here (JD-<date>-<random>)."""
        if not isinstance(depts, list) or not all(isinstance(d, str) for d in depts):
            return {"ok": False, "error": {"code": "invalid_value", "field": "depts", "message": "depts 必须是部门编码列表"}}
        now = self.clock()
        case_id = f"JD-{now.strftime('%Y%m%d')}-{uuid.uuid4().hex[:8]}"
        result = self._case(case_id, dept, lambda c, eid: sv.open_case(
            c, case_id, kind=kind, origin=origin, depts=depts, title=title, at=self.clock(), dept=dept,
            event_id=eid, origin_refs=origin_refs if isinstance(origin_refs, list) else None,
            checklist=checklist if isinstance(checklist, list) else None, actor=actor, opened_on=opened_on))
        if result.get("ok") and origin == "finding":
            # the findings it was opened from are handled now (no escalation); a finding not (yet) in
            # the inbox is only named by the case. A crash here leaves the case without these links.
            result["linked"] = [ref for ref in origin_refs if self._command("inbox", ref, lambda e, eid, ref=ref: (
                ib.link_case(e, ref, case_id=case_id, at=self.clock(), dept=dept, event_id=eid, actor=actor)),
                dept).get("ok")]
        return result

    @rpc
    def issue_supervision_document(self, case_id, target, doc_kind, doc_no, dept, issued_on=None, reply_due=None,
                                   rectification_required=False, rectification_due=None, summary=None, actor=None):
        """制发文书 to one department of the case."""
        return self._case(case_id, dept, lambda c, eid: sv.issue_document(
            c, case_id, target=target, doc_kind=doc_kind, doc_no=doc_no, at=self.clock(), dept=dept, event_id=eid,
            settings=self._settings(), issued_on=issued_on, reply_due=reply_due,
            rectification_required=bool(rectification_required), rectification_due=rectification_due,
            summary=summary, actor=actor))

    @rpc
    def reply_supervision_case(self, case_id, content, dept, replied_on=None, rectification_plan=None, actor=None):
        """答复 (the department, its own track only)."""
        return self._case(case_id, dept, lambda c, eid: sv.reply(
            c, case_id, content=content, at=self.clock(), dept=dept, event_id=eid, replied_on=replied_on,
            rectification_plan=rectification_plan, actor=actor))

    @rpc
    def report_rectification(self, case_id, content, dept, rectified_on=None, actor=None):
        """整改完成报告 (the department, its own track only)."""
        return self._case(case_id, dept, lambda c, eid: sv.report_rectified(
            c, case_id, content=content, at=self.clock(), dept=dept, event_id=eid, rectified_on=rectified_on,
            actor=actor))

    @rpc
    def verify_supervision_case(self, case_id, target, passed, dept, comment=None, new_rectification_due=None,
                                verified_on=None, actor=None):
        """核查."""
        return self._case(case_id, dept, lambda c, eid: sv.verify(
            c, case_id, target=target, passed=bool(passed), at=self.clock(), dept=dept, event_id=eid,
            comment=comment, new_rectification_due=new_rectification_due, verified_on=verified_on, actor=actor))

    @rpc
    def close_supervision_case(self, case_id, conclusion, dept, closed_on=None, actor=None):
        """办结."""
        return self._case(case_id, dept, lambda c, eid: sv.close(
            c, case_id, conclusion=conclusion, at=self.clock(), dept=dept, event_id=eid, closed_on=closed_on,
            actor=actor))

    # ---- complaints (投诉举报, 12345) ----------------------------------------------------------------------
    def _complaint(self, complaint_id: str, dept: str, build: Callable) -> dict:
        return self._command("complaint", complaint_id, build, dept,
                             summary=lambda doc: {"complaint_id": doc["_id"], "status": doc["snapshot"]["status"]})

    @rpc
    def list_complaints(self, dept=None, status=None, limit=50, offset=0):
        """Complaints, newest first; with `dept` only those routed to it."""
        query = {k: v for k, v in (("dept", dept), ("snapshot.status", status)) if v}
        return store.list_snapshots(self.db, store.COMPLAINTS, query=query, limit=int(limit), offset=int(offset),
                                    sort=[("snapshot.received_on", -1), ("_id", 1)])

    @rpc
    def get_complaint(self, complaint_id):
        doc = self.aggregate_doc("complaint", complaint_id)
        if doc is None:
            return None
        return {**doc["snapshot"], "findings": self.open_findings(doc), "history": self.history(doc)}

    @rpc
    def complaint_signals(self):
        """Parties or officers complained about repeatedly within the window (重复投诉信号)."""
        settings = self._settings()
        now = self.clock()
        since = (local_date(now) - timedelta(days=settings.complaint_repeat_window_days)).isoformat()
        return {"items": cp.repeated_signals(store.complaints_since(self.db, since), now, settings),
                "window_days": settings.complaint_repeat_window_days, "min_count": settings.complaint_repeat_count}

    @rpc
    def receive_complaint(self, channel, summary, dept, received_on=None, complainant_name=None,
                          complainant_phone=None, party_id=None, officer_id=None, actor=None):
        """登记 at the console; the complaint number is assigned here."""
        complaint_id = f"TS-{self.clock().strftime('%Y%m%d')}-{uuid.uuid4().hex[:8]}"
        return self._complaint(complaint_id, dept, lambda c, eid: cp.receive(
            c, complaint_id, channel=channel, summary=summary, at=self.clock(), dept=dept, event_id=eid,
            received_on=received_on, complainant={"name": complainant_name, "phone": complainant_phone},
            party_id=party_id, officer_id=officer_id, actor=actor))

    @rpc
    def route_complaint(self, complaint_id, target, dept, routed_on=None, actor=None):
        return self._complaint(complaint_id, dept, lambda c, eid: cp.route(
            c, complaint_id, target=target, at=self.clock(), dept=dept, event_id=eid, routed_on=routed_on, actor=actor))

    @rpc
    def acknowledge_complaint(self, complaint_id, dept, acknowledged_on=None, actor=None):
        return self._complaint(complaint_id, dept, lambda c, eid: cp.acknowledge(
            c, complaint_id, at=self.clock(), dept=dept, event_id=eid, acknowledged_on=acknowledged_on, actor=actor))

    @rpc
    def answer_complaint(self, complaint_id, answer, dept, answered_on=None, actor=None):
        return self._complaint(complaint_id, dept, lambda c, eid: cp.answer(
            c, complaint_id, text=answer, at=self.clock(), dept=dept, event_id=eid, answered_on=answered_on,
            actor=actor))

    @rpc
    def record_complaint_feedback(self, complaint_id, satisfied, dept, comment=None, feedback_on=None, actor=None):
        return self._complaint(complaint_id, dept, lambda c, eid: cp.feedback(
            c, complaint_id, satisfied=bool(satisfied), at=self.clock(), dept=dept, event_id=eid, comment=comment,
            feedback_on=feedback_on, actor=actor))

    # ---- normative documents (规范性文件备案) ----------------------------------------------------------------
    def _normative(self, doc_id: str, dept: str, build: Callable) -> dict:
        return self._command("normative_document", doc_id, build, dept,
                             summary=lambda doc: {"doc_id": doc["_id"], "status": doc["snapshot"]["status"]})

    @rpc
    def list_normative_documents(self, dept=None, status=None, limit=50, offset=0):
        query = {k: v for k, v in (("dept", dept), ("snapshot.status", status)) if v}
        return store.list_snapshots(self.db, store.NORMATIVE, query=query, limit=int(limit), offset=int(offset),
                                    sort=[("snapshot.issued_on", -1), ("_id", 1)])

    @rpc
    def record_normative_document(self, title, doc_no, dept, issued_on=None, actor=None):
        doc_id = f"GF-{dept}-{uuid.uuid4().hex[:8]}"
        return self._normative(doc_id, dept, lambda d, eid: nd.issue(
            d, doc_id, title=title, doc_no=doc_no, at=self.clock(), dept=dept, event_id=eid, issued_on=issued_on,
            actor=actor))

    @rpc
    def file_normative_document(self, doc_id, dept, filed_on=None, actor=None):
        return self._normative(doc_id, dept, lambda d, eid: nd.file(
            d, doc_id, at=self.clock(), dept=dept, event_id=eid, filed_on=filed_on, actor=actor))

    @rpc
    def review_normative_document(self, doc_id, outcome, dept, comment=None, reviewed_on=None, actor=None):
        return self._normative(doc_id, dept, lambda d, eid: nd.review(
            d, doc_id, outcome=outcome, at=self.clock(), dept=dept, event_id=eid, comment=comment,
            reviewed_on=reviewed_on, actor=actor))

    # ---- monitoring devices (电子技术监控设备) ------------------------------------------------------------
    def _device(self, device_id: str, dept: str, build: Callable) -> dict:
        return self._command("device", device_id, build, dept,
                             summary=lambda doc: {"device_id": doc["_id"], "status": doc["snapshot"]["status"]})

    @rpc
    def list_devices(self, dept=None, status=None, limit=50, offset=0):
        query = {k: v for k, v in (("dept", dept), ("snapshot.status", status)) if v}
        return store.list_snapshots(self.db, store.DEVICES, query=query, limit=int(limit), offset=int(offset),
                                    sort=[("_id", 1)])

    @rpc
    def list_public_devices(self, dept=None, limit=50, offset=0):
        """公示: published devices (location and purpose only)."""
        query = {"snapshot.status": "published", **({"dept": dept} if dept else {})}
        page = store.list_snapshots(self.db, store.DEVICES, query=query, limit=int(limit), offset=int(offset),
                                    sort=[("_id", 1)])
        keep = ("device_id", "dept", "location", "purpose", "published_on")
        return {**page, "items": [{k: i.get(k) for k in keep} for i in page["items"]]}

    @rpc
    def register_device(self, device_id, location, dept, purpose=None, registered_on=None, actor=None):
        return self._device(device_id, dept, lambda d, eid: dv.register(
            d, device_id, location=location, at=self.clock(), dept=dept, event_id=eid, purpose=purpose,
            registered_on=registered_on, actor=actor))

    @rpc
    def review_device(self, device_id, passed, dept, comment=None, reviewed_on=None, actor=None):
        return self._device(device_id, dept, lambda d, eid: dv.review(
            d, device_id, passed=bool(passed), at=self.clock(), dept=dept, event_id=eid, comment=comment,
            reviewed_on=reviewed_on, actor=actor))

    @rpc
    def publish_device(self, device_id, dept, published_on=None, actor=None):
        return self._device(device_id, dept, lambda d, eid: dv.publish(
            d, device_id, at=self.clock(), dept=dept, event_id=eid, published_on=published_on, actor=actor))

    # ---- jurisdiction disputes (管辖争议) --------------------------------------------------------------------
    def _dispute(self, dispute_id: str, dept: str, build: Callable) -> dict:
        return self._command("dispute", dispute_id, build, dept,
                             summary=lambda doc: {"dispute_id": doc["_id"], "status": doc["snapshot"]["status"],
                                                  "first_filer": doc["snapshot"]["first_filer"]})

    @rpc
    def list_disputes(self, dept=None, status=None, limit=50, offset=0):
        query = {k: v for k, v in (("snapshot.depts", dept), ("snapshot.status", status)) if v}
        return store.list_snapshots(self.db, store.DISPUTES, query=query, limit=int(limit), offset=int(offset),
                                    sort=[("snapshot.raised_on", -1), ("_id", 1)])

    @rpc
    def get_dispute(self, dispute_id):
        doc = self.aggregate_doc("dispute", dispute_id)
        if doc is None:
            return None
        return {**doc["snapshot"], "findings": self.open_findings(doc), "history": self.history(doc)}

    @rpc
    def raise_dispute(self, matter, parties, dept, filed_on=None, raised_on=None, actor=None):
        if not isinstance(parties, list) or not all(isinstance(p, str) for p in parties):
            return {"ok": False, "error": {"code": "invalid_value", "field": "parties",
                                           "message": "parties 必须是部门编码列表"}}
        dispute_id = f"GX-{self.clock().strftime('%Y%m%d')}-{uuid.uuid4().hex[:8]}"
        return self._dispute(dispute_id, dept, lambda d, eid: ds.raise_dispute(
            d, dispute_id, matter=matter, parties=parties, at=self.clock(), dept=dept, event_id=eid,
            filed_on=filed_on, raised_on=raised_on, actor=actor))

    @rpc
    def answer_dispute(self, dispute_id, agrees, dept, position=None, filed_on=None, answered_on=None, actor=None):
        return self._dispute(dispute_id, dept, lambda d, eid: ds.answer(
            d, dispute_id, agrees=bool(agrees), at=self.clock(), dept=dept, event_id=eid, position=position,
            filed_on=filed_on, answered_on=answered_on, actor=actor))

    @rpc
    def agree_dispute(self, dispute_id, lead_dept, dept, note=None, settled_on=None, actor=None):
        return self._dispute(dispute_id, dept, lambda d, eid: ds.agree(
            d, dispute_id, lead_dept=lead_dept, at=self.clock(), dept=dept, event_id=eid, note=note,
            settled_on=settled_on, actor=actor))

    @rpc
    def refer_dispute(self, dispute_id, referred_to, dept, referred_on=None, actor=None):
        return self._dispute(dispute_id, dept, lambda d, eid: ds.refer(
            d, dispute_id, referred_to=referred_to, at=self.clock(), dept=dept, event_id=eid,
            referred_on=referred_on, actor=actor))

    @rpc
    def decide_dispute(self, dispute_id, lead_dept, dept, basis=None, settled_on=None, actor=None):
        return self._dispute(dispute_id, dept, lambda d, eid: ds.decide(
            d, dispute_id, lead_dept=lead_dept, at=self.clock(), dept=dept, event_id=eid, basis=basis,
            settled_on=settled_on, actor=actor))

    # ---- reports (月报 / 季报 data; rendering is the documents capability's) ---------------------------------
    def _report_data(self) -> dict:
        return {"entries": store.snapshots(self.db, store.INBOX, {"snapshot.known": True},
                                           ("finding_key", "rule_id", "dept", "source", "severity", "raised_at",
                                            "resolved_at", "log", "escalated", "open")),
                "cases": store.snapshots(self.db, store.CASES, fields=("opened_on", "closed_on", "tracks")),
                "complaints": store.snapshots(self.db, store.COMPLAINTS),
                "documents": store.snapshots(self.db, store.NORMATIVE)}

    def _penalty_summaries(self) -> list[dict] | None:
        """Every penalty case's summary (filed / decided / closed dates, fine), or None if the penalty
        service does not answer in time (the report then says so)."""
        out: list[dict] = []
        try:
            with eventlet.Timeout(RPC_TIMEOUT):
                while True:
                    page = self.penalty.list_cases(limit=PENALTY_PAGE, offset=len(out))
                    items = page.get("items") or []
                    out.extend(items)
                    if not items or len(out) >= int(page.get("total") or 0):
                        return out
        except (eventlet.Timeout, UnknownService, RemoteError):
            return None

    def _counters(self, service, method: str, months: list[str]) -> dict | None:
        """The monthly counters of the inspection or handover service for `months` (and the period
        before, for the trend), or None if it does not answer in time (the report then says so)."""
        try:
            with eventlet.Timeout(RPC_TIMEOUT):
                reply = getattr(service, method)(months=[*rp.previous_months(months), *months])
        except (eventlet.Timeout, UnknownService, RemoteError):
            return None
        return reply if isinstance(reply, dict) and "error" not in reply else None

    def _period_data(self, months: list[str]) -> dict:
        pool = eventlet.GreenPool(4)
        asks = {"penalty_cases": pool.spawn(self._penalty_summaries),
                "inspections": pool.spawn(self._counters, self.inspection, "month_figures", months),
                "handovers": pool.spawn(self._counters, self.handover, "month_counters", months)}
        data = self._report_data()
        return {**data, **{k: g.wait() for k, g in asks.items()}}

    @rpc
    def monthly_report(self, month, dept=None):
        """One month's numbers for a department, or the county's with a row per department; each
        with the trend against the previous month."""
        try:
            rp.month_bounds(month)
            data = self._period_data([month])
            if dept:
                return rp.monthly_report(month, dept, **data)
            return rp.county_report([month], **data)
        except DomainError as exc:
            return {"error": exc.to_dict()}

    @rpc
    def quarterly_report(self, quarter):
        """The county's quarter with a row per department; the trend against the previous quarter."""
        try:
            months = rp.quarter_months(quarter)
            for m in months:
                rp.month_bounds(m)
            return rp.county_report(months, **self._period_data(months))
        except DomainError as exc:
            return {"error": exc.to_dict()}

    # ---- monthly report submissions (月报报送) ------------------------------------------------------------------
    @rpc
    def get_reporting_month(self, month):
        doc = self.aggregate_doc("report_month", month)
        return {**doc["snapshot"], "findings": self.open_findings(doc)} if doc else None

    @rpc
    def submit_monthly_report(self, month, dept, submitted_on=None, actor=None):
        return self._command("report_month", month, lambda m, eid: rpt.submit(
            m, month, at=self.clock(), dept=dept, event_id=eid, submitted_on=submitted_on, actor=actor), dept,
            summary=lambda doc: {"month": doc["_id"], "missing": doc["snapshot"]["missing"]})

    @rpc
    def open_reporting_month(self, month, dept, roster=None, actor=None):
        names = roster if isinstance(roster, list) else list(self._settings().reporting_depts)
        return self._command("report_month", month, lambda m, eid: rpt.open_month(
            m, month, roster=names, at=self.clock(), dept=dept, event_id=eid), dept,
            summary=lambda doc: {"month": doc["_id"], "depts": doc["snapshot"]["depts"]})

    @timer(interval=OPEN_MONTHS_EVERY)
    def open_last_month(self):
        """Once a month has ended, open its reporting with the configured roster (if a bureau code is set)."""
        settings = self._settings()
        if not settings.bureau_dept or not settings.reporting_depts:
            return
        first = local_date(self.clock()).replace(day=1)
        month = (first - timedelta(days=1)).strftime("%Y-%m")
        doc = self.aggregate_doc("report_month", month)
        if doc is None or not rpt.month_from_facts(_facts(doc["facts"])).roster:
            self.open_reporting_month(month, settings.bureau_dept)

    # ---- case-file review (案卷评查) ---------------------------------------------------------------------------
    def _closed_cases(self, year: int) -> dict[str, list[str]]:
        """Closed or archived penalty cases of `year` per department, read from the penalty service."""
        population: dict[str, list[str]] = {}
        for stage in CLOSED_STAGES:
            offset = 0
            while True:
                page = self.penalty.list_cases(stage=stage, limit=PENALTY_PAGE, offset=offset)
                items = page.get("items") or []
                for case in items:
                    ended = case.get("archived_at") or case.get("closed_at") or ""
                    if case.get("dept") and str(ended)[:4] == str(year):
                        population.setdefault(case["dept"], []).append(case["case_id"])
                offset += len(items)
                if not items or offset >= int(page.get("total") or 0):
                    break
        return population

    def _case_rules(self) -> dict[str, list[str]]:
        """Rules of every finding the inbox ever received about a penalty case (open or not)."""
        rules: dict[str, set] = {}
        for e in store.snapshots(self.db, store.INBOX, {"snapshot.subject_type": "case"}, ("subject_id", "rule_id")):
            rules.setdefault(e["subject_id"], set()).add(e["rule_id"])
        return {k: sorted(v) for k, v in rules.items()}

    @rpc
    def draw_case_files(self, year, dept, per_dept=None, seed=None, actor=None):
        """抽取: closed case files of `year` from the penalty service, drawn reproducibly and recorded."""
        settings = self._settings()
        try:
            with eventlet.Timeout(RPC_TIMEOUT):
                population = self._closed_cases(int(year))
        except (eventlet.Timeout, UnknownService, RemoteError):
            return {"ok": False, "error": {"code": "unavailable", "field": None,
                                           "message": "处罚案件服务暂不可用，无法取得已结案卷"}}
        plan_id = f"PC-{int(year)}-{uuid.uuid4().hex[:8]}"
        seed = seed or uuid.uuid4().hex
        rules = self._case_rules()
        return self._command("review_plan", plan_id, lambda p, eid: rv.record_draw(
            p, plan_id, year=int(year), per_dept=int(per_dept or settings.review_per_dept), seed=seed,
            population=population, finding_rules=rules, at=self.clock(), dept=dept, event_id=eid, settings=settings,
            actor=actor), dept, summary=lambda doc: {"plan_id": doc["_id"], "seed": doc["snapshot"]["seed"],
                                                     "sampled": len(doc["snapshot"]["files"])})

    @rpc
    def score_case_file(self, plan_id, case_id, failed, dept, comment=None, actor=None):
        if not isinstance(failed, list) or not all(isinstance(f, str) for f in failed):
            return {"ok": False, "error": {"code": "invalid_value", "field": "failed", "message": "failed 必须是评查项列表"}}
        settings = self._settings()
        return self._command("review_plan", plan_id, lambda p, eid: rv.record_score(
            p, plan_id, case_id=case_id, failed=failed, at=self.clock(), dept=dept, event_id=eid, settings=settings,
            comment=comment, actor=actor), dept, summary=lambda doc: {"results": doc["snapshot"]["results"]})

    @rpc
    def get_review_plan(self, plan_id):
        """A plan: its sample with the pre-filled items, scores, results per department, and the checklist
        the files are scored against (items, labels, points, veto) for the reviewer's form."""
        doc = self.aggregate_doc("review_plan", plan_id)
        if doc is None:
            return None
        return {**doc["snapshot"], "checklist": [dict(i) for i in self._settings().review_checklist],
                "history": self.history(doc)}

    # ---- annual evaluation (评议考核) ---------------------------------------------------------------------------
    @rpc
    def enter_evaluation_score(self, year, target, indicator, score, evidence, dept, actor=None):
        indicators = self._settings().evaluation_indicators
        return self._command("evaluation", str(year), lambda e, eid: ev.enter_score(
            e, str(year), target=target, indicator=indicator, value=score, evidence=evidence, indicators=indicators,
            at=self.clock(), dept=dept, event_id=eid, actor=actor), dept,
            summary=lambda doc: {"year": doc["_id"], "entered": len(doc["snapshot"]["entered"])})

    @rpc
    def evaluation_scores(self, year):
        """Scores per department with the evidence of every indicator, ranked."""
        try:
            year = int(year)
            if not rp.MIN_YEAR <= year <= rp.MAX_YEAR:
                raise ValueError(year)
        except (TypeError, ValueError):
            return {"error": {"code": "invalid_value", "field": "year",
                              "message": f"year 必须是 {rp.MIN_YEAR}–{rp.MAX_YEAR} 之间的年份"}}
        settings = self._settings()
        data = self._report_data()
        results: dict[str, dict] = {}
        for plan in store.snapshots(self.db, store.REVIEW_PLANS, {"snapshot.year": year}, ("results",)):
            for d, row in plan.get("results", {}).items():
                # one plan per year is the norm; with several, the one that scored most of its files counts
                if d not in results or row["scored"] > results[d]["scored"]:
                    results[d] = row
        doc = self.aggregate_doc("evaluation", str(year))
        entered = ev.year_from_facts(_facts(doc["facts"])).entered if doc else {}
        depts = sorted({e["dept"] for e in data["entries"] if e.get("dept")} | {d for d, _ in entered} | set(results)
                       | {c["dept"] for c in data["complaints"] if c.get("dept")}
                       | {t["dept"] for c in data["cases"] for t in c.get("tracks", [])})
        depts = [d for d in depts if not is_justice_bureau(d)]
        today = min(local_date(self.clock()), date(year, 12, 31))
        computed = {}
        for d in depts:
            computed[d] = {}
            for ind in settings.evaluation_indicators:
                if ind["source"] == "computed":
                    computed[d].update({k: v for k, v in ev.metrics_for(
                        d, year, today, cases=data["cases"], complaints=data["complaints"], documents=data["documents"],
                        entries=data["entries"], review_results=results, indicator=ind).items()
                        if k == ind["metric"]})
        return {"year": year, "indicators": list(settings.evaluation_indicators),
                "departments": ev.score_departments(settings.evaluation_indicators, computed, entered)}


# ---- one finding handler per declared source of findings ---------------------------------------------------

def _finding_handler(source: str):
    def handler(self, envelopes):
        if isinstance(envelopes, list):  # a batch (BATCH_MAX > 1): one outcome per envelope
            return self.apply_batch(envelopes)
        self.apply(envelopes)

    name = f"handle_{source.replace('-', '_')}_findings"
    handler.__name__ = handler.__qualname__ = name
    handler.__doc__ = (f"`finding.*` from {source} into the findings inbox (ordered by the finding's as_of), a "
                       "batch at a time: one unit of work (its side writes in one bulk per collection), the "
                       "entries saved concurrently, a finding refused or failing retried alone.")
    return name, batch_event_handler(source, "finding.*")(handler)


def finding_sources() -> tuple[str, ...]:
    """Every declared service that keeps findings (this one included)."""
    return tuple(sorted({m.name for m in manifests() if m.findings} | {MANIFEST.name}))


for _source in finding_sources():
    _name, _handler = _finding_handler(_source)
    setattr(CoordinationService, _name, _handler)
