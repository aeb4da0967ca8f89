"""Ownership of data (数据归属): every subject has one owning department.

An officer, agency, item, discretion standard or case is owned by the department that registered
(published, filed) it first; a fact about it from another department is refused with NotOwnerError
(code 'not_owner'), or — when it could only be judged later, after an earlier-dated fact arrived —
kept as a 'not_owner' anomaly that changes nothing. The rules per subject and the handover of an
officer between departments (调动) are in docs/ownership.md.

The justice bureau (司法局, department short name `sfj`, e.g. `511322-sfj`) supervises every
department: it may report the supervisory facts listed in `SUPERVISORY_FACTS` about any
department's subjects (it suspends, restores, revokes or cancels credentials, receives their
filing, organises public legal training, and may order a transfer).
"""
from __future__ import annotations

JUSTICE_BUREAU_SHORT_NAMES = frozenset({"sfj"})   # 司法局 (the 行政执法监督机构)

SUPERVISORY_FACTS = frozenset({
    "credential.suspended", "credential.restored", "credential.revoked", "credential.cancelled",
    "credential.filed", "training.completed", "officer.transfer_accepted",
})


def short_name(dept: str | None) -> str:
    """'511322-sfj' -> 'sfj'."""
    return (dept or "").rsplit("-", 1)[-1]


def is_justice_bureau(dept: str | None) -> bool:
    return short_name(dept) in JUSTICE_BUREAU_SHORT_NAMES


def may_report(owner: str | None, dept: str, fact_type: str) -> bool:
    """May `dept` report a `fact_type` fact about a subject owned by `owner` (None: not known yet)?"""
    return owner is None or dept == owner or (is_justice_bureau(dept) and fact_type in SUPERVISORY_FACTS)


def only_reporter(facts, fact) -> bool:
    """True when every fact already kept about a subject came from the new fact's department: the
    new fact cannot then be foreign (the owner is that department or not known yet), so the
    ownership check needs no fold. Works on stored fact dicts or Fact values."""
    dept = fact["dept"] if isinstance(fact, dict) else fact.dept
    return all((f["dept"] if isinstance(f, dict) else f.dept) == dept for f in facts)
