"""Personnel and credentials (执法主体、执法人员、执法证件、培训): pure aggregates and rules.

Each aggregate (an `Officer` keyed by officer_id, an `Agency` keyed by agency_id) is a fold over
its own fact log: duplicates (same event_id) are dropped, the rest sorted by time and replayed.
So facts may arrive late, twice or out of order and the state is the same. A fact waiting for its
subject (a suspension before its credential was reported) is *pending*; a fact that is illegal
even in time order (restoring a credential never suspended) is an *anomaly* recorded with a
Chinese reason — departments report facts, we do not refuse them, with one exception: a fact
from a department that does not own the officer or agency (数据归属, see `officer_from_facts`
and docs/ownership.md) is refused at the door by `admit` (NotOwnerError, code 'not_owner').
Zhifa's own commands (`suspend_credential` …) are strict and raise `IllegalTransitionError`.

Credential actions are reported by date ('YYYY-MM-DD') and take effect from 00:00 China Standard
Time of that day; validity runs from `valid_from` 00:00 to the end of `valid_to`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, Iterable

from services.common.arrivals import last_arrival, settles_at, settling_until as _settling_until
from services.common.chinatime import CST as LOCAL_TZ
from services.common.chinatime import aware as _aware
from services.common.chinatime import day_start as _midnight
from services.common.chinatime import iso_local as _iso
from services.common.chinatime import local_date
from services.common.errors import (DomainError, IllegalTransitionError, InvalidFactError, NaiveTimeError,
                                    NotFoundError, NotOwnerError)
from services.common.facts import Fact
from services.common.findings import Finding
from services.common.ownership import is_justice_bureau, may_report
from services.common.qualification import (ENDED_LABELS as _ENDED_LABELS, FILING_REQUIRED_LEVELS,
                                           STATUS_LABELS as _STATUS_LABELS, Credential, Reason, Suspension,
                                           Verdict)
from services.common.qualification import can_act as _can_act
from services.common.qualification import status_at as _status_at
from services.common.settings import SettingsBase

AGENCY_KINDS = ("statutory", "authorised", "entrusted")      # 法定机关 / 授权组织 / 受委托组织
OFFICER_KINDS = ("officer", "auxiliary", "supervisor")       # 执法人员 / 辅助人员 / 监督员
OFFICER_STATUSES = ("active", "inactive", "left")            # 在岗 / 停用 / 离岗
ISSUER_LEVELS = ("state_council", "provincial", "municipal", "county")
CREDENTIAL_STATUSES = ("not_issued", "not_yet_valid", "valid", "suspended", "expired", "revoked", "cancelled")

__all__ = ["Fact", "Credential", "Suspension", "Reason", "Verdict", "InvalidFactError", "NaiveTimeError",
           "NotOwnerError"]


class FactRoutingError(DomainError):
    """A fact handed to an aggregate it does not belong to (a wiring error, not a department's)."""

    code = "wrong_aggregate"


def _parse_month_day(value: str, name: str) -> tuple[int, int]:
    try:
        month, day = (int(part) for part in value.split("-"))
        date(2001, month, day)  # a non-leap year: "02-29" would not exist every year
    except (ValueError, AttributeError):
        raise ValueError(f"personnel setting {name} must be 'MM-DD', got {value!r}") from None
    return month, day


@dataclass(frozen=True)
class PersonnelSettings(SettingsBase):
    """Every number a personnel rule uses. Presets and department plugins override by field name."""

    SECTION: ClassVar[str] = "personnel"
    TUPLE_FIELDS: ClassVar[frozenset[str]] = frozenset({"training_kinds"})

    expiry_warning_days: int = 30              # PER-CRED-EXPIRING look-ahead, calendar days
    training_hours_per_year: float = 20        # seed 001: 20 class hours of public legal knowledge
    training_due: str = "11-15"                # seed 001: full rotation by Nov 15 ('MM-DD')
    training_report_due: str | None = "07-01"  # seed 001: training reported by Jul 1; None = no check
    training_kinds: tuple[str, ...] = ("officer",)  # who owes the yearly hours
    held_fact_grace_days: int = 3              # a fact waiting for its subject longer is reported
    arrival_settle_seconds: int = 10           # facts arriving this close together are judged together

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        _parse_month_day(self.training_due, "training_due")
        if self.training_report_due is not None:
            _parse_month_day(self.training_report_due, "training_report_due")
        if (self.expiry_warning_days < 0 or self.held_fact_grace_days < 0 or self.training_hours_per_year < 0
                or self.arrival_settle_seconds < 0):
            raise ValueError("personnel settings must not be negative")


DEFAULT_SETTINGS = PersonnelSettings()


def _parse_date(payload: dict, name: str) -> date:
    try:
        return date.fromisoformat(payload[name])
    except KeyError:
        raise InvalidFactError(f"缺少日期字段 {name}", field=f"payload.{name}") from None
    except (TypeError, ValueError):
        raise InvalidFactError(f"日期 {payload[name]!r} 无效", field=f"payload.{name}") from None


# The payload date a fact takes effect on; facts not listed take effect at occurred_at.
_EFFECTIVE_DATE = {
    "credential.issued": "issued_on",
    "credential.filed": "filed_on",
    "credential.suspended": "suspended_on",
    "credential.restored": "restored_on",
    "credential.revoked": "revoked_on",
    "credential.cancelled": "cancelled_on",
    "training.completed": "completed_on",
    "officer.transfer_accepted": "effective_on",
}
# Tie-break for facts effective at the same moment: what must exist comes first.
_RANK = {
    "agency.registered": 0, "officer.registered": 0, "officer.updated": 1,
    "officer.transfer_requested": 1, "officer.transfer_accepted": 2,
    "credential.issued": 0, "credential.filed": 1, "credential.suspended": 2,
    "credential.restored": 3, "credential.revoked": 4, "credential.cancelled": 4,
    "training.completed": 5,
}
FACT_TYPES = tuple(_RANK)
FACT_LABELS = {
    "agency.registered": "执法主体登记", "officer.registered": "人员登记", "officer.updated": "人员变更",
    "officer.transfer_requested": "调出申请", "officer.transfer_accepted": "调入确认",
    "credential.issued": "发证", "credential.filed": "证件备案", "credential.suspended": "证件暂扣",
    "credential.restored": "证件恢复", "credential.revoked": "证件收回", "credential.cancelled": "证件注销",
    "training.completed": "培训记录",
}
_OPTIONAL_DATES = ("valid_from", "valid_to", "confirmed_on", "published_on")


def check_fact(fact: Fact) -> Fact:
    """`fact` itself if personnel can read it; InvalidFactError / NaiveTimeError naming the field if not."""
    if fact.type not in _RANK:
        raise InvalidFactError(f"人员服务不处理事件类型 {fact.type}", field="type")
    _aware(fact.occurred_at, "occurred_at")
    id_field = "agency_id" if fact.type == "agency.registered" else "officer_id"
    for key in (id_field, "credential_no") if fact.type.startswith("credential.") else (id_field,):
        if not fact.payload.get(key):
            raise InvalidFactError(f"缺少 {key}", field=f"payload.{key}")
    for name in _OPTIONAL_DATES:
        if fact.payload.get(name) is not None:
            _parse_date(fact.payload, name)
    if fact.type == "credential.issued":
        if _parse_date(fact.payload, "valid_to") < _parse_date(fact.payload, "valid_from"):
            raise InvalidFactError("证件有效期截止日期早于起始日期", field="payload.valid_to")
    if fact.type == "officer.transfer_requested" and fact.payload.get("to_dept") in (None, "", fact.dept):
        raise InvalidFactError("调出申请须载明另一个调入单位", field="payload.to_dept")
    effective_at(fact)
    return fact


def effective_at(fact: Fact) -> datetime:
    """When a fact takes effect: 00:00 China time of its payload date, else its occurred_at."""
    day_field = _EFFECTIVE_DATE.get(fact.type)
    return _midnight(_parse_date(fact.payload, day_field)) if day_field else fact.occurred_at


def aggregate_of(fact: Fact) -> tuple[str, str]:
    """("agency", agency_id) or ("officer", officer_id): which document this fact belongs to."""
    if fact.type == "agency.registered":
        return "agency", fact.payload["agency_id"]
    return "officer", fact.payload["officer_id"]


def sort_key(fact: Fact) -> tuple:
    return (effective_at(fact), _RANK[fact.type], fact.occurred_at, fact.seq, fact.event_id)


@dataclass(frozen=True)
class Anomaly:
    """A fact that could not take effect even in time order, and why (Chinese). `code` says which
    kind: 'conflict' (contradicts the record) or 'not_owner' (reported by another department)."""

    event_id: str
    type: str
    reason: str
    code: str = "conflict"


def credential_status(credential: Credential, at: datetime) -> str:
    """One of CREDENTIAL_STATUSES at `at` (revoked/cancelled > suspended > expired > not yet valid)."""
    return credential.status_at(at)


@dataclass(frozen=True)
class TrainingRecord:
    event_id: str
    completed_on: date
    hours: float
    topic: str


@dataclass
class Officer:
    """执法人员 (or 辅助人员 / 监督员) with credentials and training, folded from `facts`."""

    officer_id: str
    facts: tuple[Fact, ...] = ()
    name: str | None = None
    dept: str | None = None
    agency_id: str | None = None
    kind: str | None = None
    registered_at: datetime | None = None
    statuses: list[tuple[datetime, str]] = field(default_factory=list)
    credentials: dict[str, Credential] = field(default_factory=dict)
    training: list[TrainingRecord] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    transfers: list[dict] = field(default_factory=list)   # completed 调动: from, to, at, event ids
    transfer_request: dict | None = None                  # an open 调出申请 (to_dept, event_id, at)

    @property
    def registered(self) -> bool:
        return self.registered_at is not None

    @property
    def version(self) -> int:
        """Grows by one with every distinct fact, so consumers can drop stale snapshots."""
        return len(self.facts)

    def status_at(self, at: datetime) -> str | None:
        """The status in force at `at`; the first registration is taken to describe the past too."""
        return _status_at(self.statuses, at)

    def active_windows(self) -> list[tuple[datetime | None, datetime | None]]:
        out, start, active = [], None, False
        for i, (since, status) in enumerate(self.statuses):
            if status == "active" and not active:
                start, active = (None if i == 0 else since), True
            elif status != "active" and active:
                out.append((start, since))
                active = False
        if active:
            out.append((start, None))
        return out

    def training_hours(self, year: int) -> float:
        return sum(r.hours for r in self.training if r.completed_on.year == year)

    @property
    def label(self) -> str:
        return f"{self.name}（{self.officer_id}）" if self.name else self.officer_id


@dataclass
class Agency:
    """执法主体: statutory body, authorised organisation or entrusted organisation."""

    agency_id: str
    facts: tuple[Fact, ...] = ()
    name: str | None = None
    dept: str | None = None
    kind: str | None = None
    legal_basis: tuple[str, ...] = ()
    entrusted_by: str | None = None
    confirmed_on: date | None = None
    published_on: date | None = None
    anomalies: list[Anomaly] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)

    @property
    def version(self) -> int:
        return len(self.facts)

    @property
    def label(self) -> str:
        return f"{self.name}（{self.agency_id}）" if self.name else self.agency_id

    def recognised_at(self, at: datetime) -> bool:
        """Confirmed and published by the county government (seed 003: 确认公布) on or before `at`."""
        day = local_date(at)
        return bool(self.confirmed_on and self.published_on and self.confirmed_on <= day
                    and self.published_on <= day)


def _log(facts: Iterable[Fact], kind: str, agg_id: str | None) -> tuple[str, list[Fact]]:
    unique: dict[str, Fact] = {}
    for f in facts:
        unique.setdefault(f.event_id, f)
    for f in unique.values():
        check_fact(f)
    ids = {aggregate_of(f) for f in unique.values()}
    if agg_id is not None:
        ids.add((kind, agg_id))
    if len(ids) != 1 or next(iter(ids))[0] != kind:
        raise FactRoutingError(f"事实不属于同一个{'执法主体' if kind == 'agency' else '执法人员'}：{sorted(ids)}")
    return next(iter(ids))[1], sorted(unique.values(), key=sort_key)


def _suspend(cred: Credential, f: Fact) -> str | None:
    if cred.open_suspension:
        return "已处于暂扣状态，不能重复暂扣"
    cred.suspensions.append(Suspension(effective_at(f), None, f.payload.get("reason") or ""))
    return None


def _restore(cred: Credential, f: Fact) -> str | None:
    suspension = cred.open_suspension
    if suspension is None:
        return "未被暂扣，不能恢复"
    suspension.end = effective_at(f)
    return None


def _end(cred: Credential, f: Fact) -> str | None:
    if cred.open_suspension:
        cred.open_suspension.end = effective_at(f)
    cred.ended_at, cred.ended_as = effective_at(f), f.type.split(".")[1]
    cred.end_reason = f.payload.get("reason") or ""
    return None


def _file(cred: Credential, f: Fact) -> str | None:
    if cred.filed_at is None:
        cred.filed_at = effective_at(f)
    return None


_TRANSITIONS = {
    "credential.suspended": ("暂扣", _suspend),
    "credential.restored": ("恢复", _restore),
    "credential.revoked": ("收回", _end),
    "credential.cancelled": ("注销", _end),
    "credential.filed": ("备案", _file),
}


def _not_owner(label: str, owner: str, f: Fact) -> Anomaly:
    return Anomaly(f.event_id, f.type, f"{label}由 {owner} 管理，{f.dept} 无权报告其{FACT_LABELS[f.type]}"
                   "（跨部门调动须经调出单位申请、调入单位确认）", code="not_owner")


def officer_from_facts(facts: Iterable[Fact], officer_id: str | None = None) -> Officer:
    """Fold an officer's facts (any order, duplicates allowed) into its state.

    Ownership (数据归属): the department of the first registration owns the officer; only the owner
    reports on it, until a transfer (调动) completes: `officer.transfer_requested` by the owner names
    the receiving department, and `officer.transfer_accepted` by that department takes effect on its
    `effective_on` day. From then on the receiving department owns the officer. A fact from any
    other department is an anomaly with code 'not_owner' and changes nothing (`admit_officer_fact`
    refuses it at the door when the owner is already known).
    """
    oid, ordered = _log(facts, "officer", officer_id)
    officer = Officer(officer_id=oid, facts=tuple(ordered))
    issued = {f.payload["credential_no"] for f in ordered if f.type == "credential.issued"}
    first = next((f for f in ordered if f.type == "officer.registered"), None)
    owner = first.dept if first else None
    requested_to = {f.payload.get("to_dept") for f in ordered if f.type == "officer.transfer_requested"}

    def refused(f: Fact, subject_exists: bool, reason: str) -> None:
        if subject_exists:
            officer.anomalies.append(Anomaly(f.event_id, f.type, reason))
        else:
            officer.pending.append(f.event_id)

    for f in ordered:
        p = f.payload
        label = officer.label
        if f.type == "officer.transfer_accepted" and owner is not None and f.dept != owner:
            by_bureau = is_justice_bureau(f.dept) and p.get("to_dept") not in (None, "", owner)
            to_dept = p.get("to_dept") if by_bureau else f.dept
            request = officer.transfer_request
            if not by_bureau and (request is None or request["to_dept"] != f.dept):
                if f.dept in requested_to:
                    refused(f, True, f"{label}的调入确认早于调出单位的调出申请，未生效")
                else:
                    officer.pending.append(f.event_id)  # waits for the owner's request
                continue
            if p.get("from_dept") not in (None, owner):
                officer.anomalies.append(Anomaly(f.event_id, f.type, f"调入确认所称调出单位 {p.get('from_dept')} "
                                                 f"与人员当时所属单位 {owner} 不一致", code="not_owner"))
                continue
            officer.transfers.append({"from": owner, "to": to_dept, "at": effective_at(f),
                                      "requested": request["event_id"] if request else None,
                                      "accepted": f.event_id, "by": f.dept})
            owner, officer.dept, officer.transfer_request = to_dept, to_dept, None
            if p.get("agency_id"):
                officer.agency_id = p["agency_id"]
            continue
        if not may_report(owner, f.dept, f.type):
            officer.anomalies.append(_not_owner(label, owner, f))
            continue
        if f.type == "officer.transfer_requested":
            if not officer.registered:
                refused(f, first is not None, "调出申请早于人员登记，未生效")
                continue
            officer.transfer_request = {"to_dept": p["to_dept"], "event_id": f.event_id, "at": effective_at(f)}
        elif f.type == "officer.transfer_accepted":  # by the owner itself: nothing to transfer
            officer.anomalies.append(Anomaly(f.event_id, f.type, f"{f.dept} 已是{label}的所属单位，调入确认无效"))
        elif f.type in ("officer.registered", "officer.updated"):
            if f.type == "officer.updated" and not officer.registered:
                refused(f, first is not None, "人员变更早于人员登记，未生效")
                continue
            if not officer.registered:
                officer.registered_at = effective_at(f)
            for key in ("name", "agency_id", "kind"):
                if p.get(key) is not None:
                    setattr(officer, key, p[key])
            officer.dept = f.dept
            status = p.get("status") or ("active" if f.type == "officer.registered" else None)
            if status:
                officer.statuses.append((effective_at(f), status))
        elif f.type == "training.completed":
            officer.training.append(TrainingRecord(f.event_id, date.fromisoformat(p["completed_on"]),
                                                   float(p["hours"]), p.get("topic") or ""))
        elif f.type == "credential.issued":
            number = p["credential_no"]
            if number in officer.credentials:
                officer.anomalies.append(Anomaly(f.event_id, f.type, f"证件 {number} 已发证，重复发证不生效"))
                continue
            officer.credentials[number] = Credential(
                number=number, issuer=p["issuer"], issuer_level=p["issuer_level"],
                areas=tuple(p["areas"]), regions=tuple(p.get("regions") or ()),
                valid_from=date.fromisoformat(p["valid_from"]), valid_to=date.fromisoformat(p["valid_to"]),
                issued_at=effective_at(f), dept=f.dept)
        else:
            number = p["credential_no"]
            action, transition = _TRANSITIONS[f.type]
            cred = officer.credentials.get(number)
            if cred is None:
                refused(f, number in issued, f"证件 {number} 的{action}日期早于发证日期，未生效")
            elif cred.ended_as:
                refused(f, True, f"证件 {number} 已{_ENDED_LABELS[cred.ended_as]}，不能再{action}")
            elif reason := transition(cred, f):
                refused(f, True, f"证件 {number}：{reason}")
    if officer.dept is None and ordered:
        officer.dept = ordered[-1].dept
    return officer


def agency_from_facts(facts: Iterable[Fact], agency_id: str | None = None) -> Agency:
    """Fold an agency's registrations; a later registration by its owner restates the whole agency.

    The department of the first registration owns the agency; another department's registration
    of the same agency id is an anomaly with code 'not_owner' and changes nothing.
    """
    aid, ordered = _log(facts, "agency", agency_id)
    agency = Agency(agency_id=aid, facts=tuple(ordered))
    owner = ordered[0].dept if ordered else None
    foreign: list[Anomaly] = []
    for f in ordered:
        p = f.payload
        if not may_report(owner, f.dept, f.type):
            foreign.append(_not_owner(agency.label, owner, f))
            continue
        agency.name, agency.kind, agency.dept = p["name"], p["kind"], f.dept
        agency.legal_basis = tuple(p.get("legal_basis") or ())
        agency.entrusted_by = p.get("entrusted_by")
        agency.confirmed_on = date.fromisoformat(p["confirmed_on"]) if p.get("confirmed_on") else None
        agency.published_on = date.fromisoformat(p["published_on"]) if p.get("published_on") else None
        # each registration restates the agency, so only the latest one's defects stand
        agency.anomalies = ([Anomaly(f.event_id, f.type, "受委托组织未载明委托机关")]
                            if agency.kind == "entrusted" and not agency.entrusted_by else [])
    agency.anomalies += foreign
    return agency


def apply(aggregate: Officer | Agency | None, fact: Fact) -> Officer | Agency:
    """Add one fact and refold; a fact already applied (same event_id) changes nothing."""
    if aggregate is None:
        return agency_from_facts([fact]) if aggregate_of(fact)[0] == "agency" else officer_from_facts([fact])
    if any(f.event_id == fact.event_id for f in aggregate.facts):
        return aggregate
    if isinstance(aggregate, Agency):
        return agency_from_facts([*aggregate.facts, fact], aggregate.agency_id)
    return officer_from_facts([*aggregate.facts, fact], aggregate.officer_id)


def admit(aggregate: Officer | Agency | None, fact: Fact) -> Officer | Agency:
    """The aggregate with `fact` applied, or NotOwnerError when the fact comes from a department
    that does not own its subject at the time it takes effect (the refusal a publisher hears of).

    A fact that cannot be judged yet (its subject is not registered) is accepted and waits; if
    the registration then shows another owner, the fact becomes a 'not_owner' anomaly.
    """
    after = apply(aggregate, check_fact(fact))
    for a in after.anomalies:
        if a.event_id == fact.event_id and a.code == "not_owner":
            raise NotOwnerError(a.reason, owner=after.dept)
    return after


# Strict commands: what Zhifa itself orders (e.g. the justice bureau suspends a credential).

def _command(officer: Officer | None, type_: str, number: str, at: datetime, extra: dict,
             event_id: str, dept: str) -> Fact:
    at = _aware(at)
    if officer is None or number not in officer.credentials:
        raise NotFoundError(f"未找到证件 {number}", field="credential_no")
    payload = {"officer_id": officer.officer_id, "credential_no": number,
               **{k: v for k, v in extra.items() if v is not None}}
    fact = Fact(event_id, type_, at, dept, payload)
    before = {(a.event_id, a.reason) for a in officer.anomalies}
    after = admit(officer, fact)  # another department's officer: NotOwnerError
    new = [a for a in after.anomalies if (a.event_id, a.reason) not in before]
    if new:
        raise IllegalTransitionError(new[0].reason, field="credential_no")
    return fact


def suspend_credential(officer: Officer | None, number: str, at: datetime, reason: str, *,
                       event_id: str, dept: str) -> Fact:
    """暂扣: the credential.suspended fact to apply and publish; raises if illegal at `at`."""
    return _command(officer, "credential.suspended", number, at,
                    {"suspended_on": local_date(at).isoformat(), "reason": reason}, event_id, dept)


def restore_credential(officer: Officer | None, number: str, at: datetime, reason: str | None = None, *,
                       event_id: str, dept: str) -> Fact:
    """恢复 a suspended credential."""
    return _command(officer, "credential.restored", number, at,
                    {"restored_on": local_date(at).isoformat(), "reason": reason}, event_id, dept)


def revoke_credential(officer: Officer | None, number: str, at: datetime, reason: str, *,
                      event_id: str, dept: str) -> Fact:
    """收回 a credential (final)."""
    return _command(officer, "credential.revoked", number, at,
                    {"revoked_on": local_date(at).isoformat(), "reason": reason}, event_id, dept)


def cancel_credential(officer: Officer | None, number: str, at: datetime, reason: str, *,
                      event_id: str, dept: str) -> Fact:
    """注销 a credential (final)."""
    return _command(officer, "credential.cancelled", number, at,
                    {"cancelled_on": local_date(at).isoformat(), "reason": reason}, event_id, dept)


def file_credential(officer: Officer | None, number: str, at: datetime, filed_with: str | None = None, *,
                    event_id: str, dept: str) -> Fact:
    """备案 of a State-Council-issued credential with the county."""
    return _command(officer, "credential.filed", number, at,
                    {"filed_on": local_date(at).isoformat(), "filed_with": filed_with}, event_id, dept)


# May this person enforce in this area at this time? One pure answer for every service
# (services/common/qualification.py); penalty asks it of its projection of `officer.changed`.

def can_act(officer: Officer | None, area: str, at: datetime, *, region: str | None = None,
            agency: Agency | None = None) -> Verdict:
    """Every reason `officer` may not enforce in `area` at `at` (《行政处罚法》Art. 42; 国办发〔2024〕54号)."""
    return _can_act(officer, area, at, region=region,
                    agency_recognised=None if agency is None else agency.recognised_at(at),
                    agency_label=agency.label if agency is not None else "")


# Snapshots: plain JSON-friendly dicts (ISO strings) for storage, queries and projections.

def _window(start: datetime | None, end: datetime | None) -> dict:
    return {"from": _iso(start), "to": _iso(end)}


def _credential_snapshot(c: Credential, as_of: datetime) -> dict:
    return c.to_payload(as_of)


def _anomalies(items: list[Anomaly]) -> list[dict]:
    return [{"event_id": a.event_id, "type": a.type, "reason": a.reason, "code": a.code} for a in items]


def to_snapshot(aggregate: Officer | Agency, as_of: datetime) -> dict:
    """The query document of an officer (or agency); statuses are those at `as_of`."""
    as_of = _aware(as_of, "as_of")
    if isinstance(aggregate, Agency):
        a = aggregate
        return {
            "agency_id": a.agency_id, "name": a.name, "dept": a.dept, "kind": a.kind,
            "legal_basis": list(a.legal_basis), "entrusted_by": a.entrusted_by,
            "confirmed_on": a.confirmed_on.isoformat() if a.confirmed_on else None,
            "published_on": a.published_on.isoformat() if a.published_on else None,
            "recognised": a.recognised_at(as_of), "version": a.version, "as_of": _iso(as_of),
            "anomalies": _anomalies(a.anomalies),
        }
    o = aggregate
    years = sorted({r.completed_on.year for r in o.training})
    return {
        "officer_id": o.officer_id, "name": o.name, "dept": o.dept, "agency_id": o.agency_id,
        "kind": o.kind, "registered": o.registered, "status": o.status_at(as_of),
        "active": [_window(a, b) for a, b in o.active_windows()],
        "version": o.version, "as_of": _iso(as_of),
        "credentials": [_credential_snapshot(c, as_of) for _, c in sorted(o.credentials.items())],
        "training_hours": {str(y): o.training_hours(y) for y in years},
        "training": [{"event_id": r.event_id, "completed_on": r.completed_on.isoformat(), "hours": r.hours,
                      "topic": r.topic} for r in sorted(o.training, key=lambda r: (r.completed_on, r.event_id))],
        "anomalies": _anomalies(o.anomalies),
        "pending": list(o.pending),
        "transfers": [{**t, "at": _iso(t["at"])} for t in o.transfers],
        "transfer_request": None if o.transfer_request is None else {
            **o.transfer_request, "at": _iso(o.transfer_request["at"])},
    }


_CHANGED_CREDENTIAL_KEYS = ("number", "issuer", "areas", "regions", "issuer_level", "filing_required", "filed_at",
                            "valid_from", "valid_to", "issued_at", "suspensions", "ended_as", "ended_at",
                            "end_reason", "status", "usable")


def officer_changed_payload(officer: Officer, as_of: datetime, snapshot: dict | None = None) -> dict:
    """Payload of `officer.changed`: enough for a consumer to answer "may act in area X at T".
    `snapshot`: the officer's `to_snapshot` at `as_of` when the caller has it already (not made twice)."""
    snap = snapshot if snapshot is not None else to_snapshot(officer, as_of)
    return {
        **{k: snap[k] for k in ("officer_id", "name", "dept", "agency_id", "kind", "status", "active",
                                "version", "as_of")},
        "statuses": [{"since": _iso(since), "status": status} for since, status in officer.statuses],
        "credentials": [{k: c[k] for k in _CHANGED_CREDENTIAL_KEYS} for c in snap["credentials"]],
    }


# Rules. Each returns findings keyed stably, so re-evaluation is idempotent through diff_findings.

RULES = {
    "PER-CRED-EXPIRING": ("info", "执法证件即将到期"),
    "PER-CRED-UNFILED": ("warning", "国务院部门制发的执法证件未备案"),
    "PER-CRED-HOLDER-INACTIVE": ("warning", "停用或离岗人员的执法证件未暂扣、收回或注销"),
    "PER-AUX-CREDENTIAL": ("warning", "辅助人员持有执法证件"),
    "PER-TRAIN-PROGRESS": ("info", "培训报送时点已过，年度学时尚未达标"),
    "PER-TRAIN-HOURS": ("warning", "年度公共法律知识培训学时不足"),
    "PER-FACT-CONFLICT": ("warning", "上报的人员、证件或主体事实相互矛盾"),
    "PER-FACT-HELD": ("warning", "上报的事实长期缺少其所指对象"),
    "PER-AGENCY-UNCONFIRMED": ("warning", "执法主体未经确认公布"),
}


def _finding(rule_id: str, dept: str, subject_type: str, subject_id: str, as_of: datetime,
             evidence: dict, message: str) -> Finding:
    return Finding(rule_id=rule_id, severity=RULES[rule_id][0], dept=dept, subject_type=subject_type,
                   subject_id=subject_id, as_of=as_of, evidence=evidence, message=message)


def _live(officer: Officer, as_of: datetime) -> list[Credential]:
    return [c for _, c in sorted(officer.credentials.items()) if c.live_at(as_of)]


def check_credential_expiring(officer: Officer, as_of: datetime, settings: PersonnelSettings) -> list[Finding]:
    """PER-CRED-EXPIRING: an active officer's credential ends within `expiry_warning_days`."""
    if officer.status_at(as_of) != "active":
        return []
    today, out = local_date(as_of), []
    for c in _live(officer, as_of):
        left = (c.valid_to - today).days
        if left <= settings.expiry_warning_days:
            out.append(_finding("PER-CRED-EXPIRING", officer.dept, "credential", c.number, as_of,
                                {"officer_id": officer.officer_id, "valid_to": c.valid_to.isoformat(),
                                 "days_left": left},
                                f"{officer.label}的执法证件 {c.number} 将于 {c.valid_to} 到期"
                                f"（剩余 {left} 天），请及时换证"))
    return out


def check_credential_unfiled(officer: Officer, as_of: datetime, settings: PersonnelSettings) -> list[Finding]:
    """PER-CRED-UNFILED: a State-Council-issued credential held without 备案 (seed 000)."""
    if officer.status_at(as_of) != "active":
        return []
    return [_finding("PER-CRED-UNFILED", officer.dept, "credential", c.number, as_of,
                     {"officer_id": officer.officer_id, "issuer": c.issuer,
                      "issued_on": local_date(c.issued_at).isoformat()},
                     f"{officer.label}持有的国务院部门制发证件 {c.number}（{c.issuer}）尚未向县司法局备案，"
                     "备案前不得在本行政区域内使用")
            for c in _live(officer, as_of) if c.filing_required and not c.filed_by(as_of)]


def check_inactive_holder(officer: Officer, as_of: datetime, settings: PersonnelSettings) -> list[Finding]:
    """PER-CRED-HOLDER-INACTIVE: a stood-down or departed officer still holds a usable credential."""
    status = officer.status_at(as_of)
    if status not in ("inactive", "left"):
        return []
    return [_finding("PER-CRED-HOLDER-INACTIVE", officer.dept, "credential", c.number, as_of,
                     {"officer_id": officer.officer_id, "officer_status": status},
                     f"{officer.label}已{_STATUS_LABELS[status]}，其执法证件 {c.number} 仍未暂扣、收回或注销")
            for c in _live(officer, as_of) if not c.suspension_at(as_of)]


def check_auxiliary_credential(officer: Officer, as_of: datetime, settings: PersonnelSettings) -> list[Finding]:
    """PER-AUX-CREDENTIAL: auxiliaries may not enforce, so may not hold a credential (国办发〔2024〕54号)."""
    if officer.kind != "auxiliary":
        return []
    return [_finding("PER-AUX-CREDENTIAL", officer.dept, "credential", c.number, as_of,
                     {"officer_id": officer.officer_id},
                     f"辅助人员{officer.label}持有执法证件 {c.number}，应予收回或注销")
            for c in _live(officer, as_of)]


def _due(year: int, month_day: str) -> date:
    return date(year, *_parse_month_day(month_day, "due"))


def _owes_training(officer: Officer, as_of: datetime, settings: PersonnelSettings, since: date) -> bool:
    return (officer.kind in settings.training_kinds and officer.status_at(as_of) == "active"
            and officer.registered_at is not None and local_date(officer.registered_at) <= since)


def _training_finding(rule_id: str, officer: Officer, as_of: datetime, settings: PersonnelSettings,
                      year: int, due: date, message: str) -> list[Finding]:
    hours = officer.training_hours(year)
    if hours >= settings.training_hours_per_year:
        return []
    return [_finding(rule_id, officer.dept, "training_year", f"{officer.officer_id}/{year}", as_of,
                     {"officer_id": officer.officer_id, "year": year, "hours": hours,
                      "required": settings.training_hours_per_year, "due": due.isoformat()},
                     message.format(who=officer.label, year=year, hours=f"{hours:g}",
                                    required=f"{settings.training_hours_per_year:g}", due=due))]


def check_training_hours(officer: Officer, as_of: datetime, settings: PersonnelSettings) -> list[Finding]:
    """PER-TRAIN-HOURS: the latest year whose rotation deadline (seed 001: Nov 15) has passed."""
    today = local_date(as_of)
    year = today.year if today > _due(today.year, settings.training_due) else today.year - 1
    due = _due(year, settings.training_due)
    if not _owes_training(officer, as_of, settings, due):
        return []
    return _training_finding("PER-TRAIN-HOURS", officer, as_of, settings, year, due,
                             "{who}{year} 年度公共法律知识培训仅 {hours} 学时，低于 {required} 学时（期限 {due}）")


def check_training_progress(officer: Officer, as_of: datetime, settings: PersonnelSettings) -> list[Finding]:
    """PER-TRAIN-PROGRESS: between the report date (Jul 1) and the deadline, hours still short."""
    if settings.training_report_due is None:
        return []
    today = local_date(as_of)
    report, due = _due(today.year, settings.training_report_due), _due(today.year, settings.training_due)
    if not (report < today <= due) or not _owes_training(officer, as_of, settings, report):
        return []
    return _training_finding("PER-TRAIN-PROGRESS", officer, as_of, settings, today.year, due,
                             "{who}{year} 年度培训报送时点已过，目前仅 {hours} 学时，须在 {due} 前达到 {required} 学时")


def _settled(aggregate: Officer | Agency, event_ids: Iterable[str], as_of: datetime,
             settings: PersonnelSettings) -> set[str]:
    """Of `event_ids`, those older than the grace period: late facts get time to arrive first."""
    cutoff, wanted = as_of - timedelta(days=settings.held_fact_grace_days), set(event_ids)
    return {f.event_id for f in aggregate.facts if f.event_id in wanted and f.waiting_since <= cutoff}


def _conflicts(dept: str, subject_type: str, subject_id: str, label: str, aggregate: Officer | Agency,
               as_of: datetime, settings: PersonnelSettings) -> list[Finding]:
    settled = _settled(aggregate, (a.event_id for a in aggregate.anomalies), as_of, settings)
    anomalies = [a for a in aggregate.anomalies if a.event_id in settled]
    if not anomalies:
        return []
    return [_finding("PER-FACT-CONFLICT", dept, subject_type, subject_id, as_of,
                     {"count": len(anomalies), "anomalies": _anomalies(anomalies[:20])},
                     f"{label}的上报事实有 {len(anomalies)} 处矛盾，例如：{anomalies[0].reason}")]


def _held(dept: str, subject_type: str, subject_id: str, label: str, aggregate: Officer | Agency,
          as_of: datetime, settings: PersonnelSettings) -> list[Finding]:
    settled = _settled(aggregate, aggregate.pending, as_of, settings)
    waiting = [f for f in aggregate.facts if f.event_id in settled]
    if not waiting:
        return []
    return [_finding("PER-FACT-HELD", dept, subject_type, subject_id, as_of,
                     {"count": len(waiting), "event_ids": [f.event_id for f in waiting[:20]]},
                     f"{label}有 {len(waiting)} 条上报事实超过 {settings.held_fact_grace_days} 天"
                     "仍缺少其所指的登记或证件")]


def _officer_only(rule):
    """A rule about officers, run over the personnel rule table (agencies answer [])."""
    def run(aggregate, as_of: datetime, settings: PersonnelSettings) -> list[Finding]:
        return rule(aggregate, as_of, settings) if isinstance(aggregate, Officer) else []
    run.__name__, run.__doc__ = rule.__name__, rule.__doc__
    return run


def check_agency_unconfirmed(aggregate, as_of: datetime, settings: PersonnelSettings) -> list[Finding]:
    """PER-AGENCY-UNCONFIRMED (seed 003: 未经县政府确认公布的主体不得执法)."""
    agency = aggregate
    if not isinstance(agency, Agency) or agency.name is None or agency.recognised_at(as_of):
        return []
    return [_finding("PER-AGENCY-UNCONFIRMED", agency.dept, "agency", agency.agency_id, as_of,
                     {"confirmed_on": agency.confirmed_on.isoformat() if agency.confirmed_on else None,
                      "published_on": agency.published_on.isoformat() if agency.published_on else None},
                     f"执法主体{agency.label}尚未经县政府确认并公布，不得以该主体名义执法")]


def check_conflicts(aggregate, as_of: datetime, settings: PersonnelSettings) -> list[Finding]:
    """PER-FACT-CONFLICT: facts that could not take effect even in time order (after the grace period)."""
    kind = "agency" if isinstance(aggregate, Agency) else "officer"
    agg_id = aggregate.agency_id if kind == "agency" else aggregate.officer_id
    return _conflicts(aggregate.dept, kind, agg_id, aggregate.label, aggregate, as_of, settings)


def check_held(aggregate, as_of: datetime, settings: PersonnelSettings) -> list[Finding]:
    """PER-FACT-HELD: facts still waiting for their subject after `held_fact_grace_days`."""
    kind = "agency" if isinstance(aggregate, Agency) else "officer"
    agg_id = aggregate.agency_id if kind == "agency" else aggregate.officer_id
    return _held(aggregate.dept, kind, agg_id, aggregate.label, aggregate, as_of, settings)


check_fact_conflicts = check_conflicts  # names kept for callers
check_held_facts = check_held


# The built-in personnel rules, by id, in evaluation order; the plugin host serves them as the
# built-in plugin `builtin.rules` (hook `zhifa_rules`), so a department plugin may replace or
# switch off any of them. Each takes (officer or agency, as_of, settings) -> list[Finding].
PERSONNEL_RULES = (
    ("PER-CRED-EXPIRING", _officer_only(check_credential_expiring)),
    ("PER-CRED-UNFILED", _officer_only(check_credential_unfiled)),
    ("PER-CRED-HOLDER-INACTIVE", _officer_only(check_inactive_holder)),
    ("PER-AUX-CREDENTIAL", _officer_only(check_auxiliary_credential)),
    ("PER-TRAIN-PROGRESS", _officer_only(check_training_progress)),
    ("PER-TRAIN-HOURS", _officer_only(check_training_hours)),
    ("PER-AGENCY-UNCONFIRMED", check_agency_unconfirmed),
    ("PER-FACT-CONFLICT", check_conflicts),
    ("PER-FACT-HELD", check_held),
)
OFFICER_RULES = tuple(fn for _, fn in PERSONNEL_RULES)


def evaluate(aggregate: Officer | Agency, as_of: datetime, settings: PersonnelSettings = DEFAULT_SETTINGS,
             rules=None) -> list[Finding]:
    """Every personnel rule (`rules`: (rule_id, fn) pairs; default the built-ins) on one aggregate."""
    as_of = _aware(as_of, "as_of")
    return [f for _, rule in (PERSONNEL_RULES if rules is None else rules) for f in rule(aggregate, as_of, settings)]


def evaluate_officer(officer: Officer, as_of: datetime,
                     settings: PersonnelSettings = DEFAULT_SETTINGS, rules=None) -> list[Finding]:
    """All personnel findings for one officer at `as_of`."""
    return evaluate(officer, as_of, settings, rules)


def evaluate_agency(agency: Agency, as_of: datetime,
                    settings: PersonnelSettings = DEFAULT_SETTINGS, rules=None) -> list[Finding]:
    """PER-AGENCY-UNCONFIRMED plus fact conflicts and held facts of one agency."""
    return evaluate(agency, as_of, settings, rules)


def settling_until(aggregate: Officer | Agency, as_of: datetime,
                   settings: PersonnelSettings = DEFAULT_SETTINGS) -> datetime | None:
    """While the aggregate's facts are still arriving (the latest less than `arrival_settle_seconds`
    before `as_of`), the instant they settle; else None (docs/consistency.md)."""
    return _settling_until(last_arrival(aggregate.facts), settings.arrival_settle_seconds, as_of)


def waits_for_arrivals(aggregate: Officer | Agency, finding: Finding, as_of: datetime,
                       settings: PersonnelSettings = DEFAULT_SETTINGS) -> bool:
    """Whether a finding not yet raised waits because the aggregate is still settling.

    Every personnel rule is about something not (yet) reported — a filing, a suspension or end of a
    credential, a training record, a confirmation, a renewal — that may be in the same batch of
    facts: so while an officer or agency is settling no new finding is raised (those already open
    stay open; a resolution is not held back). The due date includes the settle instant, so the
    deadline sweep judges it then (`next_evaluation_at`). PER-FACT-* wait days anyway.
    """
    return settling_until(aggregate, as_of, settings) is not None


def next_evaluation_at(aggregate: Officer | Agency, as_of: datetime,
                       settings: PersonnelSettings = DEFAULT_SETTINGS, *, held_back: bool = True) -> datetime | None:
    """The next moment after `as_of` at which a verdict or finding can change without a new fact.

    The service stores it as the aggregate's due date, so the timer re-evaluates exactly then.
    `held_back`: whether the evaluation at `as_of` held a new finding back while the arrivals settle
    (`waits_for_arrivals`); only then is the settle instant such a moment — a finding that starts to
    hold later starts at one of the other moments, and is judged (and held, if still settling) there.
    """
    as_of = _aware(as_of, "as_of")
    grace = timedelta(days=settings.held_fact_grace_days)
    waiting = set(aggregate.pending) | {a.event_id for a in aggregate.anomalies}
    moments = [f.waiting_since + grace for f in aggregate.facts if f.event_id in waiting]
    settled = settles_at(last_arrival(aggregate.facts), settings.arrival_settle_seconds) if held_back else None
    if settled is not None:  # judge what was held back once the arrivals are over
        moments.append(settled)
    if isinstance(aggregate, Agency):
        moments += [_midnight(d + timedelta(days=1)) for d in (aggregate.confirmed_on, aggregate.published_on) if d]
    else:
        moments += [since for since, _ in aggregate.statuses]
        for c in aggregate.credentials.values():
            moments += [c.issued_at, c.starts_at, c.expires_at,
                        _midnight(c.valid_to - timedelta(days=settings.expiry_warning_days))]
            moments += [t for t in (c.filed_at, c.ended_at) if t]
            moments += [t for s in c.suspensions for t in (s.start, s.end) if t]
        year = local_date(as_of).year
        for y in (year, year + 1):
            for due in (settings.training_due, settings.training_report_due):
                if due:
                    moments.append(_midnight(_due(y, due) + timedelta(days=1)))
    later = [m for m in moments if m > as_of]
    return min(later) if later else None
