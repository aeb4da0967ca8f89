"""Jurisdiction presets (辖区预设) as a built-in plugin, composed of whole *sources*.

A source is one document's numbers that belong together (one jurisdiction's rule); a preset adopts
sources **whole**, in order, never a number picked out of one. For example seed 003's discretion
rule is "at least five tiers *and*, where the law gives only a maximum, a lightest tier of at least
20% of it": a preset that takes the five tiers takes the floor too (`coherence_problems` checks
every preset, the plugin host reports a plugin preset that mixes them).

Sections are grouped by the service that reads them: "penalty" keys are `PenaltySettings` field
names, "personnel" and "registry" keys are read by those services. Every preset inherits
"national" for what it does not set (the host does the merge); dates within a year are "MM-DD".

The default preset (JURISDICTION_PRESET, `seed001`) is seed 001's county: its own deadlines and
major-penalty numbers; for discretion standards seed 001 only refers to the provincial rule, so it
adopts seed 003's discretion source (five tiers with the 20% floor) as a whole.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping

from plugins.hookspecs import hookimpl

# One source = (title, {section: {setting: value}}). Numbers of one source are adopted together.
SOURCES: dict[str, tuple[str, dict[str, dict]]] = {
    "law.discretion": ("国家层面：裁量基准至少 3 个阶次，不设最轻阶次下限（《行政处罚法》2021；国办发〔2022〕27号）",
                       {"registry": {"min_tiers": 3, "lightest_tier_floor": 0.0}}),
    "seed000.major": ("seed 000（市政府55号令）：责令停产停业、吊销许可证或执照、罚款 2 万元以上，60 日内备案",
                      {"penalty": {"major_fine_threshold": 20_000, "major_filing_days": 60,
                                   "major_kinds": ("production_stopped", "licence_revocation")}}),
    "seed001.major": ("seed 001：罚款 20 万元以上及没收、吊销、降级、限制从业、停产停业、关闭等，15 日内备案",
                      {"penalty": {"major_fine_threshold": 200_000, "major_filing_days": 15,
                                   "major_kinds": ("confiscation", "licence_suspension", "licence_revocation",
                                                   "qualification_lowered", "practice_restricted",
                                                   "production_stopped", "closure")}}),
    "seed001.training": ("seed 001：每人每年 20 学时公共法律知识培训，7 月 1 日前报送，11 月 15 日前轮训完毕",
                         {"personnel": {"training_hours_per_year": 20, "training_report_due": "07-01",
                                        "training_due": "11-15"}}),
    "seed001.deadlines": ("seed 001：裁量基准 8 月 15 日前报备，赋权乡镇事项 12 月 15 日前评估",
                          {"registry": {"standards_filing_due": "08-15", "delegated_review_due": "12-15"}}),
    "seed003.discretion": ("seed 003：至少从轻、较轻、一般、较重、严重五个阶次；法定罚款只有最高限值或倍数的，"
                           "从轻处罚不得低于其 20%",
                           {"registry": {"min_tiers": 5, "lightest_tier_floor": 0.2}}),
    "seed003.deadlines": ("seed 003：裁量基准 7 月 30 日前报县法制办备案",
                          {"registry": {"standards_filing_due": "07-30"}}),
}

# The numbers that only make sense together: a preset's values for each group must be exactly
# those of one source that sets the group.
GROUPS: tuple[tuple[str, frozenset[str]], ...] = (
    ("registry", frozenset({"min_tiers", "lightest_tier_floor"})),
    ("penalty", frozenset({"major_fine_threshold", "major_filing_days", "major_kinds"})),
)

# preset -> the sources it adopts, in order (a later source wins for a setting both set)
COMPOSITION: dict[str, tuple[str, ...]] = {
    "national": ("law.discretion",),
    "seed000": ("law.discretion", "seed000.major"),
    "seed001": ("seed001.major", "seed001.training", "seed001.deadlines", "seed003.discretion"),
    "seed003": ("seed003.discretion", "seed003.deadlines"),
}


def _compose(sources: tuple[str, ...]) -> dict[str, dict]:
    out: dict[str, dict] = {"penalty": {}, "personnel": {}, "registry": {}}
    for source in sources:
        for section, values in SOURCES[source][1].items():
            out.setdefault(section, {}).update(copy.deepcopy(values))
    return out


PRESETS: dict[str, dict[str, dict]] = {name: _compose(sources) for name, sources in COMPOSITION.items()}


def coherence_problems(name: str, sections: Mapping[str, Mapping[str, Any]],
                       national: Mapping[str, Mapping[str, Any]] | None = None) -> list[str]:
    """Why preset `name` (merged over `national`) mixes numbers of different sources; [] if coherent."""
    problems = []
    for section, keys in GROUPS:
        merged = {**dict((national or {}).get(section, {})), **dict(sections.get(section, {}))}
        values = {k: _plain(merged[k]) for k in keys if k in merged}
        if not values:
            continue
        bundles = [{k: _plain(v) for k, v in src[1].get(section, {}).items() if k in keys}
                   for src in SOURCES.values()]
        bundles = [b for b in bundles if b]
        if not any(b == values for b in bundles):
            problems.append(f"辖区预设“{name}”的 {section} 设置 {sorted(values)} 不是某一来源的整套数值"
                            f"（{'；'.join(str(sorted(b.items())) for b in bundles)}），不得只采用其中一部分")
    return problems


def _plain(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def preset_in_effect(name: str, sections: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What the API and /health show: the preset's name, the sources it adopts and its numbers."""
    sources = COMPOSITION.get(name)
    return {
        "name": name,
        "sources": [{"id": s, "title": SOURCES[s][0]} for s in sources] if sources else None,
        "settings": {section: {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
                     for section, values in sections.items()},
    }


@hookimpl
def zhifa_presets():
    # A copy, so no caller can change the presets of the whole process.
    return copy.deepcopy(PRESETS)
