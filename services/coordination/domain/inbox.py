"""The findings inbox as a workflow (监督发现收件箱): one entry per finding key.

An entry is folded from two kinds of facts:
- the source service's `finding.raised` / `finding.resolved` (any declared service, the
  coordination service included), ordered by the finding's own `as_of`, never by arrival: a
  resolution relayed before the raise it answers (an interleaved relay, a retry, a replay) cannot
  reopen the finding; a raise later than a resolution (by `as_of`) starts a new episode;
- the supervisor's triage: `inbox.acknowledged` (已阅), `inbox.assigned` (交办), `inbox.dismissed`
  (不予处理, with a reason), `inbox.merged` (合并重复发现), `inbox.case_opened` (立案监督: a supervision
  case was opened from it), ordered by when they were decided.

A new episode (the breach came back after it had been resolved) starts untriaged. Triage facts
are applied leniently when folding (they were decided on the state of their time); the commands
that create them are strict and raise a named error with a Chinese reason.

Escalation (升级): a finding still `new` or only `acknowledged` when its response time for its
severity has passed (settings `response_days_<severity>`, counted from the episode's raise, in
working days unless configured otherwise) is escalated. Escalation is a state of the entry (and
a counter for the console), not a new finding: a finding about a finding would land in this inbox
again and escalate in turn.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable

from services.common.chinatime import day_start, iso_local, local_date, parse_time
from services.common.errors import DomainError, IllegalTransitionError, NotFoundError, NotOwnerError
from services.common.facts import Fact
from services.common.findings import SEVERITY_RANK
from services.common.ownership import is_justice_bureau
from services.coordination.domain.common import bureau_only, command_fact
from services.coordination.domain.settings import DEFAULT_SETTINGS, CoordinationSettings

RAISED, RESOLVED = "finding.raised", "finding.resolved"
ACKNOWLEDGED, ASSIGNED, DISMISSED, MERGED = ("inbox.acknowledged", "inbox.assigned", "inbox.dismissed",
                                             "inbox.merged")
CASE_OPENED = "inbox.case_opened"
TRIAGE_TYPES = (ACKNOWLEDGED, ASSIGNED, DISMISSED, MERGED, CASE_OPENED)
FACT_TYPES = (RAISED, RESOLVED, *TRIAGE_TYPES)
_RANK = {RAISED: 0, RESOLVED: 1}
STATES = ("new", "acknowledged", "assigned", "in_case", "dismissed", "merged", "resolved")
OPEN_STATES = frozenset({"new", "acknowledged", "assigned", "in_case"})
UNHANDLED = frozenset({"new", "acknowledged"})   # what escalates
STATE_LABELS = {"new": "待处理", "acknowledged": "已阅", "assigned": "已交办", "in_case": "已立案监督",
                "dismissed": "不予处理",
                "merged": "已合并", "resolved": "已消除"}
OPEN = "open"  # the listing's filter for every open state at once (what the bureau still has to act on)
OPEN_LABEL = "、".join(STATE_LABELS[s] for s in STATES if s in OPEN_STATES)
MIN_REASON = 4


def fact_time(fact: Fact) -> datetime:
    """When a fact counts: a finding's own `as_of` (falling back to the envelope time), a triage's decision time."""
    if fact.type in _RANK:
        return parse_time(fact.payload.get("as_of")) or fact.occurred_at
    return fact.occurred_at


def order_key(fact: Fact) -> tuple:
    return fact_time(fact), _RANK.get(fact.type, 2), fact.seq, fact.event_id


@dataclass
class InboxEntry:
    finding_key: str
    finding: dict[str, Any] = field(default_factory=dict)   # the finding as last raised/resolved
    source: str = ""
    source_open: bool = False
    first_raised_at: datetime | None = None
    raised_at: datetime | None = None        # start of the current episode
    resolved_at: datetime | None = None
    episodes: int = 0
    triage: str = "new"                      # new | acknowledged | assigned | in_case | dismissed | merged
    assignee: str | None = None
    case_ids: list[str] = field(default_factory=list)   # supervision cases opened from it
    dismiss_reason: str | None = None
    merged_into: str | None = None
    log: list[dict] = field(default_factory=list)

    @property
    def dept(self) -> str:
        return str(self.finding.get("dept") or "")

    @property
    def rule_id(self) -> str:
        return str(self.finding.get("rule_id") or "")

    @property
    def severity(self) -> str:
        return str(self.finding.get("severity") or "info")

    @property
    def known(self) -> bool:
        """A source fact has arrived (a triage fact alone is not an entry)."""
        return bool(self.finding)

    @property
    def state(self) -> str:
        if self.triage in ("merged", "dismissed"):
            return self.triage
        if not self.source_open:
            return "resolved"
        return self.triage

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES


def _reset_triage(entry: InboxEntry) -> None:
    entry.triage, entry.assignee, entry.dismiss_reason, entry.merged_into = "new", None, None, None
    entry.case_ids = []


def entry_from_facts(facts: Iterable[Fact]) -> InboxEntry | None:
    """Fold one finding key's facts in the order they count (see module doc); None without facts."""
    ordered = sorted({f.event_id: f for f in facts}.values(), key=order_key)
    if not ordered:
        return None
    entry = InboxEntry(finding_key=str(ordered[0].payload.get("finding_key") or ""))
    for fact in ordered:
        at = fact_time(fact)
        p = fact.payload
        if fact.type == RAISED:
            entry.finding = {**dict(p)}
            entry.source = fact.source or entry.source
            if not entry.source_open:
                if entry.episodes:
                    _reset_triage(entry)  # the breach came back: a new episode starts untriaged
                entry.episodes += 1
                entry.raised_at = at
                entry.first_raised_at = entry.first_raised_at or at
                entry.resolved_at = None
                entry.source_open = True
        elif fact.type == RESOLVED:
            if not entry.finding:
                entry.finding = {**dict(p)}
            entry.source = entry.source or fact.source
            entry.source_open = False
            entry.resolved_at = at
        elif fact.type in TRIAGE_TYPES:
            action = fact.type.split(".", 1)[1]
            entry.log.append({"action": action, "at": iso_local(at), "actor": p.get("actor"),
                              **{k: p[k] for k in ("assignee", "reason", "note", "into", "case_id") if p.get(k)}})
            if fact.type == ACKNOWLEDGED and entry.triage == "new":
                entry.triage = "acknowledged"
            elif fact.type == ASSIGNED:
                entry.triage, entry.assignee = "assigned", p.get("assignee")
            elif fact.type == DISMISSED:
                entry.triage, entry.dismiss_reason = "dismissed", p.get("reason")
            elif fact.type == MERGED:
                entry.triage, entry.merged_into = "merged", p.get("into")
            elif fact.type == CASE_OPENED:
                entry.triage = "in_case"
                if p.get("case_id") not in entry.case_ids:
                    entry.case_ids.append(p.get("case_id"))
    return entry


# ---- escalation ----------------------------------------------------------------------------------

def escalation_due(entry: InboxEntry, settings: CoordinationSettings = DEFAULT_SETTINGS) -> datetime | None:
    """When the current episode escalates if nobody handles it: the end of its last response day."""
    if entry.raised_at is None:
        return None
    last = settings.add_days(local_date(entry.raised_at), settings.response_days(entry.severity))
    return day_start(last + timedelta(days=1))


def escalated(entry: InboxEntry, as_of: datetime, settings: CoordinationSettings = DEFAULT_SETTINGS) -> bool:
    due = escalation_due(entry, settings)
    return entry.state in UNHANDLED and due is not None and as_of >= due


def next_due(entry: InboxEntry, as_of: datetime, settings: CoordinationSettings = DEFAULT_SETTINGS) -> datetime | None:
    """The next instant the entry's state changes with no new fact (its escalation), if any."""
    due = escalation_due(entry, settings)
    if entry.state in UNHANDLED and due is not None and as_of < due:
        return due
    return None


def snapshot(entry: InboxEntry, as_of: datetime, settings: CoordinationSettings = DEFAULT_SETTINGS) -> dict:
    state = entry.state
    return {
        "finding_key": entry.finding_key, "known": entry.known, "source": entry.source, "dept": entry.dept,
        "rule_id": entry.rule_id, "severity": entry.severity, "severity_rank": SEVERITY_RANK.get(entry.severity, 9),
        "subject_type": entry.finding.get("subject_type"), "subject_id": entry.finding.get("subject_id"),
        "message": entry.finding.get("message", ""), "evidence": entry.finding.get("evidence", {}),
        "finding_as_of": entry.finding.get("as_of"),
        "state": state, "state_label": STATE_LABELS[state], "open": state in OPEN_STATES,
        "escalated": escalated(entry, as_of, settings),
        "escalation_due": iso_local(escalation_due(entry, settings)) if state in OPEN_STATES else None,
        "first_raised_at": iso_local(entry.first_raised_at), "raised_at": iso_local(entry.raised_at),
        "resolved_at": iso_local(entry.resolved_at), "episodes": entry.episodes,
        "assignee": entry.assignee, "dismiss_reason": entry.dismiss_reason, "merged_into": entry.merged_into,
        "case_ids": list(entry.case_ids),
        "log": list(entry.log),
    }


def counter_key(snap: dict) -> dict:
    """The console counter an entry counts in: department, rule, severity, state, escalated."""
    return {"dept": snap["dept"], "rule_id": snap["rule_id"], "severity": snap["severity"],
            "state": snap["state"], "escalated": bool(snap["escalated"])}


# ---- triage commands (strict) ----------------------------------------------------------------------

def _supervisor(dept: str) -> None:
    bureau_only(dept, "处理监督发现")


def _known(entry: InboxEntry | None, key: str) -> InboxEntry:
    if entry is None or not entry.known:
        raise NotFoundError(f"监督发现 {key} 不存在", field="finding_key")
    return entry


def _open(entry: InboxEntry, verb: str) -> None:
    if not entry.open:
        raise IllegalTransitionError(f"监督发现 {entry.finding_key} 当前为「{STATE_LABELS[entry.state]}」，不能{verb}",
                                     field="finding_key")


def _fact(type_: str, key: str, at: datetime, dept: str, event_id: str, actor: str | None, **payload) -> Fact:
    return command_fact(type_, "finding_key", key, at, dept, event_id, actor, **payload)


def acknowledge(entry: InboxEntry | None, key: str, *, at: datetime, dept: str, event_id: str,
                actor: str | None = None, note: str | None = None) -> Fact:
    """已阅: the supervisor has seen the finding (it still escalates until handled)."""
    _supervisor(dept)
    entry = _known(entry, key)
    _open(entry, "标记已阅")
    if entry.triage != "new":
        raise IllegalTransitionError(f"监督发现 {key} 已{STATE_LABELS[entry.triage]}", field="finding_key")
    return _fact(ACKNOWLEDGED, key, at, dept, event_id, actor, note=note)


def assign(entry: InboxEntry | None, key: str, *, assignee: str, at: datetime, dept: str, event_id: str,
           actor: str | None = None, note: str | None = None) -> Fact:
    """交办: hand the finding to a named supervisor (again to re-assign)."""
    _supervisor(dept)
    entry = _known(entry, key)
    _open(entry, "交办")
    if not (assignee or "").strip():
        raise DomainError("交办须指定承办人", code="invalid_value", field="assignee")
    if entry.triage == "assigned" and entry.assignee == assignee:
        raise IllegalTransitionError(f"监督发现 {key} 已交办给 {assignee}", field="assignee")
    return _fact(ASSIGNED, key, at, dept, event_id, actor, assignee=assignee.strip(), note=note)


def dismiss(entry: InboxEntry | None, key: str, *, reason: str, at: datetime, dept: str, event_id: str,
            actor: str | None = None) -> Fact:
    """不予处理: close the finding without action; the reason is required and kept."""
    _supervisor(dept)
    entry = _known(entry, key)
    _open(entry, "不予处理")
    if len((reason or "").strip()) < MIN_REASON:
        raise DomainError(f"不予处理须说明理由（至少 {MIN_REASON} 个字）", code="invalid_value", field="reason")
    return _fact(DISMISSED, key, at, dept, event_id, actor, reason=reason.strip())


def merge(entry: InboxEntry | None, key: str, target: InboxEntry | None, *, into: str, at: datetime, dept: str,
          event_id: str, actor: str | None = None) -> Fact:
    """合并: the finding duplicates `into` (same department); it is closed as merged, `into` stays."""
    _supervisor(dept)
    entry = _known(entry, key)
    _open(entry, "合并")
    if into == key:
        raise DomainError("不能把监督发现合并到它自己", code="invalid_value", field="into")
    if target is None or not target.known:
        raise NotFoundError(f"合并目标 {into} 不存在", field="into")
    if target.state == "merged":
        raise IllegalTransitionError(f"合并目标 {into} 本身已合并到 {target.merged_into}，请合并到 {target.merged_into}",
                                     field="into")
    if target.dept != entry.dept:
        raise DomainError(f"只能合并同一部门的重复发现（{entry.dept} ≠ {target.dept}）", code="invalid_value",
                          field="into")
    return _fact(MERGED, key, at, dept, event_id, actor, into=into)


def link_case(entry: InboxEntry | None, key: str, *, case_id: str, at: datetime, dept: str, event_id: str,
              actor: str | None = None) -> Fact:
    """立案监督: a supervision case was opened from the finding — it is handled (no escalation) and
    stays open until its source resolves it."""
    _supervisor(dept)
    entry = _known(entry, key)
    _open(entry, "立案监督")
    if case_id in entry.case_ids:
        raise IllegalTransitionError(f"监督发现 {key} 已关联监督案件 {case_id}", field="case_id")
    return _fact(CASE_OPENED, key, at, dept, event_id, actor, case_id=case_id)


def admit(entry: InboxEntry | None, fact: Fact) -> None:
    """May this fact join the entry? Findings from any service; triage only from the justice bureau.
    A triage reported (through the ingress) before its finding arrived is kept and folded in order."""
    if fact.type in TRIAGE_TYPES:
        _supervisor(fact.dept)
