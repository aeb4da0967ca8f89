"""May this person enforce in this area at this time? (《行政处罚法》Art. 42; 国办发〔2024〕54号)

The one pure answer, shared by personnel (which owns the facts) and penalty (which projects
personnel's `officer.changed` snapshots and asks the same question about each act of a case).
`Credential` is the folded 执法证件; `can_act` takes any holder with `officer_id`, `name`, `kind`,
`registered`, `status_at(at)` and `credentials` — personnel's `Officer` or a `Holder` rebuilt from a
snapshot by `holder_from_payload` — and gives every reason it may not act, with dates.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Iterable, Mapping, Protocol

from services.common.chinatime import aware, day_start, iso_local, local_date, parse_time

# seed 000: credentials issued by State Council departments are filed (备案) with the county before use.
FILING_REQUIRED_LEVELS = ("state_council",)
STATUS_LABELS = {"active": "在岗", "inactive": "停用", "left": "离岗", None: "未登记"}
ENDED_LABELS = {"revoked": "收回", "cancelled": "注销"}
CREDENTIAL_STATUS_LABELS = {
    "not_issued": "未发放", "not_yet_valid": "未生效", "valid": "有效", "suspended": "暂扣",
    "expired": "已过期", "revoked": "已收回", "cancelled": "已注销",
}


@dataclass
class Suspension:
    start: datetime
    end: datetime | None
    reason: str


@dataclass
class Credential:
    """执法证件. Times are effective moments; `status_at` answers for any past or future time."""

    number: str
    issuer: str
    issuer_level: str
    areas: tuple[str, ...]
    regions: tuple[str, ...]
    valid_from: date
    valid_to: date
    issued_at: datetime
    dept: str
    filed_at: datetime | None = None
    suspensions: list[Suspension] = field(default_factory=list)
    ended_at: datetime | None = None
    ended_as: str | None = None  # 'revoked' | 'cancelled'
    end_reason: str = ""

    @property
    def filing_required(self) -> bool:
        return self.issuer_level in FILING_REQUIRED_LEVELS

    @property
    def starts_at(self) -> datetime:
        return day_start(self.valid_from)

    @property
    def expires_at(self) -> datetime:
        return day_start(self.valid_to + timedelta(days=1))

    @property
    def open_suspension(self) -> Suspension | None:
        return self.suspensions[-1] if self.suspensions and self.suspensions[-1].end is None else None

    def suspension_at(self, at: datetime) -> Suspension | None:
        for s in self.suspensions:
            if s.start <= at and (s.end is None or at < s.end):
                return s
        return None

    def filed_by(self, at: datetime) -> bool:
        return self.filed_at is not None and self.filed_at <= at

    def live_at(self, at: datetime) -> bool:
        """Held at `at`: issued, not revoked/cancelled, not expired (a suspended one is still held)."""
        return self.issued_at <= at < self.expires_at and not (self.ended_at and self.ended_at <= at)

    def status_at(self, at: datetime) -> str:
        at = aware(at)
        if at < self.issued_at:
            return "not_issued"
        if self.ended_at is not None and self.ended_at <= at:
            return self.ended_as or "revoked"
        if self.suspension_at(at):
            return "suspended"
        if at >= self.expires_at:
            return "expired"
        if at < self.starts_at:
            return "not_yet_valid"
        return "valid"

    def usable_windows(self) -> list[tuple[datetime, datetime]]:
        """Half-open [from, to) spans in which the credential may be used (filing included)."""
        if self.filing_required and self.filed_at is None:
            return []
        start = max(self.starts_at, self.issued_at, self.filed_at or self.issued_at)
        end = min(self.expires_at, self.ended_at or self.expires_at)
        windows = [(start, end)] if start < end else []
        for s in self.suspensions:
            cut = []
            for a, b in windows:
                if s.start >= b or (s.end is not None and s.end <= a):
                    cut.append((a, b))
                    continue
                if a < s.start:
                    cut.append((a, s.start))
                if s.end is not None and s.end < b:
                    cut.append((s.end, b))
            windows = cut
        return windows

    def to_payload(self, as_of: datetime) -> dict[str, Any]:
        """JSON-friendly form (ISO strings), enough to rebuild it with `credential_from_payload`."""
        return {
            "number": self.number, "issuer": self.issuer, "issuer_level": self.issuer_level,
            "areas": list(self.areas), "regions": list(self.regions),
            "valid_from": self.valid_from.isoformat(), "valid_to": self.valid_to.isoformat(),
            "issued_at": iso_local(self.issued_at), "expires_at": iso_local(self.expires_at), "dept": self.dept,
            "filing_required": self.filing_required, "filed_at": iso_local(self.filed_at),
            "suspensions": [{"from": iso_local(s.start), "to": iso_local(s.end), "reason": s.reason}
                            for s in self.suspensions],
            "ended_as": self.ended_as, "ended_at": iso_local(self.ended_at), "end_reason": self.end_reason,
            "usable": [{"from": iso_local(a), "to": iso_local(b)} for a, b in self.usable_windows()],
            "status": self.status_at(as_of),
        }


def credential_from_payload(raw: Mapping[str, Any], dept: str = "") -> Credential:
    """A Credential from `to_payload()` (as carried by `officer.changed`)."""
    valid_from = date.fromisoformat(raw["valid_from"])
    return Credential(
        number=str(raw["number"]), issuer=str(raw.get("issuer") or ""), issuer_level=str(raw.get("issuer_level") or ""),
        areas=tuple(raw.get("areas") or ()), regions=tuple(raw.get("regions") or ()),
        valid_from=valid_from, valid_to=date.fromisoformat(raw["valid_to"]),
        issued_at=parse_time(raw.get("issued_at")) or day_start(valid_from), dept=str(raw.get("dept") or dept),
        filed_at=parse_time(raw.get("filed_at")),
        suspensions=[Suspension(parse_time(s.get("from")), parse_time(s.get("to")), str(s.get("reason") or ""))
                     for s in raw.get("suspensions") or () if parse_time(s.get("from"))],
        ended_at=parse_time(raw.get("ended_at")), ended_as=raw.get("ended_as"),
        end_reason=str(raw.get("end_reason") or ""),
    )


class HolderLike(Protocol):
    officer_id: str
    name: str | None
    kind: str | None
    credentials: Mapping[str, Credential]

    @property
    def registered(self) -> bool: ...

    @property
    def label(self) -> str: ...

    def status_at(self, at: datetime) -> str | None: ...


def status_at(statuses: Iterable[tuple[datetime, str]], at: datetime) -> str | None:
    """The status in force at `at`; the first one is taken to describe the past too."""
    statuses = list(statuses)
    if not statuses:
        return None
    current = statuses[0][1]
    for since, status in statuses:
        if since > at:
            break
        current = status
    return current


@dataclass
class Holder:
    """An officer as another service projects it (from `officer.changed`)."""

    officer_id: str
    name: str | None = None
    dept: str | None = None
    kind: str | None = None
    registered: bool = True
    statuses: list[tuple[datetime, str]] = field(default_factory=list)
    credentials: dict[str, Credential] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name}（{self.officer_id}）" if self.name else self.officer_id

    def status_at(self, at: datetime) -> str | None:
        return status_at(self.statuses, at)


def holder_from_payload(payload: Mapping[str, Any]) -> Holder:
    """A Holder from an `officer.changed` payload. `statuses` gives the status history; a payload
    without it falls back to its `active` windows (outside them: inactive)."""
    statuses: list[tuple[datetime, str]] = []
    for s in payload.get("statuses") or ():
        since = parse_time(s.get("since"))
        if since is not None:
            statuses.append((since, s["status"]))
    if not statuses and payload.get("active") is not None:
        floor = datetime.min.replace(tzinfo=day_start(date(2000, 1, 1)).tzinfo)
        statuses = [(floor, "inactive")]
        for w in payload["active"]:
            statuses.append((parse_time(w.get("from")) or floor, "active"))
            if parse_time(w.get("to")):
                statuses.append((parse_time(w["to"]), "inactive"))
        statuses.sort(key=lambda s: s[0])
    dept = payload.get("dept")
    return Holder(officer_id=str(payload["officer_id"]), name=payload.get("name"), dept=dept,
                  kind=payload.get("kind"), registered=payload.get("kind") is not None or bool(statuses),
                  statuses=statuses,
                  credentials={c["number"]: credential_from_payload(c, dept or "") for c in payload.get("credentials") or ()})


@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    credential_no: str | None = None


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reasons: tuple[Reason, ...] = ()
    credential_no: str | None = None  # the credential that qualifies, when allowed

    @property
    def message(self) -> str:
        return "；".join(r.message for r in self.reasons)


def _suspension_text(s: Suspension) -> str:
    span = f"自 {local_date(s.start)} 起暂扣" + (f"至 {local_date(s.end)}" if s.end else "")
    return span + (f"（{s.reason}）" if s.reason else "")


def credential_reasons(c: Credential, at: datetime, area: str, region: str | None = None) -> list[Reason]:
    """Every reason credential `c` does not qualify for `area` (empty: any area) at `at`, with dates."""
    n, out = c.number, []
    if at < c.issued_at:
        out.append(Reason("not_issued", f"证件 {n} 于 {local_date(c.issued_at)} 才发放，执法时尚未持有", n))
    if c.ended_at is not None and c.ended_at <= at:
        out.append(Reason(c.ended_as or "revoked",
                          f"证件 {n} 已于 {local_date(c.ended_at)} {ENDED_LABELS.get(c.ended_as, '失效')}", n))
    if s := c.suspension_at(at):
        out.append(Reason("suspended", f"证件 {n} 在 {local_date(at)} 处于暂扣期间（{_suspension_text(s)}）", n))
    if at >= c.expires_at:
        out.append(Reason("expired", f"证件 {n} 已于 {c.valid_to} 到期", n))
    if at < c.starts_at:
        out.append(Reason("not_yet_valid", f"证件 {n} 自 {c.valid_from} 起才生效", n))
    if c.filing_required and not c.filed_by(at):
        filed = f"（{local_date(c.filed_at)} 才备案）" if c.filed_at else ""
        out.append(Reason("unfiled", f"国务院部门制发的证件 {n} 在该时点尚未向县司法局备案{filed}，不得在本行政区域内使用", n))
    if area and area not in c.areas:
        out.append(Reason("area_not_covered", f"证件 {n} 的执法领域（{'、'.join(c.areas)}）不包含 {area}", n))
    if region and c.regions and region not in c.regions:
        out.append(Reason("region_not_covered", f"证件 {n} 的执法区域（{'、'.join(c.regions)}）不包含 {region}", n))
    return out


def can_act(officer: HolderLike | None, area: str, at: datetime, *, region: str | None = None,
            agency_recognised: bool | None = None, agency_label: str = "") -> Verdict:
    """Every reason `officer` may not enforce in `area` (empty: any area) at `at`.

    Auxiliaries (辅助人员) and supervisors (监督员) never qualify, whatever they hold.
    """
    at = aware(at)
    reasons: list[Reason] = []
    if officer is None or not officer.registered:
        reasons.append(Reason("officer_unknown", "执法人员未登记，不得执法"))
    else:
        status = officer.status_at(at)
        if status != "active":
            reasons.append(Reason("officer_inactive",
                                  f"{officer.label}在该时点为{STATUS_LABELS.get(status, status)}状态，不得执法"))
        if officer.kind == "auxiliary":
            reasons.append(Reason("auxiliary", f"{officer.label}是辅助人员，不得独立执法，不计入执法人员"))
        elif officer.kind == "supervisor":
            reasons.append(Reason("not_enforcement_officer", f"{officer.label}是行政执法监督员，不是执法人员"))
        elif officer.kind is None:
            reasons.append(Reason("kind_unknown", f"{officer.label}的人员类别未登记，不能认定为执法人员"))
    if agency_recognised is False:
        reasons.append(Reason("agency_unconfirmed", f"执法主体{agency_label}在该时点未经确认公布"))
    held = sorted((c for c in (officer.credentials.values() if officer else ()) if c.issued_at <= at),
                  key=lambda c: c.number)
    qualifying = None
    if not held:
        later = sorted(officer.credentials.values(), key=lambda c: c.issued_at) if officer else []
        note = f"（证件 {later[0].number} 于 {local_date(later[0].issued_at)} 才发放）" if later else ""
        reasons.append(Reason("no_credential", f"在该时点未持有执法证件{note}"))
    else:
        per_credential = [(c, credential_reasons(c, at, area, region)) for c in held]
        qualifying = next((c.number for c, problems in per_credential if not problems), None)
        if qualifying is None:
            reasons.extend(r for _, problems in per_credential for r in problems)
    return Verdict(allowed=not reasons, reasons=tuple(reasons), credential_no=qualifying if not reasons else None)
