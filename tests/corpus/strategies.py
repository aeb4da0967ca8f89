"""Hypothesis strategies built from the cerberus contracts: valid events, and hostile mutations of them.

A generated "valid" event satisfies everything the contract machinery says (types, lengths,
patterns, allowed values, real dates in the year range, date pairs in order, clean strings); the
fuzz tests then check that the catalog agrees, and that no mutation of it can crash admission.
"""
from __future__ import annotations

import json
import math
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from contracts.catalog import YEAR_MAX, YEAR_MIN, strict_regex
from contracts.model import EventContract

# printable text the contracts accept: no control (but tab/newline), format (bidi, zero-width),
# surrogate, private-use or unassigned characters
CLEAN_CHARS = st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn"),
                            include_characters="\t\n")
DEPT = "511322-scjg"

DATES = st.dates(min_value=date(YEAR_MIN, 1, 1), max_value=date(YEAR_MAX, 12, 31))
OFFSETS = st.sampled_from([timezone.utc, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))])


def _datetime_text(draw) -> str:
    moment = draw(st.datetimes(min_value=datetime(YEAR_MIN, 1, 2), max_value=datetime(YEAR_MAX, 12, 30)))
    tz = draw(OFFSETS)
    text = moment.replace(tzinfo=tz).isoformat(timespec=draw(st.sampled_from(["seconds", "minutes", "microseconds"])))
    return text.replace("+00:00", "Z") if draw(st.booleans()) else text


@st.composite
def datetimes_text(draw) -> str:
    return _datetime_text(draw)


def field_value(rule: dict[str, Any]) -> st.SearchStrategy:
    """Values that satisfy one cerberus field definition (already `strict_regex`-ed)."""
    nullable = bool(rule.get("nullable"))
    inner = _non_null(rule)
    return st.one_of(st.none(), inner) if nullable else inner


def _non_null(rule: dict[str, Any]) -> st.SearchStrategy:
    kind = rule.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if "allowed" in rule and kind != "list":
        return st.sampled_from(list(rule["allowed"]))
    if rule.get("calendar") == "date":
        return DATES.map(date.isoformat)
    if rule.get("calendar") == "datetime":
        return datetimes_text()
    if kind == "string":
        lo = max(rule.get("minlength", 0), 1 if rule.get("empty") is False else 0)
        hi = rule.get("maxlength", 200)
        if "regex" in rule:
            pattern = rule["regex"]
            return st.from_regex(pattern, fullmatch=True, alphabet=CLEAN_CHARS).filter(lambda s: lo <= len(s) <= hi)
        return st.text(CLEAN_CHARS, min_size=lo, max_size=min(hi, 60)).filter(_not_invisible_only)
    if kind == "integer":
        return st.integers(min_value=rule.get("min", -10**9), max_value=rule.get("max", 10**9))
    if kind == "number":
        lo, hi = rule.get("min", -1e9), rule.get("max", 1e9)
        return st.one_of(st.integers(min_value=math.ceil(lo), max_value=math.floor(hi)),
                         st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False))
    if kind == "boolean":
        return st.booleans()
    if kind == "list":
        items = rule.get("schema", {})
        element = st.sampled_from(list(rule["allowed"])) if "allowed" in rule else field_value(items)
        lo = max(rule.get("minlength", 0), 1 if rule.get("empty") is False else 0)
        return st.lists(element, min_size=lo, max_size=min(rule.get("maxlength", 4), 4))
    if kind == "dict":
        if "schema" in rule:
            return mapping(rule["schema"])
        keys = field_value(rule.get("keysrules", {"type": "string", "maxlength": 20, "minlength": 1}))
        values = field_value(rule.get("valuesrules", {"type": "string", "maxlength": 20}))
        return st.dictionaries(keys, values, max_size=3)
    raise NotImplementedError(f"no strategy for {rule}")


def _not_invisible_only(text: str) -> bool:
    return True


@st.composite
def mapping(draw, schema: dict[str, dict]) -> dict:
    """A dict for a cerberus mapping schema: required fields, some optional ones, one of each
    `excludes` pair, `<x>_from`/`<x>_to` pairs in order."""
    out: dict[str, Any] = {}
    skipped: set[str] = set()
    for name, rule in schema.items():
        if name in skipped:
            continue
        partners = rule.get("excludes")
        partners = [partners] if isinstance(partners, str) else list(partners or [])
        if partners:
            group = [name, *partners]
            skipped.update(group)
            required = any(schema.get(g, {}).get("required") for g in group)
            chosen = draw(st.sampled_from(group)) if required or draw(st.booleans()) else None
            if chosen is not None:
                out[chosen] = draw(field_value(schema[chosen]))
            continue
        if rule.get("required") or draw(st.booleans()):
            out[name] = draw(field_value(rule))
    for key in list(out):
        if key == "from" or key.endswith("_from"):
            end = key[:-4] + "to"
            a, b = out.get(key), out.get(end)
            if isinstance(a, str) and isinstance(b, str) and len(a) == len(b) == 10 and b < a:
                out[key], out[end] = b, a
            elif isinstance(a, str) and isinstance(b, str) and len(a) > 10 and len(b) > 10:
                try:
                    if datetime.fromisoformat(b.replace("Z", "+00:00")) < datetime.fromisoformat(a.replace("Z", "+00:00")):
                        out[key], out[end] = b, a
                except ValueError:
                    pass
    return out


@st.composite
def valid_envelope(draw, contract: EventContract) -> dict:
    payload = draw(mapping(strict_regex(contract.schema)))
    return {"event_id": str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)), version=4)), "type": contract.type,
            "schema_version": contract.version, "occurred_at": draw(datetimes_text()), "dept": DEPT,
            "source": draw(st.text(CLEAN_CHARS, min_size=1, max_size=30)), "payload": payload}


# ---- hostile values -----------------------------------------------------------------------------
HOSTILE_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**30, max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.text(st.characters(codec="utf-8"), max_size=10),
    st.sampled_from(["2024-02-30", "9999-12-31", "9999-12-31T23:59:59Z", "2024-01-01T24:00:00Z", "\u202eabc",
                     "\u200b", "a\x00b", "\ud800", "$where", "{\"$gt\": \"\"}", "2024-13-01", "1e400", "NaN",
                     "Infinity", "true", "511322-scjg\n", "../../etc/passwd", "<script>alert(1)</script>",
                     "名" * 3000, "' OR 1=1 --"]),
)
HOSTILE_VALUES = st.recursive(HOSTILE_SCALARS,
                              lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                              max_leaves=8)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(paths(v, prefix + (k,)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(paths(v, prefix + (i,)))
    return out


@st.composite
def mutated(draw, envelope: dict) -> dict:
    """The envelope with one hostile change: a value replaced, a key removed or an unknown key added."""
    doc = json.loads(json.dumps(envelope))
    where = draw(st.sampled_from(paths(doc)))
    parent = doc
    for step in where[:-1]:
        parent = parent[step]
    action = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
    if action == "replace" or not isinstance(parent, dict):
        parent[where[-1]] = draw(HOSTILE_VALUES)
    elif action == "remove":
        del parent[where[-1]]
    else:
        parent[draw(st.text(max_size=10))] = draw(HOSTILE_VALUES)
    return doc


def encode(doc: Any) -> bytes:
    """JSON text of any value, lone surrogates and NaN included (as \\u escapes and NaN literals)."""
    return json.dumps(doc, ensure_ascii=True, allow_nan=True).encode()
