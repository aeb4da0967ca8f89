"""The built-in rules of every service, served as an ordinary plugin (the datasette way).

Each service evaluates exactly the rules the plugin host gives it for a department
(`PluginHost.rules(service, dept)`): these built-ins first, then what department plugins answer
to the same hook `zhifa_rules(service, dept)` — a plugin adds a rule with a new id, replaces a
built-in by answering its id with another function, or switches it off by answering `(id, None)`.

Rule signatures (pure, no I/O):
- personnel: fn(officer_or_agency, as_of, settings) -> list[Finding]
- registry:  fn(item_record, as_of, settings) -> Finding | list[Finding] | None
- penalty:   fn(case, facts, settings, as_of[, calendar=]) -> list[Finding]
- inspection: fn(plan_pool_draw_enterprise_or_unit, as_of, settings_for, lookups) -> list[Finding]
"""
from __future__ import annotations

from plugins.hookspecs import hookimpl


def builtin_rules(service: str) -> tuple:
    if service == "personnel":
        from services.personnel.domain import PERSONNEL_RULES
        return PERSONNEL_RULES
    if service == "registry":
        from services.registry.domain import RULES
        return RULES
    if service == "penalty":
        from services.penalty.domain.rules import RULES
        return RULES
    if service == "inspection":
        from services.inspection.domain import RULE_FUNCTIONS
        return RULE_FUNCTIONS
    return ()


@hookimpl
def zhifa_rules(service, dept):
    return list(builtin_rules(service))
