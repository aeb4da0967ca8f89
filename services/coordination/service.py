"""Coordination service (司法局协调监督): the findings inbox as a workflow and supervision cases.

Declared in manifest.py. The kernel generates the handlers of the declared ingress routes
(`inbox.*`, `supervision.*` from the gateway), `list_findings` (the overdue rules of supervision
cases), the deadline sweep and the command path. What is this service's own:

- one reliable `finding.*` handler per declared service that keeps findings, generated from
  `services.kernel.manifest.manifests()` when this class is created (nameko binds an event handler
  to one source service's exchange, so a wildcard source is not possible);
- the adapters over the pure domain (services/coordination/domain), the console counters kept on
  write, the queries and the commands.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Callable

from nameko.rpc import rpc

from services.common.errors import DomainError, NotOwnerError
from services.common.facts import Fact
from services.common.findings import SEVERITY_RANK
from services.coordination import store
from services.coordination.domain import inbox as ib
from services.coordination.domain import supervision as sv
from services.coordination.domain.settings import DEFAULT_SETTINGS, CoordinationSettings
from services.coordination.manifest import MANIFEST
from services.kernel.base import EventSourcedService
from services.kernel.commands import CommandRefused
from services.kernel.manifest import manifests
from services.kernel.messaging import reliable_event_handler
from services.kernel.mongo import Mongo
from services.kernel.plugins import Plugins

INBOX_STATES = frozenset(ib.STATES)


def _facts(stored: list[dict]) -> list[Fact]:
    return [Fact.from_envelope(f, seq=i) for i, f in enumerate(stored)]


class CoordinationAdapter:
    """Runs the pure coordination domain for the kernel's event-sourced repository."""

    def __init__(self, kind: str, settings: CoordinationSettings):
        self.kind = kind
        self.settings = settings

    def aggregate_id(self, envelope: dict) -> str:
        return envelope["payload"]["finding_key" if self.kind == "inbox" else "case_id"]

    def fold(self, facts: list[dict]):
        folded = _facts(facts)
        return ib.entry_from_facts(folded) if self.kind == "inbox" else sv.case_from_facts(folded)

    def admit(self, facts: list[dict], fact: dict) -> None:
        """Who may report what, for facts that come through the ingress (commands check it themselves)."""
        current = self.fold(facts) if facts else None
        new = Fact.from_envelope(fact, seq=len(facts))
        if self.kind == "inbox":
            ib.admit(current, new)
        else:
            sv.admit(current, new)

    def snapshot(self, agg, as_of: datetime) -> dict:
        if self.kind == "inbox":
            return ib.snapshot(agg, as_of, self.settings)
        return sv.snapshot(agg, as_of)

    def findings(self, agg, as_of: datetime):
        return [] if self.kind == "inbox" else sv.evaluate(agg, as_of)

    def due_at(self, agg, as_of: datetime):
        if agg is None:
            return None
        return ib.next_due(agg, as_of, self.settings) if self.kind == "inbox" else sv.next_due(agg, as_of)

    def changed_events(self, agg, snapshot: dict, cause: str, as_of: datetime) -> list[dict]:
        return []


def _refuse_not_owner(exc: NotOwnerError) -> CommandRefused:
    return CommandRefused("forbidden", exc.field or "dept", str(exc))


class CoordinationService(EventSourcedService):
    """Findings inbox (triage, escalation, counters) and supervision cases (监督案件)."""

    manifest = MANIFEST

    db = Mongo("coordination", indexes=store.ensure_indexes)
    plugins = Plugins()

    def _settings(self) -> CoordinationSettings:
        resolver = self.settings
        return resolver.for_dept(None) if resolver is not None else DEFAULT_SETTINGS

    def adapter(self, aggregate, envelope=None) -> CoordinationAdapter:
        return CoordinationAdapter(aggregate.name, self._settings())

    # ---- counters kept on write ---------------------------------------------------------------------
    def after_save(self, aggregate, doc: dict) -> None:
        if aggregate.name == "inbox" and doc.get("snapshot", {}).get("finding_key"):
            store.count(self.db, doc["_id"], doc["version"], ib.counter_key(doc["snapshot"]))

    def _relay(self, repo, doc, pending) -> None:
        """The kernel relays after every save, the deadline sweep's included (escalations happen
        there, with no new fact and no after_save): count those too."""
        super()._relay(repo, doc, pending)
        if doc is not None and repo.store.col.name == store.INBOX and doc.get("snapshot", {}).get("finding_key"):
            store.count(self.db, doc["_id"], doc["version"], ib.counter_key(doc["snapshot"]))

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
        """Inbox entries (snapshots), most severe and oldest first, with the true total."""
        if state and state not in INBOX_STATES:
            return {"error": {"code": "invalid_value", "field": "state", "message": f"未知的处理状态 {state}"}}
        if severity and severity not in SEVERITY_RANK:
            return {"error": {"code": "invalid_value", "field": "severity", "message": f"未知的严重程度 {severity}"}}
        return store.list_inbox(self.db, dept=dept, state=state, rule_id=rule_id, severity=severity,
                                escalated=escalated, assignee=assignee, limit=int(limit), offset=int(offset))

    @rpc
    def get_inbox_entry(self, finding_key):
        """One inbox entry with its triage log, its merged duplicates and the facts behind it."""
        doc = self.aggregate_doc("inbox", finding_key)
        if doc is None or not doc.get("snapshot", {}).get("finding_key"):
            return None
        return {**doc["snapshot"], "duplicates": store.duplicates_of(self.db, finding_key),
                "history": self.history(doc)}

    @rpc
    def inbox_counters(self, dept=None):
        """Counts per department, rule, severity and state (+ escalated open entries), kept on write."""
        return store.counters(self.db, dept)

    # ---- inbox commands (the justice bureau) ---------------------------------------------------------------
    def _triage(self, finding_key: str, dept: str, build: Callable) -> dict:
        def decide(entry, event_id):
            return build(entry, event_id)

        return self._command("inbox", finding_key, decide, dept,
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
        return self._case(case_id, dept, lambda c, eid: sv.open_case(
            c, case_id, kind=kind, origin=origin, depts=depts, title=title, at=self.clock(), dept=dept,
            event_id=eid, origin_refs=origin_refs if isinstance(origin_refs, list) else None,
            checklist=checklist if isinstance(checklist, list) else None, actor=actor, opened_on=opened_on))

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


# ---- one finding handler per declared source of findings ---------------------------------------------------

def _finding_handler(source: str):
    def handler(self, envelope):
        self.apply(envelope)

    name = f"handle_{source.replace('-', '_')}_findings"
    handler.__name__ = handler.__qualname__ = name
    handler.__doc__ = f"`finding.*` from {source} into the findings inbox (ordered by the finding's as_of)."
    return name, reliable_event_handler(source, "finding.*")(handler)


def finding_sources() -> tuple[str, ...]:
    """Every declared service that keeps findings (this one included)."""
    return tuple(sorted({m.name for m in manifests() if m.findings} | {MANIFEST.name}))


for _source in finding_sources():
    _name, _handler = _finding_handler(_source)
    setattr(CoordinationService, _name, _handler)
