"""Monitoring devices (电子技术监控设备): registered, reviewed and published before use (seed 001; Art. 41).

A department registers a device (location, purpose), the bureau reviews it (审核: passed or not),
the department publishes it to society (向社会公布); uses of the device as evidence (e.g. for a
non-site penalty, 非现场执法) are reported as `device.used`.

Rule COO-DEVICE-UNPUBLISHED (serious): a use on a day when the device was not registered, not
reviewed and passed, or not yet published. One finding per device while any such use exists,
evidence listing the uses. A use reported for a device never registered is kept (the device
exists as a fact log without registration) and is a finding too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable

from services.common.errors import DomainError, IllegalTransitionError, NotFoundError, NotOwnerError
from services.common.facts import Fact
from services.common.findings import Finding
from services.coordination.domain.common import (bureau_only, command_fact, in_time_order, on_or_today, parse_date,
                                                 required_text)

REGISTERED, REVIEWED, PUBLISHED, USED = "device.registered", "device.reviewed", "device.published", "device.used"
FACT_TYPES = (REGISTERED, REVIEWED, PUBLISHED, USED)
RULE_UNPUBLISHED = "COO-DEVICE-UNPUBLISHED"
RULES = (RULE_UNPUBLISHED,)
MAX_USES_IN_EVIDENCE = 20


@dataclass
class Device:
    device_id: str
    dept: str = ""
    location: str = ""
    purpose: str = ""
    registered_on: date | None = None
    review_passed: bool | None = None
    reviewed_on: date | None = None
    published_on: date | None = None
    uses: list[dict] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.published_on:
            return "published"
        if self.review_passed:
            return "approved"
        if self.review_passed is False:
            return "rejected"
        return "registered" if self.registered_on else "unregistered"


def lawful_on(d: Device, day: date) -> tuple[bool, str]:
    """Could the device be used on `day`? (registered, passed review, published — all on or before it)."""
    if not d.registered_on or d.registered_on > day:
        return False, "未登记"
    if not d.review_passed or not d.reviewed_on or d.reviewed_on > day:
        return False, "未经审核通过"
    if not d.published_on or d.published_on > day:
        return False, "未向社会公布"
    return True, ""


def device_from_facts(facts: Iterable[Fact]) -> Device | None:
    ordered = in_time_order(facts)
    if not ordered:
        return None
    d = Device(str(ordered[0].payload.get("device_id") or ""))
    for f in ordered:
        p = f.payload
        if f.type == REGISTERED:
            d.dept, d.location, d.purpose = f.dept, p["location"], p.get("purpose", "")
            d.registered_on = parse_date(p["registered_on"], "registered_on")
        elif f.type == REVIEWED:
            d.review_passed, d.reviewed_on = bool(p["passed"]), parse_date(p["reviewed_on"], "reviewed_on")
        elif f.type == PUBLISHED:
            d.published_on = parse_date(p["published_on"], "published_on")
        elif f.type == USED:
            d.dept = d.dept or f.dept
            d.uses.append({"used_on": p["used_on"], "case_id": p.get("case_id"), "event_id": f.event_id})
    return d


def unlawful_uses(d: Device) -> list[dict]:
    out = []
    for use in d.uses:
        ok, reason = lawful_on(d, parse_date(use["used_on"], "used_on"))
        if not ok:
            out.append({"used_on": use["used_on"], "case_id": use.get("case_id"), "reason": reason})
    return out


def evaluate(d: Device | None, as_of: datetime) -> list[Finding]:
    if d is None:
        return []
    bad = unlawful_uses(d)
    if not bad:
        return []
    return [Finding(RULE_UNPUBLISHED, "serious", d.dept, "device", d.device_id, as_of,
                    {"uses": bad[:MAX_USES_IN_EVIDENCE], "count": len(bad), "status": d.status},
                    f"电子技术监控设备 {d.device_id}（{d.location or '位置不明'}）在{bad[0]['reason']}时被用于执法 "
                    f"{len(bad)} 次，所得证据不得作为处罚依据")]


def snapshot(d: Device, as_of: datetime) -> dict:
    iso = lambda x: x.isoformat() if x else None  # noqa: E731
    return {"device_id": d.device_id, "dept": d.dept, "location": d.location, "purpose": d.purpose,
            "status": d.status, "registered_on": iso(d.registered_on), "review_passed": d.review_passed,
            "reviewed_on": iso(d.reviewed_on), "published_on": iso(d.published_on), "uses": len(d.uses),
            "unlawful_uses": unlawful_uses(d)[:MAX_USES_IN_EVIDENCE]}


def _fact(type_, device_id, at, acting_dept, event_id, actor, **payload) -> Fact:
    return command_fact(type_, "device_id", device_id, at, acting_dept, event_id, actor, **payload)


def _own(d: Device | None, device_id: str, dept: str) -> Device:
    if d is None or not d.registered_on:
        raise NotFoundError(f"监控设备 {device_id} 未登记", field="device_id")
    if d.dept != dept:
        raise NotOwnerError(f"监控设备 {device_id} 属于 {d.dept}，{dept} 无权操作")
    return d


def register(d: Device | None, device_id: str, *, location: str, at: datetime, dept: str, event_id: str,
             purpose: str | None = None, registered_on: str | None = None, actor: str | None = None) -> Fact:
    if d is not None and d.registered_on:
        raise IllegalTransitionError(f"监控设备 {device_id} 已登记", field="device_id")
    if d is not None and d.dept and d.dept != dept:
        raise NotOwnerError(f"监控设备 {device_id} 属于 {d.dept}")
    return _fact(REGISTERED, device_id, at, dept, event_id, actor,
                 location=required_text(location, "location", "须填写设置地点"), purpose=purpose,
                 registered_on=on_or_today(registered_on, at, "registered_on").isoformat())


def review(d: Device | None, device_id: str, *, passed: bool, at: datetime, dept: str, event_id: str,
           comment: str | None = None, reviewed_on: str | None = None, actor: str | None = None) -> Fact:
    bureau_only(dept, "审核监控设备")
    if d is None or not d.registered_on:
        raise NotFoundError(f"监控设备 {device_id} 未登记", field="device_id")
    return _fact(REVIEWED, device_id, at, dept, event_id, actor, passed=bool(passed), comment=comment,
                 reviewed_on=on_or_today(reviewed_on, at, "reviewed_on").isoformat())


def publish(d: Device | None, device_id: str, *, at: datetime, dept: str, event_id: str,
            published_on: str | None = None, actor: str | None = None) -> Fact:
    d = _own(d, device_id, dept)
    if not d.review_passed:
        raise IllegalTransitionError(f"监控设备 {device_id} 未经司法局审核通过，不能公布", field="device_id")
    if d.published_on:
        raise IllegalTransitionError(f"监控设备 {device_id} 已公布", field="device_id")
    on = on_or_today(published_on, at, "published_on")
    if on < d.reviewed_on:
        raise DomainError("公布日期不能早于审核日期", code="invalid_value", field="published_on")
    return _fact(PUBLISHED, device_id, at, dept, event_id, actor, published_on=on.isoformat())


def admit(d: Device | None, fact: Fact) -> None:
    """Ingress: the bureau reviews; everything else comes from the device's department (once known;
    a step reported before the registration is kept and folded in time order)."""
    device_id = str(fact.payload.get("device_id") or "")
    if fact.type == REVIEWED:
        bureau_only(fact.dept, "审核监控设备")
    elif d is not None and d.dept and d.dept != fact.dept:
        raise NotOwnerError(f"监控设备 {device_id} 属于 {d.dept}", field="dept")
