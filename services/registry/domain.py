"""Enforcement-item registry (执法事项清单、裁量基准、四张清单): pure, versioned, replayable.

One aggregate per item code (`ItemRecord`) keeps every fact applied to it; versions, discretion
standards and evaluations are derived by folding those facts in effective-date order, so a
redelivered fact changes nothing and a fact that arrives early is held, never lost.

Dates are local (China Standard Time, one zone, no DST); `effective_to` is the last day in force.
A datetime `at` must be timezone-aware and is read as its local calendar day.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Callable, ClassVar, Iterable, Mapping, NamedTuple

from services.common.chinatime import CST as LOCAL_TZ
from services.common.chinatime import day_start as _day_start
from services.common.chinatime import local_date as _local_date
from services.common.chinatime import month_day_in as _deadline
from services.common.chinatime import parse_month_day as _month_day
from services.common.errors import DomainError, InvalidFactError as _InvalidFact, NaiveTimeError, NotFoundError, NotOwnerError
from services.common.facts import Fact
from services.common.findings import Finding
from services.common.settings import SettingsBase


CATEGORIES = {
    "penalty": "处罚", "coercion": "强制", "inspection": "检查",
    "levy": "征收", "licensing": "许可", "other": "其他",
}
DEFAULT_TIERS = {"lightest": "从轻", "lighter": "较轻", "normal": "一般", "heavier": "较重", "heaviest": "严重"}
RANGE_KINDS = {"amount": "元", "multiple": "倍"}
LENIENCY_KINDS = {
    "no_penalty": "不予处罚", "mitigated_penalty": "减轻处罚", "lighter_penalty": "从轻处罚",
    "no_coercion": "不予实施行政强制", "enterprise_exemption": "涉企免罚",
}
EVALUATION_CONCLUSIONS = {"keep": "继续赋权", "adjust": "调整赋权", "withdraw": "收回赋权"}
# An enforcement area (执法领域) code, as on credentials (contracts/events/personnel.py AREAS).
AREA_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")

ITEM_PUBLISHED = "item.published"
ITEM_AMENDED = "item.amended"
ITEM_REPEALED = "item.repealed"
ITEM_EVALUATED = "item.evaluated"
STANDARD_PUBLISHED = "standard.published"
LENIENCY_LIST_PUBLISHED = "leniency_list.published"
ITEM_CHANGES = (ITEM_PUBLISHED, ITEM_AMENDED, ITEM_REPEALED)
ITEM_FACTS = ITEM_CHANGES + (ITEM_EVALUATED, STANDARD_PUBLISHED)
FACT_TYPES = ITEM_FACTS + (LENIENCY_LIST_PUBLISHED,)

RULE_DELEGATED_NOT_EVALUATED = "REG-DELEGATED-NOT-EVALUATED"
RULE_STANDARD_MISSING = "REG-STANDARD-MISSING"
RULE_NO_LEGAL_BASIS = "REG-NO-LEGAL-BASIS"


class RegistryError(DomainError):
    code = "registry_error"


class InvalidFactError(RegistryError, _InvalidFact):
    """A contract-valid payload the registry still cannot accept (bad date, wrong item, ...)."""

    code = "invalid_fact"


NaiveDatetimeError = NaiveTimeError


class InvalidStandardError(RegistryError):
    """A discretion standard that breaks one or more rules; carries every violation."""

    code = "invalid_standard"

    def __init__(self, violations: Iterable["StandardViolation"]):
        self.violations = list(violations)
        first = self.violations[0].field if self.violations else None
        super().__init__("裁量基准不符合要求：" + "；".join(v.message for v in self.violations), field=first)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "violations": [v.to_dict() for v in self.violations]}


class StandardNotFoundError(NotFoundError):
    code = "standard_not_found"


class UnknownTierError(RegistryError):
    code = "unknown_tier"


# The names plugins/builtin/presets.py uses for the same settings.
SETTING_ALIASES = {
    "lightest_tier_floor": "lightest_tier_floor_ratio",
    "standards_filing_due": "standard_filing_deadline",
    "delegated_review_due": "delegated_evaluation_deadline",
}


@dataclass(frozen=True)
class RegistrySettings(SettingsBase):
    SECTION: ClassVar[str] = "registry"
    ALIASES: ClassVar[Mapping[str, str]] = SETTING_ALIASES
    MONTH_DAY_FIELDS: ClassVar[frozenset[str]] = frozenset({"delegated_evaluation_deadline",
                                                            "standard_filing_deadline"})

    min_tiers: int = 5                                          # seed 003 (national preset: 3)
    lightest_tier_floor_ratio: float = 0.2                      # seed 003: max-only laws
    delegated_evaluation_deadline: tuple[int, int] = (12, 15)   # seed 001
    standard_filing_deadline: tuple[int, int] | None = (8, 15)  # seed 001 (seed 003: 7/30); None = at once

    def check(self) -> None:
        if self.min_tiers < 1:
            raise ValueError("min_tiers must be >= 1")
        if not 0 <= self.lightest_tier_floor_ratio <= 1:
            raise ValueError("lightest_tier_floor_ratio must be within [0, 1]")


DEFAULT_SETTINGS = RegistrySettings()


def local_date(at: date | datetime) -> date:
    """The local calendar day of `at` (a date is taken as is)."""
    return _local_date(at)


def _parse_date(value: Any, field: str, *, required: bool = True) -> date | None:
    if value is None and not required:
        return None
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidFactError(f"日期无效：{value!r}", field=field) from None


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) and not x.is_integer() else f"{int(x)}"


@dataclass(frozen=True)
class LegalBasis:
    law: str
    article: str

    def to_dict(self) -> dict[str, str]:
        return {"law": self.law, "article": self.article}


@dataclass(frozen=True)
class ItemVersion:
    """One version of an item with its window; `effective_to` is already cut by the next version."""

    code: str
    version: int
    change: str                      # published / amended / repealed
    name: str
    category: str
    owning_dept: str
    cooperating_depts: tuple[str, ...]
    legal_basis: tuple[LegalBasis, ...]
    delegated_to_township: bool
    delegated_depts: tuple[str, ...]
    effective_from: date
    effective_to: date | None
    repealed: bool
    event_id: str
    document_no: str = ""
    area: str | None = None          # 执法领域 a credential must cover; None = not recorded (any area)

    def covers(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)

    def in_force_on(self, day: date) -> bool:
        return not self.repealed and self.covers(day)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code, "version": self.version, "change": self.change, "name": self.name,
            "category": self.category, "owning_dept": self.owning_dept,
            "cooperating_depts": list(self.cooperating_depts),
            "legal_basis": [b.to_dict() for b in self.legal_basis],
            "delegated_to_township": self.delegated_to_township, "delegated_depts": list(self.delegated_depts),
            "effective_from": _iso(self.effective_from), "effective_to": _iso(self.effective_to),
            "repealed": self.repealed, "event_id": self.event_id, "document_no": self.document_no,
            "area": self.area,
        }


def _legal_basis(raw: Any) -> tuple[LegalBasis, ...]:
    return tuple(LegalBasis(str(b.get("law", "")).strip(), str(b.get("article", "")).strip()) for b in raw or ())


def _item_fields(fact: Fact, *, full: bool) -> dict[str, Any]:
    """Item attributes a published (full) or amended (partial) payload sets."""
    p = fact.payload
    out: dict[str, Any] = {}
    if full or "name" in p:
        name = str(p.get("name") or "").strip()
        if not name:
            raise InvalidFactError("事项名称不能为空", field="name")
        out["name"] = name
    if full or "category" in p:
        if p.get("category") not in CATEGORIES:
            raise InvalidFactError(f"事项类别无效：{p.get('category')!r}", field="category")
        out["category"] = p["category"]
    if full or p.get("owning_dept"):
        out["owning_dept"] = p.get("owning_dept") or fact.dept
    if full or "cooperating_depts" in p:
        out["cooperating_depts"] = tuple(p.get("cooperating_depts") or ())
    if full or "legal_basis" in p:
        out["legal_basis"] = _legal_basis(p.get("legal_basis"))
    if full or "delegated_depts" in p:
        out["delegated_depts"] = tuple(p.get("delegated_depts") or ())
    if full or "delegated_to_township" in p:
        out["delegated_to_township"] = bool(p.get("delegated_to_township")) or (full and bool(out["delegated_depts"]))
    if full or "effective_to" in p:
        out["declared_to"] = _parse_date(p.get("effective_to"), "effective_to", required=False)
    if full or "area" in p:  # an amendment's explicit null clears the area
        area = p.get("area")
        if area is not None and not (isinstance(area, str) and AREA_PATTERN.fullmatch(area)):
            raise InvalidFactError(f"执法领域编码无效：{area!r}", field="area")
        out["area"] = area
    return out


def _change_date(fact: Fact) -> date:
    return _parse_date(fact.payload.get("effective_from"), "effective_from")


def _fold_versions(code: str, facts: Iterable[Fact]) -> tuple[list[ItemVersion], list[Fact]]:
    """Versions in effective order, and the changes still waiting for a base to apply to."""
    changes = sorted((f for f in facts if f.type in ITEM_CHANGES),
                     key=lambda f: (_change_date(f), f.occurred_at, f.event_id))
    states: list[dict[str, Any]] = []
    held: list[Fact] = []
    for fact in changes:
        day = _change_date(fact)
        base = states[-1] if states else None
        live = (base is not None and not base["repealed"]
                and (base["declared_to"] is None or day <= base["declared_to"]))
        if fact.type == ITEM_PUBLISHED:
            new = {**_item_fields(fact, full=True), "repealed": False}
        elif not live:
            held.append(fact)
            continue
        elif fact.type == ITEM_AMENDED:
            new = {**base, **_item_fields(fact, full=False)}
        else:
            new = {**base, "repealed": True, "declared_to": None}
        new.update(effective_from=day, event_id=fact.event_id, change=fact.type.split(".")[1],
                   document_no=str(fact.payload.get("document_no") or ""))
        states.append(new)
    versions = []
    for i, s in enumerate(states):
        end = s.pop("declared_to")
        if i + 1 < len(states):
            cut = states[i + 1]["effective_from"] - timedelta(days=1)
            end = cut if end is None else min(end, cut)
        versions.append(ItemVersion(code=code, version=i + 1, effective_to=end, **s))
    return versions, held


def _validate_window(start: date, end: date | None) -> None:
    if end is not None and end < start:
        raise InvalidFactError("失效日期早于生效日期", field="effective_to")


@dataclass(frozen=True)
class StandardViolation:
    """Which field broke which rule (machine-readable), with a Chinese message."""

    field: str
    rule: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


@dataclass(frozen=True)
class Tier:
    """One discretion tier; `kind` is None when the payload gave no range or both kinds."""

    tier: str
    name: str
    conditions: str
    kind: str | None
    min: float | None
    max: float | None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tier": self.tier, "name": self.name, "conditions": self.conditions}
        if self.kind == "amount":
            out["amount"] = {"min": self.min, "max": self.max}
        elif self.kind == "multiple":
            out["multiple"] = {"min_multiple": self.min, "max_multiple": self.max}
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "Tier":
        amount, multiple = raw.get("amount"), raw.get("multiple")
        kind, lo, hi = None, None, None
        if amount and not multiple:
            kind, lo, hi = "amount", amount.get("min"), amount.get("max")
        elif multiple and not amount:
            kind, lo, hi = "multiple", multiple.get("min_multiple"), multiple.get("max_multiple")
        tier_id = str(raw.get("tier") or "")
        return cls(tier_id, str(raw.get("name") or DEFAULT_TIERS.get(tier_id, tier_id)),
                   str(raw.get("conditions") or ""), kind, lo, hi)


@dataclass(frozen=True)
class DiscretionStandard:
    """The discretion standard (裁量基准) of one penalty item, lightest tier first."""

    item_code: str
    dept: str
    event_id: str
    published_at: datetime
    effective_from: date
    effective_to: date | None
    kind: str
    legal_max: float | None
    legal_min: float | None
    max_only: bool
    tiers: tuple[Tier, ...]
    standard_no: str = ""
    filed_on: date | None = None

    @classmethod
    def from_fact(cls, fact: Fact) -> "DiscretionStandard":
        p = fact.payload
        limit = p.get("legal_limit") or {}
        return cls(
            item_code=p.get("item_code", ""), dept=fact.dept, event_id=fact.event_id, published_at=fact.occurred_at,
            effective_from=_parse_date(p.get("effective_from"), "effective_from"),
            effective_to=_parse_date(p.get("effective_to"), "effective_to", required=False),
            kind=limit.get("kind", ""), legal_max=limit.get("max"), legal_min=limit.get("min"),
            max_only=bool(limit.get("max_only")), tiers=tuple(Tier.from_dict(t) for t in p.get("tiers") or ()),
            standard_no=str(p.get("standard_no") or ""),
            filed_on=_parse_date(p.get("filed_on"), "filed_on", required=False),
        )

    def tier(self, tier: str) -> Tier | None:
        """A tier by identifier ('lightest') or by name ('从轻')."""
        return next((t for t in self.tiers if tier in (t.tier, t.name)), None)

    def covers(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_code": self.item_code, "dept": self.dept, "event_id": self.event_id,
            "published_at": self.published_at.isoformat(), "standard_no": self.standard_no,
            "effective_from": _iso(self.effective_from), "effective_to": _iso(self.effective_to),
            "filed_on": _iso(self.filed_on),
            "legal_limit": {"kind": self.kind, "max": self.legal_max, "min": self.legal_min, "max_only": self.max_only},
            "tiers": [t.to_dict() for t in self.tiers],
        }


def validate_standard(standard: DiscretionStandard,
                      settings: RegistrySettings = DEFAULT_SETTINGS) -> list[StandardViolation]:
    """Every rule the standard breaks (empty list = valid)."""
    out: list[StandardViolation] = []

    def add(field: str, rule: str, message: str) -> None:
        out.append(StandardViolation(field, rule, message))

    if standard.effective_to is not None and standard.effective_to < standard.effective_from:
        add("effective_to", "window_inverted", "失效日期早于生效日期")
    unit = RANGE_KINDS.get(standard.kind)
    if unit is None:
        add("legal_limit.kind", "unknown_kind", "法定处罚幅度类型应为罚款金额（amount）或违法所得倍数（multiple）")
        unit = ""
    legal_max = standard.legal_max
    if legal_max is None or legal_max <= 0:
        add("legal_limit.max", "legal_max_missing", "未载明法定最高限额或倍数")
        legal_max = None
    if standard.legal_min is not None:
        if standard.max_only:
            add("legal_limit.min", "min_with_max_only", "法律仅规定最高限额时不应填写法定最低限额")
        elif standard.legal_min < 0 or (legal_max is not None and standard.legal_min > legal_max):
            add("legal_limit.min", "legal_range_inverted", "法定最低限额应在 0 与法定最高限额之间")
    if len(standard.tiers) < settings.min_tiers:
        add("tiers", "min_tiers", f"裁量阶次不足：至少应有 {settings.min_tiers} 个阶次，实有 {len(standard.tiers)} 个")
    seen: set[str] = set()
    prev: Tier | None = None
    for i, t in enumerate(standard.tiers):
        f = f"tiers.{i}"
        if not t.tier:
            add(f"{f}.tier", "tier_missing", f"第 {i + 1} 个阶次缺少标识")
        elif t.tier in seen:
            add(f"{f}.tier", "duplicate_tier", f"阶次“{t.name}”重复")
        seen.add(t.tier)
        if t.kind is None or t.min is None or t.max is None:
            add(f, "range_missing", f"阶次“{t.name}”应载明且只载明一种裁量幅度（罚款金额或违法所得倍数）")
            continue
        if t.kind != standard.kind and standard.kind in RANGE_KINDS:
            add(f, "kind_mismatch", f"阶次“{t.name}”的幅度类型与法定处罚幅度类型不一致")
            continue
        if t.min < 0:
            add(f"{f}.min", "negative", f"阶次“{t.name}”的下限不得为负数")
        if t.min > t.max:
            add(f"{f}.min", "range_inverted", f"阶次“{t.name}”的下限 {_num(t.min)}{unit} 高于上限 {_num(t.max)}{unit}")
        if legal_max is not None and t.max > legal_max:
            add(f"{f}.max", "above_legal_max",
                f"阶次“{t.name}”的上限 {_num(t.max)}{unit} 超过法定最高限额 {_num(legal_max)}{unit}")
        if standard.legal_min is not None and not standard.max_only and t.min < standard.legal_min:
            add(f"{f}.min", "below_legal_min",
                f"阶次“{t.name}”的下限 {_num(t.min)}{unit} 低于法定最低限额 {_num(standard.legal_min)}{unit}")
        if prev is not None:
            if t.min < prev.min:
                add(f"{f}.min", "tiers_not_ordered", f"阶次“{t.name}”的下限低于上一阶次“{prev.name}”的下限")
            if t.max < prev.max:
                add(f"{f}.max", "tiers_not_ordered", f"阶次“{t.name}”的上限低于上一阶次“{prev.name}”的上限")
        prev = t
    lightest = standard.tiers[0] if standard.tiers else None
    if (standard.max_only and legal_max is not None and lightest is not None
            and lightest.kind == standard.kind and lightest.min is not None):
        floor = round(settings.lightest_tier_floor_ratio * legal_max, 6)
        if lightest.min < floor:
            add("tiers.0.min", "lightest_below_floor",
                f"法律仅规定最高限额 {_num(legal_max)}{unit} 时，最轻阶次下限不得低于其 "
                f"{settings.lightest_tier_floor_ratio:.0%}（{_num(floor)}{unit}）")
    return out


def publish_standard(standard: DiscretionStandard, settings: RegistrySettings = DEFAULT_SETTINGS) -> DiscretionStandard:
    """The standard itself if valid; otherwise InvalidStandardError with every reason."""
    violations = validate_standard(standard, settings)
    if violations:
        raise InvalidStandardError(violations)
    return standard


class TierRange(NamedTuple):
    min: float
    max: float
    kind: str   # "amount" (yuan) or "multiple" (of illegal gains)


def _pick(entries: Iterable[Any], day: date, key: Callable[[Any], Any]) -> Any | None:
    """The entry in force on `day`: the latest started on or before it, if its window covers it."""
    started = [e for e in entries if e.effective_from <= day]
    if not started:
        return None
    latest = max(started, key=key)
    return latest if latest.covers(day) else None


def _standard_key(s: DiscretionStandard):
    return s.effective_from, s.published_at, s.event_id


def standard_at(standards: Iterable[DiscretionStandard], item_code: str,
                at: date | datetime) -> DiscretionStandard | None:
    """The standard of `item_code` in force at `at` (a later one supersedes from its start)."""
    return _pick((s for s in standards if s.item_code == item_code), local_date(at), _standard_key)


def tier_range(standards: Iterable[DiscretionStandard], item_code: str, tier: str, at: date | datetime) -> TierRange:
    """(min, max, kind) of `tier` in the standard of `item_code` in force at `at`."""
    standard = standard_at(standards, item_code, at)
    if standard is None:
        raise StandardNotFoundError(f"事项 {item_code} 在 {local_date(at)} 无有效的裁量基准", field="item_code")
    found = standard.tier(tier)
    if found is None or found.kind is None:
        raise UnknownTierError(f"事项 {item_code} 的裁量基准中没有“{tier}”阶次", field="tier")
    return TierRange(found.min, found.max, found.kind)


@dataclass(frozen=True)
class Evaluation:
    """An evaluation (评估) of a delegated item."""

    item_code: str
    evaluated_on: date
    conclusion: str
    dept: str
    event_id: str
    summary: str = ""
    township_depts: tuple[str, ...] = ()

    @classmethod
    def from_fact(cls, fact: Fact) -> "Evaluation":
        p = fact.payload
        if p.get("conclusion") not in EVALUATION_CONCLUSIONS:
            raise InvalidFactError(f"评估结论无效：{p.get('conclusion')!r}", field="conclusion")
        return cls(p.get("item_code", ""), _parse_date(p.get("evaluated_on"), "evaluated_on"), p["conclusion"],
                   fact.dept, fact.event_id, str(p.get("summary") or ""), tuple(p.get("township_depts") or ()))

    def to_dict(self) -> dict[str, Any]:
        return {"item_code": self.item_code, "evaluated_on": _iso(self.evaluated_on), "conclusion": self.conclusion,
                "dept": self.dept, "event_id": self.event_id, "summary": self.summary,
                "township_depts": list(self.township_depts)}


class ItemRecord:
    """Everything known about one item code, folded from its facts."""

    def __init__(self, code: str, facts: Iterable[Fact] = ()):
        self.code = code
        self.facts: list[Fact] = list(facts)
        self._rebuild()

    @property
    def owner(self) -> str | None:
        """The owning department: the one that first published the item (数据归属); None before."""
        published = sorted((f for f in self.facts if f.type == ITEM_PUBLISHED),
                           key=lambda f: (_change_date(f), f.occurred_at, f.event_id))
        return published[0].dept if published else None

    def _rebuild(self) -> None:
        self._ids = {f.event_id for f in self.facts}
        owner = self.owner
        # a fact accepted before the owner was known, from another department, changes nothing
        self.foreign: tuple[Fact, ...] = tuple(f for f in self.facts if owner is not None and f.dept != owner)
        own = [f for f in self.facts if owner is None or f.dept == owner]
        self.versions, held = _fold_versions(self.code, own)
        self.held: tuple[Fact, ...] = tuple(held)
        self.standards: tuple[DiscretionStandard, ...] = tuple(sorted(
            (DiscretionStandard.from_fact(f) for f in own if f.type == STANDARD_PUBLISHED), key=_standard_key))
        self.evaluations: tuple[Evaluation, ...] = tuple(sorted(
            (Evaluation.from_fact(f) for f in own if f.type == ITEM_EVALUATED),
            key=lambda e: (e.evaluated_on, e.event_id)))

    def _check(self, fact: Fact, settings: RegistrySettings) -> None:
        if fact.type not in ITEM_FACTS:
            raise InvalidFactError(f"执法事项不接受事件类型 {fact.type}", code="unsupported_fact", field="type")
        if fact.payload.get("item_code") != self.code:
            raise InvalidFactError(f"事件所涉事项 {fact.payload.get('item_code')} 与 {self.code} 不一致",
                                   code="item_mismatch", field="item_code")
        self._check_owner(fact)
        if fact.type in ITEM_CHANGES:
            start = _change_date(fact)
            if fact.type != ITEM_REPEALED:
                item = _item_fields(fact, full=fact.type == ITEM_PUBLISHED)
                _validate_window(start, item.get("declared_to"))
        elif fact.type == ITEM_EVALUATED:
            Evaluation.from_fact(fact)
        else:
            publish_standard(DiscretionStandard.from_fact(fact), settings)

    def _check_owner(self, fact: Fact) -> None:
        """Only the owning department reports on an item; an item is published by its own owner,
        and ownership does not move by amendment (docs/ownership.md)."""
        named = fact.payload.get("owning_dept")
        if fact.type == ITEM_PUBLISHED and named and named != fact.dept:
            raise NotOwnerError(f"{fact.dept} 不能替 {named} 发布执法事项 {self.code}，事项须由实施部门自行发布",
                                owner=named, field="payload.owning_dept")
        owner = self.owner
        if owner is not None and fact.dept != owner:
            raise NotOwnerError(f"执法事项 {self.code} 由 {owner} 发布和管理，{fact.dept} 无权报告其变更、评估或裁量基准",
                                owner=owner)
        if owner is not None and fact.type == ITEM_AMENDED and named and named != owner:
            raise NotOwnerError(f"执法事项 {self.code} 的实施部门不能通过变更改为 {named}；"
                                "职责划转须由原部门废止、新部门重新发布", owner=owner, field="payload.owning_dept")

    def apply(self, fact: Fact, settings: RegistrySettings = DEFAULT_SETTINGS) -> str:
        """Record a fact: "duplicate" (already seen), "held" (waits for its base) or "applied"."""
        if fact.event_id in self._ids:
            return "duplicate"
        self._check(fact, settings)
        self.facts.append(fact)
        self._rebuild()
        return "held" if any(h.event_id == fact.event_id for h in self.held) else "applied"

    def latest_version_on(self, at: date | datetime) -> ItemVersion | None:
        """The latest version started on or before `at`, in force or not (repealed, expired)."""
        day = local_date(at)
        started = [v for v in self.versions if v.effective_from <= day]
        return started[-1] if started else None

    def version_at(self, at: date | datetime) -> ItemVersion | None:
        v = self.latest_version_on(at)
        return v if v is not None and v.in_force_on(local_date(at)) else None

    def standard_at(self, at: date | datetime) -> DiscretionStandard | None:
        return standard_at(self.standards, self.code, at)

    def depts(self) -> list[str]:
        """Every department that ever owned the item or had it delegated (for store indexes)."""
        out = {v.owning_dept for v in self.versions}
        out.update(d for v in self.versions if v.delegated_to_township for d in v.delegated_depts)
        return sorted(out)

    def to_snapshot(self) -> dict[str, Any]:
        """Plain JSON-friendly document; only `code` and `facts` are read back, the rest is for queries."""
        return {
            "code": self.code,
            "facts": [f.to_dict() for f in self.facts],
            "versions": [v.to_dict() for v in self.versions],
            "standards": [s.to_dict() for s in self.standards],
            "evaluations": [e.to_dict() for e in self.evaluations],
            "held": [f.event_id for f in self.held],
            "foreign": [{"event_id": f.event_id, "type": f.type, "dept": f.dept} for f in self.foreign],
            "owner": self.owner,
            "depts": self.depts(),
        }

    @classmethod
    def from_snapshot(cls, doc: Mapping[str, Any]) -> "ItemRecord":
        # Standards are not re-validated: settings may have changed since they were accepted.
        return cls(doc["code"], [Fact.from_dict(f) for f in doc.get("facts", ())])


@dataclass(frozen=True)
class LeniencyEntry:
    item_code: str
    conditions: str
    basis: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"item_code": self.item_code, "conditions": self.conditions, "basis": self.basis}


@dataclass(frozen=True)
class LeniencyList:
    """One published list of one kind for one department; a later one replaces it from its start."""

    dept: str
    kind: str
    event_id: str
    published_at: datetime
    effective_from: date
    effective_to: date | None
    entries: tuple[LeniencyEntry, ...]
    list_no: str = ""
    title: str = ""

    @classmethod
    def from_fact(cls, fact: Fact) -> "LeniencyList":
        p = fact.payload
        if p.get("kind") not in LENIENCY_KINDS:
            raise InvalidFactError(f"清单类型无效：{p.get('kind')!r}", field="kind")
        start = _parse_date(p.get("effective_from"), "effective_from")
        end = _parse_date(p.get("effective_to"), "effective_to", required=False)
        _validate_window(start, end)
        entries = tuple(LeniencyEntry(e["item_code"], str(e.get("conditions") or ""), str(e.get("basis") or ""))
                        for e in p.get("entries") or ())
        return cls(fact.dept, p["kind"], fact.event_id, fact.occurred_at, start, end, entries,
                   str(p.get("list_no") or ""), str(p.get("title") or ""))

    def covers(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)

    def to_dict(self) -> dict[str, Any]:
        return {"dept": self.dept, "kind": self.kind, "event_id": self.event_id,
                "published_at": self.published_at.isoformat(), "effective_from": _iso(self.effective_from),
                "effective_to": _iso(self.effective_to), "entries": [e.to_dict() for e in self.entries],
                "list_no": self.list_no, "title": self.title}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "LeniencyList":
        return cls(doc["dept"], doc["kind"], doc["event_id"], datetime.fromisoformat(doc["published_at"]),
                   date.fromisoformat(doc["effective_from"]),
                   date.fromisoformat(doc["effective_to"]) if doc.get("effective_to") else None,
                   tuple(LeniencyEntry(**e) for e in doc.get("entries", ())),
                   doc.get("list_no", ""), doc.get("title", ""))


class LeniencyMatch(NamedTuple):
    kind: str
    kind_name: str
    item_code: str
    conditions: str
    basis: str
    list_no: str
    effective_from: date


def leniency_for(lists: Iterable[LeniencyList], dept: str, item_code: str, at: date | datetime) -> list[LeniencyMatch]:
    """Entries for `item_code` in `dept`'s lists in force at `at`, in LENIENCY_KINDS order."""
    day = local_date(at)
    own = [lst for lst in lists if lst.dept == dept]
    out: list[LeniencyMatch] = []
    for kind, kind_name in LENIENCY_KINDS.items():
        current = _pick((lst for lst in own if lst.kind == kind), day,
                        lambda lst: (lst.effective_from, lst.published_at, lst.event_id))
        if current is None:
            continue
        out.extend(LeniencyMatch(kind, kind_name, e.item_code, e.conditions, e.basis, current.list_no,
                                 current.effective_from)
                   for e in current.entries if e.item_code == item_code)
    return out


Items = Mapping[str, ItemRecord] | Iterable[ItemRecord]


def _records(items: "Items | RegistryState") -> list[ItemRecord]:
    if isinstance(items, RegistryState):
        items = items.items
    return list(items.values()) if isinstance(items, Mapping) else list(items)


def _find(items: "Items | RegistryState", code: str) -> ItemRecord | None:
    if isinstance(items, RegistryState):
        items = items.items
    if isinstance(items, Mapping):
        return items.get(code)
    return next((r for r in items if r.code == code), None)


class RegistryState:
    """Item records by code plus the leniency lists: what the rules and queries read."""

    def __init__(self, items: Items = (), leniency_lists: Iterable[LeniencyList] = ()):
        self.items: dict[str, ItemRecord] = {r.code: r for r in _records(items)}
        self.leniency_lists: list[LeniencyList] = list(leniency_lists)

    def apply(self, fact: Fact, settings: RegistrySettings = DEFAULT_SETTINGS) -> str:
        """Route a fact to its item record or the leniency lists; returns what ItemRecord.apply does."""
        if fact.type == LENIENCY_LIST_PUBLISHED:
            if any(lst.event_id == fact.event_id for lst in self.leniency_lists):
                return "duplicate"
            self.leniency_lists.append(LeniencyList.from_fact(fact))
            return "applied"
        if fact.type not in ITEM_FACTS:
            raise InvalidFactError(f"执法事项清单不接受事件类型 {fact.type}", code="unsupported_fact", field="type")
        code = fact.payload.get("item_code")
        if not code:
            raise InvalidFactError("缺少事项编码", field="item_code")
        record = self.items.get(code) or ItemRecord(code)
        result = record.apply(fact, settings)
        self.items[code] = record
        return result

    @classmethod
    def fold(cls, facts: Iterable[Fact], settings: RegistrySettings = DEFAULT_SETTINGS) -> "RegistryState":
        state = cls()
        for fact in facts:
            state.apply(fact, settings)
        return state


def item_version_at(item: ItemRecord, at: date | datetime) -> ItemVersion | None:
    """The version in force at `at` (a case is judged by the version in force at the act)."""
    return item.version_at(at)


def items_of_dept(items: "Items | RegistryState", dept: str, at: date | datetime) -> list[ItemVersion]:
    """Versions in force at `at` that `dept` holds, as owner or as a township it is delegated to."""
    out = []
    for record in _records(items):
        v = record.version_at(at)
        if v is not None and (v.owning_dept == dept or (v.delegated_to_township and dept in v.delegated_depts)):
            out.append(v)
    return sorted(out, key=lambda v: v.code)


HOLDING_REASONS = {
    "owner": "本部门执法事项",
    "delegated": "已赋权本乡镇实施",
    "unknown_item": "执法事项清单中无此事项",
    "not_in_force": "行为发生时该事项尚未生效或已失效",
    "repealed": "行为发生时该事项已废止",
    "cooperating_only": "本部门仅为配合部门，不是实施主体",
    "other_dept": "该事项不属于本部门",
}


class Holding(NamedTuple):
    held: bool
    reason: str

    @property
    def message(self) -> str:
        return HOLDING_REASONS[self.reason]


def holds_item(items: "Items | RegistryState", dept: str, code: str, at: date | datetime) -> Holding:
    """Whether `dept` may act on item `code` at `at`, and why (a HOLDING_REASONS key)."""
    record = _find(items, code)
    if record is None or not record.versions:
        return Holding(False, "unknown_item")
    latest = record.latest_version_on(at)
    if latest is None:
        return Holding(False, "not_in_force")
    if latest.repealed:
        return Holding(False, "repealed")
    if not latest.covers(local_date(at)):
        return Holding(False, "not_in_force")
    if latest.owning_dept == dept:
        return Holding(True, "owner")
    if latest.delegated_to_township and dept in latest.delegated_depts:
        return Holding(True, "delegated")
    if dept in latest.cooperating_depts:
        return Holding(False, "cooperating_only")
    return Holding(False, "other_dept")


def has_legal_basis(item: ItemRecord, at: date | datetime) -> bool:
    """The version in force at `at` cites at least one law and article, each complete."""
    v = item.version_at(at)
    return bool(v and v.legal_basis and all(b.law and b.article for b in v.legal_basis))


def publication_view(item: ItemRecord, at: date | datetime,
                     leniency_lists: Iterable[LeniencyList] = ()) -> dict[str, Any] | None:
    """What the public sees of an item at `at` (事前公开), or None when it is not in force."""
    v = item.version_at(at)
    if v is None:
        return None
    standard = item.standard_at(at)
    return {
        "item_code": v.code, "name": v.name, "category": v.category, "category_name": CATEGORIES[v.category],
        "owning_dept": v.owning_dept, "cooperating_depts": list(v.cooperating_depts),
        "legal_basis": [b.to_dict() for b in v.legal_basis],
        "delegated_to_township": v.delegated_to_township,
        "delegated_depts": list(v.delegated_depts) if v.delegated_to_township else [],
        "effective_from": _iso(v.effective_from), "effective_to": _iso(v.effective_to),
        "version": v.version, "document_no": v.document_no, "area": v.area,
        "discretion_standard": None if standard is None else {
            "standard_no": standard.standard_no,
            "effective_from": _iso(standard.effective_from), "effective_to": _iso(standard.effective_to),
            "legal_limit": {"kind": standard.kind, "max": standard.legal_max, "min": standard.legal_min,
                            "max_only": standard.max_only},
            "tiers": [t.to_dict() for t in standard.tiers],
        },
        "leniency": [{"kind": m.kind, "kind_name": m.kind_name, "conditions": m.conditions, "basis": m.basis}
                     for m in leniency_for(leniency_lists, v.owning_dept, v.code, at)],
    }


def _finding(rule_id: str, severity: str, v: ItemVersion, as_of: datetime, evidence: dict, message: str) -> Finding:
    return Finding(rule_id=rule_id, severity=severity, dept=v.owning_dept, subject_type="item", subject_id=v.code,
                   as_of=as_of, evidence={"item_name": v.name, "version": v.version, **evidence}, message=message)


def last_evaluation_deadline(as_of: datetime, settings: RegistrySettings = DEFAULT_SETTINGS) -> date:
    """The most recent evaluation deadline strictly before the local day of `as_of`."""
    today = local_date(as_of)
    this_year = _deadline(today.year, settings.delegated_evaluation_deadline)
    return this_year if today > this_year else _deadline(today.year - 1, settings.delegated_evaluation_deadline)


def check_delegated_evaluated(item: ItemRecord, as_of: datetime,
                              settings: RegistrySettings = DEFAULT_SETTINGS) -> Finding | None:
    """REG-DELEGATED-NOT-EVALUATED: an item delegated on the last deadline had no evaluation that
    year by the deadline. A late evaluation (after the deadline, by `as_of`) resolves it."""
    today = local_date(as_of)
    deadline = last_evaluation_deadline(as_of, settings)
    v = item.version_at(deadline)
    if v is None or not v.delegated_to_township:
        return None
    year_start = date(deadline.year, 1, 1)
    if any(year_start <= e.evaluated_on <= today for e in item.evaluations):
        return None
    earlier = [e.evaluated_on for e in item.evaluations if e.evaluated_on < year_start]
    return _finding(
        RULE_DELEGATED_NOT_EVALUATED, "warning", v, as_of,
        {"year": deadline.year, "deadline": _iso(deadline), "delegated_depts": list(v.delegated_depts),
         "last_evaluated_on": _iso(max(earlier)) if earlier else None},
        f"赋权乡镇事项“{v.name}”（{v.code}）未在 {deadline.year} 年 {deadline.month} 月 {deadline.day} 日前完成年度评估",
    )


def penalty_since(item: ItemRecord, at: date | datetime) -> date | None:
    """Start of the unbroken run of in-force penalty-category versions that covers `at`."""
    v = item.version_at(at)
    if v is None or v.category != "penalty":
        return None
    i = v.version - 1
    while i > 0:
        prev = item.versions[i - 1]
        cur = item.versions[i]
        if (prev.repealed or prev.category != "penalty" or prev.effective_to is None
                or prev.effective_to + timedelta(days=1) != cur.effective_from):
            break
        i -= 1
    return item.versions[i].effective_from


def standard_due(since: date, settings: RegistrySettings = DEFAULT_SETTINGS) -> date:
    """When a penalty item in force since `since` must have a standard: the next filing deadline."""
    if settings.standard_filing_deadline is None:
        return since
    due = _deadline(since.year, settings.standard_filing_deadline)
    return due if due >= since else _deadline(since.year + 1, settings.standard_filing_deadline)


def check_standard_present(item: ItemRecord, as_of: datetime,
                           settings: RegistrySettings = DEFAULT_SETTINGS) -> Finding | None:
    """REG-STANDARD-MISSING: a penalty item in force has no discretion standard in force after its due date."""
    v = item.version_at(as_of)
    if v is None or v.category != "penalty" or item.standard_at(as_of) is not None:
        return None
    since = penalty_since(item, as_of)
    due = standard_due(since, settings)
    if local_date(as_of) <= due:
        return None
    expired = [s for s in item.standards if s.effective_to is not None and s.effective_to < local_date(as_of)]
    return _finding(
        RULE_STANDARD_MISSING, "serious", v, as_of,
        {"penalty_since": _iso(since), "due": _iso(due),
         "last_standard_to": _iso(max(s.effective_to for s in expired)) if expired else None},
        f"处罚事项“{v.name}”（{v.code}）无有效的行政处罚裁量基准（应于 {due.isoformat()} 前制定公布并报备）",
    )


def check_legal_basis(item: ItemRecord, as_of: datetime,
                      settings: RegistrySettings = DEFAULT_SETTINGS) -> Finding | None:
    """REG-NO-LEGAL-BASIS: an item in force cites no complete legal basis (law + article)."""
    v = item.version_at(as_of)
    if v is None or has_legal_basis(item, as_of):
        return None
    return _finding(RULE_NO_LEGAL_BASIS, "serious", v, as_of,
                    {"legal_basis": [b.to_dict() for b in v.legal_basis]},
                    f"执法事项“{v.name}”（{v.code}）未载明完整的执法依据（法律名称及条款）")


RULES: tuple[tuple[str, Callable[[ItemRecord, datetime, RegistrySettings], Finding | None]], ...] = (
    (RULE_DELEGATED_NOT_EVALUATED, check_delegated_evaluated),
    (RULE_STANDARD_MISSING, check_standard_present),
    (RULE_NO_LEGAL_BASIS, check_legal_basis),
)


def _found(answer: Finding | Iterable[Finding] | None) -> list[Finding]:
    if answer is None:
        return []
    return [answer] if isinstance(answer, Finding) else list(answer)


def evaluate_item(item: ItemRecord, as_of: datetime, settings: RegistrySettings = DEFAULT_SETTINGS,
                  rules=None) -> list[Finding]:
    """Every registry rule (`rules`: (rule_id, fn) pairs, default the built-in RULES) on one item.

    A rule answers a Finding, a list of them or None; the plugin host serves the built-ins as the
    built-in plugin `builtin.rules`, so a department plugin may replace or switch off any of them.
    """
    local_date(as_of)
    found = [f for _, rule in (RULES if rules is None else rules) for f in _found(rule(item, as_of, settings))]
    return sorted(found, key=lambda f: f.key)


def evaluate_registry(state: "RegistryState | Items", dept: str | None, as_of: datetime,
                      settings: RegistrySettings = DEFAULT_SETTINGS) -> list[Finding]:
    """Findings of `dept` (every department when None), sorted by their stable key."""
    found = [f for record in _records(state) for f in evaluate_item(record, as_of, settings)]
    return sorted((f for f in found if dept is None or f.dept == dept), key=lambda f: f.key)


def next_due(item: ItemRecord, as_of: datetime, settings: RegistrySettings = DEFAULT_SETTINGS) -> datetime | None:
    """The next moment after `as_of` at which a rule's verdict on `item` may change (for the timer)."""
    today = local_date(as_of)
    days = [_deadline(today.year, settings.delegated_evaluation_deadline),
            _deadline(today.year + 1, settings.delegated_evaluation_deadline)]
    days = [d + timedelta(days=1) for d in days]
    days += [v.effective_from for v in item.versions]
    days += [v.effective_to + timedelta(days=1) for v in item.versions if v.effective_to]
    days += [s.effective_from for s in item.standards]
    days += [s.effective_to + timedelta(days=1) for s in item.standards if s.effective_to]
    since = penalty_since(item, today)
    if since is not None:
        days.append(standard_due(since, settings) + timedelta(days=1))
    future = [d for d in days if d > today]
    return _day_start(min(future)) if future else None
