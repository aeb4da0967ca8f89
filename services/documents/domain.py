"""Documents (文书): kinds, document numbers (文号), what a document must state. Pure: no I/O.

A document is rendered for one subject (a penalty case, a handover, a supervision case, an
inspection, a report period) from the facts the caller gives (a report: from the coordination
service's figures, services/documents/reports.py); it gets a number from a per-department, per-kind,
per-year sequence. The rules here decide, before anything is stored or any number is spent,
whether a request can become a document:

- `DOC-KIND`: the kind is known and made for that subject type;
- `DOC-FIELDS`: every field the template prints has a value (all gaps at once, by name);
- `DOC-DECISION-BASIS`: a decision (行政处罚决定书) states the legal basis and the discretion tier
  (裁量阶次) the case used; when the case already has a decision with a tier, the document's tier
  must be that one;
- `DOC-ADDRESSEE`: a justice bureau's document for a supervision case is addressed to (受文部门) a
  department the case supervises — the one named, else every one of them; those departments may
  list and download it. Only supervision documents have addressees.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar, Mapping

from services.common.errors import DomainError
from services.common.ownership import is_justice_bureau
from services.common.settings import SettingsBase

SUBJECT_TYPES = ("case", "handover", "supervision", "inspection", "report")
SUBJECT_LABELS = {"case": "行政处罚案件", "handover": "移送案件", "supervision": "监督案件", "inspection": "检查",
                  "report": "统计报告（月报、季报）"}
REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
DECISION_KIND = "penalty_decision"


@dataclass(frozen=True)
class Kind:
    """A kind of document: its title, the number code (罚, 立 …) and the subjects it is made for."""

    name: str
    title: str
    subjects: tuple[str, ...]


def known_kinds(titles: Mapping[str, str], settings: "DocumentsSettings") -> dict[str, Kind]:
    """Kinds with a template title (plugins may add kinds); subjects from the settings."""
    return {name: Kind(name, title, tuple(settings.kind_subjects.get(name, SUBJECT_TYPES)))
            for name, title in titles.items()}


@dataclass(frozen=True)
class DocumentsSettings(SettingsBase):
    """The numbers of document numbering; presets and department plugins override by name."""

    SECTION: ClassVar[str] = "documents"

    # county short name by region code, first part of a 文号 (营市监罚〔2025〕15号)
    county_shorts: Mapping[str, str] = field(default_factory=lambda: {"511322": "营", "370322": "高", "420222": "阳"})
    # department short name by department code suffix (511322-scjg -> 市监), when no plugin answers
    dept_shorts: Mapping[str, str] = field(default_factory=lambda: {
        "scjg": "市监", "sthj": "环", "cgj": "综执", "zhzf": "综执", "wjj": "卫健", "jtj": "交运", "sfj": "司"})
    # kind code in a 文号
    kind_codes: Mapping[str, str] = field(default_factory=lambda: {
        "filing_approval": "立", "penalty_notice": "告", "penalty_hearing_notice": "听告", "penalty_decision": "罚",
        "service_receipt": "送", "handover_letter": "移", "inspection_notice": "检", "supervision_notice": "监",
        "hearing_notice": "听通", "supervision_opinion": "监意", "supervision_decision": "监决",
        "monthly_report": "月报", "quarterly_report": "季报"})
    # subject types a kind is made for (kinds not listed: any subject)
    kind_subjects: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: {
        "filing_approval": ("case",), "penalty_notice": ("case",), "penalty_hearing_notice": ("case",),
        "penalty_decision": ("case",), "service_receipt": ("case", "handover", "supervision", "inspection"),
        "handover_letter": ("handover", "case"), "inspection_notice": ("inspection", "case"),
        "supervision_notice": ("supervision",), "hearing_notice": ("case",), "supervision_opinion": ("supervision",),
        "supervision_decision": ("supervision",), "monthly_report": ("report",), "quarterly_report": ("report",)})
    # the name printed in a report's 版头 and 落款 per department code (月报/季报; facts.agency_name wins,
    # the department code is printed when neither names it)
    agency_names: Mapping[str, str] = field(default_factory=dict)
    number_format: str = "{prefix}〔{year}〕{seq}号"
    claim_keep_seconds: int = 3600        # a number claim stays on its counter at least this long
    resume_after_seconds: int = 60        # an unfinished request is resumed by the sweep after this
    pdf_timeout_seconds: int = 120
    pdf_slots: int = 2                    # LibreOffice conversions at once per process
    max_file_bytes: int = 8 * 1024 * 1024  # a DOCX or PDF above this is refused (stored in the database)

    def check(self) -> None:
        if "{seq}" not in self.number_format or "{prefix}" not in self.number_format:
            raise ValueError("number_format must contain {prefix} and {seq}")
        for name in ("claim_keep_seconds", "resume_after_seconds", "pdf_timeout_seconds", "pdf_slots",
                     "max_file_bytes"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.claim_keep_seconds <= self.resume_after_seconds:
            raise ValueError("claim_keep_seconds must exceed resume_after_seconds")


# ---- document numbers ------------------------------------------------------------------------

def region_of(dept: str) -> str:
    return dept.split("-", 1)[0]


def dept_suffix(dept: str) -> str:
    return dept.split("-", 1)[1] if "-" in dept else dept


def number_prefix(dept: str, kind: str, settings: DocumentsSettings, plugin_part: str | None = None) -> str:
    """County short + department/kind part: the plugin's answer, else dept short + kind code."""
    county = settings.county_shorts.get(region_of(dept), "")
    if plugin_part:
        return county + plugin_part
    code = settings.kind_codes.get(kind)
    if code is None:
        raise DomainError(f"文书类型 {kind} 没有文号代字（kind_codes），请在设置或部门插件中配置", code="invalid_value",
                          field="kind")
    return county + settings.dept_shorts.get(dept_suffix(dept), "") + code


def format_number(prefix: str, year: int, seq: int, settings: DocumentsSettings) -> str:
    """营市监罚〔2025〕15号."""
    return settings.number_format.format(prefix=prefix, year=year, seq=seq)


def counter_id(dept: str, kind: str, year: int, series: str | None = None) -> str:
    """The number sequence of a department, kind and year; `series`: a prefix other than the usual one
    (a plugin numbering by case type, 卫公罚 beside 卫医罚) counts on its own, the usual one as always."""
    return f"{dept}|{kind}|{year}" + (f"|{series}" if series else "")


def cn_date(day: date) -> str:
    """成文日期 in Arabic numerals (GB/T 9704 7.3.5.2): 2025年3月5日."""
    return f"{day.year}年{day.month}月{day.day}日"


# ---- requests ---------------------------------------------------------------------------------

def check_request(kinds: Mapping[str, Kind], kind: Any, subject_type: Any, subject_id: Any, dept: Any,
                  facts: Any, request_id: Any = None) -> Kind:
    """DOC-KIND and argument shapes; DomainError naming the field otherwise."""
    if not isinstance(dept, str) or not re.fullmatch(r"\d{6}-[a-z][a-z0-9]{1,15}", dept):
        raise DomainError("部门编码格式应为“6位行政区划代码-部门简称”，如 511322-scjg", code="invalid_value", field="dept")
    if not isinstance(kind, str) or kind not in kinds:
        names = "、".join(f"{k}（{v.title}）" for k, v in sorted(kinds.items()))
        raise DomainError(f"未知的文书类型 {kind!r}，可选：{names}", code="invalid_value", field="kind")
    spec = kinds[kind]
    if subject_type not in SUBJECT_TYPES:
        raise DomainError(f"对象类型只能是：{'、'.join(SUBJECT_TYPES)}", code="invalid_value", field="subject_type")
    if subject_type not in spec.subjects:
        allowed = "、".join(SUBJECT_LABELS[s] for s in spec.subjects)
        raise DomainError(f"《{spec.title}》只能为{allowed}制作，不能用于{SUBJECT_LABELS[subject_type]}",
                          code="invalid_value", field="subject_type")
    if not isinstance(subject_id, str) or not 1 <= len(subject_id) <= 64 or subject_id.strip() != subject_id:
        raise DomainError("对象编号必须是 1–64 个字符的字符串", code="invalid_value", field="subject_id")
    if not isinstance(facts, Mapping):
        raise DomainError("facts 必须是 JSON 对象（字段名: 值）", code="invalid_value", field="facts")
    for name, value in facts.items():
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
            raise DomainError(f"字段名 {name!r} 不合法（小写字母、数字、下划线）", code="invalid_value", field="facts")
        if value is not None and not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise DomainError(f"字段 {name} 的值必须是文字或数字", code="invalid_value", field=f"facts.{name}")
        if isinstance(value, str) and len(value) > 5000:
            raise DomainError(f"字段 {name} 超过 5000 字", code="invalid_value", field=f"facts.{name}")
    if request_id is not None and (not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id)):
        raise DomainError("request_id 应为 8–64 位字母、数字、下划线或连字符", code="invalid_value", field="request_id")
    return spec


def _laws(text: str) -> set[str]:
    return set(re.findall(r"《[^》]+》", text))


def decision_basis(facts: Mapping[str, Any], case: Mapping[str, Any] | None,
                   item_basis: str | None = None, tier_names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """DOC-DECISION-BASIS: the legal basis and discretion tier a decision document states.

    `case` is the penalty case as `penalty.get_case` answers (None when unknown); its latest
    decision's tier is used when the facts give none, and a tier given in the facts must be that
    one. `item_basis` is the legal basis of the case's enforcement item in the registry ("《法》第N条；…"):
    it is printed when the facts give no `penalty_basis`, and a `penalty_basis` given in the facts
    must cite at least one law the item cites. `tier_names` maps the standard's tier ids to their
    names (normal -> 一般): the document prints the name.
    Returns {"penalty_basis", "discretion_tier", "tier", "item_legal_basis", "source"} or raises DomainError.
    """
    decisions = list(((case or {}).get("case") or {}).get("decisions") or [])
    case_tier = (decisions[-1] or {}).get("tier") if decisions else None
    names = dict(tier_names or {})
    given_tier = facts.get("discretion_tier")
    if case_tier and given_tier and str(given_tier) not in (str(case_tier), names.get(str(case_tier))):
        shown = names.get(str(case_tier), case_tier)
        raise DomainError(f"文书所载裁量阶次“{given_tier}”与案件决定适用的裁量阶次“{shown}”不一致",
                          code="invalid_value", field="facts.discretion_tier")
    tier = str(case_tier or given_tier or "")
    basis = facts.get("penalty_basis") or item_basis
    missing = [n for n, v in (("penalty_basis", basis), ("discretion_tier", tier)) if not v]
    if missing:
        labels = {"penalty_basis": "处罚依据（penalty_basis）", "discretion_tier": "裁量阶次（discretion_tier）"}
        raise DomainError(f"行政处罚决定书必须载明{'、'.join(labels[m] for m in missing)}：请在 facts 中提供，"
                          "或先在案件中报送含裁量阶次的处罚决定", code="invalid_value", field=f"facts.{missing[0]}")
    if item_basis and facts.get("penalty_basis") and _laws(item_basis) and not _laws(item_basis) & _laws(str(basis)):
        raise DomainError(f"文书所载处罚依据“{basis}”未引用案件执法事项的法律依据（{item_basis}）",
                          code="invalid_value", field="facts.penalty_basis")
    source = "case" if case_tier and not given_tier else "facts"
    return {"penalty_basis": str(basis), "discretion_tier": names.get(tier, tier), "tier": tier,
            "item_legal_basis": item_basis, "source": source}


def addressees(subject_type: str, subject_id: str, dept: str, addressee: Any,
               case_depts: list[str] | None) -> list[str]:
    """DOC-ADDRESSEE: the departments a document is addressed to (受文部门).

    `case_depts`: the departments the supervision case `subject_id` supervises (None: no such case;
    only read for a supervision subject). A justice bureau's supervision document goes to `addressee`
    (one of them) or, when none is named, to all of them; a department's own document about a
    supervision case of its own (e.g. a 送达回证) and every other document are addressed to nobody.
    """
    if subject_type != "supervision":
        if addressee is not None:
            raise DomainError("只有监督案件的文书有受文部门（addressee）", code="invalid_value", field="addressee")
        return []
    if case_depts is None:
        raise DomainError(f"监督案件 {subject_id} 不存在", code="not_found", field="subject_id")
    if not is_justice_bureau(dept):
        if dept not in case_depts:
            raise DomainError(f"监督案件 {subject_id} 不涉及 {dept}", code="not_owner", field="subject_id")
        if addressee is not None:
            raise DomainError("监督文书的受文部门由司法局指定，部门不能指定", code="invalid_value", field="addressee")
        return []
    if addressee is None:
        return list(case_depts)
    if addressee not in case_depts:
        raise DomainError(f"受文部门 {addressee} 不是监督案件 {subject_id} 的被监督部门（{'、'.join(case_depts)}）",
                          code="invalid_value", field="addressee")
    return [addressee]
