"""{{ cookiecutter.dept_name }} department plugin for Zhifa (departments ending in "-{{ cookiecutter.dept_suffix }}").

Generated from plugins/template. Replace the examples with the department's own numbers, rules,
thresholds and 文号 codes; answer None (or []) for other departments.
"""
from __future__ import annotations

import pluggy

hookimpl = pluggy.HookimplMarker("zhifa")

DEPT_SUFFIX = "-{{ cookiecutter.dept_suffix }}"
RULE_NO_OFFICERS = "{{ cookiecutter.rule_prefix }}-NO-OFFICERS"
# 文号 codes after the county's short name: 营{{ cookiecutter.number_code }}罚〔2025〕1号
DOCUMENT_CODES = {"penalty_decision": "{{ cookiecutter.number_code }}罚", "filing_approval": "{{ cookiecutter.number_code }}立"}


def applies_to(dept: str) -> bool:
    return dept.endswith(DEPT_SUFFIX)


def check_no_officers(case, facts, settings, as_of) -> list:
    """Example rule: a decided case none of whose investigation acts names an officer."""
    from services.common.findings import Finding  # the suite's documented domain type

    if not getattr(case, "decisions", None) or any(getattr(a, "officers", ()) for a in getattr(case, "acts", ())):
        return []
    return [Finding(RULE_NO_OFFICERS, "warning", case.dept, "case", case.case_id, as_of,
                    message="案件已作出决定，但调查取证记录中没有执法人员")]


@hookimpl
def zhifa_dept_settings(dept):
    # example: this department files a case within 15 working days of discovery
    return {"penalty": {"filing_wd": 15}} if applies_to(dept) else None


@hookimpl
def zhifa_case_rules(dept):
    return [(RULE_NO_OFFICERS, check_no_officers)] if applies_to(dept) else []


@hookimpl
def zhifa_crime_thresholds(dept):
    # example only: fill in the prosecution standards (立案追诉标准) of the department's offences
    return []


@hookimpl
def zhifa_document_number_prefix(dept, kind, subject):
    # `subject`: {"type", "id", "facts" (the document's fields), "case"} or None; a department that
    # numbers by case type answers a different code from it (each code is its own number sequence).
    # Leave `subject` out of the signature if the department does not need it.
    return DOCUMENT_CODES.get(kind) if applies_to(dept) else None
