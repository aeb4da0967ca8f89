"""Penalty case service (行政处罚案件): one event-sourced aggregate per case.

Two ways in, one model. Departmental systems report case facts through the ingress (`case.*`);
departments that handle cases inside Zhifa (网上办案) send commands (`act`, RPC and HTTP), which
the strict domain commands turn into the same facts, wrapped in an envelope from source 'zhifa'.
Both go through the kernel's ingest path: fold, evaluate the rules, store the snapshot and the
next due date, relay `finding.raised` / `finding.resolved` on `penalty.events`.

Rules read local projections only (projections.py): `officer.changed` from personnel,
`item.changed` from the registry, and the service's own decisions index.

Re-evaluation when a projection changes. A newer officer or item snapshot (a credential
suspended later, an item amended) can change the findings of cases already evaluated. The
handler does not re-run those cases itself: it sets `due_at` to now on every not-yet-archived
case whose snapshot lists that officer (`officer_ids`) or item code (`item_codes`), and the
kernel's deadline sweep (DEADLINE_SWEEP_SECONDS) re-evaluates them with no new fact. A newly
indexed decision does the same for the party's other cases (double fine). So a projection change
shows in findings within one sweep interval; redelivered snapshots only cause a spare sweep.
"""
from __future__ import annotations

import inspect
import json
import logging
import re
import sys
from datetime import datetime
from typing import Any, Callable

from nameko.rpc import rpc

from contracts.fields import DEPT, ID
from services.common.errors import DomainError
from services.common.ondemand import OnDemand
from services.common.ownership import only_reporter
from services.common.workdays import DEFAULT_CALENDAR, WorkdayCalendar
from services.kernel.base import EventSourcedService, bounded
from services.kernel.commands import CommandRefused, refusal
from services.kernel.process_memo import ProcessMemo
from services.kernel.memo import Memo
from services.kernel.messaging import batch_event_handler
from services.kernel.mongo import Mongo
from services.kernel.plugins import Plugins
from services.kernel.projection_cache import ProjectionReader, projection_reader
from services.kernel.settings import DeptSettings
from services.penalty import case_changed, projections, store
from services.penalty.command_forms import command_forms
from services.penalty.domain import case as c
from services.penalty.domain import rules
from services.penalty.domain.settings import PenaltySettings
from services.penalty.manifest import MANIFEST

# Commands of 网上办案: name -> strict domain command (each builds one fact or refuses).
COMMANDS = {
    "file_case": c.file_case, "record_act": c.record_act, "start_testing": c.start_testing,
    "complete_testing": c.complete_testing, "extend": c.extend, "suspend": c.suspend, "resume": c.resume,
    "notify": c.notify, "request_hearing": c.request_hearing, "notify_hearing": c.notify_hearing,
    "hold_hearing": c.hold_hearing, "review": c.review, "discuss": c.discuss, "decide": c.decide,
    "decide_on_spot": c.decide_on_spot, "serve": c.serve, "record_payment": c.record_payment,
    "execute": c.execute, "close": c.close, "archive": c.archive, "publish": c.publish,
    "withdraw_publication": c.withdraw_publication, "revoke_decision": c.revoke_decision,
    "change_decision": c.change_decision, "file_major_penalty": c.file_major_penalty,
    "transfer_to_police": c.transfer_to_police,
}
DATETIME_PARAMS = frozenset({"at", "discovered_at", "hearing_at", "served_at"})
SUPPLIED = frozenset({"case", "event_id", "dept"})  # filled in by the service, never by the caller
TRUE, FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})

log = logging.getLogger("zhifa.penalty")


def _bad_argument(field: str, message: str) -> dict:
    return {"error": {"code": "invalid_value", "field": field, "message": message}}


class PenaltyAdapter:
    """Runs the pure penalty domain for the kernel's event-sourced repository.

    The kernel asks for the snapshot and then the findings of the same folded case at the same
    instant; the rules run once (the snapshot keeps a digest of the findings for queries).
    """

    def __init__(self, db, plugins, settings: DeptSettings, calendar: WorkdayCalendar = DEFAULT_CALENDAR,
                 memo: Callable[[], Memo | None] = lambda: None,
                 projections: Callable[[], ProjectionReader | None] = lambda: None):
        self.db = db
        self.plugins = plugins
        self.settings = settings
        self.calendar = calendar
        self.memo = memo  # the service's unit of work memo (kernel/memo.py), read when a look-up runs
        self.projections = projections  # the unit's reader of the process projection cache (kernel/projection_cache.py)
        self._per_dept: dict[str, tuple[PenaltySettings, list, list]] = {}
        self._last: tuple[c.Case, datetime, list] | None = None

    creating = ("case.filed", "case.decided_on_spot")  # the facts that open a case (kernel: inserted unread)

    def aggregate_id(self, envelope: dict) -> str:
        return str(envelope["payload"]["case_id"])

    def fold(self, facts: list[dict]) -> c.Case:
        return c.fold([c.Fact.from_dict(f) for f in facts], str(facts[0]["payload"]["case_id"]))

    def admit(self, facts: list[dict], fact: dict) -> None:
        """Refuse (NotOwnerError) a fact about a case another department handles."""
        if not only_reporter(facts, fact):  # else every earlier fact came from the same department
            c.admit(self.fold(facts), c.Fact.from_dict(fact))

    def for_dept(self, dept: str) -> tuple[PenaltySettings, list, list]:
        """(settings, crime thresholds, rules) of a department, from the plugins (the built-in rules
        are the plugin builtin.rules; department plugins add, replace or switch off rules)."""
        if dept not in self._per_dept:
            self._per_dept[dept] = (self.settings.for_dept(dept),
                                    self.plugins.crime_thresholds(dept), self.plugins.rules("penalty", dept))
        return self._per_dept[dept]

    @staticmethod
    def _others_wait(dept_rules: list) -> bool:
        """Whether a rule a department runs may wait for a case's arriving facts in a way `rules.due_dates`
        does not know: one that is not the domain's own (the built-in plugin's, wrapped by the plugin host,
        whose `functools.wraps` keeps the module and attributes) unless it declares
        `waits_for_arrivals = False` (plugins/hookspecs.py, `zhifa_case_rules`). Only the value False opts
        out: anything else a plugin sets there (a string, an object whose truth raises) counts as waiting."""
        return any(getattr(fn, "__module__", None) != rules.__name__
                   and getattr(fn, "waits_for_arrivals", True) is not False for _, fn in dept_rules)

    @staticmethod
    def dept_of(case: c.Case) -> str:
        pending = case.held + case.anomalies
        return case.dept or (pending[0].fact.dept if pending else "")

    def _evaluate(self, case: c.Case, as_of: datetime) -> list:
        if self._last is not None and self._last[0] is case and self._last[1] == as_of:
            return self._last[2]
        dept = self.dept_of(case)
        settings, thresholds, extra_rules = self.for_dept(dept)
        refs = projections.references(case)
        officers, items = store.projected(self.db, refs["officer_ids"], refs["item_codes"], self.memo(),
                                          self.projections(), case.case_id)
        others = OnDemand(lambda: store.other_decisions(self.db, refs["party_id"], case.case_id, self.projections()))
        facts = projections.case_facts(officers, items, thresholds, others)
        found = rules.evaluate(case, facts, settings, as_of, self.calendar, rules=extra_rules)
        self._last = (case, as_of, found)
        return found

    def snapshot(self, agg: c.Case, as_of: datetime) -> dict:
        return projections.case_snapshot(agg, self._evaluate(agg, as_of), self.for_dept(self.dept_of(agg))[0])

    def resolutions(self, agg: c.Case, as_of: datetime) -> dict:
        """How findings that stop holding were settled (a fine paid late: the late fee)."""
        return rules.resolutions(agg, self.for_dept(self.dept_of(agg))[0])

    def findings(self, agg: c.Case, as_of: datetime):
        return self._evaluate(agg, as_of)

    def due_at(self, agg: c.Case, as_of: datetime) -> datetime | None:
        settings, _, dept_rules = self.for_dept(self.dept_of(agg))
        dates = rules.due_dates(agg, settings, self.calendar, after=as_of, others_wait=self._others_wait(dept_rules))
        return min(dates.values()) if dates else None

    def changed_events(self, agg, snapshot: dict, cause: str, as_of: datetime) -> list[dict]:
        # findings, and `case.changed` for the handover service (以罚代刑); full state is read through the API
        code = (agg.decision.item_code if agg.decision else "") or agg.item_code
        items = store.projected(self.db, (), [code], self.memo(), self.projections(), agg.case_id)[1] if code else {}
        return case_changed.events(agg, items, len(agg.applied) + len(agg.held) + len(agg.anomalies), cause, as_of)


def _command_kwargs(command: str, fn, params: Any, dept: str, now: datetime) -> dict:
    """Caller's JSON params -> keyword arguments of the domain command (times parsed, `at` = now)."""
    if not isinstance(params, dict):
        raise DomainError("操作参数必须是 JSON 对象", code="invalid_params", field="params")
    accepted = {name: p for name, p in inspect.signature(fn).parameters.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in SUPPLIED}
    kwargs: dict[str, Any] = {}
    for name, value in params.items():
        if name not in accepted:
            raise DomainError(f"操作 {command} 不接受参数 {name}", code="unknown_param", field=name)
        if name in DATETIME_PARAMS and value is not None:
            parsed = c.parse_time(value)
            if parsed is None:
                raise DomainError(f"参数 {name} 必须是带时区的 ISO 8601 时间", code="invalid_value", field=name)
            value = parsed
        kwargs[name] = value
    if kwargs.get("at") is None:
        kwargs["at"] = now
    missing = [n for n, p in accepted.items() if p.default is inspect.Parameter.empty and n not in kwargs]
    if missing:
        raise DomainError(f"操作 {command} 缺少参数 {'、'.join(missing)}", code="missing_param", field=missing[0])
    if "dept" in inspect.signature(fn).parameters:
        kwargs["dept"] = dept
    return kwargs


def _flag(value: Any) -> bool | None:
    """A tri-state filter from an RPC/HTTP argument; ValueError when it is not one."""
    if isinstance(value, bool):
        return value
    if value is None or value == "":
        return None
    text = str(value).lower()
    if text in TRUE | FALSE:
        return text in TRUE
    raise ValueError(value)


_INDEXED_REFS = store.known_refs()  # (database, case_refs document, case id) entries this process has written
# (database, case id) -> digest of the decisions-index entry this process last wrote for the case
DECISION_ENTRY_BYTES = 245  # one case's digest held (measured: tests/unit/test_process_memo.py)
_WRITTEN_DECISIONS = ProcessMemo("penalty.decisions", share=0.075, entry_bytes=DECISION_ENTRY_BYTES)


# (database, case id) -> what judging the case read at its last save here (projections.judged_reads), to
# read ahead for the next batch with facts of it (PenaltyService.prefetch)
JUDGED_READS_BYTES = 420  # one case's entry held (measured: tests/unit/test_process_memo.py)
_JUDGED_READS = ProcessMemo("penalty.judged_reads", share=0.08, entry_bytes=JUDGED_READS_BYTES)


def _digest(entry: dict | None) -> int:
    return hash(json.dumps(entry, sort_keys=True, default=str))


def _decided_in_unit(db, clock, writes) -> list:
    """A unit of work's decided cases, (parties, case id, key, digest, entry changed, entry), appended by
    `_index_decision`; at the unit's end (after the entries' writes) their parties are logged in one
    write and their other cases fall due (store.decisions_changed), then each digest is remembered (`_WRITTEN_DECISIONS`)."""
    saved: list = []

    def done() -> None:
        changed = [(p, c) for p, c, _, _, entry_changed, _ in saved if entry_changed]
        if changed:
            store.decisions_changed(db, changed, clock(), entries={c: entry for _, c, _, _, _, entry in saved})
        for _, _, key, digest, _, _ in saved:
            _WRITTEN_DECISIONS.put(key, digest)
    writes.after(done)
    return saved


class PenaltyService(EventSourcedService):
    """Penalty cases: ingress facts and 网上办案 commands, rules over local projections, queries.

    `handle_case` (case.*) is generated from the manifest; the projections of `officer.changed`
    and `item.changed` and the side indexes are this service's own.
    """

    manifest = MANIFEST

    db = Mongo("penalty", indexes=store.ensure_indexes, before_close=store.settle_lagged)
    plugins = Plugins()

    def adapter(self, aggregate, envelope=None) -> PenaltyAdapter:
        return PenaltyAdapter(self.db, self.plugins, self.settings, memo=lambda: self.memo,
                              projections=self.projection_reader)

    def projection_reader(self) -> ProjectionReader | None:
        """This unit of work's reader of the officer and item projections through the process cache
        (services/kernel/projection_cache.py); at the unit's end, after its side writes, the cases it
        saved on a projection that changed meanwhile are made due. None outside a unit of work or
        with the cache off: the projections are read from the database."""
        memo, writes = self.memo, self.writes
        if memo is None or writes is None:
            return None
        return memo.one("penalty.projection_reader", self.db.name, lambda _: self._new_reader(writes))

    def _new_reader(self, writes) -> ProjectionReader | None:
        reader = projection_reader(self.db, self.name)
        if reader is not None:
            writes.after(lambda: self._judged_on_changed(reader))
        return reader

    def _apply_batch(self, envelopes: list[dict]) -> list:
        """The kernel's batch of facts, its case list syncs left to the process's lagged sync
        (store.may_lag: CASE_LIST_LAG_MS); a clerk's command (`act`) syncs at its end."""
        store.may_lag(self.writes)
        return super()._apply_batch(envelopes)

    def _sweep(self):
        """The kernel's sweep (outboxes, deadlines), its case list syncs lagged as a batch's; now and then
        also the case list syncs a dead process recorded and left (store.look_for_abandoned: with no
        facts arriving, no list sync would look)."""
        store.may_lag(self.writes)
        super()._sweep()
        try:
            store.look_for_abandoned(self.db)
        except Exception:  # (looked for again at the next sweep)
            log.warning("case list syncs left by a dead process not carried out", exc_info=True,
                        extra={"service": self.name})

    def prefetch(self, groups: dict) -> dict:
        """The batch's case documents (the kernel's prefetch), then what their judgements will read of
        the officer and item projections and of their parties' other decisions (store.read_ahead):
        from each case's document as just read, else as this process last saved it (`_JUDGED_READS`),
        with what the batch's facts add. A guess: a key it misses is read by the case that needs it."""
        read = super().prefetch(groups)
        if groups.get("case"):
            self._read_ahead(groups["case"], read.get("case", {}))
        return read

    def prefetch_due(self, repo, agg_ids: list[str]) -> dict[str, dict]:
        """The deadline sweep's due cases (the kernel's prefetch), then what their judgements will read
        (`_read_ahead`, from each case's document)."""
        docs = super().prefetch_due(repo, agg_ids)
        self._read_ahead([(case_id, []) for case_id in agg_ids], docs)
        return docs

    def _read_ahead(self, members: list, docs: dict) -> None:
        """`store.read_ahead` of what the judgements of `members` — [(case id, its facts in the batch)] —
        will read, from each case's document in `docs`, else as this process last saved it."""
        reader = self.projection_reader()
        if reader is None:
            return
        officers, items, parties = set(), set(), set()
        for case_id, envelopes in members:
            doc = docs.get(case_id)
            known = projections.judged_reads(doc.get("snapshot") or {}) if doc is not None \
                else _JUDGED_READS.get((self.db.name, case_id))
            party, fined = (known[2], known[3]) if known else (None, False)
            if known:
                officers.update(known[0])
                items.update(known[1])
            for envelope in envelopes:
                acting, codes, named, fines = projections.fact_reads(envelope.get("type"), envelope.get("payload") or {})
                officers.update(acting)
                items.update(codes)
                party, fined = party or named, fined or fines
            if party and fined:
                parties.add(party)
        store.read_ahead(reader, self.db, officers, items, parties)

    def _judged_on_changed(self, reader: ProjectionReader) -> None:
        # the deadline sweep re-evaluates them on fresh projections
        store.mark_cases_due(self.db, reader.finish(), self.clock(), "projection_read")

    def store_listeners(self, aggregate) -> list:
        return [*super().store_listeners(aggregate), self._saved, self._index_decision]

    def _saved(self, old: dict | None, new: dict) -> None:
        _JUDGED_READS.put((self.db.name, new["_id"]), projections.judged_reads(new.get("snapshot") or {}))
        reader = self.projection_reader() if old is not new else None
        if reader is not None:
            reader.saved.add(new["_id"])

    def _index_decision(self, old: dict | None, new: dict) -> None:
        """Keep the decisions index in step with a saved case, without reading it: the entry the
        previous version implies is compared with the new one (`old`, known at save time), and the
        write is deferred to the unit's end. Written when they differ, or when this process has not
        written that entry itself (a crash, another process), so a lost write is repaired by the
        next save; a redelivery that saved nothing (`old is new`) reads the index and repairs it
        (the party's other cases fall due when the entry changed, after the write)."""
        case_id, snap = new["_id"], new["snapshot"]
        entry = projections.decision_entry(case_id, snap)
        if entry is None and projections.never_decided(new):
            return  # no decision in any version of the case: no entry to read, write or drop (issue 14)
        parties = (snap.get("party_id"), (old or {}).get("snapshot", {}).get("party_id"))
        key, digest = (self.db.name, case_id), _digest(entry)
        if old is new:  # a redelivery, maybe after a crash between the entry's write and its log:
            changed = store.index_decision(self.db, case_id, entry)  # logged again unless this process did
            if changed or _WRITTEN_DECISIONS.get(key) != digest:
                store.decision_changed(self.db, parties, self.clock(), case_id, make_due=changed)
                _WRITTEN_DECISIONS.put(key, digest)
            return
        before = projections.decision_entry(case_id, old["snapshot"]) if old is not None else None
        if before == entry and _WRITTEN_DECISIONS.get(key) == digest:
            return
        writes = self.writes
        store.put_decision(self.db, case_id, entry, writes)
        if writes is None:
            if before != entry:  # after the write: logged for the caches, the parties' other cases due
                store.decision_changed(self.db, parties, self.clock(), case_id)
            _WRITTEN_DECISIONS.put(key, digest)  # (after its log: see the redelivery above)
            return
        # the unit's decided cases together at its end: one log write for all their parties
        writes.part(("penalty.decisions_changed", self.db.name), lambda: _decided_in_unit(self.db, self.clock, writes)) \
            .append((parties, case_id, key, digest, before != entry, entry))

    def store(self, aggregate) -> store.CaseStore:
        """Case aggregates whose every save keeps the case list and its counters in step (store.py)."""
        return store.CaseStore(self.db[aggregate.collection], listeners=self.store_listeners(aggregate),
                               layout=aggregate.layout, writes=lambda: self.writes)

    def after_save(self, aggregate, doc: dict) -> None:
        """Keep the reverse index (officer, item, party -> cases) in step with the saved case
        (idempotent, deferred to the unit's end, so a redelivery after a crash repairs it). The
        decisions index is kept by a store listener (`_index_decision`: it needs the old version)."""
        store.index_refs(self.db, doc["_id"], doc["snapshot"], _INDEXED_REFS, self.writes)

    # ---- projections ---------------------------------------------------------------------------
    @batch_event_handler("personnel", "officer.changed")
    def handle_officer_changed(self, envelopes):
        """Officer snapshot for the credential rule; cases referring to the officer fall due."""
        return self._projections_changed(store.OFFICERS, envelopes)

    @batch_event_handler("registry", "item.changed")
    def handle_item_changed(self, envelopes):
        """Item time line for the item and tier rules; cases referring to the item fall due."""
        return self._projections_changed(store.ITEMS, envelopes)

    def _projections_changed(self, kind: str, envelopes):
        """Officer or item projections of one message or of a batch (BATCH_MAX > 1: one outcome per
        envelope). Per projection, in this order: stored (one write each, kept only when not older),
        its change logged (the batch's in one write; `store.projections_stored`), the cases that
        refer to it read from the reverse index and made due (the batch's in one read and one bulk
        per collection: `store.mark_due_each`). A projection whose write failed fails alone (retry /
        dead letter); a failure after the writes fails every message whose projection was stored."""
        if not isinstance(envelopes, list):
            failure = self._store_projections(kind, [envelopes])[0]
            if failure is not None:
                raise failure[1].with_traceback(failure[2])
            return None
        return self._store_projections(kind, envelopes)

    def _store_projections(self, kind: str, envelopes: list[dict]) -> list:
        field = "officer_ids" if kind == store.OFFICERS else "item_codes"
        id_field = store.PROJECTION_FIELDS[kind][0]
        now, generation = self.clock(), store.cache_generation()
        outcomes: list = [None] * len(envelopes)
        stored: dict[str, dict] = {}  # key -> the payload stored last (the newest: older ones are not stored)
        due: dict[str, None] = {}     # keys whose cases fall due, in order
        written: list[int] = []
        taken, payloads = [], []
        for i, envelope in enumerate(envelopes):
            try:
                payloads.append(envelope["payload"])
            except Exception:  # (the message's retry / dead-letter way, with the reason)
                outcomes[i] = sys.exc_info()
                continue
            taken.append(i)
        try:  # the batch's projections in one read and one bulk (store.store_projections)
            answers = store.store_projections(self.db, kind, payloads, now) if payloads else []
        except Exception:
            failed = sys.exc_info()
            for i in taken:
                outcomes[i] = failed
            answers = []
        for i, payload, answer in zip(taken, payloads, answers):
            if isinstance(answer, store.Failed):
                outcomes[i] = answer.exc_info
                continue
            kept, changed = answer
            key = payload[id_field]
            if kept:
                stored[key] = payload
                written.append(i)
            if changed:
                due[key] = None
                written.append(i)
        try:  # logged before the due marks: see services/kernel/projection_cache.py
            store.projections_stored(self.db, kind, stored, generation)
            if due:
                store.mark_due_each(self.db, field, due, now)
        except Exception:
            failed = sys.exc_info()
            for i in written:
                outcomes[i] = failed
        return outcomes

    # ---- commands (网上办案) ---------------------------------------------------------------------
    @rpc
    def act(self, case_id, command, params=None, dept=None, actor=None):
        """Run one case-handling command for `dept`; {"ok": True, ...} or {"ok": False, "error": ...}.

        Error codes: unknown_command, invalid_dept, invalid_case_id, unknown_param, missing_param,
        invalid_value, invalid_params, contract_violation (bad input); forbidden (another
        department's case); illegal_transition (not allowed in the case's current state). The
        command is decided on the case's current state inside the compare-and-set loop, so two
        racing commands on one case are never both accepted.
        """
        fn = COMMANDS.get(command)
        if fn is None:
            return refusal("unknown_command", "command", f"未知的办案操作 {command}，可用操作：{'、'.join(COMMANDS)}")
        if not isinstance(dept, str) or not re.fullmatch(DEPT["regex"], dept):
            return refusal("invalid_dept", "dept", "办案部门编码无效（应为“6位行政区划代码-部门简称”）")
        if not isinstance(case_id, str) or not re.fullmatch(ID["regex"], case_id):
            return refusal("invalid_case_id", "case_id", "案件编号无效（1–64 位字母、数字或 _-:/）")
        try:
            kwargs = _command_kwargs(command, fn, params if params is not None else {}, dept, self.clock())
        except DomainError as exc:
            return {"ok": False, "error": exc.to_dict()}

        def decide(case, event_id):
            case = case or c.Case(case_id)
            if case.exists and case.dept != dept:
                raise CommandRefused("forbidden", "dept", f"案件 {case_id} 由 {case.dept} 办理，{dept} 无权操作")
            try:
                return fn(case, event_id=event_id, **kwargs)
            except DomainError:
                raise
            except (TypeError, ValueError, AttributeError) as exc:
                raise CommandRefused("invalid_params", None, f"操作 {command} 的参数类型不正确：{exc}") from exc

        return self.execute("case", case_id, decide, dept=dept,
                            summary=lambda doc: {"case": projections.case_summary(doc)})

    # ---- queries ----------------------------------------------------------------------------------
    @rpc
    def list_cases(self, dept=None, stage=None, overdue=None, limit=50, offset=0):
        """Cases by department and stage; `overdue` = has an open time-limit finding (see projections).

        Served from the case list (store.py): the total from the counters, the page from the
        partitions, ordered by department, stage (process order), overdue first, then the time the
        case reached that state."""
        if stage and stage not in c.STAGES:
            return _bad_argument("stage", f"未知的案件阶段 {stage}，可选：{'、'.join(c.STAGES)}")
        try:
            flag = _flag(overdue)
        except ValueError:
            return _bad_argument("overdue", "参数 overdue 只能是 true 或 false")
        try:
            limit, offset = bounded(limit, "limit", 1, 500), bounded(offset, "offset", 0, 1_000_000)
        except DomainError as exc:
            return {"error": exc.to_dict()}
        items, total = store.list_cases(self.db, dept=dept or None, stage=stage or None, overdue=flag,
                                        limit=limit, offset=offset, stage_order=c.STAGES)
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    @rpc
    def case_figures(self, dept=None):
        """The overview's case figures from the counters (no case is read): the total, the overdue
        ones, and the count per department x stage x overdue (`rows`), with the stage labels."""
        rows = store.case_counts(self.db, dept or None)
        return {"total": sum(r["count"] for r in rows), "overdue": sum(r["count"] for r in rows if r["overdue"]),
                "rows": rows, "stages": [{"stage": s, "label": c.STAGE_LABELS[s]} for s in c.STAGES]}

    @rpc
    def get_case(self, case_id):
        """One case: summary, folded case, full-process record, open findings, held/anomalous facts."""
        doc = self.aggregate_doc("case", case_id)
        return projections.case_detail(doc) if doc else None

    @rpc
    def case_commands(self):
        """The 网上办案 commands with their parameters (type, required, allowed values, pattern, Chinese
        label), derived from the domain commands and the contracts `act` validates against (for forms)."""
        return {"items": command_forms(COMMANDS, SUPPLIED)}
