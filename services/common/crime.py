"""Crime thresholds (入罪标准, 以罚代刑): which cases a department plugin's threshold applies to.

A threshold names the *administrative* legal basis whose facts can reach the crime (`bases`: law +
article, e.g. 《中华人民共和国食品安全法》第一百二十四条), so it applies to every item of any
department that cites that basis — a county's own item codes need no plugin change. `item_codes`
may still name extra items. A threshold with neither applies to every case of the department.

Shape (checked by the plugin host): {"id", "measure", "threshold", "law" (the criminal provision,
shown in findings), "name", "bases": [{"law", "article"}], "item_codes"?: [...], "unit"?}.

Matching: law names compare without 《》, spaces and the prefix 中华人民共和国; an article matches an
item's article that starts with it at a provision boundary ("第一百二十四条" matches
"第一百二十四条第一款" but not "第一百二十四条之一").
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping


def norm_law(law: str) -> str:
    return "".join(str(law).split()).replace("《", "").replace("》", "").replace("中华人民共和国", "")


def norm_article(article: str) -> str:
    return "".join(str(article).split())


def article_matches(wanted: str, cited: str) -> bool:
    wanted, cited = norm_article(wanted), norm_article(cited)
    return bool(wanted) and cited.startswith(wanted) and not cited[len(wanted):].startswith("之")


def basis_matches(basis: Mapping[str, Any], law: str, article: str) -> bool:
    return norm_law(basis.get("law", "")) == norm_law(law) and article_matches(basis.get("article", ""), article)


def threshold_applies(threshold: Mapping[str, Any], item_code: str, legal_basis: Iterable[tuple[str, str]]) -> bool:
    """Does `threshold` apply to a case on item `item_code` citing `legal_basis` [(law, article)]?"""
    bases, codes = list(threshold.get("bases") or ()), tuple(threshold.get("item_codes") or ())
    if not bases and not codes:
        return True
    if item_code and item_code in codes:
        return True
    cited = list(legal_basis)
    return any(basis_matches(b, law, article) for b in bases for law, article in cited)


def thresholds_reached(thresholds: Iterable[Mapping[str, Any]], item_code: str,
                       legal_basis: Iterable[tuple[str, str]], measures: Mapping[str, float]) -> list[dict]:
    """The thresholds that apply to the case and whose measure it reaches, as evidence dicts."""
    cited = list(legal_basis)
    hits = []
    for th in thresholds:
        value = measures.get(str(th.get("measure")))
        if value is None or value < float(th.get("threshold", 0)) or not threshold_applies(th, item_code, cited):
            continue
        matched = [f"{law}{article}" for law, article in cited
                   if any(basis_matches(b, law, article) for b in th.get("bases") or ())]
        hits.append({"id": th.get("id"), "name": th.get("name"), "law": th.get("law"), "measure": th.get("measure"),
                     "value": value, "threshold": th.get("threshold"), "basis": matched})
    return hits
