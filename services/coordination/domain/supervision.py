"""Supervision cases (监督案件): from a finding, a complaint or the bureau's own initiative to closure.

A case is opened by the justice bureau (日常 routine / 重点 key / 专项 special campaign — a special
campaign covers several departments and carries its own checklist) for one or more departments.
For each department the case keeps a *track*: the documents issued to it (监督通知书 notice,
意见书 opinion, 决定书 decision — kind and number recorded; the documents capability renders them),
its reply (答复) by the reply date, its rectification (整改) by the rectification date when a
document asks for one, and the bureau's verification (核查); a failed verification sets a new
rectification date. The case closes (办结) when every department's track is settled.

Rules (findings of the department concerned, while the breach lasts):
- COO-SUP-REPLY-OVERDUE: a document's reply date has passed with no reply from the department;
- COO-SUP-RECTIFY-OVERDUE: the rectification date has passed without the department reporting the
  rectification done (after a failed verification: the new date).
A late reply or rectification clears the finding and stays in the track as `late` (for reports and
the evaluation). Dates are China calendar days; a limit is met on its last day.

Who may act, enforced here as well as by the API's roles: the justice bureau opens, issues,
verifies and closes; a department replies and reports rectification only in its own track — a
reply from another department is refused (NotOwnerError).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Iterable

from services.common.chinatime import aware, day_start, iso_local, local_date
from services.common.errors import DomainError, IllegalTransitionError, InvalidFactError, NotFoundError, NotOwnerError
from services.common.facts import Fact
from services.common.findings import Finding
from services.common.ownership import is_justice_bureau
from services.coordination.domain.common import (bureau_only, command_fact, in_time_order, on_or_today,
                                                parse_date)
from services.coordination.domain.settings import DEFAULT_SETTINGS, DOC_KINDS, CoordinationSettings

KINDS = ("routine", "key", "special")                 # 日常 / 重点 / 专项
KIND_LABELS = {"routine": "日常监督", "key": "重点监督", "special": "专项监督"}
ORIGINS = ("finding", "complaint", "initiative")       # 监督发现 / 投诉举报 / 主动监督
DOC_LABELS = {"notice": "行政执法监督通知书", "opinion": "行政执法监督意见书", "decision": "行政执法监督决定书"}

OPENED, ISSUED, REPLIED, RECTIFIED, VERIFIED, CLOSED = (
    "supervision.opened", "supervision.document_issued", "supervision.replied", "supervision.rectified",
    "supervision.verified", "supervision.closed")
FACT_TYPES = (OPENED, ISSUED, REPLIED, RECTIFIED, VERIFIED, CLOSED)

RULE_REPLY = "COO-SUP-REPLY-OVERDUE"
RULE_RECTIFY = "COO-SUP-RECTIFY-OVERDUE"
RULES = (RULE_REPLY, RULE_RECTIFY)
TRACK_LABELS = {"open": "待发文书", "awaiting_reply": "待答复", "rectifying": "整改中", "to_verify": "待核查",
                "settled": "核查通过"}


_date = parse_date


@dataclass
class Document:
    doc_kind: str
    doc_no: str
    issued_on: date
    reply_due: date
    rectification_required: bool
    rectification_due: date | None
    summary: str = ""


@dataclass
class Track:
    """One department's part of a case."""

    dept: str
    documents: list[Document] = field(default_factory=list)
    reply_due: date | None = None            # of the latest document still awaiting a reply
    replied_on: date | None = None
    replies: list[dict] = field(default_factory=list)
    rectification_due: date | None = None
    rectified_on: date | None = None
    verifications: list[dict] = field(default_factory=list)
    late: list[dict] = field(default_factory=list)   # limits met late: {what, due, on}
    settled: bool = False

    @property
    def awaiting_reply(self) -> bool:
        return self.reply_due is not None and self.replied_on is None

    @property
    def rectifying(self) -> bool:
        return self.rectification_due is not None and self.rectified_on is None

    @property
    def status(self) -> str:
        if self.settled:
            return "settled"
        if not self.documents:
            return "open"
        if self.awaiting_reply:
            return "awaiting_reply"
        if self.rectifying:
            return "rectifying"
        return "to_verify"


@dataclass
class SupervisionCase:
    case_id: str
    kind: str = "routine"
    origin: str = "initiative"
    origin_refs: list[str] = field(default_factory=list)
    title: str = ""
    opened_on: date | None = None
    opened_by: str | None = None
    checklist: list[str] = field(default_factory=list)
    tracks: dict[str, Track] = field(default_factory=dict)
    closed_on: date | None = None
    conclusion: str | None = None
    anomalies: list[dict] = field(default_factory=list)

    @property
    def opened(self) -> bool:
        return self.opened_on is not None

    @property
    def depts(self) -> list[str]:
        return list(self.tracks)

    @property
    def status(self) -> str:
        if self.closed_on:
            return "closed"
        return "open" if self.opened else "unknown"


# ---- fold --------------------------------------------------------------------------------------------

def _verify_track(track: Track, p: dict, on: date) -> None:
    passed = bool(p.get("passed"))
    track.verifications.append({"on": on.isoformat(), "passed": passed, "comment": p.get("comment", "")})
    if passed:
        track.settled = True
    else:
        track.rectified_on = None
        track.settled = False
        track.rectification_due = _date(p["new_rectification_due"], "new_rectification_due") \
            if p.get("new_rectification_due") else track.rectification_due


def case_from_facts(facts: Iterable[Fact]) -> SupervisionCase | None:
    ordered = in_time_order(facts)
    if not ordered:
        return None
    case = SupervisionCase(case_id=str(ordered[0].payload.get("case_id") or ""))
    for fact in ordered:
        p = fact.payload
        if fact.type == OPENED:
            case.kind, case.origin = p["kind"], p["origin"]
            case.origin_refs = list(p.get("origin_refs") or [])
            case.title, case.checklist = p.get("title", ""), list(p.get("checklist") or [])
            case.opened_on, case.opened_by = _date(p["opened_on"], "opened_on"), p.get("actor")
            for dept in p["depts"]:
                case.tracks.setdefault(dept, Track(dept))
            continue
        track = case.tracks.get(str(p.get("dept") or ""))
        if fact.type == CLOSED:
            case.closed_on, case.conclusion = _date(p["closed_on"], "closed_on"), p.get("conclusion")
            continue
        if track is None:  # cannot happen through the commands; keep what arrived, apply nothing
            case.anomalies.append({"event_id": fact.event_id, "type": fact.type, "reason": "案件不含该部门"})
            continue
        if fact.type == ISSUED:
            doc = Document(p["doc_kind"], p["doc_no"], _date(p["issued_on"], "issued_on"), _date(p["reply_due"], "reply_due"),
                           bool(p.get("rectification_required")),
                           _date(p["rectification_due"], "rectification_due") if p.get("rectification_due") else None,
                           p.get("summary", ""))
            track.documents.append(doc)
            track.reply_due, track.replied_on, track.settled = doc.reply_due, None, False
            if doc.rectification_required:
                track.rectification_due, track.rectified_on = doc.rectification_due, None
        elif fact.type == REPLIED:
            on = _date(p["replied_on"], "replied_on")
            track.replies.append({"on": on.isoformat(), "content": p.get("content", ""),
                                  "plan": p.get("rectification_plan")})
            if track.awaiting_reply:
                if track.reply_due and on > track.reply_due:
                    track.late.append({"what": "reply", "due": track.reply_due.isoformat(), "on": on.isoformat()})
                track.replied_on = on
        elif fact.type == RECTIFIED:
            on = _date(p["rectified_on"], "rectified_on")
            if track.rectifying:
                if on > track.rectification_due:
                    track.late.append({"what": "rectification", "due": track.rectification_due.isoformat(),
                                       "on": on.isoformat()})
                track.rectified_on = on
        elif fact.type == VERIFIED:
            _verify_track(track, p, _date(p["verified_on"], "verified_on"))
    return case


# ---- rules ---------------------------------------------------------------------------------------------

def _subject(case: SupervisionCase, dept: str) -> str:
    return f"{case.case_id}:{dept}"


def evaluate(case: SupervisionCase | None, as_of: datetime) -> list[Finding]:
    """Overdue replies and rectifications, per department, at `as_of` (pure)."""
    if case is None or not case.opened or case.closed_on:
        return []
    today = local_date(aware(as_of, "as_of"))
    out: list[Finding] = []
    for dept, track in case.tracks.items():
        if track.settled:
            continue
        doc = track.documents[-1] if track.documents else None
        if track.awaiting_reply and today > track.reply_due:
            out.append(Finding(RULE_REPLY, "serious", dept, "supervision_case", _subject(case, dept), as_of, {
                "case_id": case.case_id, "doc_kind": doc.doc_kind, "doc_no": doc.doc_no,
                "issued_on": doc.issued_on.isoformat(), "reply_due": track.reply_due.isoformat(),
                "days_overdue": (today - track.reply_due).days},
                f"{dept} 未在 {track.reply_due.isoformat()} 前答复{DOC_LABELS[doc.doc_kind]}（{doc.doc_no}），"
                f"已逾期 {(today - track.reply_due).days} 日"))
        if track.rectifying and track.rectification_due and today > track.rectification_due:
            out.append(Finding(RULE_RECTIFY, "serious", dept, "supervision_case", _subject(case, dept), as_of, {
                "case_id": case.case_id, "rectification_due": track.rectification_due.isoformat(),
                "days_overdue": (today - track.rectification_due).days,
                "failed_verifications": sum(1 for v in track.verifications if not v["passed"])},
                f"{dept} 未在 {track.rectification_due.isoformat()} 前完成监督案件 {case.case_id} 的整改，"
                f"已逾期 {(today - track.rectification_due).days} 日"))
    return out


def next_due(case: SupervisionCase | None, as_of: datetime) -> datetime | None:
    """The next instant a rule's answer changes with no new fact: the day after a limit."""
    if case is None or not case.opened or case.closed_on:
        return None
    today = local_date(aware(as_of, "as_of"))
    dues = []
    for track in case.tracks.values():
        if track.settled:
            continue
        if track.awaiting_reply and track.reply_due >= today:
            dues.append(track.reply_due)
        if track.rectifying and track.rectification_due and track.rectification_due >= today:
            dues.append(track.rectification_due)
    return day_start(min(dues) + timedelta(days=1)) if dues else None


def snapshot(case: SupervisionCase, as_of: datetime) -> dict:
    return {
        "case_id": case.case_id, "kind": case.kind, "kind_label": KIND_LABELS.get(case.kind, case.kind),
        "origin": case.origin, "origin_refs": case.origin_refs, "title": case.title,
        "opened_on": case.opened_on.isoformat() if case.opened_on else None, "opened_by": case.opened_by,
        "checklist": case.checklist, "status": case.status, "depts": case.depts,
        "closed_on": case.closed_on.isoformat() if case.closed_on else None, "conclusion": case.conclusion,
        "tracks": [{
            "dept": t.dept, "status": t.status, "status_label": TRACK_LABELS[t.status],
            "documents": [{"doc_kind": d.doc_kind, "doc_label": DOC_LABELS[d.doc_kind], "doc_no": d.doc_no,
                           "issued_on": d.issued_on.isoformat(), "reply_due": d.reply_due.isoformat(),
                           "rectification_required": d.rectification_required,
                           "rectification_due": d.rectification_due.isoformat() if d.rectification_due else None,
                           "summary": d.summary} for d in t.documents],
            "reply_due": t.reply_due.isoformat() if t.reply_due else None,
            "replied_on": t.replied_on.isoformat() if t.replied_on else None, "replies": t.replies,
            "rectification_due": t.rectification_due.isoformat() if t.rectification_due else None,
            "rectified_on": t.rectified_on.isoformat() if t.rectified_on else None,
            "verifications": t.verifications, "late": t.late,
        } for t in case.tracks.values()],
        "anomalies": case.anomalies,
        "evaluated_at": iso_local(as_of),
    }


# ---- commands (strict) ---------------------------------------------------------------------------------

def _supervisor(dept: str) -> None:
    bureau_only(dept, "办理监督案件")


def _existing(case: SupervisionCase | None, case_id: str) -> SupervisionCase:
    if case is None or not case.opened:
        raise NotFoundError(f"监督案件 {case_id} 不存在", field="case_id")
    if case.closed_on:
        raise IllegalTransitionError(f"监督案件 {case_id} 已于 {case.closed_on.isoformat()} 办结", field="case_id")
    return case


_on = on_or_today


def _fact(type_: str, case_id: str, at: datetime, acting_dept: str, event_id: str, actor: str | None,
          **payload) -> Fact:
    return command_fact(type_, "case_id", case_id, at, acting_dept, event_id, actor, **payload)


def open_case(case: SupervisionCase | None, case_id: str, *, kind: str, origin: str, depts: list[str], title: str,
              at: datetime, dept: str, event_id: str, origin_refs: list[str] | None = None,
              checklist: list[str] | None = None, actor: str | None = None, opened_on: str | None = None) -> Fact:
    """立案: the bureau opens a case for one or more departments."""
    _supervisor(dept)
    if case is not None and case.opened:
        raise IllegalTransitionError(f"监督案件 {case_id} 已存在", field="case_id")
    if kind not in KINDS:
        raise DomainError(f"监督方式只能是：{'、'.join(KINDS)}", code="invalid_value", field="kind")
    if origin not in ORIGINS:
        raise DomainError(f"案件来源只能是：{'、'.join(ORIGINS)}", code="invalid_value", field="origin")
    targets = list(dict.fromkeys(d for d in depts if d))
    if not targets:
        raise DomainError("监督案件至少涉及一个部门", code="invalid_value", field="depts")
    if any(is_justice_bureau(d) for d in targets):
        raise DomainError("司法局不能监督自身", code="invalid_value", field="depts")
    if kind != "special" and len(targets) > 1:
        raise DomainError("日常、重点监督案件只涉及一个部门；涉及多个部门请立专项监督", code="invalid_value", field="depts")
    items = [c.strip() for c in checklist or [] if c and c.strip()]
    if kind == "special" and not items:
        raise DomainError("专项监督须有检查清单", code="invalid_value", field="checklist")
    refs = [r for r in origin_refs or [] if r]
    if origin in ("finding", "complaint") and not refs:
        raise DomainError("来源为监督发现或投诉举报的案件须注明来源编号", code="invalid_value", field="origin_refs")
    if not (title or "").strip():
        raise DomainError("须填写案件名称", code="invalid_value", field="title")
    return _fact(OPENED, case_id, at, dept, event_id, actor, kind=kind, origin=origin, origin_refs=refs,
                 depts=targets, title=title.strip(), checklist=items,
                 opened_on=_on(opened_on, at, "opened_on").isoformat())


def issue_document(case: SupervisionCase | None, case_id: str, *, target: str, doc_kind: str, doc_no: str,
                   at: datetime, dept: str, event_id: str, settings: CoordinationSettings = DEFAULT_SETTINGS,
                   issued_on: str | None = None, reply_due: str | None = None,
                   rectification_required: bool = False, rectification_due: str | None = None,
                   summary: str | None = None, actor: str | None = None) -> Fact:
    """制发文书: a notice / opinion / decision to one department of the case, with its limits."""
    _supervisor(dept)
    case = _existing(case, case_id)
    if target not in case.tracks:
        raise NotFoundError(f"监督案件 {case_id} 不涉及 {target}", field="target")
    if doc_kind not in DOC_KINDS:
        raise DomainError(f"文书种类只能是：{'、'.join(DOC_KINDS)}", code="invalid_value", field="doc_kind")
    if not (doc_no or "").strip():
        raise DomainError("须填写文书编号（文号）", code="invalid_value", field="doc_no")
    if any(d.doc_no == doc_no.strip() for t in case.tracks.values() for d in t.documents):
        raise IllegalTransitionError(f"文号 {doc_no} 已在本案使用", field="doc_no")
    track = case.tracks[target]
    if track.settled:
        raise IllegalTransitionError(f"{target} 在本案的整改已核查通过", field="target")
    issued = _on(issued_on, at, "issued_on")
    reply = _date(reply_due, "reply_due") if reply_due else settings.add_days(issued, settings.reply_days(doc_kind))
    if reply < issued:
        raise DomainError("答复期限不能早于发文日期", code="invalid_value", field="reply_due")
    rect = None
    if rectification_required:
        rect = _date(rectification_due, "rectification_due") if rectification_due \
            else settings.add_days(issued, settings.rectification_days)
        if rect < issued:
            raise DomainError("整改期限不能早于发文日期", code="invalid_value", field="rectification_due")
    elif rectification_due:
        raise DomainError("未要求整改时不能设整改期限", code="invalid_value", field="rectification_due")
    return _fact(ISSUED, case_id, at, dept, event_id, actor, dept=target, doc_kind=doc_kind, doc_no=doc_no.strip(),
                 issued_on=issued.isoformat(), reply_due=reply.isoformat(),
                 rectification_required=bool(rectification_required),
                 rectification_due=rect.isoformat() if rect else None, summary=summary)


def _own_track(case: SupervisionCase, case_id: str, dept: str) -> Track:
    track = case.tracks.get(dept)
    if track is None:
        raise NotOwnerError(f"监督案件 {case_id} 不涉及 {dept}，{dept} 只能答复本部门的监督案件")
    return track


def reply(case: SupervisionCase | None, case_id: str, *, content: str, at: datetime, dept: str, event_id: str,
          replied_on: str | None = None, rectification_plan: str | None = None, actor: str | None = None) -> Fact:
    """答复: the department answers the document issued to it (only its own track)."""
    case = _existing(case, case_id)
    track = _own_track(case, case_id, dept)
    if not track.awaiting_reply:
        raise IllegalTransitionError(f"监督案件 {case_id} 没有待 {dept} 答复的文书", field="case_id")
    if not (content or "").strip():
        raise DomainError("答复内容不能为空", code="invalid_value", field="content")
    on = _on(replied_on, at, "replied_on")
    if on < track.documents[-1].issued_on:
        raise DomainError("答复日期不能早于发文日期", code="invalid_value", field="replied_on")
    return _fact(REPLIED, case_id, at, dept, event_id, actor, dept=dept, replied_on=on.isoformat(),
                 content=content.strip(), rectification_plan=rectification_plan)


def report_rectified(case: SupervisionCase | None, case_id: str, *, content: str, at: datetime, dept: str,
                     event_id: str, rectified_on: str | None = None, actor: str | None = None) -> Fact:
    """整改完成报告: the department reports its rectification done (only its own track)."""
    case = _existing(case, case_id)
    track = _own_track(case, case_id, dept)
    if not track.rectifying:
        raise IllegalTransitionError(f"监督案件 {case_id} 没有要求 {dept} 整改或整改已报告", field="case_id")
    if not (content or "").strip():
        raise DomainError("整改情况不能为空", code="invalid_value", field="content")
    on = _on(rectified_on, at, "rectified_on")
    return _fact(RECTIFIED, case_id, at, dept, event_id, actor, dept=dept, rectified_on=on.isoformat(),
                 content=content.strip())


def verify(case: SupervisionCase | None, case_id: str, *, target: str, passed: bool, at: datetime, dept: str,
           event_id: str, comment: str | None = None, new_rectification_due: str | None = None,
           verified_on: str | None = None, actor: str | None = None) -> Fact:
    """核查: the bureau checks the department's answer (and rectification); failed -> a new date."""
    _supervisor(dept)
    case = _existing(case, case_id)
    if target not in case.tracks:
        raise NotFoundError(f"监督案件 {case_id} 不涉及 {target}", field="target")
    track = case.tracks[target]
    if track.settled or not track.documents or track.awaiting_reply or track.rectifying:
        raise IllegalTransitionError(f"{target} 在本案尚无待核查的答复或整改（当前：{TRACK_LABELS[track.status]}）",
                                     field="target")
    on = _on(verified_on, at, "verified_on")
    if not passed:
        if not new_rectification_due:
            raise DomainError("核查未通过须给出新的整改期限", code="invalid_value", field="new_rectification_due")
        if _date(new_rectification_due, "new_rectification_due") < on:
            raise DomainError("新的整改期限不能早于核查日期", code="invalid_value", field="new_rectification_due")
    elif new_rectification_due:
        raise DomainError("核查通过时不能设新的整改期限", code="invalid_value", field="new_rectification_due")
    return _fact(VERIFIED, case_id, at, dept, event_id, actor, dept=target, passed=bool(passed),
                 verified_on=on.isoformat(), comment=comment, new_rectification_due=new_rectification_due)


def close(case: SupervisionCase | None, case_id: str, *, conclusion: str, at: datetime, dept: str, event_id: str,
          closed_on: str | None = None, actor: str | None = None) -> Fact:
    """办结: every department's track is settled (verified), the conclusion recorded."""
    _supervisor(dept)
    case = _existing(case, case_id)
    pending = [d for d, t in case.tracks.items() if not t.settled]
    if pending:
        raise IllegalTransitionError(f"以下部门尚未核查通过，不能办结：{'、'.join(pending)}", field="case_id")
    if not (conclusion or "").strip():
        raise DomainError("须填写办结结论", code="invalid_value", field="conclusion")
    return _fact(CLOSED, case_id, at, dept, event_id, actor, closed_on=_on(closed_on, at, "closed_on").isoformat(),
                 conclusion=conclusion.strip())


def admit(case: SupervisionCase | None, fact: Fact) -> None:
    """Who may report what, for facts reported by a system through the ingress (commands are strict
    themselves): the bureau opens, issues, verifies and closes; a department reports replies and
    rectification only for its own track. What cannot be judged yet — a fact about a case not
    received yet (delivery is not ordered) — is kept and folded in time order once the case
    arrives; a fact for a department the case does not concern then changes nothing (`anomalies`)."""
    p = fact.payload
    case_id = str(p.get("case_id") or "")
    if fact.type == OPENED:
        _supervisor(fact.dept)
        if case is not None and case.opened:
            raise IllegalTransitionError(f"监督案件 {case_id} 已存在", field="payload.case_id")
        if p.get("kind") == "special" and not p.get("checklist"):
            raise DomainError("专项监督须有检查清单", code="invalid_value", field="payload.checklist")
        if any(is_justice_bureau(d) for d in p.get("depts") or []):
            raise DomainError("司法局不能监督自身", code="invalid_value", field="payload.depts")
        return
    if fact.type in (ISSUED, VERIFIED, CLOSED):
        _supervisor(fact.dept)
        if case is not None and case.opened and fact.type != CLOSED and p.get("dept") not in case.tracks:
            raise NotFoundError(f"监督案件 {case_id} 不涉及 {p.get('dept')}", field="payload.dept")
    elif fact.type in (REPLIED, RECTIFIED):
        if p.get("dept") != fact.dept:
            raise NotOwnerError(f"{fact.dept} 只能报告本部门的答复与整改，不能代 {p.get('dept')} 报告", field="payload.dept")
        if case is not None and case.opened:
            _own_track(case, case_id, fact.dept)
