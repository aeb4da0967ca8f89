"""Criminal-justice handover service (行刑衔接, 国务院令第310号).

Declared in manifest.py; the kernel generates `handle_handover` (`handover.*` facts from the
ingress: department, police and procuratorate steps — the domain refuses a step from a party the
handover is not addressed to, `not_addressee`, dead-lettered with a `refused` notice) and
`handle_case` (penalty's `case.changed`), the findings query, the deadline sweep and the command
path. This module holds the adapters over the pure domain, the queries and the `record_step`
command (网上办案 for the three parties).

Linked aggregates. A handover's rules read its penalty case (a fine after the transfer), and a
penalty case's 以罚代刑 rule reads the handovers of that case. Neither re-runs the other inline:
after a save, the linked aggregates are marked due now and the kernel's deadline sweep
re-evaluates them (DEADLINE_SWEEP_SECONDS), like penalty does when a projection changes.
"""
from __future__ import annotations

from datetime import datetime

from nameko.rpc import ServiceRpc, rpc

from services.common.chinatime import local_date, parse_time
from services.common.errors import DomainError
from services.common.facts import Fact
from services.common.ondemand import OnDemand
from services.kernel.base import EventSourcedService, bounded
from services.kernel.commands import build_envelope, refusal, validate
from services.kernel.mongo import Mongo
from services.kernel.plugins import Plugins
from services.kernel.settings import DeptSettings
from services.handover import domain as d
from services.handover import store
from services.handover.manifest import MANIFEST


def _settings(resolver, dept: str | None) -> d.HandoverSettings:
    if isinstance(resolver, DeptSettings):
        return resolver.for_dept(dept)
    return resolver or d.DEFAULT_SETTINGS


def _base(resolver) -> d.HandoverSettings:
    """Party kinds are the jurisdiction's (preset), the same for every department."""
    return resolver.base if isinstance(resolver, DeptSettings) else (resolver or d.DEFAULT_SETTINGS)


def _facts(stored: list[dict]) -> list[Fact]:
    return [Fact.from_envelope(f, seq=i) for i, f in enumerate(stored)]


class HandoverAdapter:
    """The handover aggregate for the kernel: fold, admit (party checks), snapshot, rules, due."""

    def __init__(self, db, settings):
        self.db = db
        self.settings = settings

    def aggregate_id(self, envelope: dict) -> str:
        return str(envelope["payload"]["handover_id"])

    def admit(self, facts: list[dict], fact: dict) -> None:
        hid = str(fact["payload"]["handover_id"])
        d.admit(_facts(facts), Fact.from_envelope(fact, seq=len(facts)), hid, _base(self.settings))

    def fold(self, facts: list[dict]) -> d.Handover:
        return d.fold(_facts(facts), str(facts[0]["payload"]["handover_id"]), _base(self.settings))

    def case_view(self, h: d.Handover) -> d.PenaltyCaseView | None:
        if not h.case_id or self.db is None:
            return None
        doc = store.case_doc(self.db, h.case_id)
        return d.latest_view(f["payload"] for f in doc["facts"]) if doc and doc.get("facts") else None

    def snapshot(self, agg: d.Handover, as_of: datetime) -> dict:
        snap = d.to_snapshot(agg, as_of, _settings(self.settings, agg.dept), case=self.case_view(agg))
        snap["dept"] = agg.dept or (agg.facts[0].dept if agg.facts else None)
        return snap

    def findings(self, agg: d.Handover, as_of: datetime):
        return d.evaluate(agg, as_of, _settings(self.settings, agg.dept), case=self.case_view(agg))

    def due_at(self, agg: d.Handover, as_of: datetime):
        return d.next_due(agg, as_of, _settings(self.settings, agg.dept))

    def changed_events(self, agg, snapshot, cause, as_of) -> list[dict]:
        return []


class CaseAdapter:
    """The penalty case as penalty publishes it (`case.changed`), judged for 以罚代刑.

    Every `case.changed` is declared `creating` (kernel: inserted unread when the case is not in the
    process's cache). A case this process saved before is in its cache and is not guessed; one it has
    not seen is nearly always a case's first publication (penalty publishes a case once it has
    something a handover rule reads), so its read would find nothing. A case that exists after all
    (another consumer, a restart, the cache evicted it) makes the insert lose on its key and is read
    and decided again (AggregateStore.update): one lost insert instead of a read that found nothing
    for every new case."""

    creating = ("case.changed",)

    def __init__(self, db, settings, plugins):
        self.db = db
        self.settings = settings
        self.plugins = plugins

    def aggregate_id(self, envelope: dict) -> str:
        return str(envelope["payload"]["case_id"])

    def fold(self, facts: list[dict]) -> d.PenaltyCaseView:
        return d.latest_view(f["payload"] for f in facts)

    def _handovers(self, case_id: str) -> list[d.Handover]:
        if self.db is None:
            return []
        return [d.fold(_facts(doc["facts"]), doc["_id"], _base(self.settings))
                for doc in store.handover_docs_of_case(self.db, case_id) if doc.get("facts")]

    def _thresholds(self, dept: str) -> list[dict]:
        return self.plugins.crime_thresholds(dept) if self.plugins is not None else []

    def snapshot(self, agg: d.PenaltyCaseView, as_of: datetime) -> dict:
        return {"case_id": agg.case_id, "dept": agg.dept, "revision": agg.revision, "item_code": agg.item_code,
                "penalized": agg.penalized, "decision_no": agg.decision_no,
                "thresholds_reached": d.thresholds_reached(agg, self._thresholds(agg.dept))}

    def findings(self, agg: d.PenaltyCaseView, as_of: datetime):
        # the handovers are read only when the rule gets that far (a penalised case reaching a threshold)
        return d.evaluate_case(agg, OnDemand(lambda: self._handovers(agg.case_id)), self._thresholds(agg.dept), as_of)

    def due_at(self, agg, as_of):
        return None

    def changed_events(self, agg, snapshot, cause, as_of) -> list[dict]:
        return []


LETTER_KIND = "handover_letter"


def letter_fields(snapshot: dict) -> tuple[dict, dict]:
    """(fields the handover decides, defaults a caller may replace) of its 涉嫌犯罪案件移送书."""
    head = snapshot.get("head_decision") or {}
    approved = parse_time(head.get("at"))
    first = (snapshot.get("addressees") or [{}])[0]
    decided = {"suspected_crime": snapshot.get("suspected_crime") or "",
               "approved_on": "{0.year}年{0.month}月{0.day}日".format(local_date(approved)) if approved else ""}
    defaults = {"police_agency": first.get("police_unit") or first.get("police_dept") or "",
                "procuratorate": "、".join(snapshot.get("procuratorates") or []) or "（未抄送）"}
    return decided, defaults


_LINKED: set = set()  # (case id, handover id) links this process has written (store.link_case)


class HandoverService(EventSourcedService):
    """Handovers of suspected crimes to the police (and back), with every deadline of 310号令."""

    manifest = MANIFEST

    db = Mongo("handover", indexes=store.ensure_indexes)
    plugins = Plugins()
    documents = ServiceRpc("documents")

    def adapter(self, aggregate, envelope=None):
        if aggregate.name == "case":
            return CaseAdapter(self.db, self.settings, self.plugins)
        return HandoverAdapter(self.db, self.settings)

    def after_save(self, aggregate, doc: dict) -> None:
        """Count the handover's status; mark the linked aggregates due for re-evaluation."""
        snap = doc.get("snapshot") or {}
        if aggregate.name == "handover":
            steps = snap.get("record") or []
            store.count_status(self.db, doc["_id"], doc["version"], snap.get("parties") or [], snap.get("status"),
                               dept=snap.get("dept"), month=str(steps[-1]["at"])[:7] if steps else None)
            if snap.get("case_id"):
                store.mark_due(self.store(self.aggregate("case")), snap["case_id"], self.clock())
        elif self.writes is None:  # (no unit of work)
            self._mark_linked_due([doc["_id"]])
        else:  # once per unit of work, when it ends (before its messages are acked): one read for the batch
            unit = self.writes

            def cases_saved() -> set:
                saved: set = set()
                unit.after(lambda: self._mark_linked_due(sorted(saved)))
                return saved
            unit.part(("handover", "cases saved"), cases_saved).add(doc["_id"])

    def _mark_linked_due(self, case_ids: list[str]) -> None:
        """Mark the handovers naming any of these (saved) cases due now: one read of the index of
        linked cases, and the links only of the cases in it (store.py). Read after the saves, so a
        handover linked before a case's save is found, as when it was read right after each save."""
        linked = store.cases_with_handovers(self.db)
        wanted = [case_id for case_id in case_ids if case_id in linked]
        if not wanted:
            return
        handovers, now = self.store(self.aggregate("handover")), self.clock()
        for case_id in wanted:
            for handover_id in store.handover_ids_of_case(self.db, case_id):
                store.mark_due(handovers, handover_id, now)

    def store_listeners(self, aggregate) -> list:
        """After every save: the kernel's (the open-findings index, which the findings list and the
        overview's figures read once it is built), and for a handover its link from the penalty case it
        names (store.py). (Until 2026-12-04 this replaced the kernel's listeners: under `make run` the
        index was built empty at the start and the supervisor's findings list never showed a handover's.)"""
        listeners = super().store_listeners(aggregate)
        if aggregate.name != "handover":
            return listeners

        def link(old: dict | None, new: dict) -> None:
            store.link_case(self.db, new["_id"], ((old or {}).get("snapshot") or {}).get("case_id"),
                            (new.get("snapshot") or {}).get("case_id"), _LINKED)
        return [*listeners, link]

    # ---- queries -----------------------------------------------------------------------------
    @rpc
    def list_handovers(self, dept=None, status=None, case_id=None, origin=None, limit=50, offset=0):
        """Handovers involving a party (department, police unit or procuratorate), by status/case/origin."""
        try:
            limit = bounded(limit, "limit", 1, 500)
            offset = bounded(offset, "offset", 0, 1_000_000)
        except DomainError as exc:
            return {"error": exc.to_dict()}
        return store.list_handovers(self.db, party=dept, status=status, case_id=case_id, origin=origin,
                                    limit=limit, offset=offset)

    @rpc
    def get_handover(self, handover_id):
        """One handover: every step with who and when, duties with due instants, findings, facts."""
        doc = self.aggregate_doc("handover", handover_id)
        if doc is None:
            return None
        snap = dict(doc["snapshot"])
        return {**snap, "depts": snap.get("parties", []), "findings": self.open_findings(doc),
                "history": self.history(doc)}

    @rpc
    def handover_counters(self, dept=None):
        """Handovers by status for one party (or all), kept on write."""
        return store.counters(self.db, dept)

    @rpc
    def month_counters(self, months):
        """Handovers that reached each status per month, per handing-over department and for the
        county ('*'), kept on write: the coordination service's monthly and quarterly reports."""
        if not isinstance(months, list) or not all(isinstance(m, str) and len(m) == 7 for m in months) \
                or len(months) > 24:
            return {"error": {"code": "invalid_value", "field": "months", "message": "months 应为至多 24 个 YYYY-MM"}}
        return store.month_counters(self.db, months)

    # ---- commands ----------------------------------------------------------------------------
    @rpc
    def record_step(self, handover_id, step, params=None, at=None, dept=None, actor=None):
        """One step of a handover reported inside Zhifa by the party whose step it is.

        Decided on the handover's current state inside the compare-and-set loop: a step from a party
        the handover is not addressed to is refused (`not_addressee`), a step out of order or repeated
        (`illegal_transition`); two parties racing for the same step: exactly one is accepted.
        """
        type_ = f"handover.{step}"
        if type_ not in d.STEPS:
            return {"ok": False, "error": {"code": "invalid_value", "field": "step",
                                           "message": f"未知环节 {step}，可选：{'、'.join(t.split('.', 1)[1] for t in d.STEPS)}"}}
        if params is not None and not isinstance(params, dict):
            return {"ok": False, "error": {"code": "invalid_value", "field": "params", "message": "环节内容必须是 JSON 对象"}}
        when = self.clock() if at in (None, "") else parse_time(at)
        if when is None:
            return {"ok": False, "error": {"code": "invalid_value", "field": "at",
                                           "message": "参数 at 必须是带时区的 ISO 8601 时间"}}
        if not dept:
            return {"ok": False, "error": {"code": "invalid_value", "field": "dept", "message": "缺少报送机关 dept"}}
        payload = {**(params or {}), "handover_id": str(handover_id)}
        base = _base(self.settings)

        def decide(current, event_id):
            # the contract first (which field breaks which rule), then the domain (party, order)
            validate(build_envelope(type_, payload, dept=dept, occurred_at=when, event_id=event_id))
            return d.command(current, Fact(event_id, type_, when, dept, payload), str(handover_id), base)

        return self.execute("handover", str(handover_id), decide, dept=dept,
                            summary=lambda doc: {"status": doc["snapshot"]["status"]})

    @rpc
    def render_letter(self, handover_id, facts=None, request_id=None, formats=None, dept=None, actor=None):
        """The 涉嫌犯罪案件移送书 of an approved handover, with its 抄送 line to the procuratorate, made by
        the documents service (文号, DOCX/PDF, archived under subject `handover`). What the handover
        records is filled in (suspected crime, approval date; police agency and procuratorate unless
        the caller names them); the rest (agency and party names, cause, materials) comes from `facts`.
        Only the department that owns the handover may make it."""
        doc = self.aggregate_doc("handover", str(handover_id))
        if doc is None:
            return refusal("not_found", "handover_id", "移送案件不存在")
        snap = doc["snapshot"]
        if dept != snap.get("dept"):
            return refusal("not_owner", "dept", f"移送案件 {handover_id} 属于 {snap.get('dept')}，{dept} 无权制作其移送书")
        if not (snap.get("head_decision") or {}).get("approved"):
            return refusal("illegal_transition", "handover_id", "机关负责人尚未批准移送，不能制作移送书")
        if facts is not None and not isinstance(facts, dict):
            return refusal("invalid_value", "facts", "文书字段必须是 JSON 对象")
        decided, defaults = letter_fields(snap)
        return self.documents.render(kind=LETTER_KIND, subject_type="handover", subject_id=str(handover_id), dept=dept,
                                     facts={**defaults, **(facts or {}), **decided}, request_id=request_id,
                                     formats=formats, actor=actor)
